#pragma once

#include "keymaster/common/bytes.hpp"
#include "keymaster/common/error.hpp"
#include "keymaster/common/secret.hpp"

namespace keymaster::crypto {

//! Uncompressed public key without the 0x04 prefix: x || y.
using PublicKey = ByteArray<64>;

//! A recoverable ECDSA signature over secp256k1, with s in the lower half of the order (EIP-2).
struct RecoverableSignature {
    Hash32 r{};
    Hash32 s{};
    std::uint8_t recovery_id = 0;  //!< y parity of R: 0 or 1
};

//! A secp256k1 private key. Never printed; wiped on destruction.
class PrivateKey {
public:
    //! 32 big-endian bytes in [1, n-1].
    [[nodiscard]] static Result<PrivateKey> from_bytes(ByteView bytes);
    //! Hex (optional 0x) of 32 bytes; the text is a Secret because it is one.
    [[nodiscard]] static Result<PrivateKey> from_hex(const Secret& hex);
    //! A fresh key from the operating system's random source.
    static PrivateKey generate();

    PrivateKey(const PrivateKey&) = default;
    PrivateKey& operator=(const PrivateKey&) = default;
    ~PrivateKey();

    PublicKey public_key() const;
    //! RFC 6979 deterministic, low-s recoverable signature of a 32-byte digest.
    [[nodiscard]] Result<RecoverableSignature> sign(const Hash32& digest) const;

private:
    PrivateKey() = default;
    Hash32 key_{};
};

//! Recovers the public key that signed `digest`. Accepts any s in [1, n-1] (callers enforce EIP-2).
[[nodiscard]] Result<PublicKey> recover(const Hash32& digest, const Hash32& r, const Hash32& s, std::uint8_t recovery_id);

//! True when 1 <= s <= n/2.
bool is_low_s(const Hash32& s);

//! The Ethereum address bytes of a public key: the last 20 bytes of its Keccak-256.
ByteArray<20> address_bytes(const PublicKey& key);

}  // namespace keymaster::crypto
