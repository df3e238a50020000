#pragma once

#include "keymaster/crypto/secp256k1.hpp"

//! The DER forms AWS KMS uses for ECC_SECG_P256K1 keys (RFC 5280 SubjectPublicKeyInfo, RFC 3279
//! ECDSA-Sig-Value), turned into what Ethereum needs.
namespace keymaster::crypto {

//! The public key of a secp256k1 SubjectPublicKeyInfo (id-ecPublicKey, secp256k1, uncompressed
//! point); any other key type or curve is refused.
[[nodiscard]] Result<PublicKey> public_key_from_spki(ByteView der);

//! A DER ECDSA signature of `digest` made by `key`, as Ethereum wants it: s made low (EIP-2) and
//! the recovery id found by recovering against `key`. Fails if the signature is not `key`'s.
[[nodiscard]] Result<RecoverableSignature> recoverable_from_der(const Hash32& digest, ByteView der, const PublicKey& key);

}  // namespace keymaster::crypto
