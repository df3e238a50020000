#include "keymaster/eth/rlp.hpp"

#include <limits>

namespace keymaster::eth::rlp {
namespace {

constexpr int kMaxDepth = 256;

void encode_length(std::size_t len, std::uint8_t short_base, std::uint8_t long_base, Bytes& out) {
    if (len < 56) {
        out.push_back(static_cast<std::uint8_t>(short_base + len));
        return;
    }
    std::uint8_t be[8];
    int n = 0;
    for (std::size_t v = len; v != 0; v >>= 8) be[n++] = static_cast<std::uint8_t>(v & 0xff);
    out.push_back(static_cast<std::uint8_t>(long_base + n));
    while (n > 0) out.push_back(be[--n]);
}

struct Decoder {
    ByteView in;
    std::size_t pos = 0;

    Result<std::size_t> read_length(std::size_t len_of_len) {
        if (len_of_len > 8) return make_error_code(Errc::kRlpTooLarge);
        if (in.size() - pos < len_of_len) return make_error_code(Errc::kRlpTruncated);
        if (in[pos] == 0) return make_error_code(Errc::kRlpNonCanonical);
        std::uint64_t len = 0;
        for (std::size_t i = 0; i < len_of_len; ++i) len = (len << 8) | in[pos + i];
        pos += len_of_len;
        if (len < 56) return make_error_code(Errc::kRlpNonCanonical);
        if (len > in.size() - pos) return make_error_code(Errc::kRlpTruncated);
        return static_cast<std::size_t>(len);
    }

    Result<Item> item(std::size_t end, int depth) {
        if (depth > kMaxDepth) return make_error_code(Errc::kRlpTooLarge);
        if (pos >= end) return make_error_code(Errc::kRlpTruncated);
        const std::uint8_t b = in[pos++];
        if (b < 0x80) return Item::string(Bytes{b});
        std::size_t len;
        bool list = b >= 0xc0;
        if (b <= 0xb7) {
            len = b - 0x80u;
        } else if (b <= 0xbf) {
            auto l = read_length(b - 0xb7u);
            if (!l) return l.error();
            len = *l;
        } else if (b <= 0xf7) {
            len = b - 0xc0u;
        } else {
            auto l = read_length(b - 0xf7u);
            if (!l) return l.error();
            len = *l;
        }
        if (pos > end || len > end - pos) return make_error_code(Errc::kRlpTruncated);
        if (!list) {
            if (len == 1 && in[pos] < 0x80) return make_error_code(Errc::kRlpNonCanonical);
            Item out = Item::string(in.subspan(pos, len));
            pos += len;
            return out;
        }
        const std::size_t list_end = pos + len;
        Item out = Item::list({});
        while (pos < list_end) {
            auto child = item(list_end, depth + 1);
            if (!child) return child.error();
            out.items.push_back(std::move(*child));
        }
        return out;
    }
};

}  // namespace

void encode(const Item& item, Bytes& out) {
    if (!item.is_list) {
        if (item.bytes.size() == 1 && item.bytes[0] < 0x80) {
            out.push_back(item.bytes[0]);
            return;
        }
        encode_length(item.bytes.size(), 0x80, 0xb7, out);
        out.insert(out.end(), item.bytes.begin(), item.bytes.end());
        return;
    }
    Bytes payload;
    for (const auto& child : item.items) encode(child, payload);
    encode_length(payload.size(), 0xc0, 0xf7, out);
    out.insert(out.end(), payload.begin(), payload.end());
}

Bytes encode(const Item& item) {
    Bytes out;
    encode(item, out);
    return out;
}

Result<Item> decode(ByteView input) {
    Decoder d{input};
    auto item = d.item(input.size(), 0);
    if (!item) return item.error();
    if (d.pos != input.size()) return make_error_code(Errc::kRlpTrailingBytes);
    return item;
}

Result<Wei> to_uint(const Item& item) {
    if (item.is_list) return make_error_code(Errc::kRlpUnexpectedList);
    if (!item.bytes.empty() && item.bytes[0] == 0) return make_error_code(Errc::kRlpNonCanonical);
    if (item.bytes.size() > 32) return make_error_code(Errc::kRlpTooLarge);
    return from_be_bytes(item.bytes);
}

Result<std::uint64_t> to_uint64(const Item& item) {
    auto v = to_uint(item);
    if (!v) return v.error();
    if (*v > std::numeric_limits<std::uint64_t>::max()) return make_error_code(Errc::kRlpTooLarge);
    return static_cast<std::uint64_t>(*v);
}

}  // namespace keymaster::eth::rlp
