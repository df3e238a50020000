#include "keymaster/aws/kms_signer.hpp"

#include "keymaster/crypto/der.hpp"

namespace keymaster::aws {

namespace net = boost::asio;
using json = nlohmann::json;

namespace {
std::string str(const json& j, const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; }
}  // namespace

net::awaitable<KmsPublicKey> get_public_key(KmsClient& kms, const std::string& key_id) {
    json body = {{"KeyId", key_id}};
    std::string action = "GetPublicKey";
    json r = co_await kms.call(std::move(action), std::move(body), "key " + key_id);
    const std::string where = "KMS key " + key_id + " (" + kms.region() + ")";
    std::string spec = str(r, "KeySpec");
    if (spec.empty()) spec = str(r, "CustomerMasterKeySpec");
    const std::string usage = str(r, "KeyUsage");
    if (spec != "ECC_SECG_P256K1")
        throw AwsError("UnsupportedKey", where + ": key spec is " + (spec.empty() ? "unknown" : spec) +
                                             ", Ethereum needs ECC_SECG_P256K1");
    if (usage != "SIGN_VERIFY")
        throw AwsError("UnsupportedKey", where + ": key usage is " + (usage.empty() ? "unknown" : usage) +
                                             ", signing needs SIGN_VERIFY");
    auto der = base64_decode(str(r, "PublicKey"));
    if (!der) throw AwsError("BadReply", where + ": PublicKey is not base64");
    auto pub = crypto::public_key_from_spki(*der);
    if (!pub) throw AwsError("BadReply", where + ": PublicKey is not a secp256k1 key: " + pub.error().message());
    KmsPublicKey out{str(r, "KeyId"), *pub, eth::Address::from_public_key(*pub)};
    if (out.key_arn.empty()) out.key_arn = key_id;
    co_return out;
}

net::awaitable<std::shared_ptr<KmsSigner>> KmsSigner::open(std::shared_ptr<KmsClient> kms, std::string key_id) {
    auto pub = co_await get_public_key(*kms, key_id);
    co_return std::shared_ptr<KmsSigner>(new KmsSigner(std::move(kms), std::move(key_id), std::move(pub)));
}

net::awaitable<signer::SignResult> KmsSigner::sign(const Hash32& digest) {
    json body = {{"KeyId", key_id_},
                 {"Message", base64_encode(ByteView(digest.data(), digest.size()))},
                 {"MessageType", "DIGEST"},
                 {"SigningAlgorithm", "ECDSA_SHA_256"}};
    std::string action = "Sign";
    json r;
    try {
        r = co_await kms_->call(std::move(action), std::move(body), "key " + key_id_);
    } catch (const AwsError& e) {  // KMS refused or failed: the Round's kSigning, not an exception
        co_return signer::sign_failure(e.what());
    }
    auto der = base64_decode(str(r, "Signature"));
    if (!der) co_return signer::sign_failure("KMS Sign for key " + key_id_ + ": Signature is not base64");
    auto sig = crypto::recoverable_from_der(digest, *der, pub_.key);
    if (!sig)
        co_return signer::sign_failure("KMS Sign for key " + key_id_ +
                                              ": the signature does not verify against the key's public key (" +
                                              sig.error().message() + ")");
    co_return signer::SignResult(*sig);
}

}  // namespace keymaster::aws
