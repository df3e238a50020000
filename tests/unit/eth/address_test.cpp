#include <catch2/catch.hpp>

#include <sstream>

#include "keymaster/eth/address.hpp"
#include "vectors.hpp"

using namespace keymaster;

TEST_CASE("address: ERC-55 test cases round-trip", "[address]") {
    std::istringstream in(test::read_text(test::vectors_dir() / "eip-texts/erc55_checksum_addresses.txt"));
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto a = eth::Address::parse(line);
        REQUIRE(a);
        std::string lower = line;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        auto all_lower = eth::Address::parse(lower);
        REQUIRE(all_lower);
        // The all-caps and all-lower cases of ERC-55 are checksums too; "Normal" ones are mixed.
        const bool mixed = line.substr(2) != lower.substr(2) && line.substr(2) != [&] {
            std::string u = line;
            std::transform(u.begin(), u.end(), u.begin(), ::toupper);
            return u.substr(2);
        }();
        if (mixed) CHECK(all_lower->checksummed() == line);
        ++n;
    }
    CHECK(n == 8);
}

TEST_CASE("address: mixed case with a wrong checksum is rejected", "[address]") {
    CHECK(eth::Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"));
    CHECK(eth::Address::parse("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed").error() == Errc::kBadChecksum);
    CHECK(eth::Address::parse("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"));
    CHECK(eth::Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
    CHECK(eth::Address::parse("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").error() == Errc::kBadAddressLength);
    CHECK(eth::Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea").error() == Errc::kBadAddressLength);
    CHECK(eth::Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beagg").error() == Errc::kBadHex);
}
