#include <catch2/catch.hpp>

#include "keymaster/common/hex.hpp"
#include "keymaster/eth/abi.hpp"

using namespace keymaster;
using eth::abi::Arg;

namespace {

eth::Address addr(std::string_view text) { return eth::Address::parse(text).value(); }
Bytes bytes(std::string_view hex) { return from_hex(hex).value(); }

}  // namespace

// Expected calldata made by Foundry's `cast calldata` 1.7.1 (the npm package the tests install).
TEST_CASE("abi: calls encoded as cast encodes them", "[abi]") {
    const auto bank = addr("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    struct Row {
        const char* signature;
        std::vector<Arg> args;
        const char* calldata;
    };
    const Row rows[] = {
        {"depositTransaction(address,uint256,uint64,bool,bytes)",
         {bank, Wei(1'000'000'000'000'000'000ULL), Wei(100000), false, Bytes{}},
         "0xe9e05c4200000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8000000000000000000000000000000000000"
         "0000000000000de0b6b3a764000000000000000000000000000000000000000000000000000000000000000186a0000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000a0"
         "0000000000000000000000000000000000000000000000000000000000000000"},
        {"depositEth()", {}, "0x439370b1"},
        {"createRetryableTicket(address,uint256,uint256,address,address,uint256,uint256,bytes)",
         {bank, Wei(5'000'000'000'000'000'000ULL), Wei(123456789), bank, bank, Wei(0), Wei(0), Bytes{}},
         "0x679b6ded00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8000000000000000000000000000000000000"
         "0000000000004563918244f4000000000000000000000000000000000000000000000000000000000000075bcd15000000000000000000"
         "00000070997970c51812dc3a010c7d01b50e0d17dc79c800000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
         "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "00000000000000000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000"
         "000000000000000000000000000000000000"},
        {"f(bytes,uint256)", {bytes("0x0102030405060708091011121314151617181920212223242526272829303132333435"), Wei(7)},
         "0xf46b9d1e0000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000"
         "00000000000000000000000000070000000000000000000000000000000000000000000000000000000000000023010203040506070809"
         "10111213141516171819202122232425262728293031323334350000000000000000000000000000000000000000000000000000000000"},
        {"g(bytes,bool,bytes)", {bytes("0xdeadbeef"), true, Bytes{}},
         "0x366c5a850000000000000000000000000000000000000000000000000000000000000060000000000000000000000000000000000000"
         "000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000a0000000000000000000"
         "0000000000000000000000000000000000000000000004deadbeef00000000000000000000000000000000000000000000000000000000"
         "0000000000000000000000000000000000000000000000000000000000000000"},
        {"h(uint64)", {Wei(18446744073709551615ULL)}, "0x879b2163000000000000000000000000000000000000000000000000ffffffffffffffff"},
    };
    for (const auto& r : rows) {
        INFO(r.signature);
        const auto got = eth::abi::encode_call(r.signature, r.args);
        REQUIRE(got.has_value());
        CHECK(to_hex(*got) == r.calldata);
    }
}

TEST_CASE("abi: arguments that do not match the signature are refused", "[abi]") {
    const auto bank = addr("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    struct Row {
        const char* signature;
        std::vector<Arg> args;
        const char* why;
    };
    const Row rows[] = {
        {"h(uint64)", {Wei(1) << 64}, "does not fit 64 bits"},
        {"h(uint64)", {}, "too few"},
        {"h(uint64)", {Wei(1), Wei(2)}, "too many"},
        {"h(address)", {Wei(1)}, "a number for an address"},
        {"h(bool)", {bank}, "an address for a bool"},
        {"h(bytes)", {Wei(1)}, "a number for bytes"},
        {"h(uint)", {Wei(1)}, "not canonical"},
        {"h(uint7)", {Wei(1)}, "not a whole byte"},
        {"h(int256)", {Wei(1)}, "a type not supported"},
        {"h(uint64,)", {Wei(1)}, "a trailing comma"},
        {"h", {}, "no parentheses"},
    };
    for (const auto& r : rows) {
        INFO(r.why);
        CHECK(eth::abi::encode_call(r.signature, r.args).error() == make_error_code(Errc::kAbiMismatch));
    }
}

TEST_CASE("abi: selector", "[abi]") {
    CHECK(to_hex(ByteView(eth::abi::selector("depositTransaction(address,uint256,uint64,bool,bytes)"))) == "0xe9e05c42");
}
