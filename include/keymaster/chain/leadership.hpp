#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "keymaster/common/clock.hpp"
#include "keymaster/ledger/leases.hpp"

namespace keymaster::chain {

//! The leader lease of a ledger shared by replicas (Postgres): whether this process may send. The
//! daemon claims it every `--lease-renew`; `top-up` claims it once for its whole run. claim() and
//! release() are called from one thread at a time (the ledger's); leading() and last() from any.
class Leadership {
public:
    //! `duration`: how long a claim holds the lease (the database's clock). `clock` (its steady
    //! time) measures how long this process may lead after a claim; it outlives the Leadership.
    Leadership(ledger::Leases& ledger, std::string name, std::string holder, std::chrono::milliseconds duration,
               const Clock& clock);

    //! Claims or renews the lease (one ledger transaction). A new epoch of ours fences the ledger
    //! with it, so that every later write checks we still hold it. Returns the lease as it stands.
    //! Throws LedgerError (then this process does not lead until a claim succeeds).
    ledger::Lease claim();
    //! Whether this process may start sending now: it holds the lease, and by its own clock the
    //! lease has more than a third of `duration` left since the last claim began (a leader that
    //! cannot renew stops by itself before its lease can expire; the fence catches the rest).
    [[nodiscard]] bool leading() const;
    //! Ends our lease now, if we hold it (a standby takes over at its next claim).
    void release();

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::string& holder() const { return holder_; }
    //! The lease as the last successful claim saw it.
    [[nodiscard]] ledger::Lease last() const;

private:
    ledger::Leases& ledger_;
    std::string name_, holder_;
    std::chrono::milliseconds duration_;
    const Clock& clock_;
    mutable std::mutex mutex_;  // claim() and release() run on the ledger's thread; leading() and last() are read on the loop
    ledger::Lease last_;
    std::chrono::steady_clock::time_point valid_until_{};
    std::uint64_t fenced_epoch_ = 0;
};

//! This process's holder id: host name, pid and a random part (unique across restarts).
[[nodiscard]] std::string holder_id();

//! Whether `previous` and `now` (two claims' results) differ in who leads or in which epoch: a
//! change worth a log line.
[[nodiscard]] bool lease_changed(const ledger::Lease& previous, const ledger::Lease& now);

}  // namespace keymaster::chain
