#pragma once

#include <string>
#include <string_view>

#include "keymaster/common/bytes.hpp"
#include "keymaster/common/error.hpp"

namespace keymaster {

//! Lower-case hex of `bytes`, with a "0x" prefix unless `prefix` is false.
std::string to_hex(ByteView bytes, bool prefix = true);

//! Parses hex with an optional "0x"/"0X" prefix; an even number of digits is required.
[[nodiscard]] Result<Bytes> from_hex(std::string_view hex);

//! Parses exactly N bytes of hex (optional 0x prefix).
template <std::size_t N>
[[nodiscard]] Result<ByteArray<N>> from_hex_fixed(std::string_view hex) {
    auto bytes = from_hex(hex);
    if (!bytes) return bytes.error();
    if (bytes->size() != N) return make_error_code(Errc::kBadHex);
    ByteArray<N> out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
}

}  // namespace keymaster
