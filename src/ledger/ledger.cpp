#include "keymaster/ledger/ledger.hpp"

#include "db.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

namespace keymaster::ledger {
namespace {

// The two rules the ledger's queries share, written once.
// Mined: in a block, by a receipt of ours (confirmed, or reverted there: its fee was paid).
std::string mined(const std::string& t = "") {
    return "(" + t + "state='confirmed' OR (" + t + "state='failed' AND " + t + "block>0))";
}
bool mined(State s, std::int64_t block) { return s == State::kConfirmed || (s == State::kFailed && block > 0); }
// A payment: what counts against the limits, once per nonce (replacements share it): every entry
// but a dropped or failed one.
const std::string kPayment = "state IN ('intent','sent','confirmed','replaced')";


// One statement, its values bound by chained calls (the Db's Query underneath).
class Stmt {
public:
    Stmt(detail::Db& db, const std::string& sql) : q_(db.prepare(sql)) {}
    Stmt& bind(int i, const std::string& v) {
        q_->bind_text(i, v);
        return *this;
    }
    Stmt& bind(int i, std::int64_t v) {
        q_->bind_i64(i, v);
        return *this;
    }
    Stmt& bind(int i, double v) {
        q_->bind_real(i, v);
        return *this;
    }
    Stmt& bind_null(int i) {
        q_->bind_null(i);
        return *this;
    }
    void reset() { q_->reset(); }
    bool step() { return q_->step(); }
    //! A write: its rows are not read (it may be queued until the transaction's next read or commit).
    void exec() { q_->execute(); }
    [[nodiscard]] std::string text(int c) const { return q_->text(c); }
    [[nodiscard]] std::int64_t i64(int c) const { return q_->i64(c); }
    [[nodiscard]] double real(int c) const { return q_->real(c); }

private:
    std::unique_ptr<detail::Query> q_;
};

Wei wei(const std::string& s) { return s.empty() ? Wei(0) : Wei(s); }

// The sizes of the multi-row statements `n` rows are written with: few distinct statements (each
// is prepared once), few statements in all.
std::vector<std::size_t> row_chunks(std::size_t n) {
    std::vector<std::size_t> out;
    for (const std::size_t size : {64U, 16U, 4U, 1U})
        for (; n >= size; n -= size) out.push_back(size);
    return out;
}

// `insert` followed by `size` copies of `row`, comma-separated.
std::string rows_sql(const char* insert, const char* row, std::size_t size) {
    std::string sql = insert;
    for (std::size_t k = 0; k < size; ++k) sql += (k ? "," : "") + std::string(row);
    return sql;
}

constexpr const char* kColumns =
    "id, created, updated, network, chain_id, bank, recipient, home, role, amount, nonce, tx_type, max_fee, "
    "priority_fee, gas_price, gas_limit, raw, tx_hash, state, block, gas_used, fee_paid, replaced_by, error, sent_block, "
    "taken_block, l1_fee, operator_fee, block_hash, is_final, fee_estimated";

Entry read_entry(const Stmt& s) {
    Entry e;
    e.id = s.i64(0);
    e.created = s.real(1);
    e.updated = s.real(2);
    e.network = s.text(3);
    e.chain_id = static_cast<std::uint64_t>(s.i64(4));
    e.bank = s.text(5);
    e.recipient = s.text(6);
    e.home = s.text(7);
    e.role = s.text(8);
    e.amount = wei(s.text(9));
    e.nonce = static_cast<std::uint64_t>(s.i64(10));
    e.tx_type = static_cast<int>(s.i64(11));
    e.max_fee = wei(s.text(12));
    e.priority_fee = wei(s.text(13));
    e.gas_price = wei(s.text(14));
    e.gas_limit = static_cast<std::uint64_t>(s.i64(15));
    e.raw = s.text(16);
    e.tx_hash = s.text(17);
    e.state = parse_state(s.text(18)).value_or(State::kFailed);
    e.block = static_cast<std::uint64_t>(s.i64(19));
    e.gas_used = static_cast<std::uint64_t>(s.i64(20));
    e.fee_paid = wei(s.text(21));
    e.replaced_by = s.text(22);
    e.error = s.text(23);
    e.sent_block = static_cast<std::uint64_t>(s.i64(24));
    e.taken_block = static_cast<std::uint64_t>(s.i64(25));
    e.l1_fee = wei(s.text(26));
    e.operator_fee = wei(s.text(27));
    e.block_hash = s.text(28);
    e.is_final = s.i64(29) != 0;
    e.fee_estimated = s.i64(30) != 0;
    return e;
}

}  // namespace

std::string_view state_name(State s) {
    switch (s) {
        case State::kIntent: return "intent";
        case State::kSent: return "sent";
        case State::kConfirmed: return "confirmed";
        case State::kReplaced: return "replaced";
        case State::kDropped: return "dropped";
        case State::kFailed: return "failed";
    }
    return "?";
}

std::optional<State> parse_state(std::string_view s) {
    for (State st : {State::kIntent, State::kSent, State::kConfirmed, State::kReplaced, State::kDropped, State::kFailed})
        if (state_name(st) == s) return st;
    return std::nullopt;
}

std::string Location::shown() const { return kind == Kind::kSqlite ? target : detail::redact_url(target); }

Expected<Location> parse_location(const std::string& url, const std::string& data_dir) {
    if (url.empty()) return Location{Location::Kind::kSqlite, data_dir + "/ledger.sqlite"};
    if (url.rfind("sqlite:", 0) == 0 && url.size() > 7) return Location{Location::Kind::kSqlite, url.substr(7)};
    if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
        if (auto c = detail::pg_connect(url); !c) return c.error();  // a bad keymaster_timeout, named
        return Location{Location::Kind::kPostgres, url};
    }
    return Problem{Fault::kConfig, "--ledger " + detail::redact_url(url) +
                                       ": expected sqlite:PATH or a Postgres URI (postgresql://user@host:port/db)"};
}

