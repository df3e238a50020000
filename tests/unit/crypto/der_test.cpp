#include <catch2/catch.hpp>

#include "keymaster/crypto/der.hpp"
#include "keymaster/eth/address.hpp"
#include "vectors.hpp"

using namespace keymaster;

TEST_CASE("kms: secp256k1 SubjectPublicKeyInfo to an Ethereum address", "[kms]") {
    auto j = test::read_json("aws-kms-secp256k1/kms_secp256k1_example.json");
    const Bytes spki = test::unhex(j["getPublicKey"]["PublicKey_hex"].get<std::string>());
    auto key = crypto::public_key_from_spki(spki);
    REQUIRE(key);
    CHECK(eth::Address::from_public_key(*key).lower() ==
          j["derived_while_collecting_not_in_source"]["ethereum_address_of_public_key"]);
    // A P-256 (secp256r1) key is refused: same shape, another curve OID.
    Bytes p256 = spki;
    p256[15] = 0x2a;
    CHECK_FALSE(crypto::public_key_from_spki(p256));
    CHECK_FALSE(crypto::public_key_from_spki(ByteView(spki).first(60)));
    Bytes off_curve = spki;
    off_curve.back() ^= 1;
    CHECK_FALSE(crypto::public_key_from_spki(off_curve));
}

TEST_CASE("kms: a high-s DER signature becomes low-s with its recovery id", "[kms]") {
    auto j = test::read_json("aws-kms-secp256k1/kms_secp256k1_example.json");
    const auto key = crypto::public_key_from_spki(test::unhex(j["getPublicKey"]["PublicKey_hex"].get<std::string>())).value();
    const auto digest = test::unhex_fixed<32>(j["sign"]["Message_digest_sha256_hex"].get<std::string>());
    const Bytes der = test::unhex(j["sign"]["Signature_der_hex"].get<std::string>());
    auto sig = crypto::recoverable_from_der(digest, der, key);
    REQUIRE(sig);
    const auto& d = j["derived_while_collecting_not_in_source"];
    CHECK(to_hex(sig->r) == d["r"]);
    CHECK(to_hex(sig->s) == d["s_low_normalised"]);
    CHECK(crypto::is_low_s(sig->s));
    CHECK(int(sig->recovery_id) == d["recovery_id_for_low_s"].get<int>());
    CHECK(crypto::recover(digest, sig->r, sig->s, sig->recovery_id).value() == key);
    // Another key's signature, or another digest, is refused rather than mislabelled.
    auto other = crypto::PrivateKey::generate().public_key();
    CHECK_FALSE(crypto::recoverable_from_der(digest, der, other));
    Hash32 wrong = digest;
    wrong[0] ^= 1;
    CHECK_FALSE(crypto::recoverable_from_der(wrong, der, key));
    CHECK_FALSE(crypto::recoverable_from_der(digest, ByteView(der).first(10), key));
}
