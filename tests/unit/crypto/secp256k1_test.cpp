#include <catch2/catch.hpp>

#include "keymaster/crypto/secp256k1.hpp"
#include "keymaster/eth/address.hpp"
#include "vectors.hpp"

using namespace keymaster;

TEST_CASE("secp256k1: RFC 6979 recoverable signatures (tiny-secp256k1)", "[secp256k1]") {
    auto j = test::read_json("secp256k1-tiny-secp256k1/ecdsa.json");
    REQUIRE(j["valid"].size() == 2020);
    for (const auto& v : j["valid"]) {
        auto key = crypto::PrivateKey::from_bytes(test::unhex(v["d"].get<std::string>()));
        REQUIRE(key);
        const auto m = test::unhex_fixed<32>(v["m"].get<std::string>());
        auto sig = key->sign(m);
        REQUIRE(sig);
        const Bytes expected = test::unhex(v["signature"].get<std::string>());
        CHECK(to_hex(sig->r) == to_hex(ByteView(expected).first(32)));
        CHECK(to_hex(sig->s) == to_hex(ByteView(expected).last(32)));
        CHECK(int(sig->recovery_id) == v["recoveryId"].get<int>());
        CHECK(crypto::is_low_s(sig->s));
        auto pub = crypto::recover(m, sig->r, sig->s, sig->recovery_id);
        REQUIRE(pub);
        CHECK(*pub == key->public_key());
    }
}

TEST_CASE("secp256k1: invalid private keys are refused", "[secp256k1]") {
    auto j = test::read_json("secp256k1-tiny-secp256k1/ecdsa.json");
    int n = 0;
    for (const auto& v : j["invalid"]["sign"]) {
        const Bytes d = test::unhex(v["d"].get<std::string>());
        if (d.size() != 32) continue;
        INFO(v["description"]);
        CHECK_FALSE(crypto::PrivateKey::from_bytes(d));
        ++n;
    }
    CHECK(n > 0);
    CHECK_FALSE(crypto::PrivateKey::from_hex(Secret("0x1234")));
    CHECK_FALSE(crypto::PrivateKey::from_hex(Secret("not hex at all")));
}

TEST_CASE("secp256k1: invalid recoveries fail", "[secp256k1]") {
    auto j = test::read_json("secp256k1-tiny-secp256k1/ecdsa.json");
    int n = 0;
    for (const auto& v : j["invalid"]["recover"]) {
        const Bytes sig = test::unhex(v["signature"].get<std::string>());
        const Bytes m = test::unhex(v["m"].get<std::string>());
        const int recid = v.value("recoveryId", 0);
        if (sig.size() != 64 || m.size() != 32 || recid > 1) continue;
        Hash32 r, s, mh;
        std::copy(sig.begin(), sig.begin() + 32, r.begin());
        std::copy(sig.begin() + 32, sig.end(), s.begin());
        std::copy(m.begin(), m.end(), mh.begin());
        INFO(v["description"]);
        CHECK_FALSE(crypto::recover(mh, r, s, static_cast<std::uint8_t>(recid)));
        ++n;
    }
    CHECK(n > 0);
}

TEST_CASE("secp256k1: private key to address (ethers accounts, go-ethereum)", "[secp256k1]") {
    auto j = test::read_json("ethers-testcases/accounts.json");
    REQUIRE(j.size() > 200);
    for (const auto& a : j) {
        auto key = crypto::PrivateKey::from_hex(Secret(a["privateKey"].get<std::string>()));
        REQUIRE(key);
        CHECK(eth::Address::from_public_key(key->public_key()).checksummed() == a["address"]);
    }
    auto g = test::read_json("go-ethereum-crypto/geth_crypto_vectors.json");
    for (const auto& v : g["private_key_to_address"]) {
        auto key = crypto::PrivateKey::from_hex(Secret(v["privateKey"].get<std::string>()));
        REQUIRE(key);
        CHECK(eth::Address::from_public_key(key->public_key()).lower() == "0x" + v["address"].get<std::string>());
    }
    for (const auto& v : g["ecrecover"]) {
        const Bytes sig = test::unhex(v["sig_r_s_v"].get<std::string>());
        Hash32 r, s;
        std::copy(sig.begin(), sig.begin() + 32, r.begin());
        std::copy(sig.begin() + 32, sig.begin() + 64, s.begin());
        auto pub = crypto::recover(test::unhex_fixed<32>(v["msgHash"].get<std::string>()), r, s, sig[64]);
        REQUIRE(pub);
        CHECK(to_hex(*pub) == "0x" + v["pubkeyUncompressed"].get<std::string>().substr(4));
    }
}

TEST_CASE("secp256k1: fresh keys differ and sign", "[secp256k1]") {
    auto a = crypto::PrivateKey::generate();
    auto b = crypto::PrivateKey::generate();
    CHECK(a.public_key() != b.public_key());
    Hash32 m{};
    m[0] = 1;
    auto sig = a.sign(m);
    REQUIRE(sig);
    CHECK(crypto::recover(m, sig->r, sig->s, sig->recovery_id).value() == a.public_key());
}
