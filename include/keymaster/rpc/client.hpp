#pragma once

#include <nlohmann/json.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "keymaster/common/secret.hpp"
#include "keymaster/rpc/http_transport.hpp"

namespace keymaster::rpc {

//! A JSON-RPC error object returned by the node (code, message, data).
class RpcError : public std::runtime_error {
public:
    //! The error object's fields; what() says "JSON-RPC error <code>: <message>".
    RpcError(int code, std::string message, nlohmann::json data = nullptr)
        : std::runtime_error("JSON-RPC error " + std::to_string(code) + ": " + message),
          code_(code), message_(std::move(message)), data_(std::move(data)) {}
    [[nodiscard]] int code() const { return code_; }                       //!< the node's code, e.g. -32000
    [[nodiscard]] const std::string& message() const { return message_; }  //!< the node's words, as sent
    [[nodiscard]] const nlohmann::json& data() const { return data_; }     //!< the error's data, or null

private:
    int code_;
    std::string message_;
    nlohmann::json data_;
};

//! Every endpoint failed after retries. The message names the network and the redacted endpoints.
class RpcUnavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

//! One call of a batch.
struct Call {
    //! A call of `m` with `p` (or with `text`, params already serialized).
    Call(std::string m, nlohmann::json p = nlohmann::json::array(), std::string text = {})
        : method(std::move(m)), params(std::move(p)), params_text(std::move(text)) {}
    std::string method;     //!< e.g. "eth_getBalance"
    nlohmann::json params;  //!< a JSON array
    std::string params_text;  //!< when set: the params already serialized (hot paths), used instead of `params`
};

//! The outcome of one call: a result, or the node's error for it.
struct CallResult {
    std::optional<nlohmann::json> result;  //!< the result (JSON null included), when answered
    std::optional<RpcError> error;         //!< the node's error, when it refused the call
    //! A result came back (it may be JSON null: e.g. no receipt yet).
    [[nodiscard]] bool ok() const { return result.has_value(); }
};

//! Retry and batching policy.
struct RpcOptions {
    std::chrono::milliseconds timeout{10'000};           //!< per HTTP exchange
    int attempts_per_endpoint = 3;                        //!< before failing over to the next endpoint
    std::chrono::milliseconds backoff_base{200};          //!< first retry waits up to this (full jitter)
    std::chrono::milliseconds backoff_cap{10'000};        //!< no single wait is longer
    std::chrono::milliseconds retry_after_cap{60'000};    //!< longest Retry-After honoured
    std::chrono::minutes primary_retry{5};                //!< after a failover, try the first endpoint again this often
    std::size_t batch_size = 100;                         //!< calls per HTTP request
    TlsOptions tls;                                       //!< an extra trust anchor for https endpoints
};

//! Hooks for metrics: each JSON-RPC call's outcome, and each HTTP round trip's duration.
struct RpcObserver {
    std::function<void(const std::string& method, bool ok)> on_call;  //!< one call's outcome
    //! Instead of on_call when set: `n` calls of `method` with that outcome (one per HTTP reply).
    std::function<void(const std::string& method, bool ok, std::size_t n)> on_calls;
    std::function<void(double seconds)> on_round_trip;  //!< one HTTP round trip's duration
    //! When set: whether a node's error for `method` is an answer, not a failure (counted ok), e.g.
    //! "already known" for a re-broadcast.
    std::function<bool(const std::string& method, const RpcError& error)> is_answer;
};

//! JSON-RPC 2.0 over HTTP(S) for one network: batches of up to batch_size calls per request;
//! retries with exponential backoff and full jitter on connection errors, timeouts, HTTP 429
//! (honouring Retry-After), 5xx, malformed bodies and rate-limit errors; fails over across the
//! endpoints in order. A call that cannot be answered throws; it never yields a default value.
class RpcClient {
public:
    //! A client of `network`'s endpoints, in failover order (secrets: their URLs may hold API keys,
    //! and are redacted in every message). Connects lazily.
    RpcClient(boost::asio::any_io_executor ex, std::string network, std::vector<Secret> endpoints,
              RpcOptions options = {}, RpcObserver observer = {});
    ~RpcClient();
    RpcClient(const RpcClient&) = delete;
    RpcClient& operator=(const RpcClient&) = delete;

    //! One call. Throws RpcError for the node's error, RpcUnavailable when no endpoint answered.
    boost::asio::awaitable<nlohmann::json> call(std::string method, nlohmann::json params = nlohmann::json::array());

    //! Many calls, results in the same order; per-call node errors are in the results.
    //! Throws RpcUnavailable when no endpoint answered.
    //! `riders`: that many calls at the front go with the first request on top of batch_size (a
    //! poll's bank and block calls, so that batch_size accounts take one round trip).
    //! `attempts`: kOnce sends each chunk once, to the endpoint in use, and throws on any failure
    //! (for eth_sendRawTransaction: a blind retry re-sends bytes that may have been mined already,
    //! and some nodes execute them twice; the caller asks the chain instead).
    enum class Attempts { kRetry, kOnce };
    //! `later_riders`: that many calls at the front of every later request go on top of batch_size
    //! too (a batch's own eth_blockNumber in each request: chain/batch.hpp).
    [[nodiscard]] boost::asio::awaitable<std::vector<CallResult>> batch(std::vector<Call> calls, std::size_t riders = 0,
                                                          Attempts attempts = Attempts::kRetry, std::size_t later_riders = 0);

    //! The network's name (for messages).
    [[nodiscard]] const std::string& network() const;
    //! Index of the endpoint in use (0 = the first).
    std::size_t active_endpoint() const;
    //! HTTP requests sent so far (attempts included).
    std::size_t http_requests() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

//! A node's reply to one HTTP request, interpreted: final results by call index, and whether the
//! rest must be retried (rate limited or malformed). Pure; fuzzed.
struct ParsedReply {
    std::vector<std::pair<std::size_t, CallResult>> results;  //!< (call index, result); a later duplicate wins
    std::optional<std::string> retry_reason;  //!< set when some call got no final answer
};
//! `by_id` maps the JSON-RPC ids sent to call indices.
ParsedReply parse_reply(const std::string& body, const std::map<std::uint64_t, std::size_t>& by_id);

//! True for the JSON-RPC errors that mean "slow down" (-32005, 429, "rate limit", "too many requests").
bool is_rate_limit(int code, const std::string& message);

}  // namespace keymaster::rpc