struct Ledger::Impl {
    const Clock* clock = nullptr;  // the caller's (the Worker's): its wall time
    // Shared (Postgres): the database's clock less ours, measured at open and at every lease claim,
    // so that every replica stamps and counts windows on one clock (0 on SQLite: one process).
    std::atomic<double> offset{0};  // written on the ledger's thread, read by the loop (clock_offset)
    bool shared = false;
    [[nodiscard]] double now() const { return clock->wall() + offset; }
    void measure_offset(double db_now, double before, double after) {
        if (shared) offset = db_now - (before + after) / 2;
    }
    std::unique_ptr<detail::Db> db;
    int lock_fd = -1;

    // Runs `fn` in one write transaction; on any error rolls back and rethrows.
    // Inside Ledger::atomically() the outer transaction holds them all.
    template <typename Fn>
    auto transaction(Fn&& fn) {
        if (depth > 0) return fn();
        db->begin();
        ++depth;
        try {
            check_fence();
            auto result = fn();
            write_events();
            --depth;
            db->commit();
            return result;
        } catch (...) {
            depth = 0;
            events.clear();
            db->rollback();
            throw;
        }
    }
    int depth = 0;

    // A transaction the fence does not check (the lease's own claims and releases).
    template <typename Fn>
    auto unfenced_transaction(Fn&& fn) {
        unfenced = true;
        struct Reset {
            bool& flag;
            ~Reset() { flag = false; }
        } reset{unfenced};
        return transaction(std::forward<Fn>(fn));
    }

    // The lease a writer was fenced with (none: not fenced).
    struct Fence {
        std::string name, holder;
        std::uint64_t epoch = 0;
    };
    std::optional<Fence> fence;
    bool unfenced = false;  // claim_lease's own transaction

    void check_fence() {
        if (!fence || unfenced) return;
        Stmt s(*db, std::string("SELECT 1 FROM lease WHERE name=? AND holder=? AND epoch=? AND expires > ") + db->now_sql() +
                        db->for_share());
        s.bind(1, fence->name).bind(2, fence->holder).bind(3, static_cast<std::int64_t>(fence->epoch));
        if (!s.step())
            throw FencedError("ledger " + db->where() + ": the lease " + fence->name + " (epoch " + std::to_string(fence->epoch) +
                              ") is no longer held by " + fence->holder + ": nothing written");
    }

    // Every change of state also goes to `events`: kept here until the end of the transaction
    // that made them (nothing reads them back in it), then written in a few multi-row inserts.
    struct Event {
        std::int64_t id;
        double time;
        State state;
        std::string detail;
    };
    std::vector<Event> events;
    void event(std::int64_t id, State s, const std::string& detail) { events.push_back({id, now(), s, detail}); }
    void write_events() {
        std::size_t first = 0;
        for (const auto size : row_chunks(events.size())) {
            Stmt s(*db, rows_sql("INSERT INTO events(topup_id, time, state, detail) VALUES", "(?,?,?,?)", size));
            for (std::size_t k = 0; k < size; ++k) {
                const auto& e = events[first + k];
                const int at = static_cast<int>(4 * k);
                s.bind(at + 1, e.id).bind(at + 2, e.time).bind(at + 3, std::string(state_name(e.state))).bind(at + 4, e.detail);
            }
            s.exec();
            first += size;
        }
        events.clear();
    }

