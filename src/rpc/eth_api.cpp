#include "keymaster/rpc/eth_api.hpp"

#include <cctype>
#include <limits>

namespace keymaster::rpc {


std::optional<Wei> as_quantity(const nlohmann::json& v) {
    if (!v.is_string()) return std::nullopt;
    auto r = parse_quantity(v.get<std::string>());
    if (!r) return std::nullopt;
    return *r;
}

std::optional<std::uint64_t> as_u64(const nlohmann::json& v) {
    auto q = as_quantity(v);
    if (!q || *q > std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
    return static_cast<std::uint64_t>(*q);
}

std::optional<BlockInfo> as_block(const nlohmann::json& v) {
    if (!v.is_object() || !v.contains("number")) return std::nullopt;
    auto n = as_u64(v["number"]);
    if (!n) return std::nullopt;
    BlockInfo b;
    b.number = *n;
    if (v.contains("hash") && v["hash"].is_string()) b.hash = v["hash"].get<std::string>();
    if (v.contains("baseFeePerGas") && !v["baseFeePerGas"].is_null()) {
        b.base_fee = as_quantity(v["baseFeePerGas"]);
        if (!b.base_fee) return std::nullopt;
    }
    return b;
}

std::optional<ReceiptInfo> as_receipt(const nlohmann::json& v) {
    if (!v.is_object()) return std::nullopt;
    ReceiptInfo r;
    auto status = v.contains("status") ? as_u64(v["status"]) : std::nullopt;
    auto block = v.contains("blockNumber") ? as_u64(v["blockNumber"]) : std::nullopt;
    auto gas = v.contains("gasUsed") ? as_u64(v["gasUsed"]) : std::nullopt;
    if (!status || !block || !gas) return std::nullopt;
    r.success = *status == 1;
    r.block = *block;
    r.gas_used = *gas;
    if (v.contains("blockHash") && v["blockHash"].is_string()) r.block_hash = v["blockHash"].get<std::string>();
    if (v.contains("effectiveGasPrice")) r.effective_gas_price = as_quantity(v["effectiveGasPrice"]);
    const std::pair<const char*, std::optional<Wei>*> parts[] = {
        {"l1Fee", &r.l1_fee}, {"operatorFeeScalar", &r.operator_fee_scalar}, {"operatorFeeConstant", &r.operator_fee_constant}};
    for (const auto& [name, slot] : parts) {
        if (!v.contains(name) || v[name].is_null()) continue;
        *slot = as_quantity(v[name]);
        if (!*slot || **slot > max_sane_amount()) {
            *slot = std::nullopt;
            r.fee_unreadable = true;
        }
    }
    return r;
}

std::optional<TxInfo> as_tx(const nlohmann::json& v) {
    if (!v.is_object() || !v.contains("hash") || !v["hash"].is_string() || !v.contains("from") || !v["from"].is_string() ||
        !v.contains("nonce"))
        return std::nullopt;
    const auto nonce = as_u64(v["nonce"]);
    if (!nonce) return std::nullopt;
    TxInfo t;
    t.hash = v["hash"].get<std::string>();
    t.from = v["from"].get<std::string>();
    for (auto* text : {&t.hash, &t.from})
        for (auto& c : *text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    t.nonce = *nonce;
    if (v.contains("blockNumber") && !v["blockNumber"].is_null()) {
        t.block = as_u64(v["blockNumber"]);
        if (!t.block) return std::nullopt;
        if (v.contains("blockHash") && v["blockHash"].is_string()) t.block_hash = v["blockHash"].get<std::string>();
    }
    if (v.contains("gasPrice") && !v["gasPrice"].is_null()) t.gas_price = as_quantity(v["gasPrice"]);
    return t;
}

}  // namespace keymaster::rpc
