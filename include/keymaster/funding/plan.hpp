#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "keymaster/funding/burn.hpp"
#include "keymaster/funding/fees.hpp"
#include "keymaster/funding/snapshot.hpp"

//! The plan of one network's Round (pure): who is topped up by how much at what levels, who waits,
//! what the fees may cost; held back by the limits (limits.hpp).
namespace keymaster::funding {

//! One planned transfer.
struct TopUp {
    Account account;
    Wei balance = 0;
    Wei amount = 0;
    std::uint64_t gas_limit = 21000;
    Levels levels;  //!< the threshold it fell below and the target it is brought to
};

//! What one network needs this round.
struct NetworkPlan {
    NetworkSnapshot snapshot;
    std::vector<BurnRate> rates;   //!< per snapshot account: measured burn (empty: not known)
    std::optional<BurnRate> bank_rate;  //!< what the bank sent (top-ups and fees) per day
    std::vector<TopUp> topups;
    std::vector<AccountState> unknown;  //!< balance unread: no decision this round
    std::vector<AccountState> waiting;  //!< below threshold, but an earlier top-up is not confirmed yet
    std::vector<std::pair<TopUp, std::string>> blocked;  //!< held back by a spend limit, and why
    std::set<eth::Address> held_per_account;  //!< accounts limits.perAccount held back (wholly or partly)
    Wei total = 0;                      //!< sum of amounts
    std::optional<Fees> fees;
    std::optional<Problem> fee_problem;  //!< why there are no fees (kFees), or no gas limits (kPoll)
    Wei max_fee_cost = 0;  //!< sum of max_fee() of the top-ups
    bool covered = false;  //!< bank balance >= total + max_fee_cost
};

//! Applies the decision rule to every account of a snapshot, at its effective levels (from
//! `rates`, one per snapshot account, when given: see levels()). Accounts in `busy` (a top-up of
//! theirs is not yet confirmed) get no new one. Chooses the fees when anything is to be sent.
[[nodiscard]] NetworkPlan make_plan(NetworkSnapshot snap, const config::Network& net,
                                    const std::set<eth::Address>& busy = {}, std::vector<BurnRate> rates = {});

//! Takes the planned top-ups of `who` (every one when `who` is empty) out of the plan: their
//! accounts are `unknown` this Round with `why` (a balance that cannot be trusted decides nothing).
void hold_unknown(NetworkPlan& plan, const std::set<eth::Address>& who, const std::string& why);
//! Snapshot account i's effective threshold and target (levels() at its rate; the amounts
//! without one). Computed when asked: nothing per account is stored for it.
[[nodiscard]] Levels levels_at(const NetworkPlan& plan, std::size_t i);

//! How the plan's accounts stand against their effective thresholds (levels_at: burn-sized where
//! measured), e.g. after a top-up.
struct Standing {
    std::size_t ok = 0;       //!< at or above the effective threshold
    std::size_t low = 0;      //!< below it
    std::size_t unknown = 0;  //!< balance unread
};
[[nodiscard]] Standing standing(const NetworkPlan& plan);

//! The bank is low: its balance was read and is below the network's bankThreshold (none: never).
[[nodiscard]] bool bank_low(const config::Network& net, const NetworkSnapshot& snap);

//! The most top-up `t` may cost in fees: max_fee() at the plan's fees and the chain's own extra
//! fees (OP Stack); 0 while the plan has no fees.
[[nodiscard]] Wei max_fee(const NetworkPlan& plan, const TopUp& t);

//! Recomputes total, max_fee_cost and covered from the plan's top-ups and fees.
void update_costs(NetworkPlan& plan);

//! A top-up of ours confirmed since the last poll: the block it was mined in and what it brought.
struct ConfirmedTopUp {
    std::uint64_t block = 0;
    Wei amount = 0;
};

//! Whether the endpoint contradicts itself about an account our top-up just reached: the account
//! sent nothing since the block before the top-up (`nonce_before` == `nonce_now`: it cannot spend
//! without sending), yet holds less than it held then plus what we sent. An agent that spends is
//! never a mismatch. Pure.
[[nodiscard]] bool balance_contradicts(const Wei& before, const Wei& amount, const Wei& now, std::uint64_t nonce_before,
                                       std::uint64_t nonce_now);

}  // namespace keymaster::funding
