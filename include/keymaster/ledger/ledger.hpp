#pragma once

#include <memory>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/common/fault.hpp"

namespace keymaster::ledger {

//! The ledger could not be opened or written. Nothing may be sent while this is so.
class LedgerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

//! Another keymaster holds the data directory (SQLite) or the ledger's leader lease (Postgres).
class LockedError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

//! A write by a holder that no longer holds the leader lease it was fenced with: nothing of it was
//! written (a deposed leader journals nothing, so it broadcasts nothing new).
class FencedError : public LedgerError {
public:
    using LedgerError::LedgerError;
};

//! A leader lease as it stands: who holds it, in which epoch (it grows at every change of holder),
//! until when (the database's clock, unix seconds).
struct Lease {
    std::string holder;      //!< "" before anyone held it
    std::uint64_t epoch = 0;
    double expires = 0;
    bool mine = false;       //!< held by the one who asked
};

//! What claiming a lease does (pure): renew our own unexpired lease (same epoch), take a free or
//! expired one (epoch + 1), or leave another's unexpired one alone. `now` is the database's clock.
[[nodiscard]] Lease decide_lease(const Lease& current, const std::string& me, double now, double seconds);

//! States of a top-up. `intent` and `sent` are unresolved; the others are final.
enum class State { kIntent, kSent, kConfirmed, kReplaced, kDropped, kFailed };
//! The state's name in the ledger and in `history` ("intent", "sent", ...).
[[nodiscard]] std::string_view state_name(State s);
//! The state of a name state_name() gives; nullopt for any other text.
[[nodiscard]] std::optional<State> parse_state(std::string_view s);

//! One top-up as written before it is broadcast.
struct Entry {
    std::int64_t id = 0;
    double created = 0;  //!< unix seconds
    double updated = 0;
    std::string network;
    std::uint64_t chain_id = 0;
    std::string bank, recipient, home, role;  //!< addresses EIP-55
    Wei amount = 0;
    std::uint64_t nonce = 0;
    int tx_type = 2;
    Wei max_fee = 0, priority_fee = 0, gas_price = 0;
    std::uint64_t gas_limit = 0;
    std::string raw;      //!< 0x-hex signed transaction
    std::string tx_hash;  //!< 0x-hex
    State state = State::kIntent;
    std::uint64_t block = 0, gas_used = 0;
    Wei fee_paid = 0;  //!< everything the transaction cost the bank in fees: gas and the parts below
    Wei l1_fee = 0;        //!< of which the OP Stack L1 data fee
    Wei operator_fee = 0;  //!< of which the OP Stack operator fee
    std::string replaced_by, error;
    std::uint64_t sent_block = 0;  //!< the chain's latest block when it was signed
    std::uint64_t taken_block = 0;  //!< the block its nonce was first seen used by another transaction (0: not seen)
    std::string block_hash;   //!< the hash of `block` as the chain showed it when it was booked ("" before)
    bool is_final = true;     //!< a mined entry whose block is final (false: re-checked by every live Round)
    bool fee_estimated = false;  //!< fee_paid is the most it can be (mined seen without a receipt)
};

//! A query for `keymaster history`.
struct Filter {
    std::optional<std::string> network, address;
    std::optional<double> since;  //!< unix seconds
};

//! Where a ledger is: an SQLite file (the embedded choice for one instance) or a Postgres
//! database (several replicas on one shared journal).
struct Location {
    enum class Kind { kSqlite, kPostgres };
    Kind kind = Kind::kSqlite;
    std::string target;  //!< the SQLite file's path, or the libpq URI (which may hold a password: never log it)
    //! For logs and messages: the path, or the URI without its password.
    [[nodiscard]] std::string shown() const;
};

//! The ledger of `--ledger` (or KEYMASTER_LEDGER): "sqlite:PATH", "postgresql://..." or
//! "postgres://..." (a libpq URI); empty: `<data_dir>/ledger.sqlite`. Anything else is a Problem
//! (kConfig) that says what is expected.
[[nodiscard]] Expected<Location> parse_location(const std::string& url, const std::string& data_dir);

//! The journal of every top-up, in SQLite (WAL, synchronous=FULL) or Postgres: an entry is durable
//! before the transaction is broadcast; each change of state is recorded with its time. With
//! SQLite, one keymaster per data directory (an exclusive lock on <dir>/keymaster.lock names the
//! holder's pid). The same schema and the same semantics on both: the engine does not know which.
class Ledger {
public:
    //! Opens (creating) <dir>/ledger.sqlite. `lock`: take the single-instance lock (daemon and
    //! top-up); read-only commands (history) do not. `clock` (unix seconds) stamps every write:
    //! the one the Workers use (empty: the system clock); on Postgres corrected to the database's
    //! clock (now()), so that replicas on different machines stamp and count windows on one clock.
    Ledger(const std::string& dir, bool lock, std::function<double()> clock = {});
    //! Opens (creating, or bringing up to date) the ledger at `where`. `lock`: SQLite's
    //! single-instance lock (the flock in the file's directory; LockedError when another holds it).
    //! Postgres is shared by replicas: its writers take the leader lease instead (claim_lease, fence).
    Ledger(const Location& where, bool lock, std::function<double()> clock = {});
    ~Ledger();
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    //! Writes a new entry (state intent) and syncs it; returns its id. Throws LedgerError.
    [[nodiscard]] std::int64_t record_intent(Entry e);
    //! Writes new entries (state intent) in one transaction, a few statements for all of them,
    //! and sets each one's `id` and `created`. Throws LedgerError (then none is written).
    void record_intents(std::vector<Entry>& entries);
    //! Runs `fn`, whose ledger calls form one transaction: all of them are on disk when it returns
    //! (one sync instead of one per call), none if it throws.
    void atomically(const std::function<void()>& fn);
    //! Records a change of state. Throws LedgerError.
    void mark(std::int64_t id, State s, const std::string& error = {});
    //! Records a receipt: `confirmed` (success) or `failed` (reverted) in `block`, with what it
    //! paid. Throws LedgerError.
    //! `fee_paid` is the whole fee; `l1_fee` and `operator_fee` the parts of it an OP Stack chain
    //! charges beyond gas.
    //! `block_hash`: the block's hash as the chain showed it (kept to notice a reorg); `estimated`:
    //! the transaction was seen mined without its receipt and `fee_paid` is the most it can be.
    //! The entry is not final until finalized().
    void confirmed(std::int64_t id, bool success, std::uint64_t block, std::uint64_t gas_used, const Wei& fee_paid,
                   const Wei& l1_fee = 0, const Wei& operator_fee = 0, const std::string& block_hash = {},
                   bool estimated = false);
    //! Records that the entry's block is final: no longer re-checked.
    void finalized(std::int64_t id);
    //! Records that the block holding the entry is gone (a reorg): it is `sent` again (unresolved,
    //! its booking undone), with `why` in its events, and waits for `replaceAfter` from `block` (the
    //! newest seen) and from now, as if just sent.
    void reorged(std::int64_t id, const std::string& why, std::uint64_t block = 0);
    //! Records that another transaction of the same nonce (`by_hash`) took the entry's place.
    //! Throws LedgerError.
    void replaced(std::int64_t id, const std::string& by_hash);
    //! Records the block from which the entry's nonce has been seen taken with no receipt of ours
    //! (0: no longer seen so). Evidence for "dropped", kept across restarts.
    void taken(std::int64_t id, std::uint64_t since_block);

