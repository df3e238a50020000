#include <dlfcn.h>
#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "db.hpp"
#include "keymaster/ledger/ledger.hpp"

namespace keymaster::ledger::detail {
namespace {

// libpq, loaded when a Postgres ledger is first opened (dlopen), not linked: a deployment on SQLite
// never maps it nor what it pulls in (Kerberos, LDAP, ...: about 6 MiB of every daemon's memory).
// Every libpq function used, once: the table's members and what loads them.
#define KM_PQ_FUNCTIONS(X) \
    X(PQbackendPID) \
    X(PQclear) \
    X(PQconnectdb) \
    X(PQconsumeInput) \
    X(PQenterPipelineMode) \
    X(PQerrorMessage) \
    X(PQexitPipelineMode) \
    X(PQfinish) \
    X(PQflush) \
    X(PQgetResult) \
    X(PQgetisnull) \
    X(PQgetvalue) \
    X(PQisBusy) \
    X(PQntuples) \
    X(PQpipelineStatus) \
    X(PQpipelineSync) \
    X(PQreset) \
    X(PQresultErrorMessage) \
    X(PQresultStatus) \
    X(PQsendPrepare) \
    X(PQsendQuery) \
    X(PQsendQueryParams) \
    X(PQsendQueryPrepared) \
    X(PQsetnonblocking) \
    X(PQsocket) \
    X(PQstatus)

struct LibPq {
#define KM_PQ_MEMBER(name) decltype(&::name) name = nullptr;
    KM_PQ_FUNCTIONS(KM_PQ_MEMBER)
#undef KM_PQ_MEMBER
};

const LibPq& pq() {
    static const LibPq lib = [] {
        void* h = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
        if (!h) throw LedgerError(std::string("cannot load libpq.so.5 for a Postgres ledger (install libpq5): ") + ::dlerror());
        LibPq l;
#define KM_PQ_LOAD(name)                                                                                   \
    l.name = reinterpret_cast<decltype(l.name)>(::dlsym(h, #name));                                         \
    if (!l.name) throw LedgerError("libpq.so.5 has no " #name ": a libpq older than 14 (pipeline mode) is installed");
        KM_PQ_FUNCTIONS(KM_PQ_LOAD)
#undef KM_PQ_LOAD
        return l;
    }();
    return lib;
}

// Created under an advisory lock, so that processes opening a new ledger at once (two replicas
// starting) create it once.
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7290412);\n";

// Each session: no NOTICE for "already exists" on every start; and every statement planned for its
// values, though prepared once (with the generic plans Postgres picks after five runs, which cannot
// see the values, a poll over a ledger of 10,000 entries took 5 to 9 times longer: bench/run.py).
constexpr const char* kSession = "SET client_min_messages = warning; SET plan_cache_mode = force_custom_plan; SET statement_timeout = ";

// Statements queued in a transaction before their results are read: bounded, so that the server's
// answers never fill the socket while libpq is still writing (libpq's pipeline-mode warning).
constexpr int kMaxQueued = 256;

// `?` (numbered in order) and `?N` as Postgres' `$N`; string literals are left alone.
std::string dollar_params(const std::string& sql) {
    std::string out;
    out.reserve(sql.size() + 16);
    int next = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'') quoted = !quoted;
        if (c != '?' || quoted) {
            out += c;
            continue;
        }
        out += '$';
        if (i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') continue;  // ?N: the digits follow
        out += std::to_string(++next);
    }
    return out;
}

std::string trimmed(std::string m) {
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
}

std::string error_of(const PGconn* conn) { return trimmed(conn ? pq().PQerrorMessage(conn) : "out of memory"); }

bool ok(const PGresult* r) {
    const auto st = r ? pq().PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

// A statement's values, as libpq takes them (NULL: SQL NULL).
using Values = std::vector<std::optional<std::string>>;

// One connection. Every statement is prepared once per connection (by its SQL text). Inside a
// transaction, a statement whose rows nobody reads (send) is queued in libpq's pipeline mode and
// its result read at the next statement that returns rows, or at COMMIT: a transaction of many
// writes costs one round trip, not one per write. Any error among them fails the transaction.
class PostgresDb final : public Db {
public:
    explicit PostgresDb(const PgConnect& c) : where_(c.shown), wait_(c.answer_seconds) {
        conn_ = pq().PQconnectdb(c.url.c_str());
        if (!conn_ || pq().PQstatus(conn_) != CONNECTION_OK) {
            const std::string msg = error_of(conn_);
            if (conn_) pq().PQfinish(conn_);
            conn_ = nullptr;
            throw LedgerError("ledger " + where_ + ": cannot connect: " + msg);
        }
        start_session();
    }
    ~PostgresDb() override {
        if (conn_) pq().PQfinish(conn_);
    }
    PostgresDb(const PostgresDb&) = delete;
    PostgresDb& operator=(const PostgresDb&) = delete;

    void exec(const std::string& sql) override {
        ensure();
        if (pq().PQpipelineStatus(conn_) != PQ_PIPELINE_OFF) sync(false);
        if (pq().PQsendQuery(conn_, sql.c_str()) != 1) fail("");
        flush();
        std::string msg;
        bool good = true;
        while (PGresult* r = next_result()) {  // one per statement of `sql`: the first error is the one
            if (!ok(r) && good) {
                good = false;
                msg = trimmed(pq().PQresultErrorMessage(r));
            }
            pq().PQclear(r);
        }
        if (!good) fail(msg);
    }
    std::unique_ptr<Query> prepare(const std::string& sql) override;
    void begin() override {
        ensure();
        in_tx_ = true;
        queue_text("BEGIN");
    }
    void commit() override {
        queue_text("COMMIT");
        sync(false);
        in_tx_ = false;
    }
    void rollback() override {
        in_tx_ = false;
        if (pq().PQpipelineStatus(conn_) != PQ_PIPELINE_OFF) {
            try {
                sync(false);  // what was queued ends with the transaction; its error is the one already thrown
            } catch (const LedgerError&) {
            }
        }
        if (broken_ || pq().PQstatus(conn_) != CONNECTION_OK) return;  // the transaction ends with the connection
        try {
            exec("ROLLBACK");
        } catch (const LedgerError& e) {
            throw LedgerError(std::string(e.what()) + " (rollback after an error)");
        }
    }
    void create_schema() override {
        const SchemaTypes types{"BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION", "BIGINT", ""};
        std::string sql = std::string("BEGIN;\n") + kSchemaLock + schema_sql(types);
        for (const auto& c : added_columns(types))
            sql += std::string("ALTER TABLE topups ADD COLUMN IF NOT EXISTS ") + c.name + " " + c.type + ";\n";
        exec(sql + "COMMIT;");
    }
    const std::string& where() const override { return where_; }
    const char* now_sql() const override { return "CAST(extract(epoch from clock_timestamp()) AS DOUBLE PRECISION)"; }
    const char* for_update() const override { return " FOR UPDATE"; }
    const char* for_share() const override { return " FOR SHARE"; }

    // Runs a statement now (after anything queued, in the same round trip); its result, rows and all.
    PGresult* run(const std::string& sql, const Values& v) {
        ensure();
        const std::string& name = prepared(sql);
        if (pq().PQpipelineStatus(conn_) == PQ_PIPELINE_OFF) {
            auto params = pointers(v);
            if (pq().PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0) != 1)
                fail("");
            flush();
            PGresult* r = next_result();
            while (PGresult* more = r ? next_result() : nullptr) pq().PQclear(more);  // (one statement: the end of its results)
            if (!ok(r)) {
                const std::string msg = r ? trimmed(pq().PQresultErrorMessage(r)) : "";
                if (r) pq().PQclear(r);
                fail(msg);
            }
            return r;
        }
        queue(name, v);
        return sync(true);
    }
    // A statement whose rows nobody reads: queued inside a transaction, else run now.
    void send(const std::string& sql, const Values& v) {
        if (!in_tx_) {
            pq().PQclear(run(sql, v));
            return;
        }
        ensure();
        queue(prepared(sql), v);
        if (queued_ >= kMaxQueued) sync(false);
    }

private:
    [[noreturn]] void fail(const std::string& msg) const {
        throw LedgerError("ledger " + where_ + ": " + (msg.empty() ? error_of(conn_) : msg));
    }

    static std::vector<const char*> pointers(const Values& v) {
        std::vector<const char*> out;
        out.reserve(v.size());
        for (const auto& p : v) out.push_back(p ? p->c_str() : nullptr);
        return out;
    }

    // The server-side name of `sql` (written with `?`), prepared on first use on this connection.
    const std::string& prepared(const std::string& sql) {
        const auto it = names_.find(sql);
        if (it != names_.end()) return it->second;
        if (pq().PQpipelineStatus(conn_) != PQ_PIPELINE_OFF) sync(false);
        std::string name = "km" + std::to_string(names_.size() + 1);
        if (pq().PQsendPrepare(conn_, name.c_str(), dollar_params(sql).c_str(), 0, nullptr) != 1) fail("");
        flush();
        PGresult* r = next_result();
        const std::string msg = r ? trimmed(pq().PQresultErrorMessage(r)) : "";
        const bool good = ok(r);
        if (r) pq().PQclear(r);
        while (PGresult* more = next_result()) pq().PQclear(more);
        if (!good) fail(msg);
        return names_.emplace(sql, std::move(name)).first->second;
    }

    void enter_pipeline() {
        if (pq().PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && pq().PQenterPipelineMode(conn_) != 1) fail("");
    }
    void queue(const std::string& name, const Values& v) {
        enter_pipeline();
        auto params = pointers(v);
        if (pq().PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0) != 1)
            fail("");
        ++queued_;
    }
    void queue_text(const char* sql) {
        enter_pipeline();
        if (pq().PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) fail("");
        ++queued_;
    }

    // Sends what is queued and reads every result: the first error is thrown (the statements after
    // it were not run); with keep_last, the last statement's result is returned.
    PGresult* sync(bool keep_last) {
        const int n = queued_;
        queued_ = 0;
        std::string error = pq().PQpipelineSync(conn_) == 1 ? "" : error_of(conn_);
        if (error.empty()) flush();
        PGresult* last = nullptr;
        for (int i = 0; i < n && error.empty(); ++i) {
            PGresult* r = next_result();
            if (!r) {
                error = error_of(conn_);
                break;
            }
            if (!ok(r) && pq().PQresultStatus(r) != PGRES_PIPELINE_ABORTED && error.empty()) error = trimmed(pq().PQresultErrorMessage(r));
            if (keep_last && i + 1 == n && ok(r)) last = r;
            else pq().PQclear(r);
            while ((r = next_result()) != nullptr) pq().PQclear(r);  // the end of this statement's results
        }
        drain();
        if (!error.empty() || (keep_last && !last)) {
            if (last) pq().PQclear(last);
            fail(error);
        }
        return last;
    }
    // Reads up to the sync point (past an error: the aborted statements) and leaves pipeline mode.
    void drain() {
        for (int guard = 0; guard < 2 * kMaxQueued + 4 && !broken_ && pq().PQstatus(conn_) == CONNECTION_OK; ++guard) {
            PGresult* r = nullptr;
            try {
                r = next_result();
            } catch (const LedgerError&) {
                break;  // no answer: the connection is dropped (broken_), reset by ensure()
            }
            const bool end = r && pq().PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            if (r) pq().PQclear(r);
            if (end) break;
        }
        (void)pq().PQexitPipelineMode(conn_);  // fails only with results still unread: a lost connection, reset by ensure()
    }

    // A connection the server closed (a restart) is opened again before the next statement, never
    // inside a transaction (its statements would run outside it); the statement that met the closed
    // connection has already failed (nothing is retried blind). A writer's lease is checked in every
    // write transaction (the fence): nothing to take again here.
    void ensure() {
        if (!broken_ && pq().PQstatus(conn_) == CONNECTION_OK) return;
        if (in_tx_) fail("the connection was lost in a transaction");
        if (broken_ && pq().PQbackendPID(conn_) != 0) abandoned_ = pq().PQbackendPID(conn_);
        pq().PQreset(conn_);  // (connect_timeout bounds it)
        broken_ = false;
        names_.clear();
        queued_ = 0;
        if (pq().PQstatus(conn_) != CONNECTION_OK) throw LedgerError("ledger " + where_ + ": cannot connect: " + error_of(conn_));
        start_session();
        end_abandoned();
    }

    // The server session we gave up on (no answer) may still hold row locks (a lease row read FOR
    // UPDATE) if our goodbye never reached it (a cut path): ended from the new session, so that no
    // replica's lease claim waits for it (its idle_in_transaction_session_timeout ends it anyway).
    void end_abandoned() {
        if (!abandoned_) return;
        const std::string sql = "SELECT pg_terminate_backend(" + std::to_string(abandoned_) + ")";
        abandoned_ = 0;
        try {
            exec(sql);
        } catch (const LedgerError&) {
        }
    }

    // Non-blocking from here on (every wait below has the answer timeout), then the session's settings.
    void start_session() {
        if (pq().PQsetnonblocking(conn_, 1) != 0) fail("");
        const auto ms = std::to_string(static_cast<long long>(wait_ * 1000));
        exec(kSession + ms + "; SET idle_in_transaction_session_timeout = " + std::to_string(static_cast<long long>(wait_ * 2000)));
    }

    // The database gave no answer within the answer timeout (frozen, or its path cut: TCP would
    // wait for minutes): the connection is given up (ensure() opens a new one for the next
    // statement) and the statement fails. A write it carried may still be applied when the server
    // wakes: as after a crash between journal and broadcast, reconcile settles it from the chain.
    [[noreturn]] void no_answer() {
        broken_ = true;
        throw LedgerError("ledger " + where_ + ": no answer in " + std::to_string(static_cast<long long>(wait_)) +
                          " s (keymaster_timeout): the connection is given up");
    }

    // Waits until the socket is ready for `events` (or the deadline): whether it is.
    bool wait_socket(short events, std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - keymaster::system_clock().steady());
            if (left.count() <= 0) return false;
            pollfd p{pq().PQsocket(conn_), events, 0};
            const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000 * 60)));
            if (r > 0) return true;
            if (r < 0 && errno != EINTR) fail("poll: " + std::string(std::strerror(errno)));
        }
    }
    std::chrono::steady_clock::time_point deadline() const {
        return keymaster::system_clock().steady() + std::chrono::milliseconds(static_cast<long long>(wait_ * 1000));
    }

    // Sends everything libpq holds for the server, within the answer timeout.
    void flush() {
        const auto until = deadline();
        for (;;) {
            const int f = pq().PQflush(conn_);
            if (f == 0) return;
            if (f < 0) fail("");
            if (!wait_socket(POLLIN | POLLOUT, until)) no_answer();
            if (pq().PQconsumeInput(conn_) != 1) fail("");
        }
    }

    // PQgetResult without blocking past the answer timeout.
    PGresult* next_result() {
        const auto until = deadline();
        while (pq().PQisBusy(conn_)) {
            if (!wait_socket(POLLIN, until)) no_answer();
            if (pq().PQconsumeInput(conn_) != 1) fail("");
        }
        return pq().PQgetResult(conn_);
    }

    std::string where_;
    PGconn* conn_ = nullptr;
    std::unordered_map<std::string, std::string> names_;  // SQL text -> prepared statement name
    int queued_ = 0;
    bool in_tx_ = false;
    double wait_;          // the answer timeout, seconds
    bool broken_ = false;  // given up after no answer: opened again before the next statement
    int abandoned_ = 0;    // the server process of the session given up on (ended once we are back)
};

