#include "keymaster/crypto/secp256k1.hpp"

#include <cryptopp/osrng.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <algorithm>
#include <stdexcept>

#include "keymaster/common/hex.hpp"
#include "keymaster/crypto/keccak.hpp"

namespace keymaster::crypto {
namespace {

// One context for the process; libsecp256k1 contexts are safe to share for signing and verifying.
class Context {
public:
    Context() : ctx_(secp256k1_context_create(SECP256K1_CONTEXT_NONE)) {
        if (ctx_ == nullptr) throw std::runtime_error("secp256k1_context_create failed");
        unsigned char seed[32];
        CryptoPP::OS_GenerateRandomBlock(false, seed, sizeof seed);
        if (secp256k1_context_randomize(ctx_, seed) != 1)
            throw std::runtime_error("secp256k1_context_randomize failed");
    }
    ~Context() { secp256k1_context_destroy(ctx_); }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    secp256k1_context* get() const { return ctx_; }

private:
    secp256k1_context* ctx_;
};

secp256k1_context* ctx() {
    static Context context;
    return context.get();
}

// n/2, the largest low s (EIP-2).
constexpr Hash32 kHalfOrder = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4,
                               0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};

}  // namespace

Result<PrivateKey> PrivateKey::from_bytes(ByteView bytes) {
    if (bytes.size() != 32) return make_error_code(Errc::kBadPrivateKey);
    PrivateKey key;
    std::copy(bytes.begin(), bytes.end(), key.key_.begin());
    if (secp256k1_ec_seckey_verify(ctx(), key.key_.data()) != 1) return make_error_code(Errc::kBadPrivateKey);
    return key;
}

Result<PrivateKey> PrivateKey::from_hex(const Secret& hex) {
    std::string_view text = hex.reveal();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    auto bytes = keymaster::from_hex(text);
    if (!bytes) return make_error_code(Errc::kBadPrivateKey);
    auto key = from_bytes(*bytes);
    std::fill(bytes->begin(), bytes->end(), 0);
    return key;
}

PrivateKey PrivateKey::generate() {
    PrivateKey key;
    do {
        CryptoPP::OS_GenerateRandomBlock(false, key.key_.data(), key.key_.size());
    } while (secp256k1_ec_seckey_verify(ctx(), key.key_.data()) != 1);
    return key;
}

PrivateKey::~PrivateKey() {
    volatile std::uint8_t* p = key_.data();
    for (std::size_t i = 0; i < key_.size(); ++i) p[i] = 0;
}

PublicKey PrivateKey::public_key() const {
    secp256k1_pubkey pub;
    if (secp256k1_ec_pubkey_create(ctx(), &pub, key_.data()) != 1)
        throw std::logic_error("secp256k1_ec_pubkey_create failed on a verified key");
    unsigned char out[65];
    size_t len = sizeof out;
    if (secp256k1_ec_pubkey_serialize(ctx(), out, &len, &pub, SECP256K1_EC_UNCOMPRESSED) != 1 || len != 65)
        throw std::logic_error("secp256k1_ec_pubkey_serialize failed");
    PublicKey key;
    std::copy(out + 1, out + 65, key.begin());
    return key;
}

Result<RecoverableSignature> PrivateKey::sign(const Hash32& digest) const {
    secp256k1_ecdsa_recoverable_signature sig;
    if (secp256k1_ecdsa_sign_recoverable(ctx(), &sig, digest.data(), key_.data(), nullptr, nullptr) != 1)
        return make_error_code(Errc::kSigningFailed);
    unsigned char compact[64];
    int recid = 0;
    if (secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx(), compact, &recid, &sig) != 1)
        return make_error_code(Errc::kSigningFailed);
    RecoverableSignature out;
    std::copy(compact, compact + 32, out.r.begin());
    std::copy(compact + 32, compact + 64, out.s.begin());
    out.recovery_id = static_cast<std::uint8_t>(recid);
    // libsecp256k1 always produces low s; check anyway, a high s would be rejected by every node.
    if (!is_low_s(out.s)) return make_error_code(Errc::kSigningFailed);
    return out;
}

Result<PublicKey> recover(const Hash32& digest, const Hash32& r, const Hash32& s, std::uint8_t recovery_id) {
    if (recovery_id > 1) return make_error_code(Errc::kRecoveryFailed);
    unsigned char compact[64];
    std::copy(r.begin(), r.end(), compact);
    std::copy(s.begin(), s.end(), compact + 32);
    secp256k1_ecdsa_recoverable_signature sig;
    if (secp256k1_ecdsa_recoverable_signature_parse_compact(ctx(), &sig, compact, recovery_id) != 1)
        return make_error_code(Errc::kRecoveryFailed);
    secp256k1_pubkey pub;
    if (secp256k1_ecdsa_recover(ctx(), &pub, &sig, digest.data()) != 1) return make_error_code(Errc::kRecoveryFailed);
    unsigned char out[65];
    size_t len = sizeof out;
    if (secp256k1_ec_pubkey_serialize(ctx(), out, &len, &pub, SECP256K1_EC_UNCOMPRESSED) != 1 || len != 65)
        return make_error_code(Errc::kRecoveryFailed);
    PublicKey key;
    std::copy(out + 1, out + 65, key.begin());
    return key;
}

bool is_low_s(const Hash32& s) {
    const bool zero = std::all_of(s.begin(), s.end(), [](std::uint8_t b) { return b == 0; });
    return !zero && !std::lexicographical_compare(kHalfOrder.begin(), kHalfOrder.end(), s.begin(), s.end());
}

ByteArray<20> address_bytes(const PublicKey& key) {
    const Hash32 h = keccak256(ByteView(key));
    ByteArray<20> out;
    std::copy(h.begin() + 12, h.end(), out.begin());
    return out;
}

}  // namespace keymaster::crypto
