#include "vectors.hpp"

#include "keymaster/common/amount.hpp"
#include "keymaster/common/hex.hpp"

using namespace keymaster;

TEST_CASE("amounts: wei integers and units", "[amount]") {
    CHECK(parse_amount("500000000000000000").value() == Wei("500000000000000000"));
    CHECK(parse_amount("0.5 ether").value() == Wei("500000000000000000"));
    CHECK(parse_amount("0.5ether").value() == Wei("500000000000000000"));
    CHECK(parse_amount("150 gwei").value() == Wei("150000000000"));
    CHECK(parse_amount("1.5 gwei").value() == Wei("1500000000"));
    CHECK(parse_amount("7 wei").value() == Wei(7));
    CHECK(parse_amount("  2 ETHER ").value() == Wei("2000000000000000000"));
    CHECK(parse_amount("1.50 gwei").value() == Wei("1500000000"));
    CHECK(parse_amount(".25 ether").value() == Wei("250000000000000000"));
    CHECK(parse_amount("0").value() == Wei(0));
    // Leading zeros are decimal, not octal (found by fuzzing).
    CHECK(parse_amount("0.0123 ether").value() == Wei("12300000000000000"));
    CHECK(parse_amount("0.08 ether").value() == Wei("80000000000000000"));
    CHECK(parse_amount("09 wei").value() == Wei(9));
    CHECK(parse_amount("007").value() == Wei(7));
    const std::string max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    CHECK(parse_amount(max).value() == std::numeric_limits<Wei>::max());
}

TEST_CASE("amounts: rejected input names the problem", "[amount]") {
    CHECK(parse_amount("-1").error() == Errc::kNegativeAmount);
    CHECK(parse_amount("-0.5 ether").error() == Errc::kNegativeAmount);
    CHECK(parse_amount("0.5").error() == Errc::kFractionalWei);
    CHECK(parse_amount("1.5 wei").error() == Errc::kFractionalWei);
    CHECK(parse_amount("0.0000000001 gwei").error() == Errc::kFractionalWei);
    CHECK(parse_amount("115792089237316195423570985008687907853269984665640564039457584007913129639936").error() ==
          Errc::kAmountOverflow);
    CHECK(parse_amount("1000000000000000000000000000000000000000000000000000000000000 ether").error() ==
          Errc::kAmountOverflow);
    CHECK(parse_amount("").error() == Errc::kEmptyAmount);
    CHECK(parse_amount("abc").error() == Errc::kBadAmount);
    CHECK(parse_amount("1e18").error() == Errc::kBadAmount);
    CHECK(parse_amount("1 bitcoin").error() == Errc::kUnknownUnit);
    CHECK(parse_amount("1 ether!").error() == Errc::kBadAmount);
    CHECK(parse_amount("0x10").error() == Errc::kBadAmount);
    CHECK(parse_amount("1.2.3").error() == Errc::kBadAmount);
    CHECK_FALSE(keymaster_category().message(static_cast<int>(Errc::kFractionalWei)).empty());
}

TEST_CASE("amounts: quantities and display", "[amount]") {
    CHECK(parse_quantity("0x0").value() == 0);
    CHECK(parse_quantity("0x1a").value() == 26);
    CHECK(parse_quantity("0xDE0B6B3A7640000").value() == Wei("1000000000000000000"));
    CHECK_FALSE(parse_quantity("1a"));
    CHECK_FALSE(parse_quantity("0x"));
    CHECK_FALSE(parse_quantity("0xzz"));
    CHECK(to_quantity(0) == "0x0");
    CHECK(to_quantity(Wei("1000000000000000000")) == "0xde0b6b3a7640000");
    CHECK(format_units(Wei("1500000000000000000")) == "1.5");
    CHECK(format_units(Wei(0)) == "0");
    CHECK(format_units(Wei(1)) == "0.000000000000000001");
    CHECK(format_units(Wei(1500), 3) == "1.5");
    CHECK(to_double(Wei("250000000000000000")) == Approx(0.25));
    CHECK(to_be_bytes(0).empty());
    CHECK(to_hex(to_be_bytes(Wei(0x0400))) == "0x0400");
    CHECK(from_be_bytes(to_be_bytes(Wei("123456789012345678901234567890"))).value() ==
          Wei("123456789012345678901234567890"));
}

TEST_CASE("hex", "[hex]") {
    CHECK(to_hex(from_hex("0xDEadBEef").value()) == "0xdeadbeef");
    CHECK(from_hex("").value().empty());
    CHECK(from_hex("0x").value().empty());
    CHECK(from_hex("abc").error() == Errc::kOddHexLength);
    CHECK(from_hex("zz").error() == Errc::kBadHex);
    CHECK_FALSE(from_hex_fixed<2>("0x010203"));
}
