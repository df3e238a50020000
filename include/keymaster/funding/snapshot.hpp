#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "keymaster/funding/topology.hpp"

namespace keymaster::funding {

//! One account as read this round. An unread balance stays empty with the reason.
//! Refers to its account: the accounts vector given to poll() must outlive the snapshot (the
//! Worker holds it). No copy per account per poll.
struct AccountState {
    const Account& account;
    std::optional<Wei> balance;
    std::string error;
};

//! The kind of chain a network is, for its fees.
enum class L2Kind { kNone, kOp, kArbitrum };

//! What an OP Stack chain charges a transfer beyond gas x price, read from its GasPriceOracle in
//! the poll's batch.
struct OpFees {
    Wei l1_fee_bound = 0;           //!< the L1 data fee's upper bound for a transfer's size
    std::uint64_t margin_permille = 1500;  //!< l1FeeMargin: the bound is budgeted times this
    Wei operator_fee_base = 0;      //!< getOperatorFee(0): the operator fee's constant part
    Wei operator_fee_per_mgas = 0;  //!< what the operator fee adds per million gas
    //! isJovian(): receipts' operator fee is Jovian's formula (false where the oracle does not
    //! answer it: before Jovian)
    bool jovian = false;
};

//! Everything one poll of a network learns, from one batched round trip.
struct NetworkSnapshot {
    std::string network;
    bool reachable = false;
    std::string error;  //!< why not reachable
    bool chain_id_mismatch = false;  //!< not reachable because the endpoint serves another chain
    std::uint64_t chain_id = 0;
    std::uint64_t block = 0;
    std::optional<Wei> base_fee;  //!< London and later
    eth::Address bank;
    std::optional<Wei> bank_balance;
    std::optional<std::uint64_t> bank_nonce;  //!< pending transaction count
    std::optional<std::uint64_t> bank_latest_nonce;  //!< mined transaction count (the bank audit's)
    std::optional<Wei> gas_price;
    std::optional<Wei> priority_fee;  //!< eth_maxPriorityFeePerGas, if the node has it
    std::optional<L2Kind> l2;         //!< set or detected (empty: not known yet)
    std::optional<OpFees> op_fees;    //!< OP Stack: this poll's oracle reads (empty: unread)
    std::vector<AccountState> accounts;  //!< in the order of the accounts polled
    //! The blocks the poll was asked about (the heights of our mined top-ups not final yet): each
    //! one's hash, "" where the chain has no block there, none where the query failed.
    std::map<std::uint64_t, std::optional<std::string>> hash_at;
    std::optional<std::uint64_t> finalized;  //!< the chain's `finalized` block, where asked and answered
};

}  // namespace keymaster::funding