    //! Unresolved entries of a network and bank, oldest nonce first: intent and sent, and replaced
    //! ones whose nonce is not yet settled (the replaced transaction may still be the one mined).
    std::vector<Entry> pending(const std::string& network, const std::string& bank) const;
    //! The same, found by chain id and bank (whatever network name they were journaled under): what
    //! must be reconciled before that bank sends again on that chain.
    std::vector<Entry> pending(std::uint64_t chain_id, const std::string& bank) const;
    //! Every bank (EIP-55) with unresolved entries, or mined ones not final, on the chain.
    [[nodiscard]] std::vector<std::string> unresolved_banks(std::uint64_t chain_id) const;
    //! Mined entries (confirmed, or reverted in a block) of the bank on the chain whose block is not
    //! final yet, oldest nonce first.
    std::vector<Entry> unfinal(std::uint64_t chain_id, const std::string& bank) const;
    //! What the bank of `network` committed since `since` (unix seconds): every entry not dropped
    //! or failed, each nonce counted once.
    Wei spent_since(const std::string& network, const std::string& bank, double since) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    Wei spent_since(std::uint64_t chain_id, const std::string& bank, double since) const;
    //! What each recipient of the bank of `network` was sent since `since` (unix seconds), by
    //! EIP-55 address: amount and number of transfers, counted as spent_since() counts (every
    //! entry not dropped or failed, each nonce once). Nonce fillers are not counted.
    struct Received {
        Wei amount = 0;
        std::uint64_t count = 0;
    };
    [[nodiscard]] std::map<std::string, Received> received_since(const std::string& network, const std::string& bank, double since) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    [[nodiscard]] std::map<std::string, Received> received_since(std::uint64_t chain_id, const std::string& bank, double since) const;
    //! A confirmed top-up (nonce fillers left out) and when it was recorded confirmed.
    struct Arrival {
        std::string recipient;  //!< EIP-55
        Wei amount = 0;
        double time = 0;
    };
    //! Top-ups of the bank of `network` first recorded confirmed after `since` (unix seconds): a
    //! booking changed later (a receipt after an estimate, a reorg) is not a second arrival.
    std::vector<Arrival> confirmed_since(const std::string& network, const std::string& bank, double since) const;
    //! What the bank of `network` paid in entries first settled since `since`: amounts and fees of
    //! confirmed top-ups, fees of reverted ones.
    Wei paid_since(const std::string& network, const std::string& bank, double since) const;

