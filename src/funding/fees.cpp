#include "keymaster/funding/fees.hpp"

#include <algorithm>
#include <limits>

namespace keymaster::funding {
namespace {

std::string gwei(const Wei& w) { return format_units(w, 9) + " gwei"; }

Wei bump(const Wei& x) { return (x * 9 + 7) / 8; }  // +12.5%, rounded up

Problem refuse(std::string why) { return Problem{Fault::kFees, std::move(why)}; }

}  // namespace

Expected<Fees> choose_fees(const NetworkSnapshot& snap, const config::Network& net) {
    Fees f;
    const bool london = snap.base_fee.has_value();
    switch (net.tx_type) {
        case config::TxTypeSetting::kAuto: f.type = london ? eth::TxType::kDynamicFee : eth::TxType::kLegacy; break;
        case config::TxTypeSetting::kLegacy: f.type = eth::TxType::kLegacy; break;
        case config::TxTypeSetting::kEip1559:
            if (!london) return refuse("txType is eip1559 but the latest block has no base fee");
            f.type = eth::TxType::kDynamicFee;
            break;
    }
    const Wei& sane = max_sane_amount();
    for (const auto* v : {&snap.base_fee, &snap.gas_price, &snap.priority_fee})
        if (*v && **v > sane)
            return refuse("the node reports an absurd fee (" + v->value().str() + " wei per gas); not sending this round");
    const auto& cap = net.max_fee_per_gas;
    if (f.type == eth::TxType::kLegacy) {
        if (!snap.gas_price) return refuse("eth_gasPrice gave no answer");
        f.gas_price = *snap.gas_price;
        if (cap && f.gas_price > *cap)
            return refuse("gas price " + gwei(f.gas_price) + " is above maxFeePerGas " + gwei(*cap) + "; not sending");
        return f;
    }
    const Wei base = *snap.base_fee;
    Wei tip;
    if (snap.priority_fee) tip = *snap.priority_fee;
    else if (snap.gas_price && *snap.gas_price > base) tip = *snap.gas_price - base;
    else tip = Wei(1'000'000'000);
    f.max_fee = base * 2 + tip;
    if (cap) {
        if (base >= *cap) return refuse("base fee " + gwei(base) + " is at or above maxFeePerGas " + gwei(*cap) + "; not sending");
        f.max_fee = std::min(f.max_fee, *cap);
    }
    f.priority_fee = std::min(tip, f.max_fee - base);
    return f;
}

Wei replacement_ceiling(const Fees& first, const config::Network& net) {
    Wei ceiling = first.per_gas_cap() * net.replace_fee_ceiling;
    if (net.max_fee_per_gas) ceiling = std::min(ceiling, *net.max_fee_per_gas);
    return ceiling;
}

std::optional<Fees> bumped_fees(const Fees& old, const Wei& ceiling) {
    Fees f = old;
    if (f.type == eth::TxType::kLegacy) {
        f.gas_price = bump(old.gas_price);
        if (f.gas_price > ceiling) return std::nullopt;
        return f;
    }
    f.max_fee = bump(old.max_fee);
    f.priority_fee = bump(old.priority_fee);
    if (f.max_fee > ceiling) return std::nullopt;
    f.priority_fee = std::min(f.priority_fee, f.max_fee);
    return f;
}

FeePaid fee_paid(const ReceiptFees& r, const Fees& tx, bool jovian) {
    const auto& egp = r.effective_gas_price;
    const Wei price = egp && *egp <= max_sane_amount() ? *egp : tx.per_gas_cap();
    FeePaid out;
    out.gas = Wei(r.gas_used) * price;
    out.l1 = r.l1_fee.value_or(0);
    if (r.operator_fee_scalar || r.operator_fee_constant) {
        const Wei scaled = Wei(r.gas_used) * r.operator_fee_scalar.value_or(0);
        out.operator_fee = (jovian ? scaled * 100 : scaled / 1'000'000) + r.operator_fee_constant.value_or(0);
    }
    return out;
}

Wei times_permille(const Wei& w, std::uint64_t permille) { return (w * permille + 999) / 1000; }

Wei max_fee(const Fees& fees, const std::optional<OpFees>& op, std::uint64_t gas_limit) {
    Wei out = Wei(gas_limit) * fees.per_gas_cap();
    if (op)
        out += times_permille(op->l1_fee_bound, op->margin_permille) + op->operator_fee_base +
               (Wei(gas_limit) * op->operator_fee_per_mgas + 999'999) / 1'000'000;
    return out;
}

std::optional<std::uint64_t> with_margin(std::uint64_t estimate, std::uint64_t margin_permille, std::uint64_t floor) {
    const Wei g = std::max(times_permille(Wei(estimate), margin_permille), Wei(floor));
    if (g > std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
    return static_cast<std::uint64_t>(g);
}

L2Kind detect_l2(std::uint64_t chain_id, bool oracle_has_code, bool arbos_answers) {
    if (chain_id == 42161 || chain_id == 42170 || chain_id == 421614 || arbos_answers) return L2Kind::kArbitrum;
    if (oracle_has_code) return L2Kind::kOp;
    return L2Kind::kNone;
}

}  // namespace keymaster::funding
