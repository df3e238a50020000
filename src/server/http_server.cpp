#include "keymaster/server/http_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <list>

namespace keymaster::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
    net::any_io_executor ex;
    tcp::acceptor acceptor;
    Handler handler;
    std::list<std::weak_ptr<beast::tcp_stream>> streams;
    bool stopped = false;

    Impl(net::any_io_executor e, Handler h) : ex(e), acceptor(e), handler(std::move(h)) {}

    static net::awaitable<void> write_whole(beast::tcp_stream& stream, Response& r, unsigned version, bool keep_alive,
                                            boost::system::error_code& ec) {
        if (r.chunks) {  // HTTP/1.0 or HEAD: the pieces, joined
            std::string piece;
            for (bool more = true; more;) {
                piece.clear();
                more = r.chunks(piece);
                r.body += piece;
            }
        }
        http::response<http::string_body> res{static_cast<http::status>(r.status), version};
        res.set(http::field::server, "keymaster");
        res.set(http::field::content_type, r.content_type);
        res.keep_alive(keep_alive);
        res.body() = std::move(r.body);
        res.prepare_payload();
        co_await http::async_write(stream, res, net::redirect_error(net::use_awaitable, ec));
    }

    static net::awaitable<void> write_chunked(beast::tcp_stream& stream, Response& r, unsigned version, bool keep_alive,
                                              boost::system::error_code& ec) {
        http::response<http::empty_body> res{static_cast<http::status>(r.status), version};
        res.set(http::field::server, "keymaster");
        res.set(http::field::content_type, r.content_type);
        res.keep_alive(keep_alive);
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        co_await http::async_write_header(stream, sr, net::redirect_error(net::use_awaitable, ec));
        std::string piece;
        for (bool more = true; more && !ec;) {
            piece.clear();
            more = r.chunks(piece);
            if (!piece.empty())
                co_await net::async_write(stream, http::make_chunk(net::buffer(piece)),
                                          net::redirect_error(net::use_awaitable, ec));
        }
        if (!ec) co_await net::async_write(stream, http::make_chunk_last(), net::redirect_error(net::use_awaitable, ec));
    }

    net::awaitable<void> session(std::shared_ptr<beast::tcp_stream> stream) {
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(16 * 1024);
            parser.body_limit(64 * 1024);
            stream->expires_after(std::chrono::seconds(30));
            boost::system::error_code ec;
            co_await http::async_read(*stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
            if (ec) break;
            auto req = parser.release();
            Response r;
            try {
                r = handler(std::string(req.method_string()), std::string(req.target()));
            } catch (const std::exception& e) {
                spdlog::error("http: handler for {} failed: {}", std::string(req.target()), e.what());
                r = Response{500, "text/plain; charset=utf-8", "internal error\n"};
            }
            const bool keep_alive = req.keep_alive();
            if (r.chunks && req.version() >= 11 && req.method() != http::verb::head)
                co_await write_chunked(*stream, r, req.version(), keep_alive, ec);
            else
                co_await write_whole(*stream, r, req.version(), keep_alive, ec);
            if (ec || !keep_alive) break;
        }
        boost::system::error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->close();
    }

    net::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (!stopped) {
            boost::system::error_code ec;
            tcp::socket sock = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
            if (ec) {
                if (stopped || ec == net::error::operation_aborted) co_return;
                continue;
            }
            auto stream = std::make_shared<beast::tcp_stream>(std::move(sock));
            streams.remove_if([](const auto& w) { return w.expired(); });
            streams.push_back(stream);
            net::co_spawn(ex, [self, stream]() { return self->session(stream); }, net::detached);
        }
    }
};

HttpServer::HttpServer(net::any_io_executor ex, const std::string& address, unsigned short port, Handler handler)
    : impl_(std::make_shared<Impl>(ex, std::move(handler))) {
    const tcp::endpoint ep(net::ip::make_address(address), port);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(net::socket_base::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    net::co_spawn(ex, impl_->accept_loop(), net::detached);
}

HttpServer::~HttpServer() { stop(); }

unsigned short HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    for (auto& w : impl_->streams)
        if (auto s = w.lock()) s->socket().close(ec);
}

bool parse_listen_address(const std::string& text, std::string& host, unsigned short& port) {
    std::string h, p;
    if (!text.empty() && text[0] == '[') {
        const auto close = text.find("]:");
        if (close == std::string::npos) return false;
        h = text.substr(1, close - 1);
        p = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos) return false;
        h = text.substr(0, colon);
        p = text.substr(colon + 1);
    }
    if (h.empty()) h = "0.0.0.0";
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || v > 65535) return false;
    boost::system::error_code bad;
    net::ip::make_address(h, bad);
    if (bad) return false;
    host = h;
    port = static_cast<unsigned short>(v);
    return true;
}

}  // namespace keymaster::server
