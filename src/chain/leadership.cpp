#include "keymaster/chain/leadership.hpp"

#include <unistd.h>

#include <random>

namespace keymaster::chain {

Leadership::Leadership(ledger::Ledger& ledger, std::string name, std::string holder, std::chrono::milliseconds duration)
    : ledger_(ledger), name_(std::move(name)), holder_(std::move(holder)), duration_(duration) {}

ledger::Lease Leadership::claim(std::chrono::steady_clock::time_point now) {
    valid_until_ = {};  // not leading while the claim is in doubt
    const double seconds = std::chrono::duration<double>(duration_).count();
    last_ = ledger_.claim_lease(name_, holder_, seconds);
    if (last_.mine) {
        if (last_.epoch != fenced_epoch_) {
            ledger_.fence(name_, holder_, last_.epoch);
            fenced_epoch_ = last_.epoch;
        }
        valid_until_ = now + duration_ - duration_ / 3;
    }
    return last_;
}

bool Leadership::leading(std::chrono::steady_clock::time_point now) const { return last_.mine && now < valid_until_; }

void Leadership::release() {
    if (!last_.mine) return;
    ledger_.release_lease(name_, holder_);
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
