// A JSON-RPC batch of the chain module whose every request says at which block it was answered
// (not a public header).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"

namespace keymaster::chain::detail {

//! The calls of one RpcClient::batch, each one's place remembered (read by the index add()
//! returns, never by arithmetic). RpcClient splits a batch into requests of `batch_size` calls
//! (the first `riders` on top of the first), and a provider may answer each request from another
//! backend: every request after the first starts with an eth_blockNumber of its own (on top of
//! batch_size: RpcClient::batch(take(), riders(), attempts, 1)), so that oldest_head() can say how
//! old the oldest answer of the batch may be (read your own writes). Round trips are unchanged.
class Batch {
public:
    Batch(std::size_t batch_size, std::size_t riders) : size_(batch_size ? batch_size : 1), riders_(riders) {}

    std::size_t add(rpc::Call call) {
        const std::size_t n = calls_.size();
        if (n >= riders_ + size_ && (n - riders_ - size_) % (size_ + 1) == 0) {
            heads_.push_back(n);
            calls_.emplace_back("eth_blockNumber");
        }
        calls_.push_back(std::move(call));
        return calls_.size() - 1;
    }
    //! Each later request's own eth_blockNumber.
    static constexpr std::size_t kLaterRiders = 1;
    void reserve(std::size_t n) { calls_.reserve(n + n / size_ + 1); }
    [[nodiscard]] std::size_t riders() const { return riders_; }
    //! The calls, for RpcClient::batch(calls, riders(), attempts, kLaterRiders).
    std::vector<rpc::Call> take() { return std::move(calls_); }
    //! The oldest block the later requests' eth_blockNumber answered (none: the batch fit in one
    //! request); 0 when one of them did not answer (its request's age is unknown: treat it as old).
    [[nodiscard]] std::optional<std::uint64_t> oldest_head(const std::vector<rpc::CallResult>& r) const {
        std::optional<std::uint64_t> oldest;
        for (auto at : heads_) {
            const auto b = at < r.size() && r[at].ok() ? rpc::as_u64(*r[at].result) : std::nullopt;
            oldest = std::min(oldest.value_or(b.value_or(0)), b.value_or(0));
        }
        return oldest;
    }

private:
    std::size_t size_, riders_;
    std::vector<rpc::Call> calls_;
    std::vector<std::size_t> heads_;
};

}  // namespace keymaster::chain::detail
