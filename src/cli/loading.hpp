#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "keymaster/config/config.hpp"
#include "keymaster/funding/plan.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::cli {

//! Everything a command needs from the config, validated: the selected networks, their bank
//! signers and addresses, and the funding topology.
struct Loaded {
    config::Config cfg;
    std::vector<const config::Network*> selected;
    std::map<std::string, std::shared_ptr<signer::Signer>> signers;
    std::map<std::string, eth::Address> banks;
    funding::Topology topology;
};

//! Loads and validates the config and reads the bank keys of the selected networks (all when
//! `only` is empty). Every problem goes to `error`, one line each; then nullopt.
std::optional<Loaded> load_all(const GlobalOptions& g, const std::vector<std::string>& only,
                               const std::function<void(const std::string&)>& error);

//! The RPC policy for a network.
rpc::RpcOptions rpc_options(const config::Network& n);

}  // namespace keymaster::cli
