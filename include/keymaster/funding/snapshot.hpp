#pragma once

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
    std::vector<AccountState> accounts;  //!< in the order of the accounts polled
};

}  // namespace keymaster::funding
