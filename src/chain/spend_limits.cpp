// Step 7 of prepare: the spend limits, from what the ledger saw sent in 24 hours (read on the
// ledger's thread by ledger_pass.cpp's read_spending, after the plan and its gas, for plans with top-ups; applied on the loop).
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

Spending read_spending(const ledger::Ledger& ledger, const config::Network& net, std::uint64_t chain_id,
                       const std::string& bank, double since) {
    Spending out;
    out.spent = ledger.spent_since(chain_id, bank, since);
    if (net.limits.per_account.any())
        for (const auto& [recipient, r] : ledger.received_since(chain_id, bank, since))
            if (auto a = eth::Address::parse(recipient)) out.received[*a] = {r.amount, r.count};
    return out;
}

Expected<std::optional<Wei>> apply_limits(funding::NetworkPlan& plan, const config::Network& net,
                                          const Expected<Spending>& read, const Wei& in_flight) {
    if (!read) return read.error();
    return funding::apply_limits(plan, net.limits, read->spent, read->received, in_flight);
}

}  // namespace keymaster::chain::detail
