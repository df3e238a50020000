#pragma once

#include <string_view>
#include <variant>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/common/bytes.hpp"
#include "keymaster/common/error.hpp"
#include "keymaster/eth/address.hpp"

//! Solidity ABI encoding of a call (pure): what the treasury's bridge deposits send.
namespace keymaster::eth::abi {

//! One argument: `address`, `uintN` (N a multiple of 8 up to 256), `bool`, or `bytes` (dynamic).
using Arg = std::variant<Address, Wei, bool, Bytes>;

//! The 4-byte selector of a signature such as "depositEth()" (keccak256's first four bytes).
[[nodiscard]] ByteArray<4> selector(std::string_view signature);

//! The calldata of `signature` ("name(type,...)", canonical types, no spaces) with `args`: the
//! selector, the head (static values and offsets of dynamic ones) and the tail. kAbiMismatch when an
//! argument's kind or count does not match its type, a uintN value does not fit N bits, or a type
//! is not one of those above.
[[nodiscard]] Result<Bytes> encode_call(std::string_view signature, const std::vector<Arg>& args);

}  // namespace keymaster::eth::abi
