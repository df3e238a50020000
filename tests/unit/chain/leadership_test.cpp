// The leader lease as the daemon and top-up use it: claim, fence, and when to stop by its own clock.
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include "keymaster/chain/leadership.hpp"

using namespace keymaster;
using namespace std::chrono_literals;

namespace {
std::string temp_dir() {
    static int n = 0;
    auto d = std::filesystem::temp_directory_path() / ("km-lead-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(d);
    return d.string();
}
}  // namespace

TEST_CASE("leadership: a leader stops by its own clock with a third of its lease left", "[chain][lease]") {
    const auto dir = temp_dir();
    ledger::Ledger l(dir, false);
    chain::Leadership lead(l, "keymaster", "a", 15s);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(lead.leading(t0));  // before any claim
    const auto lease = lead.claim(t0);
    REQUIRE(lease.mine);
    CHECK(lead.leading(t0));
    CHECK(lead.leading(t0 + 9900ms));
    CHECK_FALSE(lead.leading(t0 + 10100ms));  // 15 s - 5 s: stops before the lease can expire
    // A renewal moves it on, in the same epoch.
    const auto again = lead.claim(t0 + 9s);
    CHECK(again.epoch == lease.epoch);
    CHECK(lead.leading(t0 + 18s));
    std::filesystem::remove_all(dir);
}

TEST_CASE("leadership: a standby never leads; the leader's release hands over at the next claim", "[chain][lease]") {
    const auto dir = temp_dir();
    ledger::Ledger la(dir, false), lb(dir, false);
    chain::Leadership a(la, "keymaster", "a", 15s), b(lb, "keymaster", "b", 15s);
    REQUIRE(a.claim().mine);
    const auto seen = b.claim();
    CHECK_FALSE(seen.mine);
    CHECK(seen.holder == "a");
    CHECK_FALSE(b.leading());
    CHECK(chain::lease_changed(ledger::Lease{}, seen));
    CHECK_FALSE(chain::lease_changed(seen, b.claim()));
    a.release();
    CHECK_FALSE(a.leading());
    const auto took = b.claim();
    CHECK(took.mine);
    CHECK(took.epoch == seen.epoch + 1);
    CHECK(b.leading());
    // a was fenced with its epoch: its writes are refused now.
    ledger::Entry e;
    e.network = "alpha";
    e.bank = "0xBANK";
    e.raw = "0x02";
    e.tx_hash = "0x01";
    CHECK_THROWS_AS(la.record_intent(e), ledger::FencedError);
    CHECK(lb.record_intent(e) > 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("leadership: holder ids differ between processes and restarts", "[chain][lease]") {
    const auto one = chain::holder_id(), two = chain::holder_id();
    CHECK(one != two);  // the random part
    CHECK(one.find("/" + std::to_string(::getpid()) + "/") != std::string::npos);
}