class PgQuery final : public Query {
public:
    PgQuery(PostgresDb& db, std::string sql) : db_(db), sql_(std::move(sql)) {}
    ~PgQuery() override { clear(); }
    PgQuery(const PgQuery&) = delete;
    PgQuery& operator=(const PgQuery&) = delete;

    void bind_text(int i, const std::string& v) override { slot(i) = v; }
    void bind_i64(int i, std::int64_t v) override { slot(i) = std::to_string(v); }
    void bind_real(int i, double v) override {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back the same
        slot(i) = std::string(buf, r.ptr);
    }
    void bind_null(int i) override { slot(i) = std::nullopt; }
    bool step() override {
        if (!res_) {
            res_ = db_.run(sql_, params_);
            row_ = -1;
        }
        return ++row_ < pq().PQntuples(res_);
    }
    void execute() override { db_.send(sql_, params_); }
    std::string text(int c) const override { return null(c) ? std::string() : std::string(pq().PQgetvalue(res_, row_, c)); }
    std::int64_t i64(int c) const override { return null(c) ? 0 : std::strtoll(pq().PQgetvalue(res_, row_, c), nullptr, 10); }
    double real(int c) const override { return null(c) ? 0.0 : std::strtod(pq().PQgetvalue(res_, row_, c), nullptr); }
    bool null(int c) const override { return pq().PQgetisnull(res_, row_, c) != 0; }
    void reset() override { clear(); }

private:
    std::optional<std::string>& slot(int i) {
        if (static_cast<std::size_t>(i) > params_.size()) params_.resize(static_cast<std::size_t>(i));
        return params_[static_cast<std::size_t>(i - 1)];
    }
    void clear() {
        if (res_) pq().PQclear(res_);
        res_ = nullptr;
        row_ = -1;
    }
    PostgresDb& db_;
    std::string sql_;
    Values params_;
    PGresult* res_ = nullptr;
    int row_ = -1;
};

