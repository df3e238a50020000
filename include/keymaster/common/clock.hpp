#pragma once

#include <chrono>

namespace keymaster {

//! Where time is read: the wall clock (Unix seconds: what the ledger stamps, what a window counts
//! from) and the steady clock (monotonic: deadlines and intervals). One is made in `main` and handed
//! to everything that reads time; tests hand a manual one (tests/support/manual_clock.hpp). Timers
//! that only wait (asio's steady_timer) wait on the system's steady clock: a Clock is for reading.
//! Both readings may be taken from any thread.
class Clock {
public:
    virtual ~Clock() = default;
    //! Wall-clock time as Unix seconds.
    [[nodiscard]] virtual double wall() const = 0;
    //! Monotonic time (only differences mean something).
    [[nodiscard]] virtual std::chrono::steady_clock::time_point steady() const = 0;
    //! steady() as seconds.
    [[nodiscard]] double steady_seconds() const {
        return std::chrono::duration<double>(steady().time_since_epoch()).count();
    }
};

//! The system's clocks: the only code that reads std::chrono's clocks (tests/code/one_clock.sh).
//! `main` hands it down; I/O code whose deadlines bound real waits on sockets and files (the RPC
//! transport, the database drivers, AWS signing) reads it too.
[[nodiscard]] const Clock& system_clock();

}  // namespace keymaster
