#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <functional>
#include <memory>

namespace keymaster::ledger {
class Ledger;
}

namespace keymaster::chain {

//! Where the ledger's calls run: a thread of their own, awaited by the coroutines of the event
//! loop, so that a stalled database (SQLite on a disk that hangs, Postgres frozen or cut off)
//! never stops `/healthz`, `/metrics` or a poll. Calls run one at a time, in the order awaited;
//! the awaiting coroutine resumes on its own executor with the call's result or exception.
//! What a call touches besides the ledger is the awaiting coroutine's (it is suspended meanwhile).
class LedgerThread {
public:
    //! `steady` (seconds, monotonic) times the calls; `stall`: a call running longer than that
    //! many seconds makes the ledger away().
    LedgerThread(ledger::Ledger& ledger, std::function<double()> steady, double stall = 2.0);
    //! Waits for the call in progress (the database's own timeouts bound it), then joins.
    ~LedgerThread();
    LedgerThread(const LedgerThread&) = delete;
    LedgerThread& operator=(const LedgerThread&) = delete;

    [[nodiscard]] ledger::Ledger& ledger() { return ledger_; }
    //! Runs `fn` on the ledger's thread; rethrows what it throws.
    [[nodiscard]] boost::asio::awaitable<void> run(std::function<void(ledger::Ledger&)> fn);
    //! The ledger does not answer: a call has been running longer than `stall` seconds, or the last
    //! call failed and no call (or ping()) has succeeded since. Read from any thread.
    [[nodiscard]] bool away() const;
    //! Seconds since the ledger last answered a call (0 while it answers).
    [[nodiscard]] double away_for() const;
    //! One cheap call (Ledger::ping) when the ledger is away and nothing runs: whether it answered.
    [[nodiscard]] boost::asio::awaitable<bool> ping();

private:
    struct Impl;
    ledger::Ledger& ledger_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keymaster::chain
