#pragma once

#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "keymaster/common/hex.hpp"

#include <catch2/catch.hpp>

namespace keymaster::test {

//! Root of the third-party vectors copied into tests/vectors.
inline std::filesystem::path vectors_dir() { return KEYMASTER_VECTORS_DIR; }

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + p.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline nlohmann::json read_json(const std::filesystem::path& rel) {
    return nlohmann::json::parse(read_text(vectors_dir() / rel));
}

inline Bytes unhex(std::string_view s) {
    auto r = from_hex(s);
    if (!r) throw std::runtime_error("bad hex in test vector: " + std::string(s.substr(0, 40)));
    return *r;
}

template <std::size_t N>
ByteArray<N> unhex_fixed(std::string_view s) {
    auto r = from_hex_fixed<N>(s);
    if (!r) throw std::runtime_error("bad fixed hex in test vector");
    return *r;
}

}  // namespace keymaster::test

namespace Catch {
//! Results print as their error message, or "value" (most value types have no operator<<).
template <typename T>
struct StringMaker<boost::system::result<T>> {
    static std::string convert(const boost::system::result<T>& r) {
        return r ? std::string("value") : "error: " + r.error().message();
    }
};
}  // namespace Catch
