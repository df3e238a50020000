#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "keymaster/common/clock.hpp"
#include "keymaster/common/duration.hpp"
#include "keymaster/config/config.hpp"
#include "keymaster/funding/topology.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::cli {

//! Options every command takes.
struct GlobalOptions {
    std::string config = "./keymaster.json";
    std::string data_dir = "./.keymaster";
    std::string ledger;  //!< --ledger / KEYMASTER_LEDGER: sqlite:PATH or a Postgres URI ("": <data_dir>/ledger.sqlite)
    std::string lease;   //!< --lease: the leader lease's name on a shared ledger ("": the config file's name)
    std::string log_level = "info";
    std::string log_format = "text";
    const Clock* clock = nullptr;  //!< main's: every time the command reads (set by run)
};

struct TopUpOptions {
    std::vector<std::string> networks;
    bool dry_run = false;
    bool yes = false;
    std::chrono::seconds confirm_timeout{300};
};

struct RunOptions {
    std::chrono::milliseconds interval{60'000};
    std::string metrics_addr = "0.0.0.0:9090";
    std::vector<std::string> networks;
    bool dry_run = false;
    std::chrono::seconds shutdown_timeout{30};
    std::chrono::milliseconds lease_renew{2000};      //!< --lease-renew: claim the lease this often
    std::chrono::milliseconds lease_duration{15000};  //!< --lease-duration: each claim holds it this long
};

struct HistoryOptions {
    std::string network, address, since;
    bool json = false;
};
//! `keymaster keys ...`.
struct KeysOptions {
    std::string environment, region;
    std::vector<std::string> networks;
    std::string key_sets;  //!< file with the key names per environment (default: the seed's)
    std::string endpoint;  //!< KMS endpoint override
    bool yes = false, emit_config = false, json = false;
    std::string role, account_id;
};
int cmd_keys_list(const GlobalOptions& g, const KeysOptions& o);
int cmd_keys_provision(const GlobalOptions& g, const KeysOptions& o);
int cmd_keys_policy(const GlobalOptions& g, const KeysOptions& o);

int cmd_history(const GlobalOptions& g, const HistoryOptions& o);
int cmd_run(const GlobalOptions& g, const RunOptions& o);
int cmd_validate(const GlobalOptions& g);
int cmd_address(const std::string& key_env, const std::string& key_file);
int cmd_status(const GlobalOptions& g, const std::vector<std::string>& networks, bool json);
int cmd_topup(const GlobalOptions& g, const TopUpOptions& o);

}  // namespace keymaster::cli
