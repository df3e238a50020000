#include <catch2/catch.hpp>

#include "keymaster/funding/topology.hpp"
#include "vectors.hpp"

using namespace keymaster;
using config::Role;
using nlohmann::json;

namespace {

// Deterministic distinct addresses: 0x00..0<n>.
std::string addr(int n) {
    char buf[43];
    std::snprintf(buf, sizeof buf, "0x%040x", n);
    return buf;
}

json net(int base, std::vector<std::string> replicas) {
    return json{{"endpoint", "http://127.0.0.1:1"},
                {"replicas", replicas},
                {"bank", {{"keyEnv", "BANK"}}},
                {"threshold", "1 ether"},
                {"agents",
                 {{"updater", addr(base + 1)},
                  {"relayer", addr(base + 2)},
                  {"processor", addr(base + 3)},
                  {"watchers", {addr(base + 4)}},
                  {"kathy", addr(base + 5)}}}};
}

config::Config load(const json& j) {
    auto r = config::parse(j.dump(), "k.json", [](const std::string&) { return std::nullopt; });
    if (!r) FAIL(r.error().message);
    return r.value();
}

// "role@home=address" strings for one network, in order.
std::vector<std::string> describe(const funding::Topology& t, const std::string& network) {
    std::vector<std::string> out;
    for (const auto& a : t.find(network)->accounts)
        out.push_back(std::string(config::role_name(a.role)) + "@" + a.home + "=" + std::to_string(a.address.bytes()[19]));
    return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("funding: local and remote agents per network (Nomad v2)", "[funding]") {
    json j = {{"networks", {{"a", net(10, {"b", "c"})}, {"b", net(20, {"a"})}, {"c", net(30, {})}}}};
    auto t = funding::build_topology(load(j));
    REQUIRE(t.errors.empty());
    // On a: a's updater, watchers, kathy; then b's relayer, processor, watchers (b lists a).
    CHECK(describe(t, "a") == V{"updater@a=11", "watcher@a=14", "kathy@a=15", "relayer@b=22", "processor@b=23", "watcher@b=24"});
    CHECK(describe(t, "b") == V{"updater@b=21", "watcher@b=24", "kathy@b=25", "relayer@a=12", "processor@a=13", "watcher@a=14"});
    // c is a replica of a only: a's relayer, processor, watchers; c's own locals.
    CHECK(describe(t, "c") == V{"updater@c=31", "watcher@c=34", "kathy@c=35", "relayer@a=12", "processor@a=13", "watcher@a=14"});
}

TEST_CASE("funding: a home's relayer and processor are not funded on the home", "[funding]") {
    json j = {{"networks", {{"a", net(10, {})}}}};
    auto t = funding::build_topology(load(j));
    CHECK(describe(t, "a") == V{"updater@a=11", "watcher@a=14", "kathy@a=15"});
}

TEST_CASE("funding: ignore all / local / remote", "[funding]") {
    struct Case {
        json ignore;
        V on_a;
    };
    const std::vector<Case> cases = {
        {json{{"all", {"watcher"}}}, V{"updater@a=11", "kathy@a=15", "relayer@b=22", "processor@b=23"}},
        {json{{"local", {"watcher", "kathy"}}}, V{"updater@a=11", "relayer@b=22", "processor@b=23", "watcher@b=24"}},
        {json{{"remote", {"watcher", "processor"}}}, V{"updater@a=11", "watcher@a=14", "kathy@a=15", "relayer@b=22"}},
        {json{{"local", {"updater"}}, {"remote", {"relayer"}}},
         V{"watcher@a=14", "kathy@a=15", "processor@b=23", "watcher@b=24"}},
    };
    for (const auto& c : cases) {
        json j = {{"networks", {{"a", net(10, {})}, {"b", net(20, {"a"})}}}};
        j["networks"]["a"]["ignore"] = c.ignore;
        INFO(c.ignore.dump());
        CHECK(describe(funding::build_topology(load(j)), "a") == c.on_a);
    }
}

TEST_CASE("funding: thresholds and targets by precedence", "[funding]") {
    json j = {{"networks", {{"a", net(10, {})}, {"b", net(20, {"a"})}}}};
    auto& a = j["networks"]["a"];
    a["watcherThreshold"] = "0.3 ether";
    a["roles"] = {{"processor", {{"threshold", "2 ether"}, {"target", "5 ether"}}}};
    a["agents"]["updater"] = {{"address", addr(11)}, {"threshold", "0.7 ether"}};
    auto t = funding::build_topology(load(j));
    std::map<std::string, std::pair<std::string, std::string>> got;
    for (const auto& acc : t.find("a")->accounts)
        got[std::string(config::role_name(acc.role)) + "@" + acc.home] = {format_units(acc.threshold), format_units(acc.target)};
    CHECK(got["updater@a"] == std::pair<std::string, std::string>{"0.7", "1.4"});    // own threshold, 2x
    CHECK(got["watcher@a"] == std::pair<std::string, std::string>{"0.3", "0.6"});    // watcherThreshold
    CHECK(got["watcher@b"] == std::pair<std::string, std::string>{"0.3", "0.6"});    // a's watcherThreshold applies on a
    CHECK(got["processor@b"] == std::pair<std::string, std::string>{"2", "5"});      // roles entry
    CHECK(got["relayer@b"] == std::pair<std::string, std::string>{"1", "2"});        // network threshold
    CHECK(got["kathy@a"] == std::pair<std::string, std::string>{"1", "2"});

    a["target"] = "3 ether";
    t = funding::build_topology(load(j));
    for (const auto& acc : t.find("a")->accounts)
        if (acc.role == Role::kKathy) CHECK(format_units(acc.target) == "3");

    a["target"] = "1.5 ether";
    a["agents"]["updater"] = {{"address", addr(11)}, {"threshold", "2 ether"}};
    t = funding::build_topology(load(j));
    REQUIRE(t.errors.size() == 1);
    CHECK(t.errors[0] == "k.json: networks.a.agents.updater: threshold 2 is above the target 1.5 on a");
}

TEST_CASE("funding: one address twice is one account; the bank is never paid", "[funding]") {
    json j = {{"networks", {{"a", net(10, {})}}}};
    j["networks"]["a"]["agents"]["kathy"] = addr(11);  // same as the updater
    j["networks"]["a"]["roles"] = {{"kathy", {{"threshold", "4 ether"}, {"target", "6 ether"}}}};
    auto t = funding::build_topology(load(j));
    const auto& accs = t.find("a")->accounts;
    REQUIRE(accs.size() == 2);
    CHECK(accs[0].role == Role::kUpdater);
    CHECK(format_units(accs[0].threshold) == "4");
    CHECK(format_units(accs[0].target) == "6");
    CHECK(t.notes.size() == 1);

    std::map<std::string, eth::Address> banks{{"a", eth::Address::parse(addr(14)).value()}};
    t = funding::build_topology(load(j), banks);
    CHECK(describe(t, "a") == V{"updater@a=11"});
}

TEST_CASE("funding: the decision rule", "[funding]") {
    funding::Account acc{"a", "a", Role::kUpdater, {}, Wei(100), Wei(250), {}};
    struct Row {
        std::optional<Wei> balance;
        funding::Action action;
        Wei amount;
    };
    const std::vector<Row> rows = {
        {Wei(0), funding::Action::kTopUp, Wei(250)},    {Wei(99), funding::Action::kTopUp, Wei(151)},
        {Wei(100), funding::Action::kNone, Wei(0)},     {Wei(1000), funding::Action::kNone, Wei(0)},
        {std::nullopt, funding::Action::kUnknown, Wei(0)},
    };
    for (const auto& r : rows) {
        auto d = funding::decide(acc, r.balance);
        CHECK(d.action == r.action);
        CHECK(d.amount == r.amount);
    }
}

TEST_CASE("funding: runway.max below an account's amount threshold or target is an error at its path", "[funding]") {
    json j = {{"networks", {{"a", net(10, {})}}}};
    j["networks"]["a"]["target"] = "2 ether";
    j["networks"]["a"]["runway"] = {{"target", "1d"}, {"max", "1.5 ether"}};
    auto t = funding::build_topology(load(j));
    REQUIRE_FALSE(t.errors.empty());
    CHECK_THAT(t.errors[0], Catch::StartsWith("k.json: networks.a.runway.max: runway.max 1.5 is below the target 2 of updater "));
    j["networks"]["a"]["runway"]["max"] = "0.5 ether";
    t = funding::build_topology(load(j));
    REQUIRE_FALSE(t.errors.empty());
    CHECK_THAT(t.errors[0], Catch::StartsWith("k.json: networks.a.runway.max: runway.max 0.5 is below the threshold 1 of updater "));
    j["networks"]["a"]["runway"]["max"] = "5 ether";
    j["networks"]["a"]["roles"] = {{"watcher", {{"runway", {{"threshold", "2h"}, {"max", "1 ether"}}}}}};
    t = funding::build_topology(load(j));
    REQUIRE(t.errors.size() == 1);
    CHECK_THAT(t.errors[0], Catch::StartsWith("k.json: networks.a.roles.watcher.runway.max: runway.max 1 is below the target 2 of watcher "));
    j["networks"]["a"]["roles"]["watcher"]["runway"]["max"] = "3 ether";
    t = funding::build_topology(load(j));
    REQUIRE(t.errors.empty());
    const auto& w = t.find("a")->accounts.at(1);
    CHECK(w.role == Role::kWatcher);
    REQUIRE(w.runway);
    CHECK(*w.runway->threshold == 7200);
    CHECK(*w.runway->target == 86400);
    CHECK(*w.runway->max == Wei(3) * Wei(1'000'000'000'000'000'000ULL));
}

TEST_CASE("funding: the shipped example configs build a topology without errors (runway.max included)", "[funding]") {
    for (const char* file : {"/etc/keymaster.example.json", "/etc/environments/development.json",
                             "/etc/environments/staging.json", "/etc/environments/production.json"}) {
        INFO(file);
        auto r = config::load(std::string(KEYMASTER_SOURCE_DIR) + file, [](const std::string&) { return std::nullopt; });
        REQUIRE(r.has_value());
        const auto t = funding::build_topology(r.value());
        CHECK(t.errors.empty());
    }
}
