#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace keymaster {

//! Owned byte string.
using Bytes = std::vector<std::uint8_t>;
//! Borrowed byte string.
using ByteView = std::span<const std::uint8_t>;
//! Fixed-size byte string.
template <std::size_t N>
using ByteArray = std::array<std::uint8_t, N>;
//! A 32-byte hash (Keccak-256 output, transaction hash, signing hash).
using Hash32 = ByteArray<32>;

}  // namespace keymaster
