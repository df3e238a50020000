#include "keymaster/funding/topup_plan.hpp"

namespace keymaster::funding {

void update_costs(NetworkPlan& plan) {
    plan.total = 0;
    plan.max_fee_cost = 0;
    for (const auto& t : plan.topups) {
        plan.total += t.amount;
        if (plan.fees) plan.max_fee_cost += Wei(t.gas_limit) * plan.fees->per_gas_cap();
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
        if (fees) plan.fees = *fees;
        else plan.fee_problem = fees.error();
    }
    update_costs(plan);
    return plan;
}

namespace {

// limits.perAccount for one top-up: false when it is held back whole; may lower its amount (the
// part held back is recorded).
bool per_account(TopUp& t, const config::PerAccountLimits& pa, const std::map<eth::Address, Received>& received,
                 std::vector<std::pair<TopUp, std::string>>& blocked) {
    if (!pa.any()) return true;
    const auto it = received.find(t.account.address);
    const Received r = it == received.end() ? Received{} : it->second;
    if (pa.top_ups && r.count >= *pa.top_ups) {
        blocked.emplace_back(t, "perAccount.topUps: " + std::to_string(r.count) + " top-up(s) in the last 24 hours");
        return false;
    }
    if (!pa.daily) return true;
    const Wei left = r.amount >= *pa.daily ? Wei(0) : *pa.daily - r.amount;
    const std::string why = "perAccount.daily: " + format_units(r.amount) + " of " + format_units(*pa.daily) +
                            " received in the last 24 hours";
    if (left == 0) {
        blocked.emplace_back(t, why);
        return false;
    }
    if (t.amount > left) {
        TopUp rest = t;
        rest.amount = t.amount - left;
        blocked.emplace_back(rest, why + "; " + format_units(left) + " sent");
        t.amount = left;
    }
    return true;
}

}  // namespace

std::optional<Wei> apply_limits(NetworkPlan& plan, const config::Limits& limits, const Wei& spent_24h,
                                const std::map<eth::Address, Received>& received) {
    std::optional<Wei> remaining;
    if (limits.daily) remaining = spent_24h >= *limits.daily ? Wei(0) : *limits.daily - spent_24h;
    const Wei per_gas = plan.fees ? plan.fees->per_gas_cap() : Wei(0);
    const Wei balance = plan.snapshot.bank_balance.value_or(0);
    std::vector<TopUp> kept;
    Wei total = 0, fees = 0;
    auto amount_str = [](const Wei& w) { return format_units(w); };
    for (auto t : plan.topups) {
        if (limits.max_top_up && t.amount > *limits.max_top_up) t.amount = *limits.max_top_up;
        const auto before = plan.blocked.size();
        const bool kept_any = per_account(t, limits.per_account, received, plan.blocked);
        if (plan.blocked.size() != before) plan.held_per_account.insert(t.account.address);
        if (!kept_any) continue;
        if (remaining && t.amount > *remaining) {
            plan.blocked.emplace_back(t, "daily limit: " + amount_str(*remaining) + " of " + amount_str(*limits.daily) +
                                             " left for the next 24 hours");
            continue;
        }
        const Wei fee = Wei(t.gas_limit) * per_gas;
        if (limits.reserve && (balance < *limits.reserve || balance - *limits.reserve < total + fees + t.amount + fee)) {
            plan.blocked.emplace_back(t, "reserve: the bank must keep " + amount_str(*limits.reserve));
            continue;
        }
        if (remaining) *remaining -= t.amount;
        total += t.amount;
        fees += fee;
        kept.push_back(t);
    }
    plan.topups = std::move(kept);
    update_costs(plan);
    return remaining;
}

bool balance_contradicts(const Wei& before, const Wei& amount, const Wei& now, std::uint64_t nonce_before,
                         std::uint64_t nonce_now) {
    return nonce_before == nonce_now && now < before + amount;
}

}  // namespace keymaster::funding
