#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "keymaster/config/config.hpp"
#include "keymaster/funding/topology.hpp"
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

//! Loads and validates the config and opens the bank keys of the selected networks (all when
//! `only` is empty): key files and env vars, and KMS keys (GetPublicKey) on the caller's event
//! loop. Every problem goes to `error`, one line each; then nullopt.
[[nodiscard]] boost::asio::awaitable<std::optional<Loaded>> load_all(GlobalOptions g, std::vector<std::string> only,
                                                                    std::function<void(const std::string&)> error);

}  // namespace keymaster::cli
