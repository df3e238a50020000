#include "keymaster/crypto/der.hpp"

#include <secp256k1.h>

#include <algorithm>

namespace keymaster::crypto {
namespace {

// SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID secp256k1 }, BIT STRING (0 unused bits) 04 || X || Y }
constexpr std::uint8_t kSpkiPrefix[] = {0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                        0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00, 0x04};

const secp256k1_context* verify_ctx() {
    static const secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    return ctx;
}

}  // namespace

Result<PublicKey> public_key_from_spki(ByteView der) {
    if (der.size() != sizeof kSpkiPrefix + 64 || !std::equal(std::begin(kSpkiPrefix), std::end(kSpkiPrefix), der.begin()))
        return make_error_code(Errc::kBadPublicKey);
    secp256k1_pubkey pub;
    if (secp256k1_ec_pubkey_parse(verify_ctx(), &pub, der.data() + sizeof kSpkiPrefix - 1, 65) != 1)
        return make_error_code(Errc::kBadPublicKey);  // not a point on the curve
    PublicKey key;
    std::copy(der.end() - 64, der.end(), key.begin());
    return key;
}

Result<RecoverableSignature> recoverable_from_der(const Hash32& digest, ByteView der, const PublicKey& key) {
    secp256k1_ecdsa_signature sig;
    if (secp256k1_ecdsa_signature_parse_der(verify_ctx(), &sig, der.data(), der.size()) != 1)
        return make_error_code(Errc::kTxBadSignature);
    secp256k1_ecdsa_signature low;
    (void)secp256k1_ecdsa_signature_normalize(verify_ctx(), &low, &sig);  // returns 1 if s was high: either is fine
    unsigned char compact[64];
    if (secp256k1_ecdsa_signature_serialize_compact(verify_ctx(), compact, &low) != 1)
        return make_error_code(Errc::kTxBadSignature);
    RecoverableSignature out;
    std::copy(compact, compact + 32, out.r.begin());
    std::copy(compact + 32, compact + 64, out.s.begin());
    for (std::uint8_t id = 0; id < 2; ++id) {
        auto pub = recover(digest, out.r, out.s, id);
        if (pub && *pub == key) {
            out.recovery_id = id;
            return out;
        }
    }
    return make_error_code(Errc::kRecoveryFailed);
}

}  // namespace keymaster::crypto
