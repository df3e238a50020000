#include "keymaster/chain/poll.hpp"

#include "keymaster/rpc/client.hpp"
#include "keymaster/common/hex.hpp"
#include "keymaster/funding/fees.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "batch.hpp"

#include <cstdio>
#include <map>

namespace keymaster::chain {

using funding::AccountState;
using funding::NetworkSnapshot;

using nlohmann::json;

namespace {

constexpr std::size_t kFixed = 7;  //!< chain id, block, bank balance, bank nonce, gas price, tip, bank latest nonce

// The OP Stack's GasPriceOracle predeploy, and Arbitrum's ArbSys precompile.
constexpr const char* kOracle = "0x420000000000000000000000000000000000000f";
constexpr const char* kArbSys = "0x0000000000000000000000000000000000000064";
// The most bytes an unsigned transfer can take (EIP-1559, every field at its widest: chain id 7
// bytes, nonce and gas 8, fees and value 32, empty data and access list): 151.
constexpr std::uint64_t kTransferSize = 151;
constexpr std::uint64_t kMillion = 1'000'000;

std::string word(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return std::string(48, '0') + buf;
}

json call_to(const char* to, const std::string& data) {
    return json::array({json{{"to", to}, {"data", data}}, "latest"});
}

// What the batch asks about the kind of chain: whether it is probed, and whether the OP Stack's
// oracle is read (on a chain known to be OP, or not known yet).
struct L2Calls {
    bool detect = false;
    bool op = false;
    [[nodiscard]] std::size_t count() const { return (detect ? 2 : 0) + (op ? 5 : 0); }
};

void add_l2_calls(std::vector<rpc::Call>& calls, const L2Calls& l2) {
    if (l2.detect) {
        calls.push_back({"eth_getCode", json::array({kOracle, "latest"})});
        calls.push_back({"eth_call", call_to(kArbSys, "0x051038f2")});  // arbOSVersion()
    }
    if (!l2.op) return;
    // getL1FeeUpperBound(size) since Fjord; getL1Fee(size bytes of 0xff) before it (every byte
    // non-zero: its most); getOperatorFee(0) and (1e6) since Isthmus; isJovian() since Jovian.
    std::string data = "0x49948e0e" + word(32) + word(kTransferSize) + std::string(2 * kTransferSize, 'f');
    data.append((64 - (2 * kTransferSize) % 64) % 64, '0');
    calls.push_back({"eth_call", call_to(kOracle, "0xf1c7a58b" + word(kTransferSize))});
    calls.push_back({"eth_call", call_to(kOracle, data)});
    calls.push_back({"eth_call", call_to(kOracle, "0x275aedd2" + word(0))});
    calls.push_back({"eth_call", call_to(kOracle, "0x275aedd2" + word(kMillion))});
    calls.push_back({"eth_call", call_to(kOracle, "0x105d0b81")});
}

// A 32-byte word an eth_call returned, as a number.
std::optional<Wei> word_of(const rpc::CallResult& r) {
    if (!r.ok() || !r.result->is_string()) return std::nullopt;
    const auto text = r.result->get<std::string>();
    if (text.size() != 66) return std::nullopt;
    auto bytes = from_hex(text);
    if (!bytes) return std::nullopt;
    auto v = from_be_bytes(*bytes);
    if (!v || *v > max_sane_amount()) return std::nullopt;
    return *v;
}

// The kind of chain from the probes (empty when one of them got no answer).
std::optional<funding::L2Kind> detected(std::uint64_t chain_id, const rpc::CallResult& code, const rpc::CallResult& arbos) {
    if (!code.ok() || !code.result->is_string() || !arbos.ok()) return std::nullopt;
    const auto text = code.result->get<std::string>();
    return funding::detect_l2(chain_id, text != "0x" && !text.empty(), word_of(arbos).has_value());
}

// The oracle's reads: the L1 fee's bound (empty: neither function answered), the operator fee
// (none where getOperatorFee does not exist: before Isthmus) and whether receipts' operator fee is
// Jovian's (an oracle that does not answer isJovian is before Jovian).
std::optional<funding::OpFees> op_fees(const rpc::CallResult* r, const config::Network& net) {
    auto bound = word_of(r[0]);
    if (!bound) bound = word_of(r[1]);
    if (!bound) return std::nullopt;
    funding::OpFees f;
    f.l1_fee_bound = *bound;
    f.margin_permille = net.l1_fee_margin_permille;
    const auto base = word_of(r[2]), at_million = word_of(r[3]);
    if (base && at_million) {
        f.operator_fee_base = *base;
        f.operator_fee_per_mgas = *at_million > *base ? *at_million - *base : Wei(0);
    }
    f.jovian = word_of(r[4]) == Wei(1);
    return f;
}

std::optional<funding::L2Kind> configured(config::L2Setting s) {
    switch (s) {
        case config::L2Setting::kNone: return funding::L2Kind::kNone;
        case config::L2Setting::kOp: return funding::L2Kind::kOp;
        case config::L2Setting::kArbitrum: return funding::L2Kind::kArbitrum;
        case config::L2Setting::kDetect: break;
    }
    return std::nullopt;
}

//! The poll's calls: the fixed ones, those about the kind of chain (the first request carries them
//! on top of batchSize), then one eth_getBalance per account with its params written directly (a
//! poll may carry 10,000 of them); every later request starts with an eth_blockNumber (Batch).
struct PollCalls {
    detail::Batch batch;
    std::vector<std::size_t> account_at;  //!< each account's eth_getBalance
    std::map<std::uint64_t, std::size_t> height_at;  //!< each checked height's eth_getBlockByNumber
    std::optional<std::size_t> finalized_at;
};
PollCalls poll_calls(const eth::Address& bank, const std::vector<funding::Account>& accounts, const L2Calls& l2,
                     const BlockChecks& checks, std::size_t batch_size) {
    std::vector<rpc::Call> fixed = {
        {"eth_chainId", json::array()},
        {"eth_getBlockByNumber", json::array({"latest", false})},
        {"eth_getBalance", json::array({bank.lower(), "latest"})},
        {"eth_getTransactionCount", json::array({bank.lower(), "pending"})},
        {"eth_gasPrice", json::array()},
        {"eth_maxPriorityFeePerGas", json::array()},
        {"eth_getTransactionCount", json::array({bank.lower(), "latest"})},
    };
    add_l2_calls(fixed, l2);
    const std::size_t riders = fixed.size() + checks.heights.size() + (checks.finalized ? 1 : 0);
    PollCalls out{detail::Batch(batch_size, riders), {}, {}, {}};
    out.batch.reserve(riders + accounts.size());
    out.account_at.reserve(accounts.size());
    for (auto& c : fixed) (void)out.batch.add(std::move(c));
    for (auto h : checks.heights) out.height_at[h] = out.batch.add({"eth_getBlockByNumber", json::array({to_quantity(Wei(h)), false})});
    if (checks.finalized) out.finalized_at = out.batch.add({"eth_getBlockByNumber", json::array({"finalized", false})});
    static constexpr char kDigits[] = "0123456789abcdef";
    for (const auto& a : accounts) {
        rpc::Call c{"eth_getBalance", json(), "[\"0x" + std::string(40, '0') + "\",\"latest\"]"};
        for (std::size_t k = 0; k < 20; ++k) {
            c.params_text[4 + 2 * k] = kDigits[a.address.bytes()[k] >> 4];
            c.params_text[5 + 2 * k] = kDigits[a.address.bytes()[k] & 0xf];
        }
        out.account_at.push_back(out.batch.add(std::move(c)));
    }
    return out;
}

//! The network as not polled: `error` on the snapshot, `why` on every account (balance unknown).
NetworkSnapshot not_polled(NetworkSnapshot snap, const std::vector<funding::Account>& accounts, std::string error,
                           const char* why) {
    snap.error = std::move(error);
    for (const auto& a : accounts) snap.accounts.push_back({a, std::nullopt, why});
    return snap;
}

// The blocks asked about: each one's hash ("" none there; nullopt: the query failed), and the
// finalized block where the node answers that tag.
void read_checks(const PollCalls& calls, const std::vector<rpc::CallResult>& r, NetworkSnapshot& snap) {
    for (const auto& [height, at] : calls.height_at) {
        auto& slot = snap.hash_at[height];
        if (!r[at].ok()) continue;
        if (r[at].result->is_null()) slot = std::string();
        else if (const auto b = rpc::as_block(*r[at].result); b && !b->hash.empty() && b->number == height) slot = b->hash;
    }
    if (calls.finalized_at && r[*calls.finalized_at].ok() && !r[*calls.finalized_at].result->is_null())
        if (const auto b = rpc::as_block(*r[*calls.finalized_at].result)) snap.finalized = b->number;
}

std::string failed_call(const char* method, const rpc::CallResult& r) {
    return std::string(method) + " failed: " + (r.error ? r.error->message() : "malformed result");
}

}  // namespace

boost::asio::awaitable<NetworkSnapshot> poll(rpc::RpcClient& client, const config::Network& net,
                                             const eth::Address& bank, const std::vector<funding::Account>& accounts,
                                             std::optional<funding::L2Kind> known, const BlockChecks& checks) {
    NetworkSnapshot snap;
    snap.network = net.name;
    snap.bank = bank;
    snap.accounts.reserve(accounts.size());
    if (auto set = configured(net.l2)) known = set;
    const L2Calls l2{!known, !known || *known == funding::L2Kind::kOp};
    auto calls = poll_calls(bank, accounts, l2, checks, net.batch_size);
    std::vector<rpc::CallResult> r;
    try {
        r = co_await client.batch(calls.batch.take(), calls.batch.riders(), rpc::RpcClient::Attempts::kRetry,
                                  detail::Batch::kLaterRiders);
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
    // The poll is as old as its oldest request (a provider may answer each from another backend).
    snap.block = std::min(block->number, calls.batch.oldest_head(r).value_or(block->number));
    snap.base_fee = block->base_fee;
    if (value(2)) snap.bank_balance = rpc::as_quantity(*value(2));
    if (value(3)) snap.bank_nonce = rpc::as_u64(*value(3));
    if (value(4)) snap.gas_price = rpc::as_quantity(*value(4));
    if (value(5)) snap.priority_fee = rpc::as_quantity(*value(5));
    if (value(6)) snap.bank_latest_nonce = rpc::as_u64(*value(6));
    snap.l2 = l2.detect ? detected(snap.chain_id, r[kFixed], r[kFixed + 1]) : known;
    if (snap.l2 == funding::L2Kind::kOp) snap.op_fees = op_fees(&r[kFixed + (l2.detect ? 2 : 0)], net);
    read_checks(calls, r, snap);
    for (std::size_t i = 0; i < accounts.size(); ++i) {
        AccountState s{accounts[i], std::nullopt, {}};
        const auto& res = r[calls.account_at[i]];
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
