#include "keymaster/funding/limits.hpp"

#include <algorithm>

namespace keymaster::funding {

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
                                const std::map<eth::Address, Received>& received, const Wei& in_flight) {
    std::optional<Wei> remaining;
    if (limits.daily) remaining = spent_24h >= *limits.daily ? Wei(0) : *limits.daily - spent_24h;
    const Wei balance = plan.snapshot.bank_balance.value_or(0);
    std::vector<TopUp> kept;
    Wei total = in_flight, fees = 0;  // (what is in flight leaves the bank first)
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
        const Wei fee = max_fee(plan, t);
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

}  // namespace keymaster::funding