std::unique_ptr<Query> PostgresDb::prepare(const std::string& sql) { return std::make_unique<PgQuery>(*this, sql); }

}  // namespace

std::unique_ptr<Db> open_postgres(const std::string& url) {
    auto c = pg_connect(url);
    if (!c) throw LedgerError(c.error().message);
    return std::make_unique<PostgresDb>(*c);
}

Expected<PgConnect> pg_connect(const std::string& url) {
    PgConnect out{url, kDefaultAnswerSeconds, redact_url(url)};
    const auto q = url.find('?');
    std::string base = q == std::string::npos ? url : url.substr(0, q);
    std::string kept;
    bool connect_timeout = false;
    std::size_t at = q == std::string::npos ? url.size() : q + 1;
    while (at < url.size()) {
        const auto end = std::min(url.find('&', at), url.size());
        const std::string param = url.substr(at, end - at);
        at = end + 1;
        if (param.rfind("keymaster_timeout=", 0) == 0) {
            const std::string v = param.substr(18);
            double secs = 0;
            const auto r = std::from_chars(v.data(), v.data() + v.size(), secs);
            if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !(secs >= 1 && secs <= 3600))
                return Problem{Fault::kConfig, "--ledger " + redact_url(url) + ": keymaster_timeout=" + v +
                                                   ": expected seconds from 1 to 3600 (how long a statement may go unanswered)"};
            out.answer_seconds = secs;
            continue;
        }
        if (param.rfind("connect_timeout=", 0) == 0) connect_timeout = true;
        kept += (kept.empty() ? "" : "&") + param;
    }
    if (!connect_timeout) kept += std::string(kept.empty() ? "" : "&") + "connect_timeout=" + std::to_string(kDefaultConnectSeconds);
    out.url = base + "?" + kept;
    return out;
}

std::string redact_url(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const auto at = url.find('@', scheme + 3);
    const auto slash = url.find('/', scheme + 3);
    std::string out = url;
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        const auto colon = url.find(':', scheme + 3);
        if (colon != std::string::npos && colon < at) out = url.substr(0, colon + 1) + "***" + url.substr(at);
    }
    // A password in the query string (?password=...) too.
    const auto q = out.find("password=");
    if (q != std::string::npos) {
        const auto end = out.find('&', q);
        out = out.substr(0, q + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
    }
    return out;
}

}  // namespace keymaster::ledger::detail
