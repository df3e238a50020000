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
using detail::Answer;
using detail::Answers;

namespace {

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
};

// The probes of the kind of chain: the oracle's code, and Arbitrum's arbOSVersion().
struct Probes {
    Answer<std::string> code, arbos;
};
// The OP Stack oracle's reads: getL1FeeUpperBound(size) since Fjord; getL1Fee(size bytes of 0xff)
// before it (every byte non-zero: its most); getOperatorFee(0) and (1e6) since Isthmus; isJovian()
// since Jovian.
struct OracleCalls {
    Answer<std::string> fee_bound, fee_before_fjord, operator_fee_zero, operator_fee_million, jovian;
};

Probes add_probes(detail::Batch& batch) {
    Probes p;
    p.code = batch.add<std::string>({"eth_getCode", json::array({kOracle, "latest"})});
    p.arbos = batch.add<std::string>({"eth_call", call_to(kArbSys, "0x051038f2")});
    return p;
}

OracleCalls add_oracle_calls(detail::Batch& batch) {
    std::string data = "0x49948e0e" + word(32) + word(kTransferSize) + std::string(2 * kTransferSize, 'f');
    data.append((64 - (2 * kTransferSize) % 64) % 64, '0');
    OracleCalls o;
    o.fee_bound = batch.add<std::string>({"eth_call", call_to(kOracle, "0xf1c7a58b" + word(kTransferSize))});
    o.fee_before_fjord = batch.add<std::string>({"eth_call", call_to(kOracle, data)});
    o.operator_fee_zero = batch.add<std::string>({"eth_call", call_to(kOracle, "0x275aedd2" + word(0))});
    o.operator_fee_million = batch.add<std::string>({"eth_call", call_to(kOracle, "0x275aedd2" + word(kMillion))});
    o.jovian = batch.add<std::string>({"eth_call", call_to(kOracle, "0x105d0b81")});
    return o;
}

// A 32-byte word an eth_call returned, as a number.
std::optional<Wei> word_of(const std::optional<std::string>& text) {
    if (!text || text->size() != 66) return std::nullopt;
    auto bytes = from_hex(*text);
    if (!bytes) return std::nullopt;
    auto v = from_be_bytes(*bytes);
    if (!v || *v > max_sane_amount()) return std::nullopt;
    return *v;
}

// The kind of chain from the probes (empty when one of them got no answer).
std::optional<funding::L2Kind> detected(std::uint64_t chain_id, const detail::Answers& answers, const Probes& probes) {
    const auto code = answers.get(probes.code);
    if (!code || !answers.answered(probes.arbos)) return std::nullopt;
    return funding::detect_l2(chain_id, *code != "0x" && !code->empty(), word_of(answers.get(probes.arbos)).has_value());
}

