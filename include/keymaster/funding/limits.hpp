#pragma once

#include <map>
#include <optional>

#include "keymaster/funding/plan.hpp"

//! Spend limits (pure): maxTopUp, daily, reserve and perAccount, applied to a plan.
namespace keymaster::funding {

//! What one account received in the last 24 hours (from the ledger).
struct Received {
    Wei amount = 0;
    std::uint64_t count = 0;
};

//! Applies the network's spend limits to a plan: each amount is capped at maxTopUp; an account
//! that received perAccount.topUps transfers in 24 hours (`received`) gets none, and one whose
//! perAccount.daily would be exceeded gets only what is left of it (the rest is held back); top-ups
//! that would take the last 24 hours' spending (`spent_24h`) above `daily`, or the bank below
//! `reserve` (with the most the fees can cost, and what is still in flight: `in_flight`, the amounts
//! and worst-case fees of every unresolved transaction of ours), are held back in order. Returns
//! what is left of the daily budget, if there is one.
std::optional<Wei> apply_limits(NetworkPlan& plan, const config::Limits& limits, const Wei& spent_24h,
                                const std::map<eth::Address, Received>& received = {}, const Wei& in_flight = 0);

}  // namespace keymaster::funding
