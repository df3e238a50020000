#pragma once

#include <chrono>
#include <mutex>

#include "keymaster/common/clock.hpp"

namespace keymaster::test {

//! A Clock that tests move: time passes only by advance(), or by a fixed step at each reading
//! (time that passes while the code under test works, without sleeping). Thread-safe.
class ManualClock final : public Clock {
public:
    explicit ManualClock(double wall = 1'700'000'000.0) : wall_(wall) {}

    double wall() const override {
        const std::lock_guard<std::mutex> lock(mutex_);
        wall_ += wall_step_;
        return wall_;
    }
    std::chrono::steady_clock::time_point steady() const override {
        const std::lock_guard<std::mutex> lock(mutex_);
        steady_ += steady_step_;
        return steady_;
    }

    //! Both clocks move by `d`.
    void advance(std::chrono::duration<double> d) {
        const std::lock_guard<std::mutex> lock(mutex_);
        wall_ += d.count();
        steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    }
    //! Only the steady clock moves, by `d` (time that passes without touching what is stamped).
    void advance_steady(std::chrono::steady_clock::duration d) {
        const std::lock_guard<std::mutex> lock(mutex_);
        steady_ += d;
    }
    //! Each reading of wall() first moves it by `wall` seconds; each reading of steady(), by `steady`.
    void step(double wall, std::chrono::steady_clock::duration steady = {}) {
        const std::lock_guard<std::mutex> lock(mutex_);
        wall_step_ = wall;
        steady_step_ = steady;
    }

private:
    mutable std::mutex mutex_;
    mutable double wall_;
    mutable std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
    double wall_step_ = 0;
    std::chrono::steady_clock::duration steady_step_{};
};

}  // namespace keymaster::test
