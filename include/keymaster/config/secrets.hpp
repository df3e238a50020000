#pragma once

#include <string>
#include <variant>

#include "keymaster/config/config.hpp"
#include "keymaster/crypto/secp256k1.hpp"

namespace keymaster::config {

//! Reads a bank key: inline hex (unsafe, warned), an environment variable, or a file that only
//! its owner may read (a KMS bank has none: see aws::KmsSigner). On error, the message
//! names the place and never the secret.
std::variant<crypto::PrivateKey, std::string> resolve_bank_key(const BankRef& bank, const EnvLookup& env);

//! Reads a key for `keymaster address`: from an environment variable or a file.
std::variant<crypto::PrivateKey, std::string> read_key_env(const std::string& var, const EnvLookup& env);
std::variant<crypto::PrivateKey, std::string> read_key_file(const std::string& file);

}  // namespace keymaster::config
