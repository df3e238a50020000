#include "keymaster/funding/plan.hpp"

namespace keymaster::funding {
namespace {

// Why the fees a transfer may cost cannot be budgeted: the kind of chain, or an OP Stack chain's
// L1 data fee, unread this poll. Nothing is sent on a guess.
std::optional<Problem> extra_fees_unknown(const NetworkSnapshot& snap) {
    if (!snap.l2)
        return Problem{Fault::kFees, "the kind of chain (OP Stack, Arbitrum or neither) could not be read; not sending "
                                     "(\"l2\" in the network's config skips the probe)"};
    if (*snap.l2 == L2Kind::kOp && !snap.op_fees)
        return Problem{Fault::kFees, "the OP Stack L1 data fee could not be read from the GasPriceOracle; not sending"};
    return std::nullopt;
}

}  // namespace

Wei max_fee(const NetworkPlan& plan, const TopUp& t) {
    return plan.fees ? max_fee(*plan.fees, plan.snapshot.op_fees, t.gas_limit) : Wei(0);
}

void update_costs(NetworkPlan& plan) {
    plan.total = 0;
    plan.max_fee_cost = 0;
    for (const auto& t : plan.topups) {
        plan.total += t.amount;
        plan.max_fee_cost += max_fee(plan, t);
    }
    plan.covered = plan.snapshot.bank_balance && *plan.snapshot.bank_balance >= plan.total + plan.max_fee_cost;
}

Levels levels_at(const NetworkPlan& plan, std::size_t i) {
    const auto& a = plan.snapshot.accounts.at(i).account;
    return i < plan.rates.size() ? levels(a, plan.rates[i]) : Levels{a.threshold, a.target};
}

bool bank_low(const config::Network& net, const NetworkSnapshot& snap) {
    return net.bank_threshold && snap.bank_balance && *snap.bank_balance < *net.bank_threshold;
}

Standing standing(const NetworkPlan& plan) {
    Standing s;
    for (std::size_t i = 0; i < plan.snapshot.accounts.size(); ++i) {
        const auto& a = plan.snapshot.accounts[i];
        if (!a.balance) ++s.unknown;
        else if (*a.balance < levels_at(plan, i).threshold) ++s.low;
        else ++s.ok;
    }
    return s;
}

NetworkPlan make_plan(NetworkSnapshot snap, const config::Network& net, const std::set<eth::Address>& busy,
                      std::vector<BurnRate> rates) {
    NetworkPlan plan;
    plan.snapshot = std::move(snap);
    plan.rates = std::move(rates);
    if (!plan.snapshot.reachable) return plan;
    for (std::size_t i = 0; i < plan.snapshot.accounts.size(); ++i) {
        const auto& s = plan.snapshot.accounts[i];
        const auto l = levels_at(plan, i);
        const auto d = decide(l, s.balance);
        if (d.action == Action::kUnknown) plan.unknown.push_back(s);
        else if (d.action == Action::kTopUp && busy.count(s.account.address)) plan.waiting.push_back(s);
        else if (d.action == Action::kTopUp)
            plan.topups.push_back(TopUp{s.account, *s.balance, d.amount, net.gas_limit.value_or(21000), l});
    }
    if (!plan.topups.empty()) {
        auto fees = choose_fees(plan.snapshot, net);
        if (auto why = extra_fees_unknown(plan.snapshot)) plan.fee_problem = std::move(why);
        else if (fees) plan.fees = *fees;
        else plan.fee_problem = fees.error();
    }
    update_costs(plan);
    return plan;
}

bool balance_contradicts(const Wei& before, const Wei& amount, const Wei& now, std::uint64_t nonce_before,
                         std::uint64_t nonce_now) {
    return nonce_before == nonce_now && now < before + amount;
}

void hold_unknown(NetworkPlan& plan, const std::set<eth::Address>& who, const std::string& why) {
    std::vector<TopUp> kept;
    for (auto& t : plan.topups) {
        if (!who.empty() && !who.count(t.account.address)) {
            kept.push_back(std::move(t));
            continue;
        }
        for (const auto& a : plan.snapshot.accounts)  // (AccountState refers to the snapshot's account)
            if (a.account.address == t.account.address) {
                plan.unknown.push_back({a.account, t.balance, why});
                break;
            }
    }
    plan.topups = std::move(kept);
    update_costs(plan);
}

}  // namespace keymaster::funding
