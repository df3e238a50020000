#pragma once

#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/common/bytes.hpp"
#include "keymaster/common/error.hpp"

//! Recursive Length Prefix encoding (Ethereum Yellow Paper, appendix B).
namespace keymaster::eth::rlp {

//! A decoded or to-be-encoded RLP item: a byte string or a list of items.
struct Item {
    bool is_list = false;
    Bytes bytes;
    std::vector<Item> items;

    static Item string(Bytes b) { return Item{false, std::move(b), {}}; }
    static Item string(ByteView b) { return Item{false, Bytes(b.begin(), b.end()), {}}; }
    //! A scalar: minimal big-endian bytes, empty for zero.
    static Item uint(const Wei& v) { return Item{false, to_be_bytes(v), {}}; }
    static Item list(std::vector<Item> children) { return Item{true, {}, std::move(children)}; }

    friend bool operator==(const Item&, const Item&) = default;
};

//! Appends the encoding of `item` to `out`.
void encode(const Item& item, Bytes& out);
Bytes encode(const Item& item);

//! Decodes exactly one item spanning all of `input`; rejects non-canonical forms and trailing bytes.
[[nodiscard]] Result<Item> decode(ByteView input);

//! A scalar from a string item: at most 32 bytes, no leading zero byte (canonical).
[[nodiscard]] Result<Wei> to_uint(const Item& item);

//! A scalar that must fit in 64 bits.
[[nodiscard]] Result<std::uint64_t> to_uint64(const Item& item);

}  // namespace keymaster::eth::rlp
