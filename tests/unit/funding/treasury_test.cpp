#include <catch2/catch.hpp>

#include <functional>

#include "keymaster/funding/treasury.hpp"

using namespace keymaster;
using funding::TreasuryHold;

namespace {

constexpr double kDay = 86400;
constexpr double kWindow = kDay;  // the burn window: enough history is 5 minutes of it

std::optional<Wei> w(std::uint64_t v) { return Wei(v); }

}  // namespace

TEST_CASE("treasury: a level from an amount or from measured outflow", "[treasury]") {
    struct Row {
        funding::Level level;
        std::optional<funding::BurnRate> rate;
        std::optional<Wei> want;
        const char* why;
    };
    const funding::BurnRate measured{Wei(1000), 3600};  // 1000 a day, an hour of history
    const funding::BurnRate young{Wei(1000), 60};       // a minute: too little to size from
    const Row rows[] = {
        {{w(500), std::nullopt, std::nullopt}, measured, w(500), "an amount is itself"},
        {{std::nullopt, 14 * kDay, std::nullopt}, measured, w(14000), "14 days of 1000 a day"},
        {{std::nullopt, kDay / 2, std::nullopt}, measured, w(500), "half a day"},
        {{std::nullopt, 14 * kDay, w(20000)}, measured, w(20000), "min is the floor"},
        {{std::nullopt, 14 * kDay, w(100)}, measured, w(14000), "above the floor: the measured worth"},
        {{std::nullopt, 14 * kDay, w(50)}, young, w(50), "too little history: min stands"},
        {{std::nullopt, 14 * kDay, std::nullopt}, young, std::nullopt, "too little history, no min: unknown"},
        {{std::nullopt, 14 * kDay, std::nullopt}, std::nullopt, std::nullopt, "no rate at all: unknown"},
        {{std::nullopt, 0.0, w(7)}, measured, std::nullopt, "a zero duration is no level"},
        {{}, measured, std::nullopt, "nothing configured"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        CHECK(funding::resolve_level(r.level, r.rate, kWindow) == r.want);
    }
}

TEST_CASE("treasury: the sweep rule", "[treasury]") {
    funding::SweepInput base;
    base.balance = 1000;
    base.keep = w(200);
    base.above = w(400);
    base.fee = 10;
    base.now = 10'000;
    struct Row {
        std::function<void(funding::SweepInput&)> change;
        Wei amount;
        TreasuryHold hold;
        const char* why;
    };
    const Row rows[] = {
        {[](auto&) {}, 790, TreasuryHold::kNone, "all above keep, less the fee: 1000 - 200 - 10"},
        {[](auto& in) { in.in_flight = 100; }, 690, TreasuryHold::kNone, "what is in flight stays"},
        {[](auto& in) { in.reserve = 100; }, 690, TreasuryHold::kNone, "the reserve stays"},
        {[](auto& in) { in.committed = 300; }, 490, TreasuryHold::kNone, "this Round's top-ups stay"},
        {[](auto& in) { in.in_flight = 300, in.reserve = 300; }, 0, TreasuryHold::kNotNeeded, "free 400 is not above 400"},
        {[](auto& in) { in.in_flight = 2000; }, 0, TreasuryHold::kNotNeeded, "more in flight than the balance"},
        {[](auto& in) { in.fee = 800; }, 0, TreasuryHold::kFeeTooHigh, "the fee takes all of it"},
        {[](auto& in) { in.fee = 799; }, 1, TreasuryHold::kNone, "one wei left after the fee"},
        {[](auto& in) { in.sweep_in_flight = true; }, 0, TreasuryHold::kInFlight, "one at a time"},
        {[](auto& in) { in.last_sent = 10'000 - 3599; }, 0, TreasuryHold::kTooSoon, "within the hour"},
        {[](auto& in) { in.last_sent = 10'000 - 3600; }, 790, TreasuryHold::kNone, "an hour since the last"},
        {[](auto& in) { in.keep.reset(); }, 0, TreasuryHold::kNoLevel, "keep unknown"},
        {[](auto& in) { in.above.reset(); }, 0, TreasuryHold::kNoLevel, "above unknown"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        auto in = base;
        r.change(in);
        const auto d = funding::decide_sweep(in);
        CHECK(d.amount == r.amount);
        CHECK(d.hold == r.hold);
        if (d.hold == TreasuryHold::kNone)  // after it the bank holds keep beyond everything it must
            CHECK(in.balance - d.amount - in.fee == *in.keep + in.in_flight + in.reserve + in.committed);
    }
}

TEST_CASE("treasury: the refill rule", "[treasury]") {
    funding::RefillInput base;
    base.l2_balance = 100;
    base.below = w(300);
    base.to = w(1000);
    base.l1_free = 10'000;
    base.l1_fee = 50;
    struct Row {
        std::function<void(funding::RefillInput&)> change;
        Wei amount;
        TreasuryHold hold;
        const char* why;
    };
    const Row rows[] = {
        {[](auto&) {}, 900, TreasuryHold::kNone, "brought to `to`"},
        {[](auto& in) { in.l2_balance = 300; }, 0, TreasuryHold::kNotNeeded, "at `below` is not below it"},
        {[](auto& in) { in.deposit_in_flight = true; }, 0, TreasuryHold::kInFlight, "one in flight: no second"},
        {[](auto& in) { in.stuck = true; }, 0, TreasuryHold::kStuck, "stuck until cleared"},
        {[](auto& in) { in.stuck = true, in.l2_balance = 0; }, 0, TreasuryHold::kStuck, "stuck even when empty"},
        {[](auto& in) { in.daily_left = w(400); }, 400, TreasuryHold::kNone, "capped by daily"},
        {[](auto& in) { in.daily_left = w(0); }, 0, TreasuryHold::kNoBudget, "daily spent"},
        {[](auto& in) { in.l1_free = 650; }, 600, TreasuryHold::kNone, "capped by what L1 spares beyond the fee"},
        {[](auto& in) { in.l1_free = 50; }, 0, TreasuryHold::kNoBudget, "L1 spares only the fee"},
        {[](auto& in) { in.l1_free = 10; }, 0, TreasuryHold::kNoBudget, "L1 cannot pay the fee"},
        {[](auto& in) { in.to.reset(); }, 0, TreasuryHold::kNoLevel, "`to` unknown"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        auto in = base;
        r.change(in);
        const auto d = funding::decide_refill(in);
        CHECK(d.amount == r.amount);
        CHECK(d.hold == r.hold);
    }
}

TEST_CASE("treasury: a deposit is credited by an inflow the ledger does not explain", "[treasury]") {
    struct Row {
        std::uint64_t value, then, now, paid;
        bool credited;
        const char* why;
    };
    const Row rows[] = {
        {500, 100, 600, 0, true, "arrived exactly"},
        {500, 100, 599, 0, false, "one wei short"},
        {500, 100, 400, 200, true, "arrived while the bank paid 200"},
        {500, 100, 300, 200, false, "what the bank paid explains the rest"},
        {500, 1000, 100, 0, false, "the balance fell"},
        {500, 100, 2000, 0, true, "more arrived (another inflow with it)"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        CHECK(funding::deposit_credited(Wei(r.value), Wei(r.then), Wei(r.now), Wei(r.paid)) == r.credited);
    }
}
