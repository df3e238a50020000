#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keymaster/config/config.hpp"

//! Who is funded where (Nomad v2 topology) and the pure top-up rule.
namespace keymaster::funding {

//! One funded account: an agent address on the network whose bank pays it.
struct Account {
    std::string network;  //!< where the balance lives and the bank pays
    std::string home;     //!< the agent's home network (== network for local agents)
    config::Role role;
    eth::Address address;
    Wei threshold = 0;
    Wei target = 0;
    //! The network's runway with the role's over it; shared by the accounts of one role on one
    //! network (null: no runway block applies).
    std::shared_ptr<const config::Runway> runway;
    //! runway.window, or 24 hours.
    [[nodiscard]] double window() const { return runway ? runway->window_seconds() : 86400.0; }
};

//! Accounts funded on one network, in a stable order: local agents, then remote agents by home.
struct NetworkAccounts {
    std::string network;
    std::vector<Account> accounts;
};

//! The funding topology of a whole config.
struct Topology {
    std::vector<NetworkAccounts> networks;  //!< config order
    std::vector<std::string> errors;        //!< "file: path: message"
    std::vector<std::string> notes;         //!< merged duplicates, skipped bank addresses

    const NetworkAccounts* find(std::string_view network) const;
};

//! Builds the topology. On network N: N's bank funds N's updater, watchers and kathy; and for
//! every network H listing N in `replicas`, H's relayer, processor and watchers. N's `ignore`
//! removes roles (`all` / `local` / `remote`). A bank address listed as an agent is never paid.
//! `banks` maps a network name to its bank address where known.
Topology build_topology(const config::Config& cfg, const std::map<std::string, eth::Address>& banks = {});

//! What to do about one account this round.
enum class Action {
    kNone,     //!< at or above threshold
    kTopUp,    //!< below threshold: send target - balance
    kUnknown,  //!< balance could not be read: no decision
};

struct Decision {
    Action action = Action::kUnknown;
    Wei amount = 0;
};

//! The rule: top up when balance < threshold, by target - balance. An unknown balance decides nothing.
Decision decide(const Account& account, const std::optional<Wei>& balance);

}  // namespace keymaster::funding
