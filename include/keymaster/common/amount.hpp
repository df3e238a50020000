#pragma once

#include <boost/multiprecision/cpp_int.hpp>
#include <string>
#include <string_view>

#include "keymaster/common/bytes.hpp"
#include "keymaster/common/error.hpp"

namespace keymaster {

//! An amount of wei (or of any 256-bit EVM quantity): unsigned, 256 bits, checked: an overflow or
//! a negative result throws std::overflow_error / std::range_error, it never wraps.
using Wei = boost::multiprecision::checked_uint256_t;

//! The largest amount or per-gas price keymaster accepts from a config or a node: 2^128 - 1 wei
//! (3.4e20 ether, beyond any real supply). Below it, every sum and product of amounts, gas limits
//! and counts keymaster forms stays far from 2^256.
const Wei& max_sane_amount();

//! Parses an amount: a decimal wei integer ("500000000000000000") or a decimal number and a unit
//! ("0.5 ether", "150 gwei", "7 wei"). Units are Ethereum's: wei, kwei, mwei, gwei, szabo, finney, ether.
//! Rejects negatives, fractions of a wei, values above 2^256-1 and anything else.
[[nodiscard]] Result<Wei> parse_amount(std::string_view text);

//! Parses a JSON-RPC QUANTITY ("0x1a"; "0x0" for zero). Leading zeros are tolerated.
[[nodiscard]] Result<Wei> parse_quantity(std::string_view text);

//! Formats a JSON-RPC QUANTITY: "0x" and lower-case hex without leading zeros ("0x0" for zero).
std::string to_quantity(const Wei& value);

//! Formats `value` / 10^decimals as a decimal string without trailing zeros ("1.5", "0", "0.000001").
std::string format_units(const Wei& value, unsigned decimals = 18);

//! `value` / 10^decimals as a double (for metrics and display).
double to_double(const Wei& value, unsigned decimals = 18);

//! Minimal big-endian bytes (empty for zero), as RLP wants integers.
Bytes to_be_bytes(const Wei& value);

//! Big-endian bytes to a number; at most 32 bytes.
[[nodiscard]] Result<Wei> from_be_bytes(ByteView bytes);

//! Big-endian, left-padded to 32 bytes.
Hash32 to_be32(const Wei& value);

}  // namespace keymaster
