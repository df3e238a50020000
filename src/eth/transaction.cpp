#include "keymaster/eth/transaction.hpp"

#include <algorithm>

#include "keymaster/crypto/keccak.hpp"
#include "keymaster/eth/rlp.hpp"

namespace keymaster::eth {
namespace {

using rlp::Item;

Item to_item(const std::optional<Address>& to) {
    return to ? Item::string(ByteView(to->bytes())) : Item::string(Bytes{});
}

Item access_list_item(const std::vector<AccessListEntry>& list) {
    Item out = Item::list({});
    for (const auto& e : list) {
        Item keys = Item::list({});
        for (const auto& k : e.storage_keys) keys.items.push_back(Item::string(ByteView(k)));
        out.items.push_back(Item::list({Item::string(ByteView(e.address.bytes())), std::move(keys)}));
    }
    return out;
}

// The unsigned fields in wire order.
std::vector<Item> fields(const Transaction& tx) {
    switch (tx.type) {
        case TxType::kLegacy:
            return {Item::uint(tx.nonce), Item::uint(tx.gas_price), Item::uint(tx.gas_limit),
                    to_item(tx.to),       Item::uint(tx.value),     Item::string(tx.data)};
        case TxType::kAccessList:
            return {Item::uint(tx.chain_id.value_or(0)), Item::uint(tx.nonce),  Item::uint(tx.gas_price),
                    Item::uint(tx.gas_limit),            to_item(tx.to),        Item::uint(tx.value),
                    Item::string(tx.data),               access_list_item(tx.access_list)};
        case TxType::kDynamicFee:
            return {Item::uint(tx.chain_id.value_or(0)),
                    Item::uint(tx.nonce),
                    Item::uint(tx.max_priority_fee_per_gas),
                    Item::uint(tx.max_fee_per_gas),
                    Item::uint(tx.gas_limit),
                    to_item(tx.to),
                    Item::uint(tx.value),
                    Item::string(tx.data),
                    access_list_item(tx.access_list)};
    }
    return {};
}

Bytes with_type(TxType type, const Item& list) {
    Bytes out;
    if (type != TxType::kLegacy) out.push_back(static_cast<std::uint8_t>(type));
    rlp::encode(list, out);
    return out;
}

Item sig_scalar(const Hash32& v) {
    auto first = std::find_if(v.begin(), v.end(), [](std::uint8_t b) { return b != 0; });
    return Item::string(Bytes(first, v.end()));
}

Result<Hash32> to_hash32(const Item& item) {
    auto v = rlp::to_uint(item);
    if (!v) return v.error();
    return to_be32(*v);
}

Result<std::optional<Address>> decode_to(const Item& item) {
    if (item.is_list) return make_error_code(Errc::kRlpUnexpectedList);
    if (item.bytes.empty()) return std::optional<Address>{};
    if (item.bytes.size() != 20) return make_error_code(Errc::kBadAddressLength);
    ByteArray<20> a;
    std::copy(item.bytes.begin(), item.bytes.end(), a.begin());
    return std::optional<Address>(Address(a));
}

Result<std::vector<AccessListEntry>> decode_access_list(const Item& item) {
    if (!item.is_list) return make_error_code(Errc::kRlpUnexpectedString);
    std::vector<AccessListEntry> out;
    for (const auto& e : item.items) {
        if (!e.is_list || e.items.size() != 2 || e.items[0].is_list || !e.items[1].is_list)
            return make_error_code(Errc::kTxBadFieldCount);
        if (e.items[0].bytes.size() != 20) return make_error_code(Errc::kBadAddressLength);
        AccessListEntry entry;
        ByteArray<20> a;
        std::copy(e.items[0].bytes.begin(), e.items[0].bytes.end(), a.begin());
        entry.address = Address(a);
        for (const auto& k : e.items[1].items) {
            if (k.is_list || k.bytes.size() != 32) return make_error_code(Errc::kRlpNonCanonical);
            Hash32 key;
            std::copy(k.bytes.begin(), k.bytes.end(), key.begin());
            entry.storage_keys.push_back(key);
        }
        out.push_back(std::move(entry));
    }
    return out;
}

#define KM_TRY(var, expr)                    \
    auto var##_r = (expr);                   \
    if (!var##_r) return var##_r.error();    \
    auto var = std::move(*var##_r)

Result<SignedTransaction> decode_legacy(const Item& list) {
    if (list.items.size() != 9) return make_error_code(Errc::kTxBadFieldCount);
    const auto& f = list.items;
    SignedTransaction out;
    out.tx.type = TxType::kLegacy;
    KM_TRY(nonce, rlp::to_uint64(f[0]));
    KM_TRY(gas_price, rlp::to_uint(f[1]));
    KM_TRY(gas_limit, rlp::to_uint64(f[2]));
    KM_TRY(to, decode_to(f[3]));
    KM_TRY(value, rlp::to_uint(f[4]));
    if (f[5].is_list) return make_error_code(Errc::kRlpUnexpectedList);
    KM_TRY(v, rlp::to_uint(f[6]));
    KM_TRY(r, to_hash32(f[7]));
    KM_TRY(s, to_hash32(f[8]));
    out.tx.nonce = nonce;
    out.tx.gas_price = gas_price;
    out.tx.gas_limit = gas_limit;
    out.tx.to = to;
    out.tx.value = value;
    out.tx.data = f[5].bytes;
    out.r = r;
    out.s = s;
    if (v == 27 || v == 28) {
        out.y_parity = static_cast<std::uint8_t>(v - 27);
    } else if (v >= 35) {
        const Wei chain = (v - 35) / 2;
        if (chain > std::numeric_limits<std::uint64_t>::max()) return make_error_code(Errc::kTxBadV);
        out.tx.chain_id = static_cast<std::uint64_t>(chain);
        out.y_parity = static_cast<std::uint8_t>((v - 35) % 2);
    } else {
        return make_error_code(Errc::kTxBadV);
    }
    return out;
}

Result<SignedTransaction> decode_typed(TxType type, const Item& list) {
    const std::size_t n = type == TxType::kDynamicFee ? 12 : 11;
    if (list.items.size() != n) return make_error_code(Errc::kTxBadFieldCount);
    const auto& f = list.items;
    SignedTransaction out;
    out.tx.type = type;
    std::size_t i = 0;
    KM_TRY(chain_id, rlp::to_uint64(f[i++]));
    KM_TRY(nonce, rlp::to_uint64(f[i++]));
    out.tx.chain_id = chain_id;
    out.tx.nonce = nonce;
    if (type == TxType::kDynamicFee) {
        KM_TRY(tip, rlp::to_uint(f[i++]));
        KM_TRY(max_fee, rlp::to_uint(f[i++]));
        out.tx.max_priority_fee_per_gas = tip;
        out.tx.max_fee_per_gas = max_fee;
    } else {
        KM_TRY(gas_price, rlp::to_uint(f[i++]));
        out.tx.gas_price = gas_price;
    }
    KM_TRY(gas_limit, rlp::to_uint64(f[i++]));
    KM_TRY(to, decode_to(f[i++]));
    KM_TRY(value, rlp::to_uint(f[i++]));
    if (f[i].is_list) return make_error_code(Errc::kRlpUnexpectedList);
    out.tx.gas_limit = gas_limit;
    out.tx.to = to;
    out.tx.value = value;
    out.tx.data = f[i++].bytes;
    KM_TRY(access_list, decode_access_list(f[i++]));
    out.tx.access_list = std::move(access_list);
    KM_TRY(y, rlp::to_uint(f[i++]));
    if (y > 1) return make_error_code(Errc::kTxBadV);
    KM_TRY(r, to_hash32(f[i++]));
    KM_TRY(s, to_hash32(f[i++]));
    out.y_parity = static_cast<std::uint8_t>(y);
    out.r = r;
    out.s = s;
    return out;
}

#undef KM_TRY

}  // namespace

Bytes signing_payload(const Transaction& tx) {
    std::vector<Item> f = fields(tx);
    if (tx.type == TxType::kLegacy && tx.chain_id) {
        f.push_back(Item::uint(*tx.chain_id));
        f.push_back(Item::uint(0));
        f.push_back(Item::uint(0));
    }
    return with_type(tx.type, Item::list(std::move(f)));
}

Hash32 signing_hash(const Transaction& tx) { return crypto::keccak256(ByteView(signing_payload(tx))); }

Bytes encode_signed(const Transaction& tx, const crypto::RecoverableSignature& sig) {
    std::vector<Item> f = fields(tx);
    if (tx.type == TxType::kLegacy) {
        const Wei v = tx.chain_id ? Wei(*tx.chain_id) * 2 + 35 + sig.recovery_id : Wei(27 + sig.recovery_id);
        f.push_back(Item::uint(v));
    } else {
        f.push_back(Item::uint(sig.recovery_id));
    }
    f.push_back(sig_scalar(sig.r));
    f.push_back(sig_scalar(sig.s));
    return with_type(tx.type, Item::list(std::move(f)));
}

Hash32 transaction_hash(ByteView raw) { return crypto::keccak256(raw); }

Result<SignedTransaction> decode_signed(ByteView raw) {
    if (raw.empty()) return make_error_code(Errc::kRlpTruncated);
    if (raw[0] >= 0xc0) {
        auto item = rlp::decode(raw);
        if (!item) return item.error();
        if (!item->is_list) return make_error_code(Errc::kRlpUnexpectedString);
        return decode_legacy(*item);
    }
    if (raw[0] != 0x01 && raw[0] != 0x02) return make_error_code(Errc::kTxUnsupportedType);
    auto item = rlp::decode(raw.subspan(1));
    if (!item) return item.error();
    if (!item->is_list) return make_error_code(Errc::kRlpUnexpectedString);
    return decode_typed(static_cast<TxType>(raw[0]), *item);
}

Result<Address> recover_sender(const SignedTransaction& stx, bool allow_high_s) {
    if (!allow_high_s && !crypto::is_low_s(stx.s)) return make_error_code(Errc::kTxBadSignature);
    auto key = crypto::recover(signing_hash(stx.tx), stx.r, stx.s, stx.y_parity);
    if (!key) return make_error_code(Errc::kTxBadSignature);
    return Address::from_public_key(*key);
}

}  // namespace keymaster::eth
