#pragma once

#include <boost/asio/awaitable.hpp>
#include <vector>

#include "keymaster/config/config.hpp"
#include "keymaster/funding/snapshot.hpp"

namespace keymaster::rpc {
class RpcClient;
}

namespace keymaster::chain {


//! Reads chain id, latest block, bank balance and pending nonce, gas prices and every account
//! balance in one batch (batchSize accounts per request). Never throws for network trouble: an
//! unreachable network or a chain id other than the configured one comes back with `reachable`
//! false and the reason. `accounts` must outlive the snapshot (it refers to them).
//! The kind of chain (`l2`) is the config's, else `known` (an earlier poll's), else detected in
//! this batch; on an OP Stack chain the batch also reads the GasPriceOracle (op_fees).
//! What the poll's batch also asks (riders of its first request): the block at each of `heights`
//! (our mined top-ups not final yet: snapshot hash_at) and, with `finalized`, the chain's
//! `finalized` block, so that a reorg is seen from the same view as the balances.
struct BlockChecks {
    std::vector<std::uint64_t> heights;
    bool finalized = false;
};
[[nodiscard]] boost::asio::awaitable<funding::NetworkSnapshot> poll(rpc::RpcClient& client, const config::Network& net,
                                                           const eth::Address& bank,
                                                           const std::vector<funding::Account>& accounts,
                                                           std::optional<funding::L2Kind> known = std::nullopt,
                                                           const BlockChecks& checks = {});

}  // namespace keymaster::chain
