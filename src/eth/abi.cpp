#include "keymaster/eth/abi.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>

#include "keymaster/crypto/keccak.hpp"

namespace keymaster::eth::abi {

namespace {

// The parameter types of "name(t1,t2,...)"; none when it is not of that shape.
std::optional<std::vector<std::string_view>> parameter_types(std::string_view signature) {
    const auto open = signature.find('('), close = signature.rfind(')');
    if (open == std::string_view::npos || open == 0 || close != signature.size() - 1) return std::nullopt;
    std::vector<std::string_view> types;
    auto inner = signature.substr(open + 1, close - open - 1);
    while (!inner.empty()) {
        const auto comma = inner.find(',');
        types.push_back(inner.substr(0, comma));
        if (comma == std::string_view::npos) break;
        inner.remove_prefix(comma + 1);
        if (inner.empty()) return std::nullopt;  // a trailing comma
    }
    return types;
}

// The bits of "uintN" (0: not a uint type).
unsigned uint_bits(std::string_view type) {
    if (type == "uint") return 0;  // not canonical: the selector would be of another signature
    if (!type.starts_with("uint")) return 0;
    unsigned bits = 0;
    const auto digits = type.substr(4);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (ec != std::errc{} || end != digits.data() + digits.size() || bits == 0 || bits > 256 || bits % 8) return 0;
    return bits;
}

void put_word(Bytes& out, const Wei& value) {
    const auto word = to_be32(value);
    out.insert(out.end(), word.begin(), word.end());
}

// One static argument's word; none when its kind does not match `type`.
std::optional<Wei> static_word(std::string_view type, const Arg& arg) {
    if (type == "address") {
        const auto* a = std::get_if<Address>(&arg);
        if (!a) return std::nullopt;
        return from_be_bytes(a->bytes()).value();
    }
    if (type == "bool") {
        const auto* b = std::get_if<bool>(&arg);
        if (!b) return std::nullopt;
        return Wei(*b ? 1 : 0);
    }
    const unsigned bits = uint_bits(type);
    const auto* v = std::get_if<Wei>(&arg);
    if (!bits || !v) return std::nullopt;
    if (bits < 256 && *v >= (Wei(1) << bits)) return std::nullopt;
    return *v;
}

// `bytes` in the tail: its length, then its content padded to whole words.
void put_bytes(Bytes& tail, const Bytes& data) {
    put_word(tail, Wei(data.size()));
    tail.insert(tail.end(), data.begin(), data.end());
    tail.resize(tail.size() + (32 - data.size() % 32) % 32, 0);
}

}  // namespace

ByteArray<4> selector(std::string_view signature) {
    const auto hash = crypto::keccak256(signature);
    ByteArray<4> out{};
    std::copy_n(hash.begin(), 4, out.begin());
    return out;
}

Result<Bytes> encode_call(std::string_view signature, const std::vector<Arg>& args) {
    const auto types = parameter_types(signature);
    if (!types || types->size() != args.size()) return make_error_code(Errc::kAbiMismatch);
    const auto sel = selector(signature);
    Bytes head(sel.begin(), sel.end()), tail;
    const std::size_t head_size = 32 * args.size();
    for (std::size_t i = 0; i < args.size(); ++i) {
        if ((*types)[i] == "bytes") {
            const auto* data = std::get_if<Bytes>(&args[i]);
            if (!data) return make_error_code(Errc::kAbiMismatch);
            put_word(head, Wei(head_size + tail.size()));
            put_bytes(tail, *data);
            continue;
        }
        const auto word = static_word((*types)[i], args[i]);
        if (!word) return make_error_code(Errc::kAbiMismatch);
        put_word(head, *word);
    }
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
}

}  // namespace keymaster::eth::abi
