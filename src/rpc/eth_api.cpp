#include "keymaster/rpc/eth_api.hpp"

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

}  // namespace keymaster::rpc
