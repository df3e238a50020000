#include "keymaster/funding/treasury.hpp"

#include <algorithm>
#include <cstdint>

namespace keymaster::funding {

namespace {

// a - b, or nothing when b exceeds a (amounts never go negative).
std::optional<Wei> minus(const Wei& a, const Wei& b) {
    if (b > a) return std::nullopt;
    return Wei(a - b);
}

}  // namespace

std::optional<Wei> resolve_level(const Level& level, const std::optional<BurnRate>& bank_rate, double window) {
    if (level.amount) return level.amount;
    if (!level.seconds || *level.seconds <= 0) return std::nullopt;
    if (!bank_rate || !enough_history(*bank_rate, window)) return level.min;
    // Whole seconds: a level is days or hours, and a second of outflow is below any fee.
    const Wei worth = bank_rate->per_day * Wei(static_cast<std::uint64_t>(*level.seconds)) / Wei(86400);
    return level.min ? std::max(worth, *level.min) : worth;
}

std::string describe(TreasuryHold hold) {
    switch (hold) {
        case TreasuryHold::kNone: return "sent";
        case TreasuryHold::kNoLevel: return "a level is measured outflow and the history is too short (no min)";
        case TreasuryHold::kInFlight: return "one in flight";
        case TreasuryHold::kTooSoon: return "one sent within the hour";
        case TreasuryHold::kNotNeeded: return "not needed";
        case TreasuryHold::kFeeTooHigh: return "what is above keep does not cover the fee";
        case TreasuryHold::kNoBudget: return "the L1 bank cannot spare it (reserve, in flight, daily)";
        case TreasuryHold::kStuck: return "a deposit was not credited by its timeout: clear it once seen";
    }
    return "unknown";
}

TreasuryDecision decide_sweep(const SweepInput& in) {
    if (!in.keep || !in.above) return {0, TreasuryHold::kNoLevel};
    if (in.sweep_in_flight) return {0, TreasuryHold::kInFlight};
    if (in.last_sent && in.now - *in.last_sent < kSweepEvery) return {0, TreasuryHold::kTooSoon};
    const Wei held = in.in_flight + in.reserve + in.committed;
    const auto free = minus(in.balance, held);
    if (!free || *free <= *in.above || *free <= *in.keep) return {0, TreasuryHold::kNotNeeded};
    const auto excess = minus(*free - *in.keep, in.fee);
    if (!excess || *excess == 0) return {0, TreasuryHold::kFeeTooHigh};
    return {*excess, TreasuryHold::kNone};
}

TreasuryDecision decide_refill(const RefillInput& in) {
    if (in.stuck) return {0, TreasuryHold::kStuck};
    if (in.deposit_in_flight) return {0, TreasuryHold::kInFlight};
    if (!in.below || !in.to) return {0, TreasuryHold::kNoLevel};
    if (in.l2_balance >= *in.below || in.l2_balance >= *in.to) return {0, TreasuryHold::kNotNeeded};
    Wei value = *in.to - in.l2_balance;
    if (in.daily_left) value = std::min(value, *in.daily_left);
    const auto spare = minus(in.l1_free, in.l1_fee);
    value = spare ? std::min(value, *spare) : Wei(0);
    if (value == 0) return {0, TreasuryHold::kNoBudget};
    return {value, TreasuryHold::kNone};
}

bool deposit_credited(const Wei& value, const Wei& balance_then, const Wei& balance_now, const Wei& paid_between) {
    // What arrived = now + what we paid out - then; checked: no subtraction below zero.
    const Wei had = balance_now + paid_between;
    if (had < balance_then) return false;
    return had - balance_then >= value;
}

}  // namespace keymaster::funding