    // One keymaster per data directory (SQLite): an exclusive flock on <dir>/keymaster.lock, which
    // holds the holder's pid.
    void take_lock(const std::string& dir) {
        const std::string lock_path = dir + "/keymaster.lock";
        lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0) throw LedgerError("lock " + lock_path + ": " + std::strerror(errno));
        if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
            char buf[32] = {};
            const auto n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
            std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
            ::close(lock_fd);
            lock_fd = -1;
            throw LockedError("another keymaster (pid " + pid + ") is using " + dir);
        }
        const std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(lock_fd, 0) != 0 || ::pwrite(lock_fd, pid.data(), pid.size(), 0) < 0)
            throw LedgerError("lock " + lock_path + ": " + std::strerror(errno));
    }
};

Ledger::Ledger(const std::string& dir, bool lock, const Clock& clock)
    : Ledger(Location{Location::Kind::kSqlite, dir + "/ledger.sqlite"}, lock, clock) {}

Ledger::Ledger(const Location& where, bool lock, const Clock& clock) : impl_(std::make_unique<Impl>()) {
    impl_->clock = &clock;
    if (where.kind == Location::Kind::kSqlite) {
        const auto dir = std::filesystem::path(where.target).parent_path().string();
        std::error_code ec;
        std::filesystem::create_directories(dir.empty() ? "." : dir, ec);
        if (ec) throw LedgerError("data dir " + dir + ": " + ec.message());
        if (lock) impl_->take_lock(dir.empty() ? "." : dir);
        impl_->db = detail::open_sqlite(where.target);
    } else {
        impl_->db = detail::open_postgres(where.target);  // writers share it: the lease decides (claim_lease, fence)
        impl_->shared = true;
    }
    impl_->db->create_schema();
    // An SQLite ledger opened with its lock is this process's alone: a lease in it (a sender lease
    // of a Worker) was left by a process that is gone (killed before it released it), and would
    // keep this one from sending until it expired.
    if (!impl_->shared && lock) impl_->db->exec("DELETE FROM lease");
    if (impl_->shared) {
        const double before = impl_->clock->wall();
        Stmt s(*impl_->db, std::string("SELECT ") + impl_->db->now_sql());
        if (s.step()) impl_->measure_offset(s.real(0), before, impl_->clock->wall());
    }
}

Ledger::~Ledger() {
    impl_->db.reset();
    if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);  // releases the flock
}

const std::string& Ledger::path() const { return impl_->db->where(); }

void Ledger::atomically(const std::function<void()>& fn) {
    impl_->transaction([&] {
        fn();
        return 0;
    });
}

std::int64_t Ledger::record_intent(Entry e) {
    std::vector<Entry> one(1, std::move(e));
    record_intents(one);
    return one[0].id;
}

namespace {

constexpr const char* kIntentColumns =
    "INSERT INTO topups(created, updated, network, chain_id, bank, recipient, home, role, amount, nonce, tx_type, max_fee, "
    "priority_fee, gas_price, gas_limit, raw, tx_hash, state, sent_block) VALUES";
constexpr const char* kIntentRow = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'intent',?)";
constexpr int kIntentParams = 18;

void bind_intent(Stmt& s, int at, const Entry& e, double t) {
    s.bind(at + 1, t).bind(at + 2, t).bind(at + 3, e.network).bind(at + 4, static_cast<std::int64_t>(e.chain_id))
        .bind(at + 5, e.bank).bind(at + 6, e.recipient).bind(at + 7, e.home).bind(at + 8, e.role).bind(at + 9, e.amount.str())
        .bind(at + 10, static_cast<std::int64_t>(e.nonce)).bind(at + 11, static_cast<std::int64_t>(e.tx_type))
        .bind(at + 12, e.max_fee.str()).bind(at + 13, e.priority_fee.str()).bind(at + 14, e.gas_price.str())
        .bind(at + 15, static_cast<std::int64_t>(e.gas_limit)).bind(at + 16, e.raw).bind(at + 17, e.tx_hash)
        .bind(at + 18, static_cast<std::int64_t>(e.sent_block));
}

}  // namespace

