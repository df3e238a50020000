#pragma once

#include <string>

#include "keymaster/common/fault.hpp"
#include "keymaster/config/config.hpp"
#include "keymaster/crypto/secp256k1.hpp"

namespace keymaster::config {

//! Reads a bank key: inline hex (unsafe, warned), an environment variable, or a file that only
//! its owner may read (a KMS bank has none: see aws::KmsSigner). On error, a Problem (kConfig)
//! whose message names the place and never the secret.
[[nodiscard]] Expected<crypto::PrivateKey> resolve_bank_key(const BankRef& bank, const EnvLookup& env);

//! Reads a key for `keymaster address`: from an environment variable or a file.
[[nodiscard]] Expected<crypto::PrivateKey> read_key_env(const std::string& var, const EnvLookup& env);
[[nodiscard]] Expected<crypto::PrivateKey> read_key_file(const std::string& file);

}  // namespace keymaster::config
