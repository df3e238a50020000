#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <thread>

#include "keymaster/chain/ledger_thread.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "manual_clock.hpp"
#include "task_runner.hpp"

using namespace keymaster;
namespace net = boost::asio;

namespace {

struct Rig {
    std::string dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("km-lt-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
        std::filesystem::create_directories(d);
        return d.string();
    }();
    test::ManualClock clock;  // moved by hand
    ledger::Ledger ledger{dir, true, clock};
    net::io_context io;  // (before the thread: its pool may still be leaving a call when a test ends; joined first)
    chain::LedgerThread thread{ledger, clock, 2.0};
    ~Rig() { std::filesystem::remove_all(dir); }

    // One call on the ledger's thread; what it throws, as text ("" none).
    std::string call(std::function<void(ledger::Ledger&)> fn) {
        try {
            test::run(io, [&]() -> net::awaitable<int> {
                co_await thread.run(fn);
                co_return 0;
            }());
        } catch (const std::exception& e) {
            return e.what();
        }
        return "";
    }
};

}  // namespace

TEST_CASE("ledger thread: calls run off the caller's thread, in order, with their results and errors", "[chain][ledger_thread]") {
    Rig rig;
    std::thread::id ran_on;
    std::int64_t count = -1;
    CHECK(rig.call([&](ledger::Ledger& l) {
        ran_on = std::this_thread::get_id();
        count = static_cast<std::int64_t>(l.history({}).size());
    }) == "");
    CHECK(ran_on != std::this_thread::get_id());
    CHECK(count == 0);
    CHECK(rig.call([](ledger::Ledger&) { throw std::runtime_error("boom"); }) == "boom");
    CHECK_FALSE(rig.thread.away());  // not the database's failure
}

TEST_CASE("ledger thread: away while a call hangs past the stall time, or after a ledger error until one succeeds", "[chain][ledger_thread]") {
    Rig rig;
    CHECK_FALSE(rig.thread.away());
    bool away_inside = true, away_early = true;
    double away_for = 0;
    CHECK(rig.call([&](ledger::Ledger&) {
        rig.clock.advance(std::chrono::milliseconds(1500));  // within the stall time: not away yet
        away_early = rig.thread.away();
        rig.clock.advance(std::chrono::seconds(1));  // 2.5 s into the call: away
        away_inside = rig.thread.away();
        away_for = rig.thread.away_for();
    }) == "");
    CHECK_FALSE(away_early);
    CHECK(away_inside);
    CHECK(away_for == Approx(2.5));
    CHECK_FALSE(rig.thread.away());  // it answered

    // A database error: away (from when that call began) until a call succeeds.
    CHECK_FALSE(rig.call([](ledger::Ledger&) { throw ledger::LedgerError("no answer"); }).empty());
    CHECK(rig.thread.away());
    rig.clock.advance(std::chrono::seconds(4));
    CHECK(rig.thread.away_for() == Approx(4));
    CHECK(test::run(rig.io, rig.thread.ping()));
    CHECK_FALSE(rig.thread.away());

    // A fenced write is the database answering (another replica leads): not away.
    CHECK_FALSE(rig.call([](ledger::Ledger&) { throw ledger::FencedError("deposed"); }).empty());
    CHECK_FALSE(rig.thread.away());
}

TEST_CASE("ledger thread: the loop turns while a call hangs", "[chain][ledger_thread]") {
    Rig rig;
    std::atomic<bool> release{false};
    int ticks = 0;
    auto hung = [&]() -> net::awaitable<int> {
        co_await rig.thread.run([&](ledger::Ledger&) {
            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        co_return 0;
    };
    auto ticker = [&]() -> net::awaitable<int> {
        net::steady_timer t(co_await net::this_coro::executor);
        for (; ticks < 20; ++ticks) {
            t.expires_after(std::chrono::milliseconds(1));
            co_await t.async_wait(net::use_awaitable);
        }
        release = true;  // only once the loop has turned 20 times with the call still hanging
        co_return 0;
    };
    net::co_spawn(rig.io, hung(), net::detached);
    test::run(rig.io, ticker());
    CHECK(ticks == 20);
    test::run(rig.io, [&]() -> net::awaitable<int> { co_return 0; }());
}
