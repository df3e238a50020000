#include "keymaster/rpc/http_transport.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

#include "keymaster/common/clock.hpp"

namespace keymaster::rpc {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using net::use_awaitable;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr std::size_t kBodyLimit = 64 * 1024 * 1024;

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

bool is_stale_connection_error(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == ssl::error::stream_truncated;
}

}  // namespace

struct HttpTransport::Impl {
    net::any_io_executor ex;
    Url url;
    ssl::context ctx{ssl::context::tls_client};
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
    bool open = false;
    std::size_t opened = 0;

    Impl(net::any_io_executor e, Url u, const TlsOptions& opts) : ex(std::move(e)), url(std::move(u)) {
        if (url.tls) {
            ctx.set_default_verify_paths();
            if (!opts.ca_file.empty()) ctx.load_verify_file(opts.ca_file);
            ctx.set_verify_mode(ssl::verify_peer);
        }
    }

    beast::tcp_stream& lowest() { return url.tls ? beast::get_lowest_layer(*tls) : *plain; }

    void close() {
        if (!open && !plain && !tls) return;
        boost::system::error_code ignored;
        if (tls) beast::get_lowest_layer(*tls).socket().close(ignored);
        if (plain) plain->socket().close(ignored);
        tls.reset();
        plain.reset();
        buffer.clear();
        open = false;
    }

    net::awaitable<void> connect(SteadyTime deadline) {
        using namespace net::experimental::awaitable_operators;
        close();
        tcp::resolver resolver(ex);
        net::steady_timer timer(ex);
        timer.expires_at(deadline);
        auto resolved = co_await (resolver.async_resolve(url.host, url.port, use_awaitable) || timer.async_wait(use_awaitable));
        if (resolved.index() == 1) throw boost::system::system_error(net::error::timed_out, "resolve");
        const auto& results = std::get<0>(resolved);
        if (url.tls) {
            tls.emplace(ex, ctx);
            // SNI, and the certificate must name the host we asked for.
            if (!SSL_set_tlsext_host_name(tls->native_handle(), url.host.c_str()))
                throw boost::system::system_error(
                    boost::system::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()), "SNI");
            tls->set_verify_callback(ssl::host_name_verification(url.host));
        } else {
            plain.emplace(ex);
        }
        lowest().expires_at(deadline);
        co_await lowest().async_connect(results, use_awaitable);
        lowest().socket().set_option(tcp::no_delay(true));
        ++opened;
        if (url.tls) {
            lowest().expires_at(deadline);
            co_await tls->async_handshake(ssl::stream_base::client, use_awaitable);
        }
        open = true;
    }

    template <typename Stream>
    net::awaitable<http::response<http::string_body>> exchange(Stream& stream, http::request<http::string_body>& req,
                                                              SteadyTime deadline) {
        lowest().expires_at(deadline);
        co_await http::async_write(stream, req, use_awaitable);
        http::response_parser<http::string_body> parser;
        parser.body_limit(kBodyLimit);
        lowest().expires_at(deadline);
        co_await http::async_read(stream, buffer, parser, use_awaitable);
        co_return parser.release();
    }

    net::awaitable<http::response<http::string_body>> round_trip(http::request<http::string_body>& req,
                                                                SteadyTime deadline) {
        if (url.tls) co_return co_await exchange(*tls, req, deadline);
        co_return co_await exchange(*plain, req, deadline);
    }
};

HttpTransport::HttpTransport(net::any_io_executor ex, Url url, TlsOptions tls)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(url), tls)) {}

HttpTransport::~HttpTransport() = default;

void HttpTransport::close() { impl_->close(); }

std::size_t HttpTransport::connections_opened() const { return impl_->opened; }

net::awaitable<HttpResponse> HttpTransport::post(std::string body, std::chrono::milliseconds timeout) {
    HttpRequest req;
    req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    if (!impl_->url.userinfo.empty()) req.headers.emplace_back("Authorization", "Basic " + base64(impl_->url.userinfo));
    req.body = std::move(body);
    co_return co_await request(std::move(req), timeout);
}

net::awaitable<HttpResponse> HttpTransport::request(HttpRequest in, std::chrono::milliseconds timeout) {
    auto& s = *impl_;
    const auto deadline = keymaster::system_clock().steady() + timeout;
    auto verb = http::string_to_verb(in.method);
    if (verb == http::verb::unknown) throw std::invalid_argument("unknown HTTP method " + in.method);
    http::request<http::string_body> req{verb, in.target, 11};
    bool has_host = false, has_agent = false;
    for (const auto& [k, v] : in.headers) {
        has_host = has_host || beast::iequals(k, "host");
        has_agent = has_agent || beast::iequals(k, "user-agent");
        req.insert(k, v);
    }
    if (!has_host) req.set(http::field::host, host_header(s.url));
    if (!has_agent) req.set(http::field::user_agent, "keymaster");
    req.keep_alive(true);
    req.body() = std::move(in.body);
    if (verb != http::verb::get || !req.body().empty()) req.prepare_payload();

    http::response<http::string_body> res;
    bool reused = s.open;
    for (;;) {
        try {
            if (!s.open) co_await s.connect(deadline);
            res = co_await s.round_trip(req, deadline);
            break;
        } catch (const boost::system::system_error& e) {
            s.close();
            // A kept-alive connection the server has since closed: one immediate retry on a new one.
            if (reused && is_stale_connection_error(e.code()) && keymaster::system_clock().steady() < deadline) {
                reused = false;
                continue;
            }
            if (e.code() == beast::error::timeout) throw boost::system::system_error(net::error::timed_out, "http");
            throw;
        }
    }
    if (!res.keep_alive()) s.close();

    HttpResponse out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
        const auto v = it->value();
        unsigned secs = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
        if (ec == std::errc() && p == v.data() + v.size()) out.retry_after = std::chrono::seconds(secs);
    }
    co_return out;
}

}  // namespace keymaster::rpc
