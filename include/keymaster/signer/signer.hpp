#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "keymaster/common/fault.hpp"
#include "keymaster/crypto/secp256k1.hpp"
#include "keymaster/eth/address.hpp"

namespace keymaster::signer {

//! A signature, or why there is none (Fault::kSigning; a sentence that names no secret).
using SignResult = Expected<crypto::RecoverableSignature>;

//! The failure of a signer, as its SignResult.
[[nodiscard]] inline Problem sign_failure(std::string why) { return Problem{Fault::kSigning, std::move(why)}; }

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
