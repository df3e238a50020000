#include <catch2/catch.hpp>

#include "keymaster/funding/limits.hpp"

using namespace keymaster;

namespace {

funding::NetworkPlan plan_of(std::vector<Wei> amounts, Wei bank) {
    funding::NetworkPlan p;
    p.snapshot.reachable = true;
    p.snapshot.bank_balance = bank;
    p.fees = funding::Fees{eth::TxType::kLegacy, Wei(10), 0, 0};
    int n = 0;
    for (const auto& a : amounts) {
        funding::TopUp t;
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
    CHECK_FALSE(funding::apply_limits(p, l, 0));
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
    auto left = funding::apply_limits(p, l, Wei(30));  // 70 left: 40 fits, the next 40 does not, 10 does
    REQUIRE(p.topups.size() == 2);
    CHECK(p.topups[0].amount == 40);
    CHECK(p.topups[1].amount == 10);
    REQUIRE(p.blocked.size() == 1);
    CHECK_THAT(p.blocked[0].second, Catch::StartsWith("daily limit"));
    CHECK(*left == 20);
    auto spent = plan_of({Wei(1)}, Wei(1'000'000'000));
    CHECK(*funding::apply_limits(spent, l, Wei(150)) == 0);  // over budget already: nothing
    CHECK(spent.topups.empty());
}

TEST_CASE("limits: the bank keeps its reserve, fees included", "[limits]") {
    // Bank 1,000,000; each transfer costs 210,000 in fees at most.
    auto p = plan_of({Wei(300'000), Wei(300'000)}, Wei(1'000'000));
    config::Limits l;
    l.reserve = Wei(100'000);
    funding::apply_limits(p, l, 0);
    REQUIRE(p.topups.size() == 1);  // 300k + 210k = 510k; a second would leave 1m - 1.02m
    REQUIRE(p.blocked.size() == 1);
    CHECK_THAT(p.blocked[0].second, Catch::StartsWith("reserve"));
    auto poor = plan_of({Wei(1)}, Wei(50'000));
    funding::apply_limits(poor, l, 0);  // the bank is below its reserve already
    CHECK(poor.topups.empty());
}

TEST_CASE("replacement fees: at least 12.5% more, rounded up, never above the ceiling", "[replace]") {
    funding::Fees f{eth::TxType::kDynamicFee, 0, Wei(1000), Wei(100)};
    const Wei none = max_sane_amount();
    auto b = funding::bumped_fees(f, none);
    REQUIRE(b);
    CHECK(b->max_fee == 1125);
    CHECK(b->priority_fee == 113);  // 112.5 rounded up
    CHECK(funding::bumped_fees(f, Wei(1125)));
    CHECK_FALSE(funding::bumped_fees(f, Wei(1124)));
    funding::Fees legacy{eth::TxType::kLegacy, Wei(7), 0, 0};
    CHECK(funding::bumped_fees(legacy, none)->gas_price == 8);
    funding::Fees tip_above{eth::TxType::kDynamicFee, 0, Wei(100), Wei(100)};
    auto t = funding::bumped_fees(tip_above, none);
    CHECK(t->priority_fee <= t->max_fee);
}

TEST_CASE("limits: perAccount caps what one account receives in 24 hours, by amount and by count", "[limits]") {
    config::Limits l;
    l.per_account.daily = Wei(100);
    l.per_account.top_ups = 3;
    auto p = plan_of({Wei(80), Wei(80), Wei(80), Wei(80)}, Wei(1'000'000'000));
    const auto& t = p.topups;
    std::map<eth::Address, funding::Received> received = {
        {t[0].account.address, {Wei(0), 0}},     // nothing yet: the whole 80
        {t[1].account.address, {Wei(50), 1}},    // 50 left of 100: 50 sent, 30 held back
        {t[2].account.address, {Wei(100), 2}},   // the daily amount reached: nothing
        {t[3].account.address, {Wei(10), 3}},    // three transfers already: nothing
    };
    const auto a1 = t[1].account.address, a2 = t[2].account.address, a3 = t[3].account.address;
    CHECK_FALSE(funding::apply_limits(p, l, 0, received));
    REQUIRE(p.topups.size() == 2);
    CHECK(p.topups[0].amount == 80);
    CHECK(p.topups[1].account.address == a1);
    CHECK(p.topups[1].amount == 50);
    CHECK(p.total == 130);
    REQUIRE(p.blocked.size() == 3);
    CHECK(p.blocked[0].first.account.address == a1);
    CHECK(p.blocked[0].first.amount == 30);
    CHECK_THAT(p.blocked[0].second, Catch::StartsWith("perAccount.daily"));
    CHECK(p.blocked[1].first.account.address == a2);
    CHECK_THAT(p.blocked[1].second, Catch::StartsWith("perAccount.daily"));
    CHECK(p.blocked[2].first.account.address == a3);
    CHECK_THAT(p.blocked[2].second, Catch::StartsWith("perAccount.topUps"));
    CHECK(p.held_per_account == std::set<eth::Address>{a1, a2, a3});  // for keymaster_account_held_back
    // Without perAccount, received amounts change nothing.
    auto q = plan_of({Wei(80)}, Wei(1'000'000'000));
    CHECK_FALSE(funding::apply_limits(q, config::Limits{}, 0, {{q.topups[0].account.address, {Wei(1000), 99}}}));
    CHECK(q.topups.size() == 1);
}