    //! Measured burn (see funding/burn.hpp): per account, where the next measurement starts...
    struct BurnState {
        std::string address;  //!< EIP-55
        double since = 0, time = 0;
        Wei balance = 0;
    };
    //! ...and what it spent, bucket by bucket.
    struct BurnRow {
        std::string address;
        double start = 0, stop = 0;
        Wei spent = 0;
    };
    //! Every account's BurnState of `network`.
    [[nodiscard]] std::vector<BurnState> burn_states(const std::string& network) const;
    //! Buckets of `network` that end at or after `since`, by address then start.
    std::vector<BurnRow> burn_rows(const std::string& network, double since) const;
    //! Writes states and buckets (replacing those with the same key) in one transaction.
    void save_burn(const std::string& network, const std::vector<BurnState>& states, const std::vector<BurnRow>& rows);
    //! Deletes the buckets of `network` that ended before `before`.
    void prune_burn(const std::string& network, double before);

    //! The bank audit: where the next one starts, and its last point with nothing unaccounted since
    //! (see funding::AuditState; none: never audited)...
    struct Audit {
        std::uint64_t next_nonce = 0;
        std::optional<std::uint64_t> point_nonce, point_block;
        Wei point_balance = 0;
    };
    //! The bank's audit place (none: never audited).
    [[nodiscard]] std::optional<Audit> audit(const std::string& network, const std::string& bank) const;
    //! Writes the bank's audit place (replacing the last).
    void save_audit(const std::string& network, const std::string& bank, const Audit& a);
    //! What mined transactions of ours with a nonce in [from, to) took from the bank: amounts of
    //! confirmed ones and the fees of every one (reverted included).
    Wei outflow(const std::string& network, const std::string& bank, std::uint64_t from, std::uint64_t to) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    Wei outflow(std::uint64_t chain_id, const std::string& bank, std::uint64_t from, std::uint64_t to) const;
    //! ...and what the ledger holds for each nonce in [from, to): mined (a receipt of ours,
    //! confirmed or reverted) and open (intent, sent, or replaced). Nonces with no entry are absent.
    struct NonceUse {
        bool mined = false, open = false;
    };
    std::map<std::uint64_t, NonceUse> nonce_uses(const std::string& network, const std::string& bank, std::uint64_t from,
                                                 std::uint64_t to) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    std::map<std::uint64_t, NonceUse> nonce_uses(std::uint64_t chain_id, const std::string& bank, std::uint64_t from,
                                                 std::uint64_t to) const;

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

    //! Entries matching `f`, newest first.
    std::vector<Entry> history(const Filter& f) const;

    //! What the ledger is, for the log: the SQLite file's path or the Postgres URI without its password.
    [[nodiscard]] const std::string& path() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keymaster::ledger
