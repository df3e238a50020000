#include <catch2/catch.hpp>

#include "keymaster/chain/topup.hpp"

using namespace keymaster;

namespace {

chain::NetworkPlan plan_of(std::vector<Wei> amounts, Wei bank) {
    chain::NetworkPlan p;
    p.snapshot.reachable = true;
    p.snapshot.bank_balance = bank;
    p.fees = chain::Fees{eth::TxType::kLegacy, Wei(10), 0, 0};
    int n = 0;
    for (const auto& a : amounts) {
        chain::TopUp t;
        t.account.address = eth::Address(ByteArray<20>{static_cast<std::uint8_t>(++n)});
        t.amount = a;
        t.gas_limit = 21000;
        p.topups.push_back(t);
        p.total += a;
    }
    return p;
}

}  // namespace

TEST_CASE("limits: maxTopUp caps every transfer", "[limits]") {
    auto p = plan_of({Wei(500), Wei(50)}, Wei(1'000'000'000));
    config::Limits l;
    l.max_top_up = Wei(100);
    CHECK_FALSE(chain::apply_limits(p, l, 0));
    REQUIRE(p.topups.size() == 2);
    CHECK(p.topups[0].amount == 100);
    CHECK(p.topups[1].amount == 50);
    CHECK(p.total == 150);
    CHECK(p.max_fee_cost == Wei(2 * 21000 * 10));
    CHECK(p.covered);
}

TEST_CASE("limits: the daily budget counts what the ledger saw in 24 hours", "[limits]") {
    auto p = plan_of({Wei(40), Wei(40), Wei(10)}, Wei(1'000'000'000));
    config::Limits l;
    l.daily = Wei(100);
    auto left = chain::apply_limits(p, l, Wei(30));  // 70 left: 40 fits, the next 40 does not, 10 does
    REQUIRE(p.topups.size() == 2);
    CHECK(p.topups[0].amount == 40);
    CHECK(p.topups[1].amount == 10);
    REQUIRE(p.blocked.size() == 1);
    CHECK_THAT(p.blocked[0].second, Catch::StartsWith("daily limit"));
    CHECK(*left == 20);
    auto spent = plan_of({Wei(1)}, Wei(1'000'000'000));
    CHECK(*chain::apply_limits(spent, l, Wei(150)) == 0);  // over budget already: nothing
    CHECK(spent.topups.empty());
}

TEST_CASE("limits: the bank keeps its reserve, fees included", "[limits]") {
    // Bank 1,000,000; each transfer costs 210,000 in fees at most.
    auto p = plan_of({Wei(300'000), Wei(300'000)}, Wei(1'000'000));
    config::Limits l;
    l.reserve = Wei(100'000);
    chain::apply_limits(p, l, 0);
    REQUIRE(p.topups.size() == 1);  // 300k + 210k = 510k; a second would leave 1m - 1.02m
    REQUIRE(p.blocked.size() == 1);
    CHECK_THAT(p.blocked[0].second, Catch::StartsWith("reserve"));
    auto poor = plan_of({Wei(1)}, Wei(50'000));
    chain::apply_limits(poor, l, 0);  // the bank is below its reserve already
    CHECK(poor.topups.empty());
}

TEST_CASE("replacement fees: at least 12.5% more, rounded up, never above maxFeePerGas", "[replace]") {
    chain::Fees f{eth::TxType::kDynamicFee, 0, Wei(1000), Wei(100)};
    auto b = chain::bumped_fees(f, std::nullopt);
    REQUIRE(b);
    CHECK(b->max_fee == 1125);
    CHECK(b->priority_fee == 113);  // 112.5 rounded up
    CHECK(chain::bumped_fees(f, Wei(1125)));
    CHECK_FALSE(chain::bumped_fees(f, Wei(1124)));
    chain::Fees legacy{eth::TxType::kLegacy, Wei(7), 0, 0};
    CHECK(chain::bumped_fees(legacy, std::nullopt)->gas_price == 8);
    chain::Fees tip_above{eth::TxType::kDynamicFee, 0, Wei(100), Wei(100)};
    auto t = chain::bumped_fees(tip_above, std::nullopt);
    CHECK(t->priority_fee <= t->max_fee);
}
