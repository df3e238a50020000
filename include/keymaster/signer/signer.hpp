#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "keymaster/crypto/secp256k1.hpp"
#include "keymaster/eth/address.hpp"

namespace keymaster::signer {

//! Something that signs 32-byte digests for one address: a local key, or (later) a KMS key.
class Signer {
public:
    virtual ~Signer() = default;
    virtual eth::Address address() const = 0;
    //! A low-s recoverable signature of `digest`; an error (never a partial value) on failure.
    virtual boost::asio::awaitable<Result<crypto::RecoverableSignature>> sign(const Hash32& digest) = 0;
};

//! Signs with a private key held in memory (from an env var or a key file).
class LocalSigner final : public Signer {
public:
    explicit LocalSigner(crypto::PrivateKey key);
    eth::Address address() const override { return address_; }
    boost::asio::awaitable<Result<crypto::RecoverableSignature>> sign(const Hash32& digest) override;

private:
    crypto::PrivateKey key_;
    eth::Address address_;
};

}  // namespace keymaster::signer
