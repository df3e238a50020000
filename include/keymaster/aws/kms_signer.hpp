#pragma once

#include <memory>
#include <string>

#include "keymaster/aws/aws.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::aws {

//! What GetPublicKey says about a key.
struct KmsPublicKey {
    std::string key_arn;
    crypto::PublicKey key;
    eth::Address address;
};

//! GetPublicKey: the key must be ECC_SECG_P256K1 with SIGN_VERIFY; throws AwsError otherwise.
boost::asio::awaitable<KmsPublicKey> get_public_key(KmsClient& kms, const std::string& key_id);

//! Signs with a KMS key (Sign, MessageType DIGEST, ECDSA_SHA_256); the DER signature is made
//! low-s and its recovery id found against the key's address. The key never leaves KMS.
class KmsSigner final : public signer::Signer {
public:
    //! Fetches the public key; throws AwsError (naming the key id) if it is unusable.
    static boost::asio::awaitable<std::shared_ptr<KmsSigner>> open(std::shared_ptr<KmsClient> kms, std::string key_id);

    eth::Address address() const override { return pub_.address; }
    boost::asio::awaitable<signer::SignResult> sign(const Hash32& digest) override;
    const std::string& key_id() const { return key_id_; }
    const std::string& key_arn() const { return pub_.key_arn; }

private:
    KmsSigner(std::shared_ptr<KmsClient> kms, std::string key_id, KmsPublicKey pub)
        : kms_(std::move(kms)), key_id_(std::move(key_id)), pub_(std::move(pub)) {}
    std::shared_ptr<KmsClient> kms_;
    std::string key_id_;
    KmsPublicKey pub_;
};

}  // namespace keymaster::aws
