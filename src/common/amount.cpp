#include "keymaster/common/amount.hpp"

#include "keymaster/common/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <utility>

namespace keymaster {
namespace {

using Big = boost::multiprecision::cpp_int;

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

int unit_exponent(std::string_view unit) {
    static constexpr std::pair<std::string_view, int> kUnits[] = {
        {"wei", 0},    {"kwei", 3},   {"mwei", 6},   {"gwei", 9},
        {"szabo", 12}, {"finney", 15}, {"ether", 18}, {"eth", 18},
    };
    const std::string lower = to_lower(unit);
    for (const auto& [name, exp] : kUnits)
        if (lower == name) return exp;
    return -1;
}

Big pow10(int n) {
    Big r = 1;
    for (int i = 0; i < n; ++i) r *= 10;
    return r;
}

// Decimal digits to a number. (Not Big(string): Boost reads a leading 0 as octal, "0123" == 83.)
Big decimal(std::string_view digits) {
    Big r = 0;
    for (char c : digits) r = r * 10 + (c - '0');
    return r;
}

const Big& max_u256() {
    static const Big kMax = (Big(1) << 256) - 1;
    return kMax;
}

}  // namespace

const Wei& max_sane_amount() {
    static const Wei kMax = (Wei(1) << 128) - 1;
    return kMax;
}

Result<Wei> parse_amount(std::string_view text) {
    text = trim(text);
    if (text.empty()) return make_error_code(Errc::kEmptyAmount);
    if (text.front() == '-') return make_error_code(Errc::kNegativeAmount);
    if (text.front() == '+') text.remove_prefix(1);

    std::size_t i = 0;
    std::string int_part, frac_part;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) int_part += text[i++];
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) frac_part += text[i++];
    }
    if (int_part.empty() && frac_part.empty()) return make_error_code(Errc::kBadAmount);

    std::string_view unit = trim(text.substr(i));
    int exponent = 0;
    if (!unit.empty()) {
        if (!std::all_of(unit.begin(), unit.end(), [](unsigned char c) { return std::isalpha(c); }))
            return make_error_code(Errc::kBadAmount);
        exponent = unit_exponent(unit);
        if (exponent < 0) return make_error_code(Errc::kUnknownUnit);
    }
    // Trailing zeros of the fraction carry no value: "1.50 gwei" is fine.
    while (!frac_part.empty() && frac_part.back() == '0') frac_part.pop_back();
    if (static_cast<int>(frac_part.size()) > exponent) return make_error_code(Errc::kFractionalWei);
    if (int_part.size() + static_cast<std::size_t>(exponent) > 90) return make_error_code(Errc::kAmountOverflow);

    Big value = decimal(int_part) * pow10(exponent);
    if (!frac_part.empty()) value += decimal(frac_part) * pow10(exponent - static_cast<int>(frac_part.size()));
    if (value > max_u256()) return make_error_code(Errc::kAmountOverflow);
    return static_cast<Wei>(value);
}

Result<Wei> parse_quantity(std::string_view text) {
    if (text.size() < 3 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
        return make_error_code(Errc::kBadHex);
    text.remove_prefix(2);
    while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
    if (text.size() > 64) return make_error_code(Errc::kAmountOverflow);
    Wei value = 0;
    for (char c : text) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return make_error_code(Errc::kBadHex);
        value = (value << 4) | Wei(d);
    }
    return value;
}

std::string to_quantity(const Wei& value) {
    if (value == 0) return "0x0";
    return "0x" + to_lower(value.str(0, std::ios_base::hex));
}

std::string format_units(const Wei& value, unsigned decimals) {
    std::string digits = value.str();
    if (decimals == 0) return digits;
    if (digits.size() <= decimals) digits.insert(0, decimals - digits.size() + 1, '0');
    std::string int_part = digits.substr(0, digits.size() - decimals);
    std::string frac = digits.substr(digits.size() - decimals);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    return frac.empty() ? int_part : int_part + "." + frac;
}

double to_double(const Wei& value, unsigned decimals) {
    return value.convert_to<double>() / std::pow(10.0, static_cast<double>(decimals));
}

Bytes to_be_bytes(const Wei& value) {
    Bytes out;
    boost::multiprecision::export_bits(value, std::back_inserter(out), 8, true);
    auto first = std::find_if(out.begin(), out.end(), [](std::uint8_t b) { return b != 0; });
    out.erase(out.begin(), first);
    return out;
}

Result<Wei> from_be_bytes(ByteView bytes) {
    if (bytes.size() > 32) return make_error_code(Errc::kAmountOverflow);
    Wei value = 0;
    for (auto b : bytes) value = (value << 8) | Wei(b);
    return value;
}

Hash32 to_be32(const Wei& value) {
    Hash32 out{};
    Bytes b = to_be_bytes(value);
    std::copy(b.begin(), b.end(), out.end() - static_cast<std::ptrdiff_t>(b.size()));
    return out;
}

}  // namespace keymaster
