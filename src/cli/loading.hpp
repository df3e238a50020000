#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "keymaster/config/config.hpp"
#include "keymaster/funding/topology.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::cli {

//! Everything a command needs from the config, validated: the selected networks, their bank
//! signers and addresses, and the funded accounts of each network (shared with its Worker, so a
//! reload never frees what a running Round still reads).
struct Loaded {
    config::Config cfg;
    std::vector<const config::Network*> selected;
    std::map<std::string, std::shared_ptr<signer::Signer>> signers;
    std::map<std::string, eth::Address> banks;
    std::map<std::string, std::shared_ptr<const std::vector<funding::Account>>> accounts;  //!< by network
};

//! The addresses (lower case) of every bank the loaded networks fund from (Worker::set_configured_banks).
[[nodiscard]] std::set<std::string> bank_addresses(const Loaded& l);

//! Loads and validates the config and opens the bank keys of the selected networks (all when
//! `only` is empty): key files and env vars, and KMS keys (GetPublicKey) on the caller's event
//! loop. Every problem goes to `error`, one line each; then nullopt.
[[nodiscard]] boost::asio::awaitable<std::optional<Loaded>> load_all(GlobalOptions g, std::vector<std::string> only,
                                                                    std::function<void(const std::string&)> error);

//! How a command uses the ledger.
enum class LedgerUse {
    kWrite,     //!< top-up and run: created if missing; SQLite's single-instance lock taken
    kRead,      //!< history, dry runs: created if missing, no lock (beside a running daemon)
    kIfExists,  //!< status: no lock, and an SQLite ledger that does not exist is not created (nullptr)
};
//! The ledger of `--ledger` (KEYMASTER_LEDGER; default `<data-dir>/ledger.sqlite`), opened for
//! `use`, stamped by `g.clock`. A bad URL is a kConfig Problem; a ledger that
//! cannot be opened or is locked by another keymaster, a kLedger one (messages name no password).
[[nodiscard]] Expected<std::unique_ptr<ledger::Ledger>> open_ledger(const GlobalOptions& g, LedgerUse use);

//! The leader lease's name when the ledger is shared (Postgres): --lease, else the config file's
//! name without its extension ("keymaster" for keymaster.json). nullopt for SQLite (one instance:
//! its lock is the data directory's) and for a bad --ledger (open_ledger says why).
[[nodiscard]] std::optional<std::string> lease_name(const GlobalOptions& g);

}  // namespace keymaster::cli