void Ledger::record_intents(std::vector<Entry>& entries) {
    const double t = impl_->now();
    impl_->transaction([&] {
        std::size_t first = 0;
        for (const auto size : row_chunks(entries.size())) {
            Stmt s(*impl_->db, rows_sql(kIntentColumns, kIntentRow, size) + " RETURNING id, tx_hash");
            for (std::size_t k = 0; k < size; ++k) bind_intent(s, static_cast<int>(k) * kIntentParams, entries[first + k], t);
            // Each row's id, matched by its transaction's hash (the order of RETURNING is not promised).
            std::multimap<std::string, std::size_t> by_hash;
            for (std::size_t k = 0; k < size; ++k) by_hash.emplace(entries[first + k].tx_hash, first + k);
            while (s.step()) {
                const auto it = by_hash.find(s.text(1));
                if (it == by_hash.end()) throw LedgerError("ledger " + impl_->db->where() + ": a new entry came back unknown");
                entries[it->second].id = s.i64(0);
                entries[it->second].created = t;
                by_hash.erase(it);
            }
            if (!by_hash.empty()) throw LedgerError("ledger " + impl_->db->where() + ": a new entry has no id");
            first += size;
        }
        for (const auto& e : entries) impl_->event(e.id, State::kIntent, e.tx_hash);
        return 0;
    });
}

void Ledger::mark(std::int64_t id, State st, const std::string& error) {
    impl_->transaction([&] {
        Stmt(*impl_->db, "UPDATE topups SET state=?, updated=?, error=? WHERE id=?")
            .bind(1, std::string(state_name(st))).bind(2, impl_->now()).bind(3, error).bind(4, id).exec();
        impl_->event(id, st, error);
        return 0;
    });
}

void Ledger::confirmed(std::int64_t id, bool success, std::uint64_t block, std::uint64_t gas_used, const Wei& fee_paid,
                       const Wei& l1_fee, const Wei& operator_fee, const std::string& block_hash, bool estimated) {
    const State st = success ? State::kConfirmed : State::kFailed;
    impl_->transaction([&] {
        Stmt s(*impl_->db,
               "UPDATE topups SET state=?, updated=?, block=?, gas_used=?, fee_paid=?, error=?, l1_fee=?, operator_fee=?, "
               "block_hash=?, fee_estimated=?, is_final=0, confirmed_at=COALESCE(confirmed_at, ?) WHERE id=?");
        s.bind(1, std::string(state_name(st))).bind(2, impl_->now()).bind(3, static_cast<std::int64_t>(block))
            .bind(4, static_cast<std::int64_t>(gas_used)).bind(5, fee_paid.str())
            .bind(6, success ? std::string() : "reverted in block " + std::to_string(block))
            .bind(9, block_hash).bind(10, static_cast<std::int64_t>(estimated ? 1 : 0)).bind(11, impl_->now()).bind(12, id);
        int at = 7;
        for (const Wei* part : {&l1_fee, &operator_fee}) {  // NULL where the chain charges no such part
            if (*part > 0) s.bind(at++, part->str());
            else s.bind_null(at++);
        }
        s.exec();
        impl_->event(id, st, "block " + std::to_string(block) + (block_hash.empty() ? "" : " " + block_hash) + ", gas used " +
                                 std::to_string(gas_used) + ", fee " + fee_paid.str() + (estimated ? " (estimated: no receipt yet)" : "") +
                                 (l1_fee > 0 ? " (L1 data fee " + l1_fee.str() + ")" : "") +
                                 (operator_fee > 0 ? " (operator fee " + operator_fee.str() + ")" : ""));
        return 0;
    });
}

void Ledger::finalized(std::int64_t id) {
    impl_->transaction([&] {
        Stmt(*impl_->db, "UPDATE topups SET is_final=1 WHERE id=?").bind(1, id).exec();
        return 0;
    });
}

void Ledger::reorged(std::int64_t id, const std::string& why, std::uint64_t block) {
    impl_->transaction([&] {
        Stmt(*impl_->db,
             "UPDATE topups SET state='sent', updated=?, block=NULL, gas_used=NULL, fee_paid=NULL, l1_fee=NULL, "
             "operator_fee=NULL, block_hash=NULL, fee_estimated=0, is_final=0, taken_block=NULL, error=?, sent_block=? WHERE id=?")
            .bind(1, impl_->now()).bind(2, why).bind(3, static_cast<std::int64_t>(block)).bind(4, id).exec();
        impl_->event(id, State::kSent, why);
        return 0;
    });
}

void Ledger::replaced(std::int64_t id, const std::string& by_hash) {
    impl_->transaction([&] {
        Stmt(*impl_->db, "UPDATE topups SET state='replaced', updated=?, replaced_by=? WHERE id=?")
            .bind(1, impl_->now()).bind(2, by_hash).bind(3, id).exec();
        impl_->event(id, State::kReplaced, by_hash);
        return 0;
    });
}