// The oracle's reads: the L1 fee's bound (empty: neither function answered), the operator fee
// (none where getOperatorFee does not exist: before Isthmus) and whether receipts' operator fee is
// Jovian's (an oracle that does not answer isJovian is before Jovian).
std::optional<funding::OpFees> op_fees(const detail::Answers& answers, const OracleCalls& oracle, const config::Network& net) {
    auto bound = word_of(answers.get(oracle.fee_bound));
    if (!bound) bound = word_of(answers.get(oracle.fee_before_fjord));
    if (!bound) return std::nullopt;
    funding::OpFees f;
    f.l1_fee_bound = *bound;
    f.margin_permille = net.l1_fee_margin_permille;
    const auto base = word_of(answers.get(oracle.operator_fee_zero));
    const auto at_million = word_of(answers.get(oracle.operator_fee_million));
    if (base && at_million) {
        f.operator_fee_base = *base;
        f.operator_fee_per_mgas = *at_million > *base ? *at_million - *base : Wei(0);
    }
    f.jovian = word_of(answers.get(oracle.jovian)) == Wei(1);
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

//! The poll's calls: the fixed ones, those about the kind of chain and the blocks checked (the
//! first request carries them on top of batchSize), then one eth_getBalance per account with its
//! params written directly (a poll may carry 10,000 of them); every later request starts with an
//! eth_blockNumber (Batch).
struct PollCalls {
    explicit PollCalls(std::size_t batch_size) : batch(batch_size, detail::Batch::Riders::kUntilEnded) {}
    detail::Batch batch;
    Answer<std::uint64_t> chain_id;
    Answer<rpc::BlockInfo> block;
    Answer<Wei> bank_balance;
    Answer<std::uint64_t> bank_nonce;  // pending
    Answer<Wei> gas_price, priority_fee;
    Answer<std::uint64_t> bank_latest_nonce;
    std::optional<Probes> probes;
    std::optional<OracleCalls> oracle;
    std::map<std::uint64_t, Answer<rpc::BlockInfo>> height_at;  //!< each checked height's block
    std::optional<Answer<rpc::BlockInfo>> finalized;
    std::vector<std::pair<const funding::Account*, Answer<Wei>>> balances;  //!< each account's eth_getBalance
};

void add_fixed_calls(PollCalls& out, const eth::Address& bank, const L2Calls& l2, const BlockChecks& checks) {
    auto& b = out.batch;
    out.chain_id = b.add<std::uint64_t>({"eth_chainId", json::array()});
    out.block = b.add<rpc::BlockInfo>({"eth_getBlockByNumber", json::array({"latest", false})});
    out.bank_balance = b.add<Wei>({"eth_getBalance", json::array({bank.lower(), "latest"})});
    out.bank_nonce = b.add<std::uint64_t>({"eth_getTransactionCount", json::array({bank.lower(), "pending"})});
    out.gas_price = b.add<Wei>({"eth_gasPrice", json::array()});
    out.priority_fee = b.add<Wei>({"eth_maxPriorityFeePerGas", json::array()});
    out.bank_latest_nonce = b.add<std::uint64_t>({"eth_getTransactionCount", json::array({bank.lower(), "latest"})});
    if (l2.detect) out.probes = add_probes(b);
    if (l2.op) out.oracle = add_oracle_calls(b);
    for (auto h : checks.heights)
        out.height_at[h] = b.add<rpc::BlockInfo>({"eth_getBlockByNumber", json::array({to_quantity(Wei(h)), false})});
    if (checks.finalized) out.finalized = b.add<rpc::BlockInfo>({"eth_getBlockByNumber", json::array({"finalized", false})});
    b.end_riders();
}

PollCalls poll_calls(const eth::Address& bank, const std::vector<funding::Account>& accounts, const L2Calls& l2,
                     const BlockChecks& checks, std::size_t batch_size) {
    PollCalls out(batch_size);
    add_fixed_calls(out, bank, l2, checks);
    out.batch.reserve(accounts.size());
    out.balances.reserve(accounts.size());
    static constexpr char kDigits[] = "0123456789abcdef";
    for (const auto& a : accounts) {
        rpc::Call c{"eth_getBalance", json(), "[\"0x" + std::string(40, '0') + "\",\"latest\"]"};
        for (std::size_t k = 0; k < 20; ++k) {
            c.params_text[4 + 2 * k] = kDigits[a.address.bytes()[k] >> 4];
            c.params_text[5 + 2 * k] = kDigits[a.address.bytes()[k] & 0xf];
        }
        out.balances.emplace_back(&a, out.batch.add<Wei>(std::move(c)));
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
void read_checks(const PollCalls& calls, const Answers& answers, NetworkSnapshot& snap) {
    for (const auto& [height, block] : calls.height_at) {
        auto& slot = snap.hash_at[height];
        if (!answers.answered(block)) continue;
        if (answers.null(block)) slot = std::string();
        else if (const auto b = answers.get(block); b && !b->hash.empty() && b->number == height) slot = b->hash;
    }
    if (calls.finalized)
        if (const auto b = answers.get(*calls.finalized)) snap.finalized = b->number;
}

// The bank, the fees and the kind of chain, as the poll answered them.
void read_network(const PollCalls& calls, const Answers& answers, const config::Network& net,
                  std::optional<funding::L2Kind> known, NetworkSnapshot& snap) {
    snap.bank_balance = answers.get(calls.bank_balance);
    snap.bank_nonce = answers.get(calls.bank_nonce);
    snap.gas_price = answers.get(calls.gas_price);
    snap.priority_fee = answers.get(calls.priority_fee);
    snap.bank_latest_nonce = answers.get(calls.bank_latest_nonce);
    snap.l2 = calls.probes ? detected(snap.chain_id, answers, *calls.probes) : known;
    if (snap.l2 == funding::L2Kind::kOp && calls.oracle) snap.op_fees = op_fees(answers, *calls.oracle, net);
    read_checks(calls, answers, snap);
}

// Each account's balance (unknown, with why, where its call failed).
void read_balances(const PollCalls& calls, const Answers& answers, NetworkSnapshot& snap) {
    for (const auto& [account, balance] : calls.balances) {
        AccountState s{*account, std::nullopt, {}};
        const auto& res = answers.call(balance);
        if (res.ok()) {
            s.balance = answers.get(balance);
            if (!s.balance) s.error = "malformed balance";
        } else {
            s.error = res.error ? res.error->message() : "no answer";
        }
        snap.accounts.push_back(std::move(s));
    }
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
    Answers answers;
    try {
        answers = Answers(co_await client.batch(calls.batch.take(), calls.batch.riders(), rpc::RpcClient::Attempts::kRetry,
                                                detail::Batch::kLaterRiders));
    } catch (const std::exception& e) {
        co_return not_polled(std::move(snap), accounts, e.what(), "network unreachable");
    }
    const auto chain = answers.get(calls.chain_id);
    const auto block = answers.get(calls.block);
    if (!chain)
        co_return not_polled(std::move(snap), accounts, failed_call("eth_chainId", answers.call(calls.chain_id)),
                             "network unreachable");
    if (!block)
        co_return not_polled(std::move(snap), accounts, failed_call("eth_getBlockByNumber", answers.call(calls.block)),
                             "network unreachable");
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
    snap.block = std::min(block->number, calls.batch.oldest_head(answers).value_or(block->number));
    snap.base_fee = block->base_fee;
    read_network(calls, answers, net, known, snap);
    read_balances(calls, answers, snap);
    co_return snap;
}

}  // namespace keymaster::chain
