#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "keymaster/crypto/secp256k1.hpp"
#include "keymaster/eth/address.hpp"

namespace keymaster::signer {

//! A signature, or why there is none (an operator-readable sentence that names no secret).
class SignResult {
public:
    SignResult(crypto::RecoverableSignature sig) : sig_(sig) {}  // NOLINT: implicit on purpose
    static SignResult failure(std::string why) {
        SignResult r;
        r.error_ = std::move(why);
        return r;
    }
    explicit operator bool() const { return sig_.has_value(); }
    const crypto::RecoverableSignature& operator*() const { return *sig_; }
    const std::string& error() const { return error_; }

private:
    SignResult() = default;
    std::optional<crypto::RecoverableSignature> sig_;
    std::string error_;
};

//! Something that signs 32-byte digests for one address: a local key or a KMS key.
class Signer {
public:
    virtual ~Signer() = default;
    virtual eth::Address address() const = 0;
    //! A low-s recoverable signature of `digest`; an error (never a partial value) on failure.
    virtual boost::asio::awaitable<SignResult> sign(const Hash32& digest) = 0;
};

//! Signs with a private key held in memory (from an env var or a key file).
class LocalSigner final : public Signer {
public:
    explicit LocalSigner(crypto::PrivateKey key);
    eth::Address address() const override { return address_; }
    boost::asio::awaitable<SignResult> sign(const Hash32& digest) override;

private:
    crypto::PrivateKey key_;
    eth::Address address_;
};

}  // namespace keymaster::signer
