#pragma once

#include <optional>
#include <string>

#include "keymaster/common/amount.hpp"
#include "keymaster/funding/burn.hpp"

//! Treasury (pure): how much a bank sweeps to its safe, and how much an L2 bank is refilled from
//! L1, both sized from amounts or from the bank's measured outflow; no I/O, no clock (`now` is given).
namespace keymaster::funding {

//! A level of a bank: an amount, or a duration of the bank's measured outflow ("14d": what the bank
//! paid in 14 days at its measured rate). `min` goes with a duration: it stands while the history
//! is too short to measure from, and is the level's floor once it is not.
struct Level {
    std::optional<Wei> amount;
    std::optional<double> seconds;  //!< the duration of outflow, seconds (positive)
    std::optional<Wei> min;
};

//! The level in wei: the amount; or the duration's worth of `bank_rate` (at least `min`) when the
//! rate has enough history over `window` (enough_history); else `min`; else none (nothing is
//! decided from a level that cannot be known).
[[nodiscard]] std::optional<Wei> resolve_level(const Level& level, const std::optional<BurnRate>& bank_rate, double window);

//! Why a sweep (or a refill) sends nothing this Round: typed, for the plan, `status` and the log.
enum class TreasuryHold {
    kNone,         //!< not held: the decision's amount is sent
    kNoLevel,      //!< a level is a duration with too little history and no `min`
    kInFlight,     //!< one is in flight (unresolved, or a deposit not yet credited): at most one at a time
    kTooSoon,      //!< a sweep was sent less than an hour ago
    kNotNeeded,    //!< sweep: the bank's free balance is not above `above`; refill: the L2 bank is not below `below`
    kFeeTooHigh,   //!< sweep: what is above `keep` does not cover the sweep's own fee
    kNoBudget,     //!< refill: the L1 bank cannot spare it (its reserve, in flight, this Round) or `daily` is spent
    kStuck,        //!< refill: a deposit was not credited by its timeout; an operator clears it
};
//! A line for the plan and the log ("one in flight", ...).
[[nodiscard]] std::string describe(TreasuryHold hold);

//! What a sweep decides from.
struct SweepInput {
    Wei balance = 0;    //!< the bank's balance at the poll
    Wei in_flight = 0;  //!< what our unresolved transactions may still take (amounts and worst-case fees)
    Wei reserve = 0;    //!< limits.reserve
    Wei committed = 0;  //!< what this Round's top-ups and deposits take (amounts and worst-case fees)
    std::optional<Wei> keep, above;  //!< resolved levels (resolve_level)
    Wei fee = 0;                     //!< the sweep's own worst-case fee
    bool sweep_in_flight = false;    //!< a sweep of this network is unresolved
    std::optional<double> last_sent; //!< when the last sweep was journaled (unix seconds)
    double now = 0;
};

//! A sweep or refill decision: the amount to send (0 when held) and why nothing is sent.
struct TreasuryDecision {
    Wei amount = 0;
    TreasuryHold hold = TreasuryHold::kNone;
};

//! Sweep rule: the bank's free balance (balance, less what is in flight, `reserve` and what this
//! Round commits) above `above` sends everything above `keep`, less the sweep's own fee; after it
//! the bank holds `keep` beyond all of those. At most one in flight and one an hour.
[[nodiscard]] TreasuryDecision decide_sweep(const SweepInput& in);

//! The least time between two sweeps of a network (seconds).
inline constexpr double kSweepEvery = 3600;

//! What a refill decides from.
struct RefillInput {
    Wei l2_balance = 0;                //!< the L2 bank's balance at the poll
    std::optional<Wei> below, to;      //!< resolved levels
    bool deposit_in_flight = false;    //!< a deposit is sent and not credited (or not yet mined)
    bool stuck = false;                //!< a deposit passed its timeout uncredited and is not cleared
    Wei l1_free = 0;                   //!< what the L1 bank can spare: balance less in flight, reserve, this Round
    Wei l1_fee = 0;                    //!< the deposit's worst-case fee on L1
    std::optional<Wei> daily_left;     //!< what `daily` still allows in 24 hours (none: no daily limit)
};

//! Refill rule: an L2 bank below `below` with nothing in flight to it gets one deposit of what
//! brings it to `to`, capped by what `daily` still allows and what the L1 bank can spare beyond the
//! deposit's fee; none while one is in flight or stuck.
[[nodiscard]] TreasuryDecision decide_refill(const RefillInput& in);

//! Whether a deposit of `value` is credited: the L2 bank gained at least `value` that the ledger
//! does not explain otherwise. `balance_then` and `balance_now` are the L2 bank's balances at two
//! quiet points (nothing of ours pending at either) and `paid_between` what our mined transactions
//! took from it in between (amounts and fees).
[[nodiscard]] bool deposit_credited(const Wei& value, const Wei& balance_then, const Wei& balance_now, const Wei& paid_between);

}  // namespace keymaster::funding
