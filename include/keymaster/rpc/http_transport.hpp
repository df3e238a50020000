#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keymaster/rpc/url.hpp"

namespace keymaster::rpc {

//! An HTTP answer: status, body, and Retry-After in seconds if the server sent one.
struct HttpResponse {
    unsigned status = 0;
    std::string body;
    std::optional<std::chrono::seconds> retry_after;
};

//! A general HTTP request (for AWS APIs and instance metadata). `headers` are sent as given; Host
//! and User-Agent are added unless present. The body is sent with a Content-Length.
struct HttpRequest {
    std::string method = "POST";
    std::string target = "/";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

//! TLS settings for https endpoints.
struct TlsOptions {
    std::string ca_file;  //!< extra trust anchor (PEM); the system store is always used
};

//! One keep-alive HTTP/1.1 connection to one endpoint, plain or TLS (system CA store, host name
//! verification, SNI). Every exchange has a deadline covering resolve, connect, handshake, write and read.
//! Throws boost::system::system_error on transport failure.
class HttpTransport {
public:
    HttpTransport(boost::asio::any_io_executor ex, Url url, TlsOptions tls = {});
    ~HttpTransport();
    HttpTransport(const HttpTransport&) = delete;
    HttpTransport& operator=(const HttpTransport&) = delete;

    //! POSTs a JSON body. Reuses the open connection; reconnects once at once if a reused
    //! connection turns out to be closed by the server.
    boost::asio::awaitable<HttpResponse> post(std::string body, std::chrono::milliseconds timeout);

    //! Sends any request on the same connection (same reconnect rule as post).
    boost::asio::awaitable<HttpResponse> request(HttpRequest req, std::chrono::milliseconds timeout);

    //! Closes the connection (the next post reconnects).
    void close();

    //! Number of TCP connections opened so far (for tests of keep-alive).
    std::size_t connections_opened() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keymaster::rpc
