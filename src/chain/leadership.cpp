#include "keymaster/chain/leadership.hpp"

#include <unistd.h>

#include <random>

namespace keymaster::chain {

Leadership::Leadership(ledger::Leases& ledger, std::string name, std::string holder, std::chrono::milliseconds duration,
                       const Clock& clock)
    : ledger_(ledger), name_(std::move(name)), holder_(std::move(holder)), duration_(duration), clock_(clock) {}

ledger::Lease Leadership::claim() {
    const auto now = clock_.steady();  // the claim begins
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        valid_until_ = {};  // not leading while the claim is in doubt
    }
    const double seconds = std::chrono::duration<double>(duration_).count();
    auto lease = ledger_.claim_lease(name_, holder_, seconds);  // (no lock held: leading() never waits for the database)
    if (lease.mine && lease.epoch != fenced_epoch_) {
        ledger_.fence(name_, holder_, lease.epoch);
        fenced_epoch_ = lease.epoch;
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    last_ = lease;
    if (lease.mine) valid_until_ = now + duration_ - duration_ / 3;
    return lease;
}

bool Leadership::leading() const {
    const auto now = clock_.steady();
    const std::lock_guard<std::mutex> lock(mutex_);
    return last_.mine && now < valid_until_;
}

ledger::Lease Leadership::last() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return last_;
}

void Leadership::release() {
    if (!last().mine) return;
    ledger_.release_lease(name_, holder_);
    const std::lock_guard<std::mutex> lock(mutex_);
    last_.mine = false;
    valid_until_ = {};
}

std::string holder_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::random_device rd;
    char tail[9];
    std::snprintf(tail, sizeof tail, "%08x", rd());
    return std::string(host[0] ? host : "unknown") + "/" + std::to_string(::getpid()) + "/" + tail;
}

bool lease_changed(const ledger::Lease& previous, const ledger::Lease& now) {
    return previous.mine != now.mine || previous.holder != now.holder || previous.epoch != now.epoch;
}

}  // namespace keymaster::chain
