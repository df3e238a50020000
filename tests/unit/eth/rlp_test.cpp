#include <catch2/catch.hpp>

#include "keymaster/eth/rlp.hpp"
#include "vectors.hpp"

using namespace keymaster;
using eth::rlp::Item;

namespace {

// ethereum/tests "in": a string (bytes), an integer, "#<bignum>" or a nested list.
Item to_item(const nlohmann::json& in) {
    if (in.is_array()) {
        Item out = Item::list({});
        for (const auto& c : in) out.items.push_back(to_item(c));
        return out;
    }
    if (in.is_number_unsigned() || in.is_number_integer()) return Item::uint(Wei(in.get<std::uint64_t>()));
    const auto s = in.get<std::string>();
    if (!s.empty() && s[0] == '#') {  // may exceed 256 bits: encode any size
        Bytes be;
        boost::multiprecision::export_bits(boost::multiprecision::cpp_int(s.substr(1)), std::back_inserter(be), 8);
        return Item::string(be);
    }
    return Item::string(Bytes(s.begin(), s.end()));
}

}  // namespace

TEST_CASE("rlp: every ethereum/tests rlptest.json case encodes and decodes", "[rlp]") {
    auto j = test::read_json("ethereum-tests-rlp/rlptest.json");
    REQUIRE(j.size() == 28);
    for (const auto& [name, tc] : j.items()) {
        INFO(name);
        const Item item = to_item(tc["in"]);
        const Bytes out = test::unhex(tc["out"].get<std::string>());
        CHECK(to_hex(eth::rlp::encode(item)) == to_hex(out));
        auto back = eth::rlp::decode(out);
        REQUIRE(back);
        CHECK(*back == item);
    }
}

TEST_CASE("rlp: every invalidRLPTest.json case is rejected", "[rlp]") {
    auto j = test::read_json("ethereum-tests-rlp/invalidRLPTest.json");
    REQUIRE(j.size() == 26);
    for (const auto& [name, tc] : j.items()) {
        INFO(name);
        auto bytes = from_hex(tc["out"].get<std::string>());
        if (!bytes) continue;  // not even hex: rejected before RLP
        CHECK_FALSE(eth::rlp::decode(*bytes));
    }
}

TEST_CASE("rlp: scalars must be canonical", "[rlp]") {
    CHECK(eth::rlp::to_uint(Item::string(Bytes{0x00, 0x01})).error() == Errc::kRlpNonCanonical);
    CHECK(eth::rlp::to_uint(Item::string(Bytes(33, 1))).error() == Errc::kRlpTooLarge);
    CHECK(eth::rlp::to_uint64(Item::string(Bytes(9, 1))).error() == Errc::kRlpTooLarge);
    CHECK(eth::rlp::to_uint(Item::list({})).error() == Errc::kRlpUnexpectedList);
    CHECK(eth::rlp::to_uint(Item::string(Bytes{})).value() == 0);
    // A deeply nested input is refused, not a stack overflow.
    Bytes deep(100000, 0xc1);
    deep.push_back(0xc0);
    CHECK_FALSE(eth::rlp::decode(deep));
}
