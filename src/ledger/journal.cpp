#include "keymaster/ledger/journal.hpp"

#include <algorithm>
#include <map>

#include "sql.hpp"
#include "store.hpp"

namespace keymaster::ledger {

using detail::by_chain;
using detail::by_network;
using detail::kColumns;
using detail::kPayment;
using detail::mined;
using detail::read_entry;
using detail::row_chunks;
using detail::rows_sql;
using detail::Scope;
using detail::Stmt;
using detail::wei;

void Journal::atomically(const std::function<void()>& fn) {
    store_->transaction([&] {
        fn();
        return 0;
    });
}

std::int64_t Journal::record_intent(Entry e) {
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

void Journal::record_intents(std::vector<Entry>& entries) {
    const double t = store_->now();
    store_->transaction([&] {
        std::size_t first = 0;
        for (const auto size : row_chunks(entries.size())) {
            Stmt s(*store_->db, rows_sql(kIntentColumns, kIntentRow, size) + " RETURNING id, tx_hash");
            for (std::size_t k = 0; k < size; ++k) bind_intent(s, static_cast<int>(k) * kIntentParams, entries[first + k], t);
            // Each row's id, matched by its transaction's hash (the order of RETURNING is not promised).
            std::multimap<std::string, std::size_t> by_hash;
            for (std::size_t k = 0; k < size; ++k) by_hash.emplace(entries[first + k].tx_hash, first + k);
            while (s.step()) {
                const auto it = by_hash.find(s.text(1));
                if (it == by_hash.end()) throw LedgerError("ledger " + store_->db->where() + ": a new entry came back unknown");
                entries[it->second].id = s.i64(0);
                entries[it->second].created = t;
                by_hash.erase(it);
            }
            if (!by_hash.empty()) throw LedgerError("ledger " + store_->db->where() + ": a new entry has no id");
            first += size;
        }
        for (const auto& e : entries) store_->event(e.id, State::kIntent, e.tx_hash);
        return 0;
    });
}

void Journal::mark(std::int64_t id, State st, const std::string& error) {
    store_->transaction([&] {
        Stmt(*store_->db, "UPDATE topups SET state=?, updated=?, error=? WHERE id=?")
            .bind(1, std::string(state_name(st))).bind(2, store_->now()).bind(3, error).bind(4, id).exec();
        store_->event(id, st, error);
        return 0;
    });
}

void Journal::confirmed(std::int64_t id, bool success, std::uint64_t block, std::uint64_t gas_used, const Wei& fee_paid,
                       const Wei& l1_fee, const Wei& operator_fee, const std::string& block_hash, bool estimated) {
    const State st = success ? State::kConfirmed : State::kFailed;
    store_->transaction([&] {
        Stmt s(*store_->db,
               "UPDATE topups SET state=?, updated=?, block=?, gas_used=?, fee_paid=?, error=?, l1_fee=?, operator_fee=?, "
               "block_hash=?, fee_estimated=?, is_final=0, confirmed_at=COALESCE(confirmed_at, ?) WHERE id=?");
        s.bind(1, std::string(state_name(st))).bind(2, store_->now()).bind(3, static_cast<std::int64_t>(block))
            .bind(4, static_cast<std::int64_t>(gas_used)).bind(5, fee_paid.str())
            .bind(6, success ? std::string() : "reverted in block " + std::to_string(block))
            .bind(9, block_hash).bind(10, static_cast<std::int64_t>(estimated ? 1 : 0)).bind(11, store_->now()).bind(12, id);
        int at = 7;
        for (const Wei* part : {&l1_fee, &operator_fee}) {  // NULL where the chain charges no such part
            if (*part > 0) s.bind(at++, part->str());
            else s.bind_null(at++);
        }
        s.exec();
        store_->event(id, st, "block " + std::to_string(block) + (block_hash.empty() ? "" : " " + block_hash) + ", gas used " +
                                 std::to_string(gas_used) + ", fee " + fee_paid.str() + (estimated ? " (estimated: no receipt yet)" : "") +
                                 (l1_fee > 0 ? " (L1 data fee " + l1_fee.str() + ")" : "") +
                                 (operator_fee > 0 ? " (operator fee " + operator_fee.str() + ")" : ""));
        return 0;
    });
}

void Journal::finalized(std::int64_t id) {
    store_->transaction([&] {
        Stmt(*store_->db, "UPDATE topups SET is_final=1 WHERE id=?").bind(1, id).exec();
        return 0;
    });
}

void Journal::reorged(std::int64_t id, const std::string& why, std::uint64_t block) {
    store_->transaction([&] {
        Stmt(*store_->db,
             "UPDATE topups SET state='sent', updated=?, block=NULL, gas_used=NULL, fee_paid=NULL, l1_fee=NULL, "
             "operator_fee=NULL, block_hash=NULL, fee_estimated=0, is_final=0, taken_block=NULL, error=?, sent_block=? WHERE id=?")
            .bind(1, store_->now()).bind(2, why).bind(3, static_cast<std::int64_t>(block)).bind(4, id).exec();
        store_->event(id, State::kSent, why);
        return 0;
    });
}

void Journal::replaced(std::int64_t id, const std::string& by_hash) {
    store_->transaction([&] {
        Stmt(*store_->db, "UPDATE topups SET state='replaced', updated=?, replaced_by=? WHERE id=?")
            .bind(1, store_->now()).bind(2, by_hash).bind(3, id).exec();
        store_->event(id, State::kReplaced, by_hash);
        return 0;
    });
}

void Journal::taken(std::int64_t id, std::uint64_t since_block) {
    store_->transaction([&] {
        Stmt st(*store_->db, "UPDATE topups SET taken_block=?, updated=? WHERE id=?");
        if (since_block) st.bind(1, static_cast<std::int64_t>(since_block));
        else st.bind_null(1);
        st.bind(2, store_->now()).bind(3, id).exec();
        return 0;
    });
}

namespace {

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

std::map<std::string, Journal::Received> received_in(detail::Db& db, const Scope& scope, const std::string& bank,
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
    std::map<std::string, Journal::Received> out;
    for (const auto& [nonce, payment] : by_nonce) {
        auto& r = out[payment.first];
        r.amount += payment.second;
        ++r.count;
    }
    return out;
}

}  // namespace

std::vector<Entry> Journal::pending(const std::string& network, const std::string& bank) const {
    return pending_in(*store_->db, by_network(network), bank);
}

std::vector<Entry> Journal::pending(std::uint64_t chain_id, const std::string& bank) const {
    return pending_in(*store_->db, by_chain(chain_id), bank);
}

std::vector<std::string> Journal::unresolved_banks(std::uint64_t chain_id) const {
    Stmt s(*store_->db, "SELECT DISTINCT bank FROM topups WHERE chain_id=? AND (state IN ('intent','sent') OR (is_final=0 AND " +
                           mined() + ")) ORDER BY bank");
    s.bind(1, static_cast<std::int64_t>(chain_id));
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

std::vector<Entry> Journal::unfinal(std::uint64_t chain_id, const std::string& bank) const {
    Stmt s(*store_->db, std::string("SELECT ") + kColumns +
                           " FROM topups WHERE chain_id=? AND bank=? AND is_final=0 AND " + mined() + " ORDER BY nonce, id");
    s.bind(1, static_cast<std::int64_t>(chain_id)).bind(2, bank);
    std::vector<Entry> out;
    while (s.step()) out.push_back(read_entry(s));
    return out;
}

Wei Journal::spent_since(const std::string& network, const std::string& bank, double since) const {
    return spent_in(*store_->db, by_network(network), bank, since);
}

Wei Journal::spent_since(std::uint64_t chain_id, const std::string& bank, double since) const {
    return spent_in(*store_->db, by_chain(chain_id), bank, since);
}

std::map<std::string, Journal::Received> Journal::received_since(const std::string& network, const std::string& bank,
                                                               double since) const {
    return received_in(*store_->db, by_network(network), bank, since);
}

std::map<std::string, Journal::Received> Journal::received_since(std::uint64_t chain_id, const std::string& bank,
                                                               double since) const {
    return received_in(*store_->db, by_chain(chain_id), bank, since);
}

}  // namespace keymaster::ledger
