#include "keymaster/rpc/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <map>
#include <random>

#include "keymaster/common/clock.hpp"

namespace keymaster::rpc {

using nlohmann::json;
namespace {

namespace net = boost::asio;
using SteadyTime = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;


// Why one HTTP exchange did not give a final answer for every call in it.
struct Failure {
    explicit Failure(std::string r, bool next_now = false, std::optional<milliseconds> ra = std::nullopt)
        : reason(std::move(r)), next_endpoint_now(next_now), retry_after(ra) {}
    std::string reason;
    bool next_endpoint_now;  // not worth retrying here (e.g. HTTP 401)
    std::optional<milliseconds> retry_after;
};

}  // namespace


struct RpcClient::Impl {
    net::any_io_executor ex;
    std::string network;
    std::vector<Secret> endpoints;
    std::vector<std::string> labels;  // redacted, for logs
    std::vector<std::unique_ptr<HttpTransport>> transports;
    RpcOptions opt;
    RpcObserver obs;
    std::size_t active = 0;
    SteadyTime failed_over_at{};
    std::uint64_t next_id = 1;
    std::size_t requests = 0;
    std::mt19937_64 rng{std::random_device{}()};

    milliseconds backoff(int attempt) {
        const auto ceiling = std::min<std::int64_t>(opt.backoff_cap.count(),
                                                    opt.backoff_base.count() << std::min(attempt, 20));
        std::uniform_int_distribution<std::int64_t> d(ceiling / 2, std::max<std::int64_t>(ceiling, 1));
        return milliseconds(d(rng));
    }

    HttpTransport& transport(std::size_t i) {
        if (!transports[i]) {
            auto url = parse_url(endpoints[i].reveal());
            if (!url) throw RpcUnavailable(network + ": endpoint " + std::to_string(i + 1) + " is not an http(s) URL");
            transports[i] = std::make_unique<HttpTransport>(ex, *url, opt.tls);
        }
        return *transports[i];
    }

    // For the observer: a result, or an error the observer takes as an answer.
    bool answered(const std::string& method, const CallResult& r) const {
        return r.ok() || (r.error && obs.is_answer && obs.is_answer(method, *r.error));
    }

    void count(const std::string& method, bool ok) {
        if (obs.on_call) obs.on_call(method, ok);
    }

    // The request body of the calls at `pending` indices, each given a fresh id (`by_id`: id ->
    // index). Written directly (no JSON object per call: a poll may carry 10,000 calls). A lone
    // call goes as a plain object: some endpoints refuse batches.
    std::string request_body(const std::vector<Call>& calls, const std::vector<std::size_t>& pending,
                             std::map<std::uint64_t, std::size_t>& by_id) {
        std::string text;
        text.reserve(pending.size() * 100 + 2);
        if (pending.size() != 1) text += '[';
        for (auto i : pending) {
            const auto id = next_id++;
            by_id.emplace_hint(by_id.end(), id, i);
            if (text.size() > 1) text += ',';
            text += R"({"jsonrpc":"2.0","id":)";
            text += std::to_string(id);
            text += R"(,"method":)";
            text += json(calls[i].method).dump();
            text += R"(,"params":)";
            if (!calls[i].params_text.empty()) text += calls[i].params_text;
            else text += calls[i].params.dump();
            text += '}';
        }
        if (pending.size() != 1) text += ']';
        return text;
    }

    // The failure an HTTP status means (none for 200).
    std::optional<Failure> status_failure(const HttpResponse& res) const {
        if (res.status == 429) {
            std::optional<milliseconds> ra;
            if (res.retry_after) ra = std::min<milliseconds>(*res.retry_after, opt.retry_after_cap);
            return Failure{"HTTP 429", false, ra};
        }
        if (res.status >= 500) return Failure{"HTTP " + std::to_string(res.status)};
        if (res.status != 200) return Failure{"HTTP " + std::to_string(res.status), true};
        return std::nullopt;
    }