void Ledger::taken(std::int64_t id, std::uint64_t since_block) {
    impl_->transaction([&] {
        Stmt st(*impl_->db, "UPDATE topups SET taken_block=?, updated=? WHERE id=?");
        if (since_block) st.bind(1, static_cast<std::int64_t>(since_block));
        else st.bind_null(1);
        st.bind(2, impl_->now()).bind(3, id).exec();
        return 0;
    });
}

namespace {

// Which rows of a bank a query reads: those journaled under a network's name, or those on a chain
// (whatever network name they were journaled under). `sql` names the column as SCOPE.
struct Scope {
    const char* column;
    std::string name;
    std::int64_t chain = 0;
    [[nodiscard]] std::string sql(std::string text) const {
        for (auto at = text.find("SCOPE"); at != std::string::npos; at = text.find("SCOPE", at)) text.replace(at, 5, column);
        return text;
    }
    void bind(Stmt& s, int at) const {
        if (name.empty()) s.bind(at, chain);
        else s.bind(at, name);
    }
};
Scope by_network(const std::string& network) { return {"network", network, 0}; }
Scope by_chain(std::uint64_t chain_id) { return {"chain_id", "", static_cast<std::int64_t>(chain_id)}; }

std::vector<Entry> pending_in(detail::Db& db, const Scope& scope, const std::string& bank) {
    const std::string sql = scope.sql(
        std::string("SELECT ") + kColumns +
        " FROM topups t WHERE SCOPE=?1 AND bank=?2 AND (state IN ('intent','sent') OR (state='replaced' "
        "AND NOT EXISTS (SELECT 1 FROM topups u WHERE u.SCOPE=t.SCOPE AND u.bank=t.bank AND "
        "u.nonce=t.nonce AND (u.state='dropped' OR " + mined("u.") + ")))) ORDER BY nonce, id");
    Stmt s(db, sql.c_str());
    scope.bind(s, 1);
    s.bind(2, bank);
    std::vector<Entry> out;
    while (s.step()) out.push_back(read_entry(s));
    return out;
}

Wei spent_in(detail::Db& db, const Scope& scope, const std::string& bank, double since) {
    Stmt s(db, scope.sql("SELECT nonce, amount FROM topups WHERE SCOPE=? AND bank=? AND created>=? AND " + kPayment));
    scope.bind(s, 1);
    s.bind(2, bank).bind(3, since);
    // Replacements share a nonce: one payment, counted once (at its largest amount).
    std::map<std::int64_t, Wei> by_nonce;
    while (s.step()) {
        auto& v = by_nonce[s.i64(0)];
        v = std::max(v, wei(s.text(1)));
    }
    Wei total = 0;
    for (const auto& [_, amount] : by_nonce) total += amount;
    return total;
}

std::map<std::string, Ledger::Received> received_in(detail::Db& db, const Scope& scope, const std::string& bank,
                                                    double since) {
    Stmt s(db,
           scope.sql("SELECT nonce, recipient, amount FROM topups WHERE SCOPE=? AND bank=? AND created>=? AND "
                     "role<>'nonce-filler' AND " + kPayment));
    scope.bind(s, 1);
    s.bind(2, bank).bind(3, since);
    std::map<std::int64_t, std::pair<std::string, Wei>> by_nonce;  // one payment per nonce, at its largest amount
    while (s.step()) {
        auto& [recipient, amount] = by_nonce[s.i64(0)];
        recipient = s.text(1);
        amount = std::max(amount, wei(s.text(2)));
    }
    std::map<std::string, Ledger::Received> out;
    for (const auto& [nonce, payment] : by_nonce) {
        auto& r = out[payment.first];
        r.amount += payment.second;
        ++r.count;
    }
    return out;
}

}  // namespace

std::vector<Entry> Ledger::pending(const std::string& network, const std::string& bank) const {
    return pending_in(*impl_->db, by_network(network), bank);
}

std::vector<Entry> Ledger::pending(std::uint64_t chain_id, const std::string& bank) const {
    return pending_in(*impl_->db, by_chain(chain_id), bank);
}

