#include <catch2/catch.hpp>

#include <map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "fake_http_server.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/rpc/url.hpp"
#include "task_runner.hpp"

using namespace keymaster;
using namespace std::chrono_literals;
using nlohmann::json;
using test::Action;
using Kind = test::Action::Kind;

namespace {

// Answers eth_getBalance with the address's last byte as the balance, and fails "eth_fail".
json handler(const std::string& method, const json& params) {
    if (method == "eth_getBalance") return to_quantity(Wei(std::stoul(params[0].get<std::string>().substr(40), nullptr, 16)));
    if (method == "eth_blockNumber") return "0x10";
    if (method == "eth_fail") throw std::runtime_error("execution reverted");
    return nullptr;
}

rpc::RpcOptions fast() {
    rpc::RpcOptions o;
    o.timeout = 500ms;
    o.backoff_base = 5ms;
    o.backoff_cap = 20ms;
    return o;
}

std::string addr(int i) {
    char buf[43];
    std::snprintf(buf, sizeof buf, "0x%040x", i);
    return buf;
}

// A loopback port with nothing listening.
unsigned short dead_port(boost::asio::io_context& io) {
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("url: parsing and redaction", "[rpc][url]") {
    auto u = rpc::parse_url("https://user:pw@node.example:8443/v3/KEY?x=1").value();
    CHECK(u.tls);
    CHECK(u.host == "node.example");
    CHECK(u.port == "8443");
    CHECK(u.target == "/v3/KEY?x=1");
    CHECK(u.userinfo == "user:pw");
    CHECK(rpc::parse_url("http://127.0.0.1")->port == "80");
    CHECK(rpc::parse_url("http://127.0.0.1")->target == "/");
    CHECK(rpc::parse_url("http://[::1]:8545/")->host == "::1");
    CHECK_FALSE(rpc::parse_url("ws://x"));
    CHECK_FALSE(rpc::parse_url("http://:80"));
    CHECK_FALSE(rpc::parse_url("http://x:99999"));
    CHECK(rpc::redact_url("https://user:pw@node.example/v3/KEY") == "https://node.example:443");
    CHECK(rpc::redact_url("https://user:pw@rpc.example:8443/v3/abcdef?key=1") == "https://rpc.example:8443");
    CHECK(rpc::redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545");
}

TEST_CASE("rpc: batches of batch_size, answers in order, one kept-alive connection", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    auto opt = fast();
    opt.batch_size = 100;
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, opt);
    std::vector<rpc::Call> calls;
    for (int i = 0; i < 250; ++i) calls.push_back({"eth_getBalance", json::array({addr(i % 256), "latest"})});
    auto results = test::run(io, client.batch(calls));
    REQUIRE(results.size() == 250);
    for (int i = 0; i < 250; ++i) CHECK(rpc::as_quantity(*results[i].result) == Wei(i % 256));
    CHECK(server.requests() == 3);
    CHECK(server.bodies()[0].size() == 100);
    CHECK(server.bodies()[2].size() == 50);
    for (int i = 0; i < 4; ++i) CHECK(test::run(io, client.call("eth_blockNumber")) == "0x10");
    CHECK(server.connections() == 1);
    // A lone call is sent as a plain object.
    CHECK(server.bodies().back().is_object());
}

TEST_CASE("rpc: a node error is returned, not retried, and never a zero", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, fast());
    auto results = test::run(io, client.batch({{"eth_fail"}, {"eth_blockNumber"}}));
    CHECK_FALSE(results[0].ok());
    CHECK(results[0].error->message() == "execution reverted");
    CHECK(results[1].ok());
    CHECK_THROWS_AS(test::run(io, client.call("eth_fail")), rpc::RpcError);
    CHECK(server.requests() == 2);
}

TEST_CASE("rpc: recovers from 5xx, garbage, dropped, truncated and slow responses", "[rpc]") {
    struct Case {
        const char* name;
        Action action;
    };
    Action slow;
    slow.kind = Kind::kDelay;
    slow.delay = 1500ms;
    const std::vector<Case> cases = {
        {"500", Action{Kind::kStatus, 500, "oops"}},
        {"503", Action{Kind::kStatus, 503, ""}},
        {"garbage", Action{Kind::kGarbage, 200, "<html>bad gateway</html>"}},
        {"wrong shape", Action{Kind::kGarbage, 200, "{\"jsonrpc\":\"2.0\"}"}},
        {"dropped", Action{Kind::kDrop}},
        {"truncated", Action{Kind::kTruncate}},
        {"slow", slow},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        boost::asio::io_context io;
        test::FakeRpcServer server(io, handler);
        server.script({c.action, c.action});
        rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, fast());
        CHECK(test::run(io, client.call("eth_blockNumber")) == "0x10");
        CHECK(server.requests() == 3);
        CHECK(client.http_requests() == 3);
    }
}

