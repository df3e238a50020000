#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/common/fault.hpp"
#include "keymaster/common/secret.hpp"
#include "keymaster/eth/address.hpp"

namespace keymaster::config {

//! Nomad agent roles.
enum class Role { kUpdater, kWatcher, kRelayer, kProcessor, kKathy };
inline constexpr Role kAllRoles[] = {Role::kUpdater, Role::kWatcher, Role::kRelayer, Role::kProcessor, Role::kKathy};
//! "updater", "watcher", "relayer", "processor", "kathy".
std::string_view role_name(Role role);
std::optional<Role> parse_role(std::string_view name);

//! An agent address with an optional per-agent threshold (`"0x.."` or `{"address", "threshold"}`).
struct AgentRef {
    eth::Address address;
    std::optional<Wei> threshold;
    std::string path;  //!< where it came from, for error messages
};

//! A network's `agents` block.
struct Agents {
    std::optional<AgentRef> updater, relayer, processor, kathy;
    std::vector<AgentRef> watchers;
};

//! A network's `ignore` block: roles left out on that network.
struct Ignore {
    std::set<Role> all, local, remote;
};

//! `runway`: a threshold and a target in time, sized from the measured burn rate (durations in
//! seconds; each unset field falls back to the network's block, for a role's).
struct Runway {
    std::optional<double> threshold;  //!< top up when the balance lasts less than this
    std::optional<double> target;     //!< top up to what lasts this long
    std::optional<double> window;     //!< the burn rate is measured over this (default 24h)
    std::optional<Wei> max;           //!< a target from burn never exceeds it
    std::string max_path;             //!< where max came from, for error messages
    [[nodiscard]] bool sized() const { return threshold || target; }
    //! `window`, or 24 hours.
    [[nodiscard]] double window_seconds() const { return window.value_or(86400.0); }
};
//! `over`'s fields where set, else `base`'s.
Runway merged(const Runway& over, const Runway& base);

//! Per-role overrides (`roles.<role>`).
struct RoleSettings {
    std::optional<Wei> threshold, target;
    Runway runway;
};

//! Where the bank key comes from. The key itself is only read by resolve_bank_key().
struct BankRef {
    enum class Kind { kInline, kEnv, kFile, kKms };
    Kind kind = Kind::kEnv;
    Secret inline_key;
    std::string env_var;
    std::string file;
    std::string kms_key_id, kms_region;
    std::string kms_access_key_id;  //!< optional: else the AWS credential chain
    Secret kms_secret_access_key;
    std::string kms_session_token;
    std::string kms_endpoint;  //!< optional: else AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the region's
    std::string path;
};

//! What one account may receive in any rolling 24 hours (`limits.perAccount`), from the ledger.
struct PerAccountLimits {
    std::optional<Wei> daily;               //!< amount
    std::optional<std::uint64_t> top_ups;   //!< number of transfers
    [[nodiscard]] bool any() const { return daily || top_ups; }
};

//! Spend limits of a network's bank (`limits`).
struct Limits {
    std::optional<Wei> max_top_up;  //!< one transfer never exceeds it
    std::optional<Wei> daily;       //!< sent in any rolling 24 hours (from the ledger)
    std::optional<Wei> reserve;     //!< the bank keeps at least this much
    PerAccountLimits per_account;   //!< what one account may receive in 24 hours
};

//! When an unmined top-up is re-signed with higher fees (`replaceAfter`): whichever comes first.
struct ReplaceAfter {
    std::uint64_t blocks = 3;
    std::uint64_t seconds = 60;
};

//! Which transaction type to send.
enum class TxTypeSetting { kAuto, kLegacy, kEip1559 };

//! The kind of chain a network is, for its fees (`l2`): detected from the chain unless set.
enum class L2Setting { kDetect, kNone, kOp, kArbitrum };

//! One network of the config, validated.
struct Network {
    std::string name;
    std::vector<Secret> endpoints;  //!< in failover order; URLs may carry API keys
    bool endpoint_from_env = false;
    std::vector<std::string> replicas;
    BankRef bank;
    Wei threshold = 0;
    std::optional<Wei> watcher_threshold;
    std::optional<Wei> target;
    std::map<Role, RoleSettings> roles;
    Agents agents;
    Ignore ignore;
    std::optional<std::uint64_t> chain_id;
    std::optional<std::uint64_t> gas_limit;
    TxTypeSetting tx_type = TxTypeSetting::kAuto;
    std::optional<Wei> max_fee_per_gas;
    unsigned decimals = 18;
    std::string symbol = "ETH";
    std::optional<Wei> bank_threshold;
    std::size_t batch_size = 100;
    Limits limits;
    ReplaceAfter replace_after;
    //! Replacements never raise a nonce's fees above this many times its first transaction's
    //! (`replaceFeeCeiling`; maxFeePerGas, when set, caps them too).
    std::uint64_t replace_fee_ceiling = 10;
    Runway runway;  //!< `runway`; roles.<role>.runway overrides it field by field
    L2Setting l2 = L2Setting::kDetect;  //!< `l2`: "op", "arbitrum", "none"; absent: detected
    //! OP Stack: the L1 data fee's upper bound is budgeted times this (`l1FeeMargin`, default 1.5),
    //! in thousandths.
    std::uint64_t l1_fee_margin_permille = 1500;
    //! Arbitrum: a transfer's gas limit is eth_estimateGas times this (`gasMargin`, default 1.2),
    //! in thousandths.
    std::uint64_t gas_margin_permille = 1200;
    //! `finality`: a mined block is final this many blocks under the newest (none: the chain's
    //! `finalized` block where the node answers that tag, else funding::default_finality).
    std::optional<std::uint64_t> finality;
};

//! A loaded configuration.
struct Config {
    std::string file;  //!< as given, for messages
    std::vector<Network> networks;
    std::vector<std::string> warnings;

    const Network* find(std::string_view name) const;
};

//! Reads environment variables; tests substitute their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

//! Parses and validates a config from text. No network call is made; the bank key is not read
//! (see resolve_bank_key). A config that cannot be used is a kConfig Problem naming every problem
//! found, one line each ("<file>: <json path>: <message>"), the lines joined by '\n' (`lines`).
Expected<Config> parse(const std::string& text, const std::string& file, const EnvLookup& env);

//! Reads `file` and parses it.
Expected<Config> load(const std::string& file, const EnvLookup& env);

//! The lines of a Problem's message, as parse and load found them (one problem each).
std::vector<std::string> lines(const Problem& p);

//! "NAME_RPC" for a network name: upper-cased, '-' becomes '_'.
std::string rpc_env_var(std::string_view network);

}  // namespace keymaster::config
