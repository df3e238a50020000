#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "keymaster/common/amount.hpp"

//! Typed views of eth_* results. A value that does not parse is nullopt, never zero.
namespace keymaster::rpc {

//! A QUANTITY result ("0x1a").
std::optional<Wei> as_quantity(const nlohmann::json& v);
//! A QUANTITY that must fit in 64 bits (block numbers, nonces, chain ids, gas).
std::optional<std::uint64_t> as_u64(const nlohmann::json& v);

//! The fields of a block header that keymaster uses.
struct BlockInfo {
    std::uint64_t number = 0;
    std::optional<Wei> base_fee;  //!< absent before London
    std::string hash;             //!< "" when the answer has none
};
std::optional<BlockInfo> as_block(const nlohmann::json& v);

//! The fields of a receipt that keymaster uses.
struct ReceiptInfo {
    bool success = false;
    std::uint64_t block = 0;
    std::uint64_t gas_used = 0;
    std::optional<Wei> effective_gas_price;
    std::optional<Wei> l1_fee;                 //!< OP Stack: `l1Fee`
    std::optional<Wei> operator_fee_scalar;    //!< OP Stack since Isthmus: `operatorFeeScalar`
    std::optional<Wei> operator_fee_constant;  //!< and `operatorFeeConstant`
    //! One of those three is there but malformed or above max_sane_amount(): the receipt still
    //! proves the transaction mined, but what it paid is understated (the caller says so).
    bool fee_unreadable = false;
    std::string block_hash;  //!< `blockHash` ("" when the answer has none)
};
//! A receipt's fields; empty when status, blockNumber or gasUsed is missing or malformed.
std::optional<ReceiptInfo> as_receipt(const nlohmann::json& v);

//! A transaction as eth_getTransactionByHash (or a block with full transactions) shows it.
struct TxInfo {
    std::string hash, from;               //!< lower-case hex
    std::uint64_t nonce = 0;
    std::optional<std::uint64_t> block;   //!< mined in this block (none: pending)
    std::string block_hash;
    std::optional<Wei> gas_price;         //!< for a mined one, the price it paid per gas where the node says
};
//! Its fields; empty when hash, from or nonce is missing or malformed (or `v` is null).
std::optional<TxInfo> as_tx(const nlohmann::json& v);

}  // namespace keymaster::rpc
