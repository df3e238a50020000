// The steps of prepare (src/chain/prepare_steps.hpp) on their own: the view checks (is a poll
// stale, did the chain go back for good) on a manual clock, and the one list of a Round's problems.
#include "chain/prepare_steps.hpp"

#include <catch2/catch.hpp>

#include "manual_clock.hpp"

using namespace keymaster;
using chain::RoundProblem;

namespace {
funding::NetworkSnapshot polled(std::uint64_t block) {
    funding::NetworkSnapshot s;
    s.reachable = true;
    s.block = block;
    s.chain_id = 7;
    return s;
}
}  // namespace

TEST_CASE(
    "view checks: a poll older than a block seen is stale, until every answer has been behind for 300 s",
    "[chain][prepare]") {
    struct Row {
        const char* what;
        double after;  // seconds since the row before
        std::uint64_t block;
        bool stale;
        std::uint64_t newest;  // the newest block seen after it
    };
    const std::vector<Row> rows = {
        {"the first poll", 0, 100, false, 100},
        {"a backend behind", 10, 99, true, 100},
        {"the chain moves on", 100, 101, false, 101},
        {"behind again", 10, 95, true, 101},
        {"behind for 200 s: still stale", 200, 96, true, 101},
        {"behind for 301 s, none reaching it: the chain went back", 101, 97, false, 97},
        {"older than the new newest", 0, 96, true, 97},
        {"a poll of unknown age is stale, proves nothing", 400, 0, true, 97},
    };
    test::ManualClock clock;
    chain::detail::ViewChecks checks("alpha", clock);
    chain::detail::Seen seen;
    for (const auto& r : rows) {
        INFO(r.what);
        clock.advance(std::chrono::duration<double>(r.after));
        CHECK(checks.stale(polled(r.block), seen) == r.stale);
        CHECK(seen.newest == r.newest);
    }
}

TEST_CASE("view checks: an answer at the newest block restarts the wait for a chain that went back",
          "[chain][prepare]") {
    test::ManualClock clock;
    chain::detail::ViewChecks checks("alpha", clock);
    chain::detail::Seen seen;
    CHECK_FALSE(checks.stale(polled(50), seen));
    clock.advance(std::chrono::seconds(10));
    CHECK(checks.stale(polled(40), seen));  // behind since here
    clock.advance(std::chrono::seconds(200));
    CHECK_FALSE(checks.stale(polled(50), seen));  // a fresh answer (another backend)
    clock.advance(std::chrono::seconds(200));
    CHECK(checks.stale(polled(41), seen));  // 400 s after the first behind one, but counted from here
    CHECK(seen.newest == 50);
    funding::NetworkSnapshot unreachable;
    CHECK_FALSE(checks.stale(unreachable, seen));
}

TEST_CASE("view checks: the chain id is pinned by the first poll; a failed poll is its Problem",
          "[chain][prepare]") {
    config::Network net;
    net.name = "alpha";
    CHECK_FALSE(chain::detail::ViewChecks::check_chain(net, polled(1)));
    CHECK(net.chain_id == std::optional<std::uint64_t>(7));
    funding::NetworkSnapshot failed;
    failed.error = "connection refused";
    const auto poll = chain::detail::ViewChecks::check_chain(net, failed);
    REQUIRE(poll);
    CHECK(*poll == Problem{Fault::kPoll, "connection refused"});
    failed.chain_id_mismatch = true;
    const auto other = chain::detail::ViewChecks::check_chain(net, failed);
    REQUIRE(other);
    CHECK(other->fault == Fault::kChainId);
}

TEST_CASE("round problems: one list; the first that blocks is the Round's fault, the noted ones do not block",
          "[chain][prepare]") {
    using Kind = RoundProblem::Kind;
    struct Row {
        const char* what;
        std::vector<RoundProblem> met;  // in order: kBlocks through fail(), the others through note()
        Fault fault;
        bool can_commit;
        std::size_t listed;
    };
    const RoundProblem ledger{Kind::kBlocks, {Fault::kLedger, "cannot read the ledger"}};
    const RoundProblem poll{Kind::kBlocks, {Fault::kPoll, "unreachable"}};
    const RoundProblem burn{Kind::kBurn, {Fault::kLedger, "cannot keep the burn history (x): amounts apply"}};
    const RoundProblem audit{Kind::kAudit, {Fault::kLedger, "bank audit: cannot use the ledger (x)"}};
    const RoundProblem gas{Kind::kGas, {Fault::kPoll, "gas estimation failed: x"}};
    const std::vector<Row> rows = {
        {"nothing", {}, Fault::kNone, true, 0},
        {"noted only", {burn, audit, gas}, Fault::kNone, true, 3},
        {"one that blocks", {ledger}, Fault::kLedger, false, 1},
        {"the first that blocks wins, a later one is not kept", {ledger, poll}, Fault::kLedger, false, 1},
        {"noted, then one that blocks", {burn, audit, poll, ledger}, Fault::kPoll, false, 3},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        chain::RoundPlan p;
        p.plan.snapshot.reachable = true;
        for (const auto& m : r.met) {
            if (m.blocks())
                p.fail(m.problem);
            else
                p.note(m.kind, m.problem);
        }
        CHECK(p.fault() == r.fault);
        CHECK(p.can_commit() == r.can_commit);
        CHECK(p.problems.size() == r.listed);
        CHECK((p.blocking() != nullptr) == !r.can_commit);
        for (const auto& m : r.met) {
            if (m.blocks()) continue;
            const auto* noted = p.first(m.kind);
            REQUIRE(noted);
            CHECK(noted->message == m.problem.message);
        }
    }
    chain::RoundPlan unreachable;
    CHECK_FALSE(unreachable.can_commit());  // no poll: nothing to commit, whatever the list
    CHECK(unreachable.fault() == Fault::kNone);
}

TEST_CASE("round problems: a blocking problem given to note() is recorded as fail() records it", "[chain][prepare]") {
    chain::RoundPlan p;
    p.plan.snapshot.reachable = true;
    p.note(RoundProblem::Kind::kBlocks, {Fault::kLedger, "cannot read the ledger"});
    p.note(RoundProblem::Kind::kBlocks, {Fault::kPoll, "unreachable"});  // a second: not kept
    CHECK(p.fault() == Fault::kLedger);
    CHECK_FALSE(p.can_commit());
    CHECK(p.problems.size() == 1);
}
