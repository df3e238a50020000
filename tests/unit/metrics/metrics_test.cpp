#include <catch2/catch.hpp>

#include "keymaster/metrics/metrics.hpp"

using namespace keymaster;

namespace {

bool has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

}  // namespace

TEST_CASE("metrics: every alerted series exists at 0 before anything happened", "[metrics]") {
    metrics::Metrics m("1.2.3", "abc", 1'700'000'000);
    const metrics::AccountLabels a{"alpha", "beta", "relayer", "0xA"};
    (void)m.account_series(a);
    m.init_network("alpha", {"poll", "topup", "internal"});
    m.init_network("", {"config", "internal"});
    const auto text = m.serialize();
    const std::string l = R"(network="alpha",home="beta",role="relayer",address="0xA")";
    CHECK(has(text, "keymaster_topups_total{" + l + R"(,result="success"} 0)"));
    CHECK(has(text, "keymaster_topups_total{" + l + R"(,result="failure"} 0)"));
    CHECK(has(text, "keymaster_topup_amount_ether_total{" + l + "} 0"));
    CHECK(text.find("keymaster_topup_last_timestamp_seconds{") == std::string::npos);  // no top-up yet
    CHECK(text.find("keymaster_account_balance_ether{") == std::string::npos);          // not polled yet
    CHECK(has(text, R"(keymaster_errors_total{network="alpha",scope="poll"} 0)"));
    CHECK(has(text, R"(keymaster_errors_total{network="alpha",scope="internal"} 0)"));
    CHECK(has(text, R"(keymaster_errors_total{network="",scope="config"} 0)"));
    CHECK(has(text, R"(keymaster_replacements_total{network="alpha"} 0)"));
    CHECK(has(text, R"(keymaster_bank_unaccounted_transactions_total{network="alpha"} 0)"));
    CHECK(has(text, R"(keymaster_bank_unaccounted_ether_total{network="alpha"} 0)"));
    CHECK(has(text, R"(keymaster_gas_spent_ether_total{network="alpha"} 0)"));
    CHECK(text.find("process_start_time_seconds ") != std::string::npos);
    // One HELP/TYPE per family, the failure series in the same block as the success ones.
    CHECK(text.find("# TYPE keymaster_topups_total counter") == text.rfind("# TYPE keymaster_topups_total counter"));
}

TEST_CASE("metrics: top-ups count, and a reload drops what it no longer funds", "[metrics]") {
    metrics::Metrics m("1.2.3", "abc", 1'700'000'000);
    const metrics::AccountLabels a{"alpha", "alpha", "updater", "0xB"};
    auto* s = m.account_series(a);
    m.set(s, 1.5, 1, 2);
    m.topup(a, false, 0.5, 100);
    m.topup(a, true, 0.5, 200);
    m.init_network("alpha", {"poll"});
    m.error("alpha", "poll");
    m.rpc_call("alpha", "eth_getBalance", true, 3);
    m.poll("alpha", 0.01, true, 300);
    auto text = m.serialize();
    const std::string l = R"(network="alpha",home="alpha",role="updater",address="0xB")";
    CHECK(has(text, "keymaster_topups_total{" + l + R"(,result="success"} 1)"));
    CHECK(has(text, "keymaster_topups_total{" + l + R"(,result="failure"} 1)"));
    CHECK(has(text, "keymaster_topup_amount_ether_total{" + l + "} 0.5"));
    CHECK(has(text, "keymaster_topup_last_timestamp_seconds{" + l + "} 200"));
    CHECK(has(text, "keymaster_account_balance_ether{" + l + "} 1.5"));
    CHECK(has(text, R"(keymaster_errors_total{network="alpha",scope="poll"} 1)"));
    m.forget_account(a);
    m.forget_network("alpha");
    text = m.serialize();
    CHECK(text.find("0xB") == std::string::npos);
    CHECK(text.find(R"(network="alpha")") == std::string::npos);
}

TEST_CASE("metrics: /metrics is streamed in pieces of about 64 KiB, the same text as a whole", "[metrics]") {
    metrics::Metrics m("1.2.3", "abc", 1'700'000'000);
    std::vector<metrics::AccountLabels> accounts;
    for (int i = 0; i < 2000; ++i) {
        accounts.push_back({"alpha", "alpha", "watcher", "0x" + std::to_string(100000 + i)});
        m.set(m.account_series(accounts.back()), 1, 1, 2);
    }
    auto next = m.stream();
    std::string joined, piece;
    std::size_t pieces = 0;
    for (bool more = true; more;) {
        piece.clear();
        more = next(piece);
        CHECK(piece.size() < 64 * 1024 + 512);
        joined += piece;
        ++pieces;
    }
    CHECK(pieces > 10);
    CHECK(joined == m.serialize());
    // A reload that forgets an account while a scrape is under way ends that scrape early.
    auto interrupted = m.stream();
    piece.clear();
    REQUIRE(interrupted(piece));  // the registry's families
    m.forget_account(accounts[0]);
    piece.clear();
    CHECK_FALSE(interrupted(piece));
    CHECK(piece.empty());
}

TEST_CASE("metrics: measured burn, runway (+Inf when nothing is spent), held back, bank runway", "[metrics][burn]") {
    metrics::Metrics m("1.2.3", "abc", 1'700'000'000);
    const metrics::AccountLabels a{"alpha", "alpha", "relayer", "0xA"}, b{"alpha", "alpha", "watcher", "0xB"};
    auto* sa = m.account_series(a);
    auto* sb = m.account_series(b);
    const std::string la = R"(network="alpha",home="alpha",role="relayer",address="0xA")";
    const std::string lb = R"(network="alpha",home="alpha",role="watcher",address="0xB")";
    auto text = m.serialize();
    CHECK(has(text, "keymaster_account_spent_ether_total{" + la + "} 0"));  // from the start, for increase()
    CHECK(text.find("keymaster_account_runway_seconds{") == std::string::npos);  // not polled yet
    m.update(sa, {1, 0.5, 2, 0.25, 3600, 21600, true});
    m.update(sa, {1, 0.5, 2, 0.5, 1800, 21600, true});
    m.update(sb, {1, 0.5, 2, 0, std::nullopt, std::nullopt, false});
    m.bank_runway("alpha", "0xBANK", 86400);
    m.bank_runway("beta", "0xBANK2", std::nullopt);
    text = m.serialize();
    CHECK(has(text, "keymaster_account_spent_ether_total{" + la + "} 0.75"));
    CHECK(has(text, "keymaster_account_runway_seconds{" + la + "} 1800"));
    CHECK(has(text, "keymaster_account_runway_seconds{" + lb + "} +Inf"));
    CHECK(has(text, "keymaster_account_runway_threshold_seconds{" + la + "} 21600"));
    CHECK(text.find("keymaster_account_runway_threshold_seconds{" + lb) == std::string::npos);  // none configured
    CHECK(has(text, "keymaster_account_held_back{" + la + "} 1"));
    CHECK(has(text, "keymaster_account_held_back{" + lb + "} 0"));
    CHECK(has(text, R"(keymaster_bank_runway_seconds{address="0xBANK",network="alpha"} 86400)"));
    CHECK(has(text, R"(keymaster_bank_runway_seconds{address="0xBANK2",network="beta"} +Inf)"));
    m.forget_bank("alpha", "0xBANK");
    CHECK(m.serialize().find("0xBANK\"") == std::string::npos);
}
