#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "keymaster/funding/burn.hpp"
#include "keymaster/funding/plan.hpp"

using namespace keymaster;

namespace {

const Wei kEther = Wei(1'000'000'000'000'000'000ULL);
Wei milli(std::uint64_t m) { return kEther / 1000 * m; }  // m thousandths of an ether

funding::Account account(Wei threshold, Wei target, config::Runway runway = {}) {
    funding::Account a;
    a.network = "a";
    a.threshold = threshold;
    a.target = target;
    a.runway = std::make_shared<const config::Runway>(runway);
    return a;
}

}  // namespace

TEST_CASE("burn: spent between two polls", "[burn]") {
    struct Row {
        std::uint64_t before, after, arrived, spent;
        const char* why;
    };
    const Row rows[] = {
        {1000, 900, 0, 100, "a decrease is spending"},
        {1000, 1000, 0, 0, "no change"},
        {1000, 1400, 500, 100, "our top-up of 500 arrived: 1000 + 500 - 1400"},
        {1000, 1500, 500, 0, "exactly the top-up"},
        {1000, 1800, 500, 0, "more than our top-up: someone else's transfer, not negative spending"},
        {1000, 1200, 0, 0, "an incoming transfer is not spending"},
        {1000, 0, 0, 1000, "everything"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        CHECK(funding::spent_between(Wei(r.before), Wei(r.after), Wei(r.arrived)) == Wei(r.spent));
    }
}

TEST_CASE("burn: observations fill buckets; the first only starts the history", "[burn]") {
    funding::BurnHistory h;
    const double len = 60;
    auto m = funding::observe(h, 1000, Wei(1000), 0, len);
    CHECK(m.state_changed);
    CHECK_FALSE(m.bucket);
    CHECK(h.since == 1000);
    CHECK(h.buckets.empty());

    m = funding::observe(h, 1010, Wei(990), 0, len);  // spent 10
    REQUIRE(m.bucket);
    CHECK(m.bucket->start == 1000);
    CHECK(m.bucket->end == 1010);
    CHECK(m.spent == 10);
    m = funding::observe(h, 1020, Wei(990), 0, len);  // nothing: no write
    CHECK_FALSE(m.state_changed);
    CHECK_FALSE(m.bucket);
    CHECK(h.time == 1010);  // the measurement still starts from the last change
    m = funding::observe(h, 1050, Wei(1480), 500, len);  // top-up of 500 arrived, 10 spent
    REQUIRE(m.bucket);
    CHECK(m.spent == 10);
    CHECK(h.buckets.size() == 1);  // still inside the first bucket's length
    CHECK(h.buckets[0].spent == 20);
    CHECK(h.buckets[0].end == 1050);
    m = funding::observe(h, 1070, Wei(1470), 0, len);  // past 1000 + 60: a new bucket from the last measurement
    REQUIRE(h.buckets.size() == 2);
    CHECK(h.buckets[1].start == 1050);
    CHECK(h.buckets[1].spent == 10);
    CHECK(funding::observe(h, 1070 + funding::kBurnRefreshSeconds, Wei(1470), 0, len).state_changed);  // refreshed hourly

    funding::prune(h, 1060);
    REQUIRE(h.buckets.size() == 1);
    CHECK(h.buckets[0].start == 1050);
}

TEST_CASE("burn: bucket length follows the window", "[burn]") {
    CHECK(funding::bucket_length(86400) == 3600);
    CHECK(funding::bucket_length(7 * 86400) == 3600);
    CHECK(funding::bucket_length(3600) == 150);
    CHECK(funding::bucket_length(10) == 1);
}

TEST_CASE("burn: the rate over a window, with a bucket crossing its start in proportion", "[burn]") {
    funding::BurnHistory h;
    h.since = 0;
    h.since = 1;  // observed from t=1
    h.buckets = {{1, 101, Wei(100)}, {101, 201, Wei(100)}, {201, 301, Wei(100)}};
    struct Row {
        double now, window;
        std::uint64_t per_day;
        double covered;
        const char* why;
    };
    const Row rows[] = {
        {301, 1000, 300 * 86400 / 300, 300, "window longer than the history: spent over what is covered"},
        {301, 150, 150 * 86400 / 150, 150, "half of the middle bucket counts: 50 + 100 over 150 s"},
        {401, 100, 0, 100, "nothing in the window"},
        {301, 300, 300 * 86400 / 300, 300, "exactly the history"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        const auto rate = funding::burn_rate(h, r.now, r.window);
        CHECK(rate.per_day == Wei(r.per_day));
        CHECK(rate.covered == Approx(r.covered));
    }
    CHECK(funding::burn_rate(funding::BurnHistory{}, 100, 100).per_day == 0);  // never observed
}

TEST_CASE("burn: enough history is a tenth of the window or 5 minutes", "[burn]") {
    struct Row {
        double covered, window;
        bool enough;
    };
    const Row rows[] = {{299, 86400, false}, {300, 86400, true}, {5, 60, false}, {6, 60, true}, {3000, 3600, true}};
    for (const auto& r : rows) CHECK(funding::enough_history({0, r.covered}, r.window) == r.enough);
}

TEST_CASE("burn: runway is balance over the rate; infinite when nothing is spent", "[burn]") {
    CHECK_FALSE(funding::runway_seconds(kEther, 0));
    CHECK(*funding::runway_seconds(kEther, kEther) == Approx(86400));
    CHECK(*funding::runway_seconds(kEther / 2, kEther * 2) == Approx(86400.0 / 4));
    CHECK(*funding::runway_seconds(0, kEther) == 0);
    CHECK(funding::burn_for(milli(800), 6 * 3600) == milli(200));
}

TEST_CASE("burn: effective threshold and target", "[burn]") {
    config::Runway rw;
    rw.threshold = 6 * 3600;
    rw.target = 24 * 3600;
    config::Runway capped = rw;
    capped.max = milli(600);
    config::Runway threshold_only;
    threshold_only.threshold = 12 * 3600;
    struct Row {
        config::Runway runway;
        std::uint64_t per_day_milli;
        double covered;
        std::uint64_t threshold, target;  // milli-ether
        bool th_burn, tg_burn, capped;
        const char* why;
    };
    const Row rows[] = {
        {rw, 800, 86400, 200, 800, true, true, false, "6h and 24h of 0.8/day above the amounts 0.1 and 0.3"},
        {rw, 100, 86400, 100, 300, false, false, false, "a slow burn: the amounts stay the floor"},
        {rw, 800, 60, 100, 300, false, false, false, "too little history (60 s of 24h): amounts only"},
        {capped, 4000, 86400, 600, 600, true, true, true, "runway.max caps the target, and the threshold under it"},
        {threshold_only, 4000, 86400, 300, 300, true, false, false, "a threshold from burn never above the target"},
        {config::Runway{}, 4000, 86400, 100, 300, false, false, false, "no runway block: amounts"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        const auto l = funding::levels(account(milli(100), milli(300), r.runway), {milli(r.per_day_milli), r.covered});
        CHECK(l.threshold == milli(r.threshold));
        CHECK(l.target == milli(r.target));
        CHECK(l.threshold_from_burn == r.th_burn);
        CHECK(l.target_from_burn == r.tg_burn);
        CHECK(l.capped == r.capped);
    }
    CHECK(funding::burn_reason(6 * 3600, milli(800), 18, "ETH") == "6h of 0.8 ETH/day");
    CHECK(funding::burn_reason(600, Wei("869001011450990348525"), 18, "ETH") == "10m of 869 ETH/day");
    CHECK(funding::burn_reason(600, Wei("8690010114509903485250"), 18, "ETH") == "10m of 8690 ETH/day");
    CHECK(funding::burn_reason(90, Wei("1234567"), 9, "GAS") == "90s of 0.00123 GAS/day");
    const auto plain = account(milli(100), milli(300), rw);
    CHECK(funding::describe_levels(plain, funding::levels(plain, {milli(800), 86400}), 18, "ETH") ==
          "threshold 6h of 0.8 ETH/day, target 1d of 0.8 ETH/day");
    const auto a = account(milli(100), milli(300), capped);
    CHECK(funding::describe_levels(a, funding::levels(a, {milli(4000), 86400}), 18, "ETH") ==
          "threshold 6h of 4 ETH/day, target 1d of 4 ETH/day, capped at runway.max 0.6");
    CHECK(funding::describe_levels(a, funding::levels(a, {milli(10), 86400}), 18, "ETH").empty());
}

// Levels 0.1 / 0.3 by amount; by burn, 6 hours' threshold and 24 hours' target.
funding::Account runway_account() {
    config::Runway rw;
    rw.threshold = 6 * 3600;
    rw.target = 24 * 3600;
    return account(milli(100), milli(300), rw);
}

TEST_CASE("burn: the plan decides at the effective levels", "[burn]") {
    const auto a = runway_account();
    funding::NetworkSnapshot snap;
    snap.reachable = true;
    snap.bank_balance = kEther * 100;
    snap.gas_price = Wei(1);
    snap.accounts.push_back({a, milli(150), {}});  // above the amount threshold, below 6h of 0.8/day
    config::Network net;
    auto plain = funding::make_plan(snap, net);
    CHECK(plain.topups.empty());
    auto p = funding::make_plan(snap, net, {}, {{milli(800), 86400}});
    REQUIRE(p.topups.size() == 1);
    CHECK(p.topups[0].amount == milli(650));  // to 24h of 0.8/day
    CHECK(p.topups[0].levels.target_from_burn);
    CHECK(funding::levels_at(p, 0).threshold == milli(200));
}

TEST_CASE("burn: how accounts stand after a top-up is judged at the effective levels, not the amounts", "[burn]") {
    const auto a = runway_account();
    funding::NetworkSnapshot snap;
    snap.reachable = true;
    snap.accounts.push_back({a, milli(150), {}});   // above the amount threshold, below 6h of 0.8/day (0.2)
    snap.accounts.push_back({a, milli(250), {}});   // above both
    snap.accounts.push_back({a, milli(50), {}});    // below both
    snap.accounts.push_back({a, std::nullopt, "no answer"});
    config::Network net;
    const auto plain = funding::standing(funding::make_plan(snap, net));
    CHECK(plain.ok == 2);
    CHECK(plain.low == 1);
    CHECK(plain.unknown == 1);
    const std::vector<funding::BurnRate> rates(4, {milli(800), 86400});
    const auto burn = funding::standing(funding::make_plan(snap, net, {}, rates));
    CHECK(burn.ok == 1);   // (the static threshold would call the first one fine)
    CHECK(burn.low == 2);
    CHECK(burn.unknown == 1);
}
