// Typed JSON-RPC batches of the chain module: each call added hands back the handle its answer is
// read by, never a position (not a public header).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"

namespace keymaster::chain::detail {

//! How an answer is read as `T` (nullopt: malformed, or JSON null): rpc's typed views.
template <class T>
struct Read;
template <>
struct Read<Wei> {  //!< a QUANTITY (balances, fees)
    static std::optional<Wei> from(const nlohmann::json& v) { return rpc::as_quantity(v); }
};
template <>
struct Read<std::uint64_t> {  //!< a QUANTITY of 64 bits (chain id, block number, nonce, gas)
    static std::optional<std::uint64_t> from(const nlohmann::json& v) { return rpc::as_u64(v); }
};
template <>
struct Read<rpc::BlockInfo> {
    static std::optional<rpc::BlockInfo> from(const nlohmann::json& v) { return rpc::as_block(v); }
};
template <>
struct Read<rpc::ReceiptInfo> {
    static std::optional<rpc::ReceiptInfo> from(const nlohmann::json& v) { return rpc::as_receipt(v); }
};
template <>
struct Read<rpc::TxInfo> {
    static std::optional<rpc::TxInfo> from(const nlohmann::json& v) { return rpc::as_tx(v); }
};
template <>
struct Read<std::string> {  //!< DATA as sent (code, an eth_call's return, a transaction hash)
    static std::optional<std::string> from(const nlohmann::json& v) {
        return v.is_string() ? std::optional<std::string>(v.get<std::string>()) : std::nullopt;
    }
};
template <>
struct Read<nlohmann::json> {  //!< the result as it came (a block with its transactions)
    static std::optional<nlohmann::json> from(const nlohmann::json& v) { return v; }
};

class Calls;
class Batch;
class Answers;

//! The handle of one call of a batch: where its answer is, and what it is read as. Only a batch
//! makes one (add()); a default one is no call and reads as not answered.
template <class T>
class Answer {
public:
    Answer() = default;

private:
    friend class Calls;
    friend class Batch;
    friend class Answers;
    explicit Answer(std::size_t at) : at_(at) {}
    std::size_t at_ = std::numeric_limits<std::size_t>::max();
};

//! The answers of one batch, read through the handles its calls were added with. Empty (the batch
//! got no answer): every call reads as not answered.
class Answers {
public:
    Answers() = default;
    //! RpcClient::batch's results, in the order of the calls.
    explicit Answers(std::vector<rpc::CallResult> results) : results_(std::move(results)) {}

    //! The call as answered: its result (JSON null included) or the node's error; neither when it
    //! got no answer.
    template <class T>
    [[nodiscard]] const rpc::CallResult& call(Answer<T> a) const noexcept {
        static const rpc::CallResult kNone;
        return a.at_ < results_.size() ? results_[a.at_] : kNone;
    }
    //! A result came back (it may be JSON null).
    template <class T>
    [[nodiscard]] bool answered(Answer<T> a) const noexcept {
        return call(a).ok();
    }
    //! The result is JSON null (no such receipt, transaction or block).
    template <class T>
    [[nodiscard]] bool null(Answer<T> a) const noexcept {
        const auto& c = call(a);
        return c.ok() && c.result->is_null();
    }
    //! The answer read as `T`; none when the call was not answered, or answered null or malformed.
    template <class T>
    [[nodiscard]] std::optional<T> get(Answer<T> a) const {
        const auto& c = call(a);
        return c.ok() ? Read<T>::from(*c.result) : std::nullopt;
    }
    //! The batch got no answer at all.
    [[nodiscard]] bool empty() const noexcept { return results_.empty(); }

private:
    std::vector<rpc::CallResult> results_;
};

//! The calls of one RpcClient::batch as they are sent.
class Calls {
public:
    //! Adds `call`, whose answer is read as `T`.
    template <class T>
    [[nodiscard]] Answer<T> add(rpc::Call call) {
        calls_.push_back(std::move(call));
        return Answer<T>(calls_.size() - 1);
    }
    [[nodiscard]] bool empty() const noexcept { return calls_.empty(); }
    //! The calls, for RpcClient::batch.
    std::vector<rpc::Call> take() { return std::move(calls_); }

private:
    std::vector<rpc::Call> calls_;
};

//! The calls of one RpcClient::batch whose every request says at which block it was answered.
//! RpcClient splits a batch into requests of `batch_size` calls (the riders on top of the first),
//! and a provider may answer each request from another backend: every request after the first
//! starts with an eth_blockNumber of its own (on top of batch_size: RpcClient::batch(take(),
//! riders(), attempts, kLaterRiders)), so that oldest_head() can say how old the oldest answer of
//! the batch may be (read your own writes). Round trips are unchanged.
class Batch {
public:
    //! kUntilEnded: the calls added before end_riders() go with the first request on top of batch_size.
    enum class Riders { kNone, kUntilEnded };
    explicit Batch(std::size_t batch_size, Riders riders = Riders::kNone)
        : size_(batch_size ? batch_size : 1), riding_(riders == Riders::kUntilEnded) {}

    //! Adds `call`, whose answer is read as `T`.
    template <class T>
    [[nodiscard]] Answer<T> add(rpc::Call call) {
        const std::size_t n = calls_.size();
        if (!riding_ && n >= riders_ + size_ && (n - riders_ - size_) % (size_ + 1) == 0) {
            heads_.push_back(Answer<std::uint64_t>(n));
            calls_.emplace_back("eth_blockNumber");
        }
        calls_.push_back(std::move(call));
        return Answer<T>(calls_.size() - 1);
    }
    //! The calls added so far are the riders.
    void end_riders() {
        riders_ = calls_.size();
        riding_ = false;
    }
    //! Each later request's own eth_blockNumber.
    static constexpr std::size_t kLaterRiders = 1;
    //! Room for `more` calls (and the later requests' eth_blockNumber).
    void reserve(std::size_t more) { calls_.reserve(calls_.size() + more + more / size_ + 1); }
    [[nodiscard]] std::size_t riders() const { return riders_; }
    //! The calls, for RpcClient::batch(calls, riders(), attempts, kLaterRiders).
    std::vector<rpc::Call> take() { return std::move(calls_); }
    //! The oldest block the later requests' eth_blockNumber answered (none: the batch fit in one
    //! request); 0 when one of them did not answer (its request's age is unknown: treat it as old).
    [[nodiscard]] std::optional<std::uint64_t> oldest_head(const Answers& answers) const {
        std::optional<std::uint64_t> oldest;
        for (const auto head : heads_) {
            const auto b = answers.get(head).value_or(0);
            oldest = std::min(oldest.value_or(b), b);
        }
        return oldest;
    }

private:
    std::size_t size_, riders_ = 0;
    bool riding_;
    std::vector<rpc::Call> calls_;
    std::vector<Answer<std::uint64_t>> heads_;
};

}  // namespace keymaster::chain::detail