std::vector<std::string> Ledger::unresolved_banks(std::uint64_t chain_id) const {
    Stmt s(*impl_->db, "SELECT DISTINCT bank FROM topups WHERE chain_id=? AND (state IN ('intent','sent') OR (is_final=0 AND " +
                           mined() + ")) ORDER BY bank");
    s.bind(1, static_cast<std::int64_t>(chain_id));
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

std::vector<Entry> Ledger::unfinal(std::uint64_t chain_id, const std::string& bank) const {
    Stmt s(*impl_->db, std::string("SELECT ") + kColumns +
                           " FROM topups WHERE chain_id=? AND bank=? AND is_final=0 AND " + mined() + " ORDER BY nonce, id");
    s.bind(1, static_cast<std::int64_t>(chain_id)).bind(2, bank);
    std::vector<Entry> out;
    while (s.step()) out.push_back(read_entry(s));
    return out;
}

Wei Ledger::spent_since(const std::string& network, const std::string& bank, double since) const {
    return spent_in(*impl_->db, by_network(network), bank, since);
}

Wei Ledger::spent_since(std::uint64_t chain_id, const std::string& bank, double since) const {
    return spent_in(*impl_->db, by_chain(chain_id), bank, since);
}

std::map<std::string, Ledger::Received> Ledger::received_since(const std::string& network, const std::string& bank,
                                                               double since) const {
    return received_in(*impl_->db, by_network(network), bank, since);
}

std::map<std::string, Ledger::Received> Ledger::received_since(std::uint64_t chain_id, const std::string& bank,
                                                               double since) const {
    return received_in(*impl_->db, by_chain(chain_id), bank, since);
}

std::vector<Ledger::Arrival> Ledger::confirmed_since(const std::string& network, const std::string& bank,
                                                     double since) const {
    Stmt s(*impl_->db,
           "SELECT recipient, amount, COALESCE(confirmed_at, updated) FROM topups WHERE network=? AND bank=? AND state='confirmed' "
           "AND COALESCE(confirmed_at, updated)>? "
           "AND role<>'nonce-filler'");
    s.bind(1, network).bind(2, bank).bind(3, since);
    std::vector<Arrival> out;
    while (s.step()) out.push_back({s.text(0), wei(s.text(1)), s.real(2)});
    return out;
}

Wei Ledger::paid_since(const std::string& network, const std::string& bank, double since) const {
    Stmt s(*impl_->db,
           "SELECT state, amount, fee_paid FROM topups WHERE network=?1 AND bank=?2 AND COALESCE(confirmed_at, updated)>=?3 AND " +
               mined());
    s.bind(1, network).bind(2, bank).bind(3, since);
    Wei total = 0;
    while (s.step()) total += (s.text(0) == "confirmed" ? wei(s.text(1)) : Wei(0)) + wei(s.text(2));
    return total;
}

std::vector<Ledger::BurnState> Ledger::burn_states(const std::string& network) const {
    Stmt s(*impl_->db, "SELECT address, since, time, balance FROM burn_state WHERE network=?");
    s.bind(1, network);
    std::vector<BurnState> out;
    while (s.step()) out.push_back({s.text(0), s.real(1), s.real(2), wei(s.text(3))});
    return out;
}

std::vector<Ledger::BurnRow> Ledger::burn_rows(const std::string& network, double since) const {
    Stmt s(*impl_->db, "SELECT address, start, stop, spent FROM burn WHERE network=? AND stop>=? ORDER BY address, start");
    s.bind(1, network).bind(2, since);
    std::vector<BurnRow> out;
    while (s.step()) out.push_back({s.text(0), s.real(1), s.real(2), wei(s.text(3))});
    return out;
}

void Ledger::save_burn(const std::string& network, const std::vector<BurnState>& states, const std::vector<BurnRow>& rows) {
    if (states.empty() && rows.empty()) return;
    impl_->transaction([&] {
        Stmt st(*impl_->db,
                "INSERT INTO burn_state(network, address, since, time, balance) VALUES(?,?,?,?,?) ON CONFLICT(network, address) "
                "DO UPDATE SET since=excluded.since, time=excluded.time, balance=excluded.balance");
        for (const auto& b : states) {
            st.bind(1, network).bind(2, b.address).bind(3, b.since).bind(4, b.time).bind(5, b.balance.str()).exec();
            st.reset();
        }
        Stmt sr(*impl_->db,
                "INSERT INTO burn(network, address, start, stop, spent) VALUES(?,?,?,?,?) ON CONFLICT(network, address, start) "
                "DO UPDATE SET stop=excluded.stop, spent=excluded.spent");
        for (const auto& r : rows) {
            sr.bind(1, network).bind(2, r.address).bind(3, r.start).bind(4, r.stop).bind(5, r.spent.str()).exec();
            sr.reset();
        }
        return 0;
    });
}

void Ledger::prune_burn(const std::string& network, double before) {
    impl_->transaction([&] {
        Stmt(*impl_->db, "DELETE FROM burn WHERE network=? AND stop<?").bind(1, network).bind(2, before).exec();
        return 0;
    });
}

std::optional<Ledger::Audit> Ledger::audit(const std::string& network, const std::string& bank) const {
    Stmt s(*impl_->db, "SELECT next_nonce, point_nonce, point_block, point_balance FROM bank_audit WHERE network=? AND bank=?");
    s.bind(1, network).bind(2, bank);
    if (!s.step()) return std::nullopt;
    Audit a;
    a.next_nonce = static_cast<std::uint64_t>(s.i64(0));
    if (!s.text(1).empty()) {
        a.point_nonce = static_cast<std::uint64_t>(s.i64(1));
        a.point_block = static_cast<std::uint64_t>(s.i64(2));
        a.point_balance = wei(s.text(3));
    }
    return a;
}

void Ledger::save_audit(const std::string& network, const std::string& bank, const Audit& a) {
    impl_->transaction([&] {
        Stmt st(*impl_->db,
                "INSERT INTO bank_audit(network, bank, next_nonce, point_nonce, point_block, point_balance) "
                "VALUES(?,?,?,?,?,?) ON CONFLICT(network, bank) DO UPDATE SET next_nonce=excluded.next_nonce, "
                "point_nonce=excluded.point_nonce, point_block=excluded.point_block, point_balance=excluded.point_balance");
        st.bind(1, network).bind(2, bank).bind(3, static_cast<std::int64_t>(a.next_nonce));
        if (a.point_nonce) {
            st.bind(4, static_cast<std::int64_t>(*a.point_nonce)).bind(5, static_cast<std::int64_t>(a.point_block.value_or(0)));
            st.bind(6, a.point_balance.str());
        } else {
            st.bind_null(4).bind_null(5).bind_null(6);
        }
        st.exec();
        return 0;
    });
}

namespace {

Wei outflow_in(detail::Db& db, const Scope& scope, const std::string& bank, std::uint64_t from, std::uint64_t to) {
    Stmt s(db, scope.sql("SELECT state, amount, fee_paid FROM topups WHERE SCOPE=? AND bank=? AND nonce>=? AND nonce<? AND " +
                         mined()));
    scope.bind(s, 1);
    s.bind(2, bank).bind(3, static_cast<std::int64_t>(from)).bind(4, static_cast<std::int64_t>(to));
    Wei total = 0;
    while (s.step()) total += (s.text(0) == "confirmed" ? wei(s.text(1)) : Wei(0)) + wei(s.text(2));
    return total;
}

std::map<std::uint64_t, Ledger::NonceUse> nonce_uses_in(detail::Db& db, const Scope& scope, const std::string& bank,
                                                        std::uint64_t from, std::uint64_t to) {
    Stmt s(db, scope.sql("SELECT nonce, state, block FROM topups WHERE SCOPE=? AND bank=? AND nonce>=? AND nonce<?"));
    scope.bind(s, 1);
    s.bind(2, bank).bind(3, static_cast<std::int64_t>(from)).bind(4, static_cast<std::int64_t>(to));
    std::map<std::uint64_t, Ledger::NonceUse> out;
    while (s.step()) {
        auto& u = out[static_cast<std::uint64_t>(s.i64(0))];
        const auto state = parse_state(s.text(1));
        if (state && mined(*state, s.i64(2))) u.mined = true;
        if (state == State::kIntent || state == State::kSent || state == State::kReplaced) u.open = true;
    }
    return out;
}

}  // namespace

Wei Ledger::outflow(const std::string& network, const std::string& bank, std::uint64_t from, std::uint64_t to) const {
    return outflow_in(*impl_->db, by_network(network), bank, from, to);
}

Wei Ledger::outflow(std::uint64_t chain_id, const std::string& bank, std::uint64_t from, std::uint64_t to) const {
    return outflow_in(*impl_->db, by_chain(chain_id), bank, from, to);
}

std::map<std::uint64_t, Ledger::NonceUse> Ledger::nonce_uses(const std::string& network, const std::string& bank,
                                                             std::uint64_t from, std::uint64_t to) const {
    return nonce_uses_in(*impl_->db, by_network(network), bank, from, to);
}

std::map<std::uint64_t, Ledger::NonceUse> Ledger::nonce_uses(std::uint64_t chain_id, const std::string& bank, std::uint64_t from,
                                                             std::uint64_t to) const {
    return nonce_uses_in(*impl_->db, by_chain(chain_id), bank, from, to);
}

Lease decide_lease(const Lease& current, const std::string& me, double now, double seconds) {
    Lease out = current;
    const bool live = current.expires > now && !current.holder.empty();
    if (live && current.holder != me) {
        out.mine = false;
        return out;
    }
    if (!live || current.holder != me) ++out.epoch;  // a change of holder, or ours again after it expired
    out.holder = me;
    out.expires = now + seconds;
    out.mine = true;
    return out;
}

Lease Ledger::claim_lease(const std::string& name, const std::string& holder, double seconds) {
    const double before = impl_->clock->wall();
    return impl_->unfenced_transaction([&] {
        auto& db = *impl_->db;
        Stmt(db, "INSERT INTO lease(name, holder, epoch, expires) VALUES(?, '', 0, 0) ON CONFLICT(name) DO NOTHING")
            .bind(1, name).exec();
        Stmt s(db, std::string("SELECT holder, epoch, expires, ") + db.now_sql() + " FROM lease WHERE name=?" + db.for_update());
        s.bind(1, name);
        if (!s.step()) throw LedgerError("ledger " + db.where() + ": the lease " + name + " is missing");
        const Lease current{s.text(0), static_cast<std::uint64_t>(s.i64(1)), s.real(2), false};
        impl_->measure_offset(s.real(3), before, impl_->clock->wall());
        const auto next = decide_lease(current, holder, s.real(3), seconds);
        if (next.mine)
            Stmt(db, "UPDATE lease SET holder=?, epoch=?, expires=? WHERE name=?")
                .bind(1, next.holder).bind(2, static_cast<std::int64_t>(next.epoch)).bind(3, next.expires).bind(4, name).exec();
        return next;
    });
}

void Ledger::release_lease(const std::string& name, const std::string& holder) {
    impl_->unfenced_transaction([&] {
        Stmt(*impl_->db, std::string("UPDATE lease SET expires=") + impl_->db->now_sql() + " WHERE name=? AND holder=?")
            .bind(1, name).bind(2, holder).exec();
        return 0;
    });
}

void Ledger::fence(const std::string& name, const std::string& holder, std::uint64_t epoch) {
    impl_->fence = Impl::Fence{name, holder, epoch};
}

void Ledger::hold_lease(const std::string& name, const std::string& holder, std::uint64_t epoch, double seconds) {
    impl_->transaction([&] {
        auto& db = *impl_->db;
        Stmt s(db, std::string("SELECT holder, epoch, ") + db.now_sql() + " FROM lease WHERE name=?" + db.for_update());
        s.bind(1, name);
        const bool found = s.step();
        if (!found || s.text(0) != holder || static_cast<std::uint64_t>(s.i64(1)) != epoch)
            throw FencedError("the lease " + name + " is held by " + (found && !s.text(0).empty() ? s.text(0) : "nobody") +
                              ", no longer by " + holder + " (epoch " + std::to_string(epoch) + "): nothing written");
        Stmt(db, "UPDATE lease SET expires=? WHERE name=?").bind(1, s.real(2) + seconds).bind(2, name).exec();
        return 0;
    });
}

bool Ledger::renew_lease(const std::string& name, const std::string& holder, double seconds) {
    return renew_leases({{name, holder}}, seconds) == 1;
}

std::size_t Ledger::renew_leases(const std::vector<std::pair<std::string, std::string>>& leases, double seconds) {
    if (leases.empty()) return 0;
    return impl_->unfenced_transaction([&] {
        auto& db = *impl_->db;
        const std::string now = db.now_sql();
        std::size_t n = 0;
        for (const auto& [name, holder] : leases) {
            Stmt s(db, "UPDATE lease SET expires=" + now + " + ? WHERE name=? AND holder=? AND expires > " + now + " RETURNING name");
            s.bind(1, seconds).bind(2, name).bind(3, holder);
            n += s.step() ? 1 : 0;
        }
        return n;
    });
}

double Ledger::now() const { return impl_->now(); }

double Ledger::clock_offset() const { return impl_->offset; }

void Ledger::ping() {
    Stmt s(*impl_->db, "SELECT 1");
    (void)s.step();
}

std::vector<Entry> Ledger::history(const Filter& f) const {
    std::string sql = std::string("SELECT ") + kColumns + " FROM topups WHERE 1=1";
    if (f.network) sql += " AND network=?";
    if (f.address) sql += " AND lower(recipient)=lower(CAST(? AS TEXT))";
    if (f.since) sql += " AND created>=?";
    sql += " ORDER BY created DESC, id DESC";
    Stmt s(*impl_->db, sql);
    int i = 0;  // the parameters in order: only those the filter has
    if (f.network) s.bind(++i, *f.network);
    if (f.address) s.bind(++i, *f.address);
    if (f.since) s.bind(++i, *f.since);
    std::vector<Entry> out;
    while (s.step()) out.push_back(read_entry(s));
    return out;
}

}  // namespace keymaster::ledger
