// What every concern of the ledger speaks in: an entry and its states, a history query, where a
// ledger is, a lease, and the errors of a ledger call.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

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

namespace detail {
//! The open database every concern works on: its connection, clock, fence and transaction
//! (src/ledger/store.hpp; not public). A Ledger owns it; each concern refers to it.
struct Store;
}  // namespace detail

}  // namespace keymaster::ledger
