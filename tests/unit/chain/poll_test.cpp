#include <catch2/catch.hpp>

#include "fake_http_server.hpp"
#include "keymaster/chain/poll.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "task_runner.hpp"

using namespace keymaster;
using nlohmann::json;

namespace {

// A node: every balance is the account number in wei (the address's last two bytes).
json node(const std::string& method, const json& params) {
    if (method == "eth_chainId") return "0x7a69";
    if (method == "eth_blockNumber") return "0x10";
    if (method == "eth_getBlockByNumber") return json{{"number", "0x10"}, {"baseFeePerGas", "0x3b9aca00"}};
    if (method == "eth_getBalance") return to_quantity(Wei(std::stoul(params[0].get<std::string>().substr(38), nullptr, 16)));
    if (method == "eth_getTransactionCount") return "0x5";
    if (method == "eth_gasPrice" || method == "eth_maxPriorityFeePerGas") return "0x1";
    throw std::runtime_error("unexpected " + method);
}

std::vector<funding::Account> accounts(std::size_t n) {
    std::vector<funding::Account> out;
    for (std::size_t i = 1; i <= n; ++i) {
        ByteArray<20> b{};
        b[18] = static_cast<std::uint8_t>(i >> 8);
        b[19] = static_cast<std::uint8_t>(i & 0xff);
        out.push_back({"alpha", "alpha", config::Role::kWatcher, eth::Address(b), Wei(1), Wei(2), {}});
    }
    return out;
}

}  // namespace

TEST_CASE("poll: one HTTP round trip per network up to batchSize accounts, ceil(n / batchSize) beyond", "[chain][poll]") {
    for (const auto& [n, batch, trips] : std::vector<std::tuple<std::size_t, std::size_t, std::size_t>>{
             {1, 100, 1}, {100, 100, 1}, {101, 100, 2}, {250, 100, 3}, {2500, 1000, 3}}) {
        boost::asio::io_context io;
        test::FakeRpcServer server(io, node);
        rpc::RpcOptions o;
        o.batch_size = batch;
        rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, o);
        config::Network net;
        net.name = "alpha";
        net.batch_size = batch;
        const auto accts = accounts(n);
        ByteArray<20> bank{};
        bank[0] = 0xba;
        auto snap = test::run(io, chain::poll(client, net, eth::Address(bank), accts));
        INFO(n << " accounts, batch size " << batch);
        REQUIRE(snap.reachable);
        // Six fixed calls (chain id, block, bank balance and pending nonce, fees) ride along with
        // the first request: batchSize counts accounts.
        CHECK(server.requests() == trips);
        CHECK(snap.chain_id == 31337);
        CHECK(snap.bank_nonce == 5u);
        REQUIRE(snap.accounts.size() == n);
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(&snap.accounts[i].account == &accts[i]);  // refers to the account, no copy
            CHECK(snap.accounts[i].balance == Wei(i + 1));
        }
    }
}

TEST_CASE("poll: a poll split over requests is as old as its oldest request (each may come from another backend)", "[chain][poll][stale]") {
    boost::asio::io_context io;
    // Later requests are answered by a backend three blocks behind the one that served the first.
    test::FakeRpcServer server(io, [](const std::string& method, const json& params) -> json {
        if (method == "eth_blockNumber") return "0xd";
        return node(method, params);
    });
    rpc::RpcOptions o;
    o.batch_size = 10;
    rpc::RpcClient client(io.get_executor(), "alpha", {Secret(server.url())}, o);
    config::Network net;
    net.name = "alpha";
    net.batch_size = 10;
    ByteArray<20> bank{};
    bank[0] = 0xba;
    const auto one_request = accounts(10);
    auto snap = test::run(io, chain::poll(client, net, eth::Address(bank), one_request));
    CHECK(snap.block == 16);  // one request: its own block
    CHECK(server.requests() == 1);
    const auto three_requests = accounts(30);
    snap = test::run(io, chain::poll(client, net, eth::Address(bank), three_requests));
    CHECK(snap.block == 13);
    CHECK(server.requests() == 1 + 3);  // 7 + 10, then 1 + 10 twice: batchSize still counts the accounts
    for (std::size_t i = 0; i < three_requests.size(); ++i) CHECK(snap.accounts[i].balance == Wei(i + 1));
}