    // The observer hears each reply's calls counted per method and outcome, not per call.
    void observe(const std::vector<Call>& calls, const std::vector<std::pair<std::size_t, CallResult>>& results) {
        if (!obs.on_calls) {
            for (const auto& [i, r] : results) count(calls[i].method, answered(calls[i].method, r));
            return;
        }
        std::vector<std::tuple<const std::string*, bool, std::size_t>> counts;
        for (const auto& [i, r] : results) {
            const bool ok = answered(calls[i].method, r);
            auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) {
                return std::get<1>(c) == ok && *std::get<0>(c) == calls[i].method;
            });
            if (it == counts.end()) counts.emplace_back(&calls[i].method, ok, 1);
            else ++std::get<2>(*it);
        }
        for (const auto& [m, ok, n] : counts) obs.on_calls(*m, ok, n);
    }

    // Sends the calls at `pending` indices as one request; fills final results. Returns the
    // failure if any call is left without a final result.
    net::awaitable<std::optional<Failure>> attempt(std::size_t ep, const std::vector<Call>& calls,
                                                  std::vector<std::size_t>& pending,
                                                  std::vector<CallResult>& results, std::vector<bool>& done) {
        std::map<std::uint64_t, std::size_t> by_id;
        const std::string text = request_body(calls, pending, by_id);
        HttpResponse res;
        const auto start = keymaster::system_clock().steady();
        ++requests;
        try {
            res = co_await transport(ep).post(text, opt.timeout);
        } catch (const boost::system::system_error& e) {
            if (e.code() == net::error::operation_aborted) throw;  // cancelled (shutdown): no retry
            co_return Failure{e.code() == net::error::timed_out ? "timed out" : e.code().message()};
        }
        if (obs.on_round_trip)
            obs.on_round_trip(std::chrono::duration<double>(keymaster::system_clock().steady() - start).count());
        if (auto f = status_failure(res)) co_return f;

        auto parsed = parse_reply(res.body, by_id);
        std::optional<Failure> failure;
        if (parsed.retry_reason) failure = Failure{*parsed.retry_reason};
        observe(calls, parsed.results);
        for (auto& [i, r] : parsed.results) {
            results[i] = std::move(r);
            done[i] = true;
        }
        std::vector<std::size_t> left;
        for (auto i : pending)
            if (!done[i]) left.push_back(i);
        pending.swap(left);
        if (!pending.empty() && !failure) failure = Failure{"malformed response (missing answers)"};
        co_return failure;
    }

    net::awaitable<void> run_chunk(const std::vector<Call>& calls, std::vector<std::size_t> pending,
                                   std::vector<CallResult>& results, std::vector<bool>& done, bool once) {
        if (active != 0 && keymaster::system_clock().steady() - failed_over_at > opt.primary_retry) active = 0;
        std::string last;
        for (std::size_t tried = 0; tried < (once ? 1 : endpoints.size()); ++tried) {
            const std::size_t ep = (active + tried) % endpoints.size();
            // Once: on a new connection, so the transport's one resend on a kept-alive connection
            // the server closed (it cannot tell "closed before" from "closed after reading") never happens.
            if (once) transport(ep).close();
            for (int a = 0; a < (once ? 1 : opt.attempts_per_endpoint); ++a) {
                auto failure = co_await attempt(ep, calls, pending, results, done);
                if (!failure) {
                    if (ep != active) {
                        spdlog::warn("{}: failed over to endpoint {} ({})", network, ep + 1, labels[ep]);
                        active = ep;
                        failed_over_at = keymaster::system_clock().steady();
                    }
                    co_return;
                }
                last = failure->reason;
                if (failure->next_endpoint_now) break;
                if (a + 1 == opt.attempts_per_endpoint) break;
                const auto wait = std::max(backoff(a), failure->retry_after.value_or(milliseconds(0)));
                spdlog::warn("{}: rpc {} to {}: {}; retry in {} ms", network,
                             pending.size() == 1 ? calls[pending[0]].method : "batch", labels[ep], last, wait.count());
                net::steady_timer timer(ex);
                timer.expires_after(wait);
                co_await timer.async_wait(net::use_awaitable);
            }
            transport(ep).close();
            spdlog::warn("{}: endpoint {} ({}) failed: {}", network, ep + 1, labels[ep], last);
        }
        for (auto i : pending) count(calls[i].method, false);
        throw RpcUnavailable(network + ": no endpoint answered (last error: " + last + ")");
    }
};

RpcClient::RpcClient(net::any_io_executor ex, std::string network, std::vector<Secret> endpoints, RpcOptions options,
                     RpcObserver observer)
    : impl_(std::make_unique<Impl>()) {
    impl_->ex = std::move(ex);
    impl_->network = std::move(network);
    impl_->endpoints = std::move(endpoints);
    for (const auto& e : impl_->endpoints) impl_->labels.push_back(redact_url(e.reveal()));
    impl_->transports.resize(impl_->endpoints.size());
    impl_->opt = options;
    if (impl_->opt.batch_size == 0) impl_->opt.batch_size = 1;
    if (impl_->opt.attempts_per_endpoint < 1) impl_->opt.attempts_per_endpoint = 1;
    impl_->obs = std::move(observer);
    if (impl_->endpoints.empty()) throw std::invalid_argument(impl_->network + ": no endpoints");
}

RpcClient::~RpcClient() = default;

const std::string& RpcClient::network() const { return impl_->network; }
std::size_t RpcClient::active_endpoint() const { return impl_->active; }
std::size_t RpcClient::http_requests() const { return impl_->requests; }

net::awaitable<std::vector<CallResult>> RpcClient::batch(std::vector<Call> calls, std::size_t riders, Attempts attempts,
                                                         std::size_t later_riders) {
    // Filled in place by index (no second copy: a poll may carry 10,000 results).
    std::vector<CallResult> results(calls.size());
    std::vector<bool> done(calls.size());
    for (std::size_t start = 0; start < calls.size();) {
        // The first `riders` calls travel with the first chunk, on top of batch_size (and
        // `later_riders` at the front of every later one).
        const std::size_t end = std::min(calls.size(), start + impl_->opt.batch_size + (start == 0 ? riders : later_riders));
        std::vector<std::size_t> pending;
        for (std::size_t i = start; i < end; ++i) pending.push_back(i);
        start = end;
        co_await impl_->run_chunk(calls, std::move(pending), results, done, attempts == Attempts::kOnce);
    }
    co_return results;
}

net::awaitable<json> RpcClient::call(std::string method, json params) {
    std::vector<Call> calls{{std::move(method), std::move(params)}};
    auto results = co_await batch(std::move(calls));
    if (results[0].error) throw *results[0].error;
    co_return std::move(*results[0].result);
}

}  // namespace keymaster::rpc
