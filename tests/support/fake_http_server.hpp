#pragma once

#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace keymaster::test {

//! What the fake server does with one HTTP request.
struct Action {
    enum class Kind { kAnswer, kStatus, kGarbage, kDrop, kDelay, kTruncate };
    Action() = default;
    explicit Action(Kind k, unsigned s = 200, std::string b = {}, std::string ra = {})
        : kind(k), status(s), body(std::move(b)), retry_after(std::move(ra)) {}
    Kind kind = Kind::kAnswer;
    unsigned status = 200;
    std::string body;  //!< for kStatus / kGarbage
    std::string retry_after;
    std::chrono::milliseconds delay{0};  //!< for kDelay: wait, then answer normally
};

//! Thrown by a handler: the whole HTTP request goes unanswered and its connection is closed (a
//! transport error for the client, as when a node dies mid-request).
struct DropConnection : std::exception {
    const char* what() const noexcept override { return "connection dropped by the test"; }
};

//! A scripted HTTP/1.1 JSON-RPC server on 127.0.0.1 (free port), run on the caller's io_context.
//! Requests take actions from the script in order; when it is empty they are answered by `handler`
//! (one JSON-RPC request object in, the `result` out; throw to answer with an error).
class FakeRpcServer {
public:
    using Handler = std::function<nlohmann::json(const std::string& method, const nlohmann::json& params)>;

    FakeRpcServer(boost::asio::io_context& io, Handler handler);
    ~FakeRpcServer();

    std::string url() const;
    unsigned short port() const;
    void script(std::deque<Action> actions);
    std::size_t requests() const;     //!< HTTP requests received
    std::size_t connections() const;  //!< TCP connections accepted
    std::vector<nlohmann::json> bodies() const;  //!< every parsed request body
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace keymaster::test
