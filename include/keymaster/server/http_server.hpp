#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>

namespace keymaster::server {

//! An HTTP answer. With `chunks`, the body is sent with chunked transfer encoding, one piece per
//! call (the server clears `piece` first) until it returns false, instead of `body`: a large body
//! (/metrics at 10,000 accounts) never sits in memory whole.
struct Response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::function<bool(std::string& piece)> chunks = {};
};

//! Called for every request with its method and target (path and query).
using Handler = std::function<Response(const std::string& method, const std::string& target)>;

//! A small HTTP/1.1 server (Beast) on the caller's io_context: keep-alive, a read deadline,
//! small request limits. Serves /metrics, /healthz, /readyz and /status for the daemon.
class HttpServer {
public:
    //! `address` is an IPv4 or IPv6 literal; port 0 picks a free port (see port()).
    HttpServer(boost::asio::any_io_executor ex, const std::string& address, unsigned short port, Handler handler);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    unsigned short port() const;
    //! Closes the listener and every open connection.
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

//! Splits "host:port", "[v6]:port" or ":port" (all addresses); false if malformed.
bool parse_listen_address(const std::string& text, std::string& host, unsigned short& port);

}  // namespace keymaster::server
