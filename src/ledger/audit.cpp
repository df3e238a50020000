#include "keymaster/ledger/audit.hpp"

#include "sql.hpp"
#include "store.hpp"

namespace keymaster::ledger {

using detail::by_chain;
using detail::by_network;
using detail::mined;
using detail::Scope;
using detail::Stmt;
using detail::wei;

std::optional<BankAudit::Audit> BankAudit::audit(const std::string& network, const std::string& bank) const {
    Stmt s(*store_->db, "SELECT next_nonce, point_nonce, point_block, point_balance FROM bank_audit WHERE network=? AND bank=?");
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

void BankAudit::save_audit(const std::string& network, const std::string& bank, const Audit& a) {
    store_->transaction([&] {
        Stmt st(*store_->db,
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

std::map<std::uint64_t, BankAudit::NonceUse> nonce_uses_in(detail::Db& db, const Scope& scope, const std::string& bank,
                                                        std::uint64_t from, std::uint64_t to) {
    Stmt s(db, scope.sql("SELECT nonce, state, block FROM topups WHERE SCOPE=? AND bank=? AND nonce>=? AND nonce<?"));
    scope.bind(s, 1);
    s.bind(2, bank).bind(3, static_cast<std::int64_t>(from)).bind(4, static_cast<std::int64_t>(to));
    std::map<std::uint64_t, BankAudit::NonceUse> out;
    while (s.step()) {
        auto& u = out[static_cast<std::uint64_t>(s.i64(0))];
        const auto state = parse_state(s.text(1));
        if (state && mined(*state, s.i64(2))) u.mined = true;
        if (state == State::kIntent || state == State::kSent || state == State::kReplaced) u.open = true;
    }
    return out;
}

}  // namespace

Wei BankAudit::outflow(const std::string& network, const std::string& bank, std::uint64_t from, std::uint64_t to) const {
    return outflow_in(*store_->db, by_network(network), bank, from, to);
}

Wei BankAudit::outflow(std::uint64_t chain_id, const std::string& bank, std::uint64_t from, std::uint64_t to) const {
    return outflow_in(*store_->db, by_chain(chain_id), bank, from, to);
}

std::map<std::uint64_t, BankAudit::NonceUse> BankAudit::nonce_uses(const std::string& network, const std::string& bank,
                                                             std::uint64_t from, std::uint64_t to) const {
    return nonce_uses_in(*store_->db, by_network(network), bank, from, to);
}

std::map<std::uint64_t, BankAudit::NonceUse> BankAudit::nonce_uses(std::uint64_t chain_id, const std::string& bank, std::uint64_t from,
                                                             std::uint64_t to) const {
    return nonce_uses_in(*store_->db, by_chain(chain_id), bank, from, to);
}

}  // namespace keymaster::ledger
