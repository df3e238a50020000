// The leader lease as the daemon and top-up use it: claim, fence, and when to stop by its own clock.
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include "keymaster/chain/leadership.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "manual_clock.hpp"

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
    test::ManualClock clock;
    ledger::Ledger l(dir, false, clock);
    chain::Leadership lead(l, "keymaster", "a", 15s, clock);
    CHECK_FALSE(lead.leading());  // before any claim
    const auto lease = lead.claim();
    REQUIRE(lease.mine);
    CHECK(lead.leading());
    clock.advance(9900ms);
    CHECK(lead.leading());
    clock.advance(200ms);
    CHECK_FALSE(lead.leading());  // 15 s - 5 s: stops before the lease can expire
    // A renewal moves it on, in the same epoch.
    const auto again = lead.claim();
    CHECK(again.epoch == lease.epoch);
    clock.advance(9s);
    CHECK(lead.leading());
    std::filesystem::remove_all(dir);
}

TEST_CASE("leadership: a standby never leads; the leader's release hands over at the next claim", "[chain][lease]") {
    const auto dir = temp_dir();
    test::ManualClock clock;
    ledger::Ledger la(dir, false, clock), lb(dir, false, clock);
    chain::Leadership a(la, "keymaster", "a", 15s, clock), b(lb, "keymaster", "b", 15s, clock);
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
