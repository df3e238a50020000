#include "keymaster/ledger/burn_history.hpp"

#include "sql.hpp"
#include "store.hpp"

namespace keymaster::ledger {

using detail::mined;
using detail::Stmt;
using detail::wei;

std::vector<BurnHistory::Arrival> BurnHistory::confirmed_since(const std::string& network, const std::string& bank,
                                                     double since) const {
    Stmt s(*store_->db,
           "SELECT recipient, amount, COALESCE(confirmed_at, updated) FROM topups WHERE network=? AND bank=? AND state='confirmed' "
           "AND COALESCE(confirmed_at, updated)>? "
           "AND role<>'nonce-filler'");
    s.bind(1, network).bind(2, bank).bind(3, since);
    std::vector<Arrival> out;
    while (s.step()) out.push_back({s.text(0), wei(s.text(1)), s.real(2)});
    return out;
}

Wei BurnHistory::paid_since(const std::string& network, const std::string& bank, double since) const {
    Stmt s(*store_->db,
           "SELECT state, amount, fee_paid FROM topups WHERE network=?1 AND bank=?2 AND COALESCE(confirmed_at, updated)>=?3 AND " +
               mined());
    s.bind(1, network).bind(2, bank).bind(3, since);
    Wei total = 0;
    while (s.step()) total += (s.text(0) == "confirmed" ? wei(s.text(1)) : Wei(0)) + wei(s.text(2));
    return total;
}

std::vector<BurnHistory::BurnState> BurnHistory::burn_states(const std::string& network) const {
    Stmt s(*store_->db, "SELECT address, since, time, balance FROM burn_state WHERE network=?");
    s.bind(1, network);
    std::vector<BurnState> out;
    while (s.step()) out.push_back({s.text(0), s.real(1), s.real(2), wei(s.text(3))});
    return out;
}

std::vector<BurnHistory::BurnRow> BurnHistory::burn_rows(const std::string& network, double since) const {
    Stmt s(*store_->db, "SELECT address, start, stop, spent FROM burn WHERE network=? AND stop>=? ORDER BY address, start");
    s.bind(1, network).bind(2, since);
    std::vector<BurnRow> out;
    while (s.step()) out.push_back({s.text(0), s.real(1), s.real(2), wei(s.text(3))});
    return out;
}

void BurnHistory::save_burn(const std::string& network, const std::vector<BurnState>& states, const std::vector<BurnRow>& rows) {
    if (states.empty() && rows.empty()) return;
    store_->transaction([&] {
        Stmt st(*store_->db,
                "INSERT INTO burn_state(network, address, since, time, balance) VALUES(?,?,?,?,?) ON CONFLICT(network, address) "
                "DO UPDATE SET since=excluded.since, time=excluded.time, balance=excluded.balance");
        for (const auto& b : states) {
            st.bind(1, network).bind(2, b.address).bind(3, b.since).bind(4, b.time).bind(5, b.balance.str()).exec();
            st.reset();
        }
        Stmt sr(*store_->db,
                "INSERT INTO burn(network, address, start, stop, spent) VALUES(?,?,?,?,?) ON CONFLICT(network, address, start) "
                "DO UPDATE SET stop=excluded.stop, spent=excluded.spent");
        for (const auto& r : rows) {
            sr.bind(1, network).bind(2, r.address).bind(3, r.start).bind(4, r.stop).bind(5, r.spent.str()).exec();
            sr.reset();
        }
        return 0;
    });
}

void BurnHistory::prune_burn(const std::string& network, double before) {
    store_->transaction([&] {
        Stmt(*store_->db, "DELETE FROM burn WHERE network=? AND stop<?").bind(1, network).bind(2, before).exec();
        return 0;
    });
}

}  // namespace keymaster::ledger
