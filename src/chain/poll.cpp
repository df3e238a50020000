#include "keymaster/chain/poll.hpp"

#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"

namespace keymaster::chain {

using funding::AccountState;
using funding::NetworkSnapshot;

using nlohmann::json;

namespace {

constexpr std::size_t kFixed = 7;  //!< chain id, block, bank balance, bank nonce, gas price, tip, bank latest nonce

//! The poll's calls: the six fixed ones, then one eth_getBalance per account with its params
//! written directly (a poll may carry 10,000 of them).
std::vector<rpc::Call> poll_calls(const eth::Address& bank, const std::vector<funding::Account>& accounts) {
    std::vector<rpc::Call> calls = {
        {"eth_chainId", json::array()},
        {"eth_getBlockByNumber", json::array({"latest", false})},
        {"eth_getBalance", json::array({bank.lower(), "latest"})},
        {"eth_getTransactionCount", json::array({bank.lower(), "pending"})},
        {"eth_gasPrice", json::array()},
        {"eth_maxPriorityFeePerGas", json::array()},
        {"eth_getTransactionCount", json::array({bank.lower(), "latest"})},
    };
    calls.reserve(kFixed + accounts.size());
    static constexpr char kDigits[] = "0123456789abcdef";
    for (const auto& a : accounts) {
        rpc::Call c{"eth_getBalance", json(), "[\"0x" + std::string(40, '0') + "\",\"latest\"]"};
        for (std::size_t k = 0; k < 20; ++k) {
            c.params_text[4 + 2 * k] = kDigits[a.address.bytes()[k] >> 4];
            c.params_text[5 + 2 * k] = kDigits[a.address.bytes()[k] & 0xf];
        }
        calls.push_back(std::move(c));
    }
    return calls;
}

//! The network as not polled: `error` on the snapshot, `why` on every account (balance unknown).
NetworkSnapshot not_polled(NetworkSnapshot snap, const std::vector<funding::Account>& accounts, std::string error,
                           const char* why) {
    snap.error = std::move(error);
    for (const auto& a : accounts) snap.accounts.push_back({a, std::nullopt, why});
    return snap;
}

std::string failed_call(const char* method, const rpc::CallResult& r) {
    return std::string(method) + " failed: " + (r.error ? r.error->message() : "malformed result");
}

}  // namespace

boost::asio::awaitable<NetworkSnapshot> poll(rpc::RpcClient& client, const config::Network& net,
                                             const eth::Address& bank, const std::vector<funding::Account>& accounts) {
    NetworkSnapshot snap;
    snap.network = net.name;
    snap.bank = bank;
    snap.accounts.reserve(accounts.size());
    std::vector<rpc::CallResult> r;
    try {
        r = co_await client.batch(poll_calls(bank, accounts), kFixed);
    } catch (const std::exception& e) {
        co_return not_polled(std::move(snap), accounts, e.what(), "network unreachable");
    }
    auto value = [&](std::size_t i) -> const json* { return r[i].ok() ? &*r[i].result : nullptr; };

    const auto chain = value(0) ? rpc::as_u64(*value(0)) : std::nullopt;
    const auto block = value(1) ? rpc::as_block(*value(1)) : std::nullopt;
    if (!chain) co_return not_polled(std::move(snap), accounts, failed_call("eth_chainId", r[0]), "network unreachable");
    if (!block) co_return not_polled(std::move(snap), accounts, failed_call("eth_getBlockByNumber", r[1]), "network unreachable");
    snap.chain_id = *chain;
    if (net.chain_id && *net.chain_id != *chain) {
        snap.chain_id_mismatch = true;
        co_return not_polled(std::move(snap), accounts,
                             "chain id mismatch: expected " + std::to_string(*net.chain_id) + ", endpoint reports " +
                                 std::to_string(*chain) + "; not touching this network",
                             "chain id mismatch");
    }
    snap.reachable = true;
    snap.block = block->number;
    snap.base_fee = block->base_fee;
    if (value(2)) snap.bank_balance = rpc::as_quantity(*value(2));
    if (value(3)) snap.bank_nonce = rpc::as_u64(*value(3));
    if (value(4)) snap.gas_price = rpc::as_quantity(*value(4));
    if (value(5)) snap.priority_fee = rpc::as_quantity(*value(5));
    if (value(6)) snap.bank_latest_nonce = rpc::as_u64(*value(6));
    for (std::size_t i = 0; i < accounts.size(); ++i) {
        AccountState s{accounts[i], std::nullopt, {}};
        const auto& res = r[kFixed + i];
        if (res.ok()) {
            s.balance = rpc::as_quantity(*res.result);
            if (!s.balance) s.error = "malformed balance";
        } else {
            s.error = res.error ? res.error->message() : "no answer";
        }
        snap.accounts.push_back(std::move(s));
    }
    co_return snap;
}

}  // namespace keymaster::chain
