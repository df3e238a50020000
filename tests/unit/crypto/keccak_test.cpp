#include <catch2/catch.hpp>

#include <sstream>

#include "keymaster/crypto/keccak.hpp"
#include "vectors.hpp"

using namespace keymaster;

namespace {

struct Kat {
    std::size_t bits;
    std::string msg;
    std::string md;
};

std::vector<Kat> read_kat(const std::string& file) {
    std::istringstream in(test::read_text(test::vectors_dir() / "keccak-kat" / file));
    std::vector<Kat> out;
    std::string line;
    Kat cur{};
    while (std::getline(in, line)) {
        if (line.rfind("Len = ", 0) == 0) cur.bits = std::stoul(line.substr(6));
        else if (line.rfind("Msg = ", 0) == 0) cur.msg = line.substr(6);
        else if (line.rfind("MD = ", 0) == 0) {
            cur.md = line.substr(5);
            out.push_back(cur);
        }
    }
    return out;
}

void check_kat(const std::string& file) {
    auto kats = read_kat(file);
    REQUIRE(kats.size() > 60);
    for (const auto& k : kats) {
        REQUIRE(k.bits % 8 == 0);
        Bytes msg = test::unhex(k.msg);
        msg.resize(k.bits / 8);  // "Len = 0" comes with "Msg = 00"
        INFO(file << " Len=" << k.bits);
        CHECK(to_hex(crypto::keccak256(ByteView(msg)), false) == to_hex(test::unhex(k.md), false));
    }
}

}  // namespace

TEST_CASE("keccak-256: Keccak team short-message KATs", "[keccak]") { check_kat("ShortMsgKAT_256.txt"); }
TEST_CASE("keccak-256: Keccak team long-message KATs", "[keccak]") { check_kat("LongMsgKAT_256.txt"); }

TEST_CASE("keccak-256: extremely long message (1 GiB, streamed)", "[keccak][slow]") {
    const std::string text = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno";
    crypto::Keccak256 k;
    const auto view = ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    for (int i = 0; i < 16777216; ++i) k.update(view);
    CHECK(to_hex(k.finish(), false) == "5f313c39963dcf792b5470d4ade9f3a356a3e4021748690a958372e2b06f82a4");
}

TEST_CASE("keccak-256: go-ethereum vector", "[keccak]") {
    auto j = test::read_json("go-ethereum-crypto/geth_crypto_vectors.json");
    REQUIRE(j["keccak256"].size() == 1);  // a file that lost its vectors must not pass
    for (const auto& v : j["keccak256"])
        CHECK(to_hex(crypto::keccak256(v["input_ascii"].get<std::string>()), false) == v["keccak256"]);
}
