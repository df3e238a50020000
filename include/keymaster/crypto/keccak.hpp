#pragma once

#include <string_view>

#include "keymaster/common/bytes.hpp"

namespace keymaster::crypto {

//! Keccak-256 as Ethereum uses it (original Keccak padding, not SHA3-256), via Crypto++.
Hash32 keccak256(ByteView data);

//! Keccak-256 of a string's bytes.
Hash32 keccak256(std::string_view data);

//! Incremental Keccak-256, for inputs that do not fit in memory.
class Keccak256 {
public:
    Keccak256();
    ~Keccak256();
    Keccak256(const Keccak256&) = delete;
    Keccak256& operator=(const Keccak256&) = delete;
    void update(ByteView data);
    Hash32 finish();

private:
    struct Impl;
    Impl* impl_;
};

}  // namespace keymaster::crypto
