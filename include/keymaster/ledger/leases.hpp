// Leases: who may write. A leader lease (one writer among the replicas on a Postgres ledger) and a
// Worker's sender lease are rows taken, renewed and released on the database's clock; a writer
// fenced with a lease writes nothing once it no longer holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger {

//! What claiming a lease does (pure): renew our own unexpired lease (same epoch), take a free or
//! expired one (epoch + 1), or leave another's unexpired one alone. `now` is the database's clock.
[[nodiscard]] Lease decide_lease(const Lease& current, const std::string& me, double now, double seconds);

//! The leases of a ledger (a concern of the Ledger, which offers it; see ledger.hpp).
class Leases {
public:
    Leases(const Leases&) = delete;
    Leases& operator=(const Leases&) = delete;

    //! Takes or renews the leader lease `name` for `holder`, for `seconds` on the database's clock
    //! (decide_lease, in one transaction that locks the lease's row). Never fenced. Returns the lease
    //! as it stands after. Throws LedgerError.
    Lease claim_lease(const std::string& name, const std::string& holder, double seconds);
    //! Ends `holder`'s lease `name` now (a one-off command that finished), if it holds it: the
    //! next claim by anyone takes it in a new epoch. Throws LedgerError.
    void release_lease(const std::string& name, const std::string& holder);
    //! From now on every write transaction first checks, in the same transaction (the lease's row
    //! locked for share, so that no takeover passes it), that `holder` still holds `name` in
    //! `epoch` and it has not expired; otherwise it throws FencedError and writes nothing.
    void fence(const std::string& name, const std::string& holder, std::uint64_t epoch);
    //! Inside a write transaction (atomically): checks that `holder` still holds lease `name` in
    //! `epoch` (locking its row, so no takeover passes it) and extends it by `seconds`, even if it
    //! expired meanwhile (nobody took it: the holder and epoch are unchanged). Otherwise throws
    //! FencedError naming who holds it now; nothing of the transaction is written.
    void hold_lease(const std::string& name, const std::string& holder, std::uint64_t epoch, double seconds);
    //! Renews `holder`'s lease `name` for `seconds` if it still holds it unexpired (never taking
    //! it, never changing its epoch: a Round that journals under that epoch keeps its place).
    //! Never fenced. Whether it was renewed.
    bool renew_lease(const std::string& name, const std::string& holder, double seconds);
    //! renew_lease() for each (name, holder), in one transaction. Returns how many were renewed.
    std::size_t renew_leases(const std::vector<std::pair<std::string, std::string>>& leases, double seconds);

protected:
    //! On the store a Ledger opened (and keeps open while this lives).
    explicit Leases(detail::Store& store) : store_(&store) {}
    ~Leases() = default;

private:
    detail::Store* store_;
};

}  // namespace keymaster::ledger