TEST_CASE("rpc: HTTP 429 honours Retry-After", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    server.script({Action{Kind::kStatus, 429, "slow down", "1"}});
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, fast());
    const auto start = std::chrono::steady_clock::now();
    CHECK(test::run(io, client.call("eth_blockNumber")) == "0x10");
    CHECK(std::chrono::steady_clock::now() - start >= 950ms);
    CHECK(server.requests() == 2);
}

TEST_CASE("rpc: JSON-RPC rate-limit errors are retried, only for the calls they hit", "[rpc]") {
    boost::asio::io_context io;
    int limited = 0;
    test::FakeRpcServer server(io, [&](const std::string& m, const json& p) -> json {
        if (m == "eth_getBalance" && p[0] == addr(2) && limited++ < 2) throw std::runtime_error("rate limit exceeded");
        return handler(m, p);
    });
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, fast());
    std::vector<rpc::Call> calls;
    for (int i = 0; i < 4; ++i) calls.push_back({"eth_getBalance", json::array({addr(i), "latest"})});
    auto r = test::run(io, client.batch(calls));
    for (int i = 0; i < 4; ++i) CHECK(rpc::as_quantity(*r[i].result) == Wei(i));
    CHECK(server.requests() == 3);
    CHECK(server.bodies()[1].is_object());  // the retry carried only the limited call
    CHECK(rpc::is_rate_limit(-32005, "x"));
    CHECK(rpc::is_rate_limit(-32000, "Too Many Requests"));
    CHECK_FALSE(rpc::is_rate_limit(-32000, "nonce too low"));
}

TEST_CASE("rpc: fails over across endpoints in order", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port(io)) + "/KEY";
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(dead), Secret(server.url())}, fast());
    CHECK(test::run(io, client.call("eth_blockNumber")) == "0x10");
    CHECK(client.active_endpoint() == 1);
    CHECK(client.http_requests() == 4);  // three attempts on the dead one, then the live one
    // Stays on the live endpoint.
    CHECK(test::run(io, client.call("eth_blockNumber")) == "0x10");
    CHECK(client.http_requests() == 5);
}

TEST_CASE("rpc: HTTP 401 moves to the next endpoint at once", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer bad(io, handler);
    test::FakeRpcServer good(io, handler);
    bad.script({Action{Kind::kStatus, 401, "unauthorized"}});
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(bad.url()), Secret(good.url())}, fast());
    CHECK(test::run(io, client.call("eth_blockNumber")) == "0x10");
    CHECK(bad.requests() == 1);
    CHECK(good.requests() == 1);
}

TEST_CASE("rpc: no endpoint answers: an error naming the network, not the URL", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    server.script({Action{Kind::kStatus, 502}, Action{Kind::kStatus, 502}, Action{Kind::kStatus, 502}});
    int failed = 0;
    rpc::RpcObserver obs;
    obs.on_call = [&](const std::string&, bool ok) { failed += ok ? 0 : 1; };
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, fast(), obs);
    try {
        test::run(io, client.batch({{"eth_getBalance", json::array({addr(1), "latest"})}}));
        FAIL("expected RpcUnavailable");
    } catch (const rpc::RpcUnavailable& e) {
        const std::string what = e.what();
        CHECK(what.find("alpha") != std::string::npos);
        CHECK(what.find("HTTP 502") != std::string::npos);
        CHECK(what.find("SECRETKEY") == std::string::npos);
    }
    CHECK(failed == 1);
}

