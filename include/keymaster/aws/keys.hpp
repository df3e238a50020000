#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

//! Which KMS keys an environment needs, what they are called, and who may use them: the seed's
//! provision_kms_keys.py and IAM policies, as data. Pure functions, no AWS calls.
namespace keymaster::aws::keys {

//! Key names per environment ("watcher-signer", "updater-attestation", ...), and optionally the
//! networks of each environment.
struct KeySets {
    std::map<std::string, std::vector<std::string>> keys;
    std::map<std::string, std::vector<std::string>> networks;
};

//! The seed's defaults: production has watcher/updater signer and attestation keys, processor and
//! relayer signers; staging adds kathy-signer. Networks as in the seed.
KeySets default_key_sets();

//! Reads a key-sets file: {"agentKeys": {"<env>": ["watcher-signer", ...]}, "networks": {"<env>": [...]}}.
//! Throws std::runtime_error naming the file and JSON path.
KeySets parse_key_sets(const std::string& text, const std::string& file);

//! A key name ends in "-signer" (one per network: signs transactions) or not (one per
//! environment, e.g. "-attestation").
bool per_network(const std::string& key_name);

//! One key an environment needs.
struct WantedKey {
    std::string alias;    //!< "alias/<env>-<network>-<name>" or "alias/<env>-<name>"
    std::string network;  //!< empty for per-environment keys
    std::string name;     //!< "watcher-signer"
};

//! Every key of `env` for `networks`, in a stable order (per-environment keys first).
std::vector<WantedKey> wanted_keys(const std::vector<std::string>& key_names, const std::string& env,
                                   const std::vector<std::string>& networks);

//! Splits an existing alias of `env` into network and key name (known names first, longest
//! match); nullopt if the alias is not `env`'s.
std::optional<WantedKey> parse_alias(const std::string& alias, const std::string& env,
                                     const std::vector<std::string>& key_names);

//! The agent role of a key name ("watcher-signer" -> "watcher"); nullopt for non-signer keys.
std::optional<std::string> signer_role(const std::string& key_name);

//! The least-privilege IAM policy for `role`'s agent in `env`: kms:GetPublicKey and kms:Sign on
//! keys whose aliases match the role's keys (signer keys on `networks`, or on every network when
//! empty; the role's per-environment keys too). `account` is the AWS account id or "*".
nlohmann::json iam_policy(const std::string& env, const std::string& role, const std::vector<std::string>& key_names,
                          const std::vector<std::string>& networks, const std::string& account,
                          const std::string& region);

//! The `agents` blocks for the keymaster config: {"<network>": {"agents": {...}}} from
//! (network, key name, address) rows of signer keys.
struct KeyRow {
    std::string alias, network, name, arn, address, region;
};
nlohmann::json agents_config(const std::vector<KeyRow>& rows);

}  // namespace keymaster::aws::keys
