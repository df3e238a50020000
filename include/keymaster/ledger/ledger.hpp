// The ledger: opening it (SQLite or Postgres, the schema created or brought up to date), its
// clock, and the class that offers every concern. Each concern has its own header, readable alone:
// journal.hpp (top-ups written before broadcast, and a Round's reads of them), leases.hpp (who may
// write), audit.hpp (the bank audit), burn_history.hpp (measured burn), reader.hpp (`history`);
// types.hpp holds what they share.
#pragma once

#include <memory>
#include <string>

#include "keymaster/common/clock.hpp"
#include "keymaster/ledger/audit.hpp"
#include "keymaster/ledger/burn_history.hpp"
#include "keymaster/ledger/journal.hpp"
#include "keymaster/ledger/leases.hpp"
#include "keymaster/ledger/reader.hpp"
#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger {

//! The journal of every top-up, in SQLite (WAL, synchronous=FULL) or Postgres: an entry is durable
//! before the transaction is broadcast; each change of state is recorded with its time. With
//! SQLite, one keymaster per data directory (an exclusive lock on <dir>/keymaster.lock names the
//! holder's pid). The same schema and the same semantics on both: the engine does not know which.
//! It offers every concern on one open database: code that needs one takes that concern's
//! reference (a BurnHistory&, a Reader&).
class Ledger : public Journal, public Leases, public BankAudit, public BurnHistory, public Reader {
public:
    //! Opens (creating) <dir>/ledger.sqlite. `lock`: take the single-instance lock (daemon and
    //! top-up); read-only commands (history) do not. `clock` (its wall time) stamps every write:
    //! the one the Workers use; on Postgres corrected to the database's clock (now()), so that
    //! replicas on different machines stamp and count windows on one clock. It outlives the Ledger.
    Ledger(const std::string& dir, bool lock, const Clock& clock);
    //! Opens (creating, or bringing up to date) the ledger at `where`. `lock`: SQLite's
    //! single-instance lock (the flock in the file's directory; LockedError when another holds it).
    //! Postgres is shared by replicas: its writers take the leader lease instead (claim_lease, fence).
    Ledger(const Location& where, bool lock, const Clock& clock);
    ~Ledger();
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    //! Now on the ledger's clock (unix seconds): on Postgres the database's (the clock given at
    //! open, corrected by the database's at open and at every lease claim), else the given clock.
    //! Every time the ledger stamps, and every window over it, uses this.
    [[nodiscard]] double now() const;
    //! What now() adds to the given clock (0 on SQLite): a caller with its own reading of that
    //! clock adds it to count windows on the ledger's clock.
    [[nodiscard]] double clock_offset() const;
    //! One statement that reads nothing (SELECT 1): throws LedgerError when the database does not
    //! answer (LedgerThread::ping, to see a ledger that was away come back).
    void ping();

    //! What the ledger is, for the log: the SQLite file's path or the Postgres URI without its password.
    [[nodiscard]] const std::string& path() const;

private:
    explicit Ledger(std::unique_ptr<detail::Store> store);
    std::unique_ptr<detail::Store> store_;
};

}  // namespace keymaster::ledger