TEST_CASE("eth api: malformed values are unknown, never zero", "[rpc]") {
    CHECK(rpc::as_quantity(json("0x0")) == Wei(0));
    CHECK_FALSE(rpc::as_quantity(json(nullptr)));
    CHECK_FALSE(rpc::as_quantity(json("")));
    CHECK_FALSE(rpc::as_quantity(json(0)));
    CHECK_FALSE(rpc::as_u64(json("0x10000000000000000")));
    auto b = rpc::as_block(json{{"number", "0x5"}, {"baseFeePerGas", "0x7"}});
    CHECK(b->number == 5);
    CHECK(*b->base_fee == 7);
    CHECK_FALSE(rpc::as_block(json{{"number", "0x5"}})->base_fee);
    auto r = rpc::as_receipt(json{{"status", "0x1"}, {"blockNumber", "0x2"}, {"gasUsed", "0x5208"}});
    CHECK(r->success);
    CHECK(r->gas_used == 21000);
    CHECK_FALSE(r->l1_fee);
    CHECK_FALSE(r->fee_unreadable);
}

TEST_CASE("eth api: an OP Stack receipt's fee fields; a malformed one is flagged, the receipt still proves the mining", "[rpc][l2]") {
    json v = {{"status", "0x1"},         {"blockNumber", "0x2"},       {"gasUsed", "0x5208"},
              {"l1Fee", "0x1c6bf52634000"}, {"operatorFeeScalar", "0x1e8480"}, {"operatorFeeConstant", "0x7"}};
    auto r = rpc::as_receipt(v);
    REQUIRE(r);
    CHECK(*r->l1_fee == Wei(500'000'000'000'000));
    CHECK(*r->operator_fee_scalar == Wei(2'000'000));
    CHECK(*r->operator_fee_constant == Wei(7));
    CHECK_FALSE(r->fee_unreadable);
    v["operatorFeeScalar"] = nullptr;  // null: absent
    CHECK_FALSE(rpc::as_receipt(v)->operator_fee_scalar);
    CHECK_FALSE(rpc::as_receipt(v)->fee_unreadable);
    for (const json& bad : {json("12"), json("0x" + std::string(40, 'f')), json(5)}) {
        v["l1Fee"] = bad;
        r = rpc::as_receipt(v);
        REQUIRE(r);  // mined all the same
        CHECK_FALSE(r->l1_fee);
        CHECK(r->fee_unreadable);
    }
}

TEST_CASE("rpc: an error the observer takes as an answer is counted ok (\"already known\")", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    std::map<std::pair<std::string, bool>, std::size_t> counts;
    rpc::RpcObserver obs;
    obs.on_calls = [&](const std::string& m, bool ok, std::size_t n) { counts[{m, ok}] += n; };
    obs.is_answer = [](const std::string& m, const rpc::RpcError& e) { return m == "eth_fail" && e.message() == "execution reverted"; };
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, fast(), obs);
    auto results = test::run(io, client.batch({{"eth_fail"}, {"eth_blockNumber"}}));
    CHECK_FALSE(results[0].ok());  // still the node's error for the caller
    CHECK(counts[{"eth_fail", true}] == 1);
    CHECK(counts[{"eth_fail", false}] == 0);
}

TEST_CASE("rpc: kOnce sends a request once, on a new connection: no retry, no failover", "[rpc]") {
    boost::asio::io_context io;
    test::FakeRpcServer server(io, handler);
    test::FakeRpcServer second(io, handler);
    server.script({Action{Kind::kDrop}});
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url()), Secret(second.url())}, fast());
    CHECK_THROWS_AS(test::run(io, client.batch({{"eth_blockNumber"}}, 0, rpc::RpcClient::Attempts::kOnce)),
                    rpc::RpcUnavailable);
    CHECK(server.requests() == 1);
    CHECK(second.requests() == 0);
}
