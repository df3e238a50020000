#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keymaster/config/config.hpp"
#include "keymaster/funding/plan.hpp"

namespace keymaster::rpc {
class RpcClient;
}

namespace keymaster::chain {

//! One account as read this round. An unread balance stays empty with the reason.
//! Refers to its account: the accounts vector given to poll() must outlive the snapshot (the
//! topology does: it lives as long as the loaded config). No copy per account per poll.
struct AccountState {
    const funding::Account& account;
    std::optional<Wei> balance;
    std::string error;
};

//! Everything one poll of a network learns, from one batched round trip.
struct NetworkSnapshot {
    std::string network;
    bool reachable = false;
    std::string error;  //!< why not reachable
    std::uint64_t chain_id = 0;
    std::uint64_t block = 0;
    std::optional<Wei> base_fee;  //!< London and later
    eth::Address bank;
    std::optional<Wei> bank_balance;
    std::optional<std::uint64_t> bank_nonce;  //!< pending transaction count
    std::optional<Wei> gas_price;
    std::optional<Wei> priority_fee;  //!< eth_maxPriorityFeePerGas, if the node has it
    std::vector<AccountState> accounts;
};

//! Reads chain id, latest block, bank balance and pending nonce, gas prices and every account
//! balance in one batch (batchSize calls per request). Never throws for network trouble: an
//! unreachable network or a chain id other than the configured one comes back with `reachable`
//! false and the reason.
boost::asio::awaitable<NetworkSnapshot> poll(rpc::RpcClient& client, const config::Network& net,
                                             const eth::Address& bank, const std::vector<funding::Account>& accounts);

}  // namespace keymaster::chain
