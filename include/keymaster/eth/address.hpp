#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "keymaster/common/bytes.hpp"
#include "keymaster/common/error.hpp"
#include "keymaster/crypto/secp256k1.hpp"

namespace keymaster::eth {

//! A 20-byte account address, printed with the ERC-55 mixed-case checksum.
class Address {
public:
    Address() = default;
    explicit Address(const ByteArray<20>& bytes) : bytes_(bytes) {}

    //! "0x" + 40 hex digits. All-lower and all-upper are accepted; mixed case must carry a
    //! correct ERC-55 checksum (kBadChecksum otherwise).
    [[nodiscard]] static Result<Address> parse(std::string_view text);
    static Address from_public_key(const crypto::PublicKey& key) { return Address(crypto::address_bytes(key)); }

    //! ERC-55 checksummed form.
    std::string checksummed() const;
    //! Lower-case form, for maps and JSON-RPC.
    std::string lower() const;
    const ByteArray<20>& bytes() const { return bytes_; }

    friend auto operator<=>(const Address&, const Address&) = default;

private:
    ByteArray<20> bytes_{};
};

}  // namespace keymaster::eth
