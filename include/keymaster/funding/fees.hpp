#pragma once

#include <optional>
#include <string>

#include "keymaster/common/fault.hpp"
#include "keymaster/config/config.hpp"
#include "keymaster/eth/transaction.hpp"
#include "keymaster/funding/snapshot.hpp"

//! Fee rules (pure): the fees of a round, of a replacement, and what a mined transaction paid.
namespace keymaster::funding {

//! Fee parameters of a transaction.
struct Fees {
    eth::TxType type = eth::TxType::kDynamicFee;
    Wei gas_price = 0;     //!< legacy
    Wei max_fee = 0;       //!< EIP-1559 max fee per gas
    Wei priority_fee = 0;  //!< EIP-1559 tip
    //! The most one unit of gas can cost.
    [[nodiscard]] Wei per_gas_cap() const { return type == eth::TxType::kLegacy ? gas_price : max_fee; }
    bool operator==(const Fees&) const = default;
};

//! Chooses the transaction type (txType, or EIP-1559 when the latest block has a base fee) and
//! fees: max fee = 2 x base fee + tip (EIP-1559). Never above maxFeePerGas: if the chain's price is
//! above it, a Problem (kFees) says so and nothing is sent. A fee value above max_sane_amount() from the
//! node is an error, never a wrapped number.
[[nodiscard]] Expected<Fees> choose_fees(const NetworkSnapshot& snap, const config::Network& net);

//! The highest per-gas fee a replacement of a nonce may have: maxFeePerGas when set, and never more
//! than `replaceFeeCeiling` times the per-gas cap of that nonce's first transaction.
[[nodiscard]] Wei replacement_ceiling(const Fees& first, const config::Network& net);

//! Fees of a replacement: at least 12.5% above the stuck transaction's, rounded up (geth and most
//! nodes want 10%); empty when that would exceed `ceiling`.
[[nodiscard]] std::optional<Fees> bumped_fees(const Fees& old, const Wei& ceiling);

//! The fee fields of a receipt.
struct ReceiptFees {
    std::uint64_t gas_used = 0;
    std::optional<Wei> effective_gas_price;
    std::optional<Wei> l1_fee;                 //!< OP Stack: `l1Fee`
    std::optional<Wei> operator_fee_scalar;    //!< OP Stack since Isthmus: `operatorFeeScalar`
    std::optional<Wei> operator_fee_constant;  //!< and `operatorFeeConstant`
};

//! What a mined transaction paid, by part.
struct FeePaid {
    Wei gas = 0;           //!< gasUsed x effectiveGasPrice
    Wei l1 = 0;            //!< OP Stack: the L1 data fee
    Wei operator_fee = 0;  //!< OP Stack since Isthmus: see fee_paid
    [[nodiscard]] Wei total() const { return gas + l1 + operator_fee; }
    bool operator==(const FeePaid&) const = default;
};

//! What a mined transaction paid: gasUsed x effectiveGasPrice (a receipt without one, pre-London,
//! or with an absurd one is priced at the transaction's own gas price or max fee), plus the
//! receipt's L1 data fee and operator fee where it carries them: gasUsed x operatorFeeScalar / 1e6
//! + operatorFeeConstant (Isthmus, rounded down), or on a chain past `jovian` gasUsed x
//! operatorFeeScalar x 100 + operatorFeeConstant.
[[nodiscard]] FeePaid fee_paid(const ReceiptFees& r, const Fees& tx, bool jovian);

//! The most one transfer of `gas_limit` gas may cost in fees: gas_limit x the per-gas cap, and on
//! an OP Stack chain its L1 data fee's bound times the margin and its operator fee for gas_limit.
[[nodiscard]] Wei max_fee(const Fees& fees, const std::optional<OpFees>& op, std::uint64_t gas_limit);

//! A factor in thousandths applied to an amount, rounded up (margins).
[[nodiscard]] Wei times_permille(const Wei& w, std::uint64_t permille);

//! An Arbitrum gas limit: the estimate times the margin (thousandths), rounded up, at least
//! `floor`; empty if that does not fit in 64 bits.
[[nodiscard]] std::optional<std::uint64_t> with_margin(std::uint64_t estimate, std::uint64_t margin_permille, std::uint64_t floor);

//! The kind of chain from the poll's probes: Arbitrum by chain id (One, Nova, Sepolia) or by
//! ArbSys answering arbOSVersion(); the OP Stack by code at the GasPriceOracle predeploy.
[[nodiscard]] L2Kind detect_l2(std::uint64_t chain_id, bool oracle_has_code, bool arbos_answers);

}  // namespace keymaster::funding
