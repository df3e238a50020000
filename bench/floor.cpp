// The node's floor for the benchmark: the least a client can do to make N transfers on one chain.
// Pre-signs N legacy/EIP-1559 transfers with explicit consecutive nonces (not timed), then times
// one batch of eth_sendRawTransaction and receipt polls (one batch every 20 ms) until all are mined.
//
//   keymaster_bench_floor URL HEX_KEY CHAIN_ID AMOUNT_WEI ADDRESS_FILE
// Prints "floor_seconds <s>".
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <fstream>
#include <iostream>

#include "keymaster/common/hex.hpp"
#include "keymaster/eth/address.hpp"
#include "keymaster/eth/transaction.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"

using namespace keymaster;
namespace net = boost::asio;
using json = nlohmann::json;

int main(int argc, char** argv) {
    if (argc != 6) {
        std::cerr << "usage: keymaster_bench_floor URL HEX_KEY CHAIN_ID AMOUNT_WEI ADDRESS_FILE\n";
        return 2;
    }
    const std::string url = argv[1];
    auto key = crypto::PrivateKey::from_hex(Secret(argv[2]));
    if (!key) return 2;
    const std::uint64_t chain_id = std::stoull(argv[3]);
    const Wei amount(argv[4]);
    std::vector<eth::Address> to;
    std::ifstream in(argv[5]);
    for (std::string line; std::getline(in, line);)
        if (auto a = eth::Address::parse(line)) to.push_back(*a);
    const auto from = eth::Address::from_public_key(key->public_key());

    net::io_context io;
    rpc::RpcOptions opts;
    opts.batch_size = to.size() + 1;
    rpc::RpcClient client(io.get_executor(), "floor", {Secret(url)}, opts);
    double seconds = -1;
    net::co_spawn(io, [&]() -> net::awaitable<void> {
        std::string m = "eth_getTransactionCount";
        json p = json::array({from.lower(), "pending"});
        auto nonce = rpc::as_u64(co_await client.call(std::move(m), std::move(p))).value();
        m = "eth_gasPrice";
        const Wei gas_price = rpc::as_quantity(co_await client.call(std::move(m), json::array())).value();
        std::vector<rpc::Call> sends;
        std::vector<std::string> hashes;
        for (const auto& a : to) {
            eth::Transaction tx;
            tx.type = eth::TxType::kDynamicFee;
            tx.chain_id = chain_id;
            tx.nonce = nonce++;
            tx.max_fee_per_gas = gas_price * 2;
            tx.max_priority_fee_per_gas = 1;
            tx.gas_limit = 21000;
            tx.to = a;
            tx.value = amount;
            const auto raw = eth::encode_signed(tx, key->sign(eth::signing_hash(tx)).value());
            hashes.push_back(to_hex(eth::transaction_hash(raw)));
            sends.push_back({"eth_sendRawTransaction", json::array({to_hex(raw)})});
        }
        const auto start = std::chrono::steady_clock::now();
        co_await client.batch(std::move(sends));
        net::steady_timer timer(io);
        std::vector<std::string> waiting = hashes;
        while (!waiting.empty()) {
            timer.expires_after(std::chrono::milliseconds(20));
            co_await timer.async_wait(net::use_awaitable);
            std::vector<rpc::Call> polls;
            for (const auto& h : waiting) polls.push_back({"eth_getTransactionReceipt", json::array({h})});
            auto r = co_await client.batch(std::move(polls));
            std::vector<std::string> still;
            for (std::size_t i = 0; i < waiting.size(); ++i)
                if (!r[i].ok() || r[i].result->is_null()) still.push_back(waiting[i]);
            waiting = std::move(still);
        }
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }, [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    std::cout << "floor_seconds " << seconds << "\n";
    return seconds < 0 ? 1 : 0;
}
