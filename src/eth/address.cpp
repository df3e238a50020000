#include "keymaster/eth/address.hpp"

#include <cctype>

#include "keymaster/common/hex.hpp"
#include "keymaster/crypto/keccak.hpp"

namespace keymaster::eth {

Result<Address> Address::parse(std::string_view text) {
    if (text.size() != 42 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
        return make_error_code(Errc::kBadAddressLength);
    auto bytes = from_hex_fixed<20>(text);
    if (!bytes) return bytes.error();
    Address address(*bytes);
    const std::string_view digits = text.substr(2);
    bool has_lower = false, has_upper = false;
    for (char c : digits) {
        has_lower |= (c >= 'a' && c <= 'f');
        has_upper |= (c >= 'A' && c <= 'F');
    }
    if (has_lower && has_upper && address.checksummed().substr(2) != digits) return make_error_code(Errc::kBadChecksum);
    return address;
}

std::string Address::lower() const { return to_hex(bytes_); }

std::string Address::checksummed() const {
    const std::string hex = to_hex(bytes_, false);
    const Hash32 h = crypto::keccak256(std::string_view(hex));
    std::string out = "0x";
    for (std::size_t i = 0; i < hex.size(); ++i) {
        const int nib = (i % 2 == 0) ? (h[i / 2] >> 4) : (h[i / 2] & 0xf);
        const char c = hex[i];
        out += (c >= 'a' && nib >= 8) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    }
    return out;
}

}  // namespace keymaster::eth
