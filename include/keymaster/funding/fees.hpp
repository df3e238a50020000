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

//! What a mined transaction paid: gasUsed x effectiveGasPrice; a receipt without one (pre-London
//! nodes) or with an absurd one is priced at the transaction's own gas price (legacy) or max fee.
[[nodiscard]] Wei fee_paid(std::uint64_t gas_used, const std::optional<Wei>& effective_gas_price, const Fees& tx);

}  // namespace keymaster::funding
