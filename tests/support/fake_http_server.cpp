#include "fake_http_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace keymaster::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;

struct FakeRpcServer::Impl : std::enable_shared_from_this<Impl> {
    net::io_context& io;
    tcp::acceptor acceptor;
    Handler handler;
    std::deque<Action> script;
    std::size_t requests = 0, connections = 0;
    std::vector<json> bodies;
    std::vector<std::weak_ptr<tcp::socket>> sockets;

    Impl(net::io_context& i, Handler h) : io(i), acceptor(i, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)), handler(std::move(h)) {}

    json answer_one(const json& req) {
        json out = {{"jsonrpc", "2.0"}, {"id", req.value("id", json())}};
        try {
            out["result"] = handler(req.value("method", ""), req.value("params", json::array()));
        } catch (const DropConnection&) {
            throw;  // the session closes the connection unanswered
        } catch (const std::exception& e) {
            out["error"] = {{"code", -32000}, {"message", e.what()}};
        }
        return out;
    }

    std::string answer(const std::string& body) {
        json req = json::parse(body);
        bodies.push_back(req);
        if (req.is_array()) {
            json out = json::array();
            for (const auto& r : req) out.push_back(answer_one(r));
            return out.dump();
        }
        return answer_one(req).dump();
    }

    net::awaitable<void> session(std::shared_ptr<tcp::socket> sock) {
        beast::flat_buffer buf;
        try {
            for (;;) {
                http::request<http::string_body> req;
                co_await http::async_read(*sock, buf, req, net::use_awaitable);
                ++requests;
                Action a;
                if (!script.empty()) {
                    a = script.front();
                    script.pop_front();
                }
                if (a.kind == Action::Kind::kDrop) {
                    sock->close();
                    co_return;
                }
                if (a.kind == Action::Kind::kDelay) {
                    net::steady_timer t(io);
                    t.expires_after(a.delay);
                    co_await t.async_wait(net::use_awaitable);
                }
                http::response<http::string_body> res;
                res.version(11);
                res.keep_alive(req.keep_alive());
                res.set(http::field::content_type, "application/json");
                if (a.kind == Action::Kind::kStatus || a.kind == Action::Kind::kGarbage) {
                    res.result(a.kind == Action::Kind::kStatus ? a.status : 200);
                    res.body() = a.body;
                    if (!a.retry_after.empty()) res.set(http::field::retry_after, a.retry_after);
                } else {
                    res.result(200);
                    res.body() = answer(req.body());
                }
                res.prepare_payload();
                if (a.kind == Action::Kind::kTruncate) {
                    // Headers promise the full body; half of it arrives, then the connection closes.
                    http::response_serializer<http::string_body> sr(res);
                    co_await http::async_write_header(*sock, sr, net::use_awaitable);
                    const auto& b = res.body();
                    co_await net::async_write(*sock, net::buffer(b.data(), b.size() / 2), net::use_awaitable);
                    sock->close();
                    co_return;
                }
                co_await http::async_write(*sock, res, net::use_awaitable);
                if (!res.keep_alive()) {
                    sock->close();
                    co_return;
                }
            }
        } catch (const std::exception&) {
        }
    }

    net::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        for (;;) {
            auto sock = std::make_shared<tcp::socket>(io);
            boost::system::error_code ec;
            co_await acceptor.async_accept(*sock, net::redirect_error(net::use_awaitable, ec));
            if (ec) co_return;
            ++connections;
            sockets.push_back(sock);
            net::co_spawn(io, session(sock), net::detached);
        }
    }
};

FakeRpcServer::FakeRpcServer(net::io_context& io, Handler handler) : impl_(std::make_shared<Impl>(io, std::move(handler))) {
    net::co_spawn(io, impl_->accept_loop(), net::detached);
}

FakeRpcServer::~FakeRpcServer() { stop(); }

void FakeRpcServer::stop() {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    for (auto& w : impl_->sockets)
        if (auto s = w.lock()) s->close(ec);
}

unsigned short FakeRpcServer::port() const { return impl_->acceptor.local_endpoint().port(); }
std::string FakeRpcServer::url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/rpc/SECRETKEY"; }
void FakeRpcServer::script(std::deque<Action> actions) { impl_->script = std::move(actions); }
std::size_t FakeRpcServer::requests() const { return impl_->requests; }
std::size_t FakeRpcServer::connections() const { return impl_->connections; }
std::vector<json> FakeRpcServer::bodies() const { return impl_->bodies; }

}  // namespace keymaster::test
