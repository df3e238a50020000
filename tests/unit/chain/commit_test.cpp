// Every step of a Round against a scripted node: a small in-memory chain behind FakeRpcServer
// whose behaviour a test bends (refuse a send, drop a request, hold mining, lag a receipt).
#include <catch2/catch.hpp>

#include <utility>

#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <sqlite3.h>

#include "fake_http_server.hpp"
#include "keymaster/chain/round.hpp"
#include "keymaster/chain/ledger_thread.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/chain/send_result.hpp"
#include "keymaster/common/hex.hpp"
#include "keymaster/common/text.hpp"
#include "manual_clock.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/signer/signer.hpp"
#include "task_runner.hpp"

using namespace keymaster;
using nlohmann::json;

namespace {

constexpr std::uint64_t kChainId = 1337;
const Wei kEther = Wei("1000000000000000000");

std::uint64_t from_hex_u64(const std::string& q) { return std::stoull(q.substr(2), nullptr, 16); }

struct Tx {
    eth::SignedTransaction stx;
    std::string hash;
    std::optional<std::uint64_t> block;  // mined in
};

// A chain with one sender (the bank) and a mempool. Blocks are mined when asked for the block
// number (each eth_blockNumber is a new block), unless `mining` is off.
struct FakeChain {
    std::uint64_t block = 100;
    bool london = true;
    Wei base_fee = Wei(1'000'000'000);
    std::map<std::string, Wei> balances;  // lower-case address -> balance
    std::uint64_t mined_nonce = 0;        // the bank's latest nonce
    std::map<std::string, Tx> txs;        // by hash
    bool mining = true;
    bool effective_gas_price = true;
    bool revert = false;
    bool drop_lookups = false;
    bool fail_estimates = false;  // eth_estimateGas gets no answer
    std::uint64_t receipt_lag = 0;  // receipts (and lookups by hash) appear this many blocks after the transaction is mined
    bool no_index = false;          // a node without a transaction index: no receipt, null by hash, ever
    bool pruned = false;            // no state at past heights (block bodies are still served)
    std::set<std::string> index_errors;  // receipts answered with geth's "transaction indexing is in progress"
    std::uint64_t salt = 0;         // part of every block's hash: a reorg changes it
    std::function<void()> before_latest;  // run once, when the latest block is next asked for
    // Nonces of the bank used by transactions not of this chain's pool (someone else's): nonce -> block.
    std::map<std::uint64_t, std::uint64_t> foreign;
    // Called for every eth_sendRawTransaction before it is taken: throw to refuse (RpcError) or
    // DropConnection (no answer). `index` counts every send seen.
    std::function<void(const eth::SignedTransaction&, int index)> on_send;
    int sends = 0;
    // Other senders' nonces (lower-case address): (from block, nonce), oldest first.
    std::map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> nonces;
    std::set<std::string> lie_empty;              // balances reported as 0
    std::set<std::string> no_history;             // balances at a block number: geth's "header not found"
    // The kind of chain it plays: an L1 (nothing at the oracle's address), the OP Stack (a
    // GasPriceOracle answering the values below; receipts carry l1Fee and the operator fee's
    // fields, and the bank pays them) or Arbitrum (ArbSys answers; estimates are `estimate`).
    enum class L2 { kNone, kOp, kArbitrum } l2 = L2::kNone;
    Wei l1_fee_bound = Wei(3'000'000'000'000);  // getL1FeeUpperBound(size)
    Wei l1_fee = Wei(2'000'000'000'000);        // what a receipt's l1Fee says was paid
    std::uint64_t operator_scalar = 0, operator_constant = 0;
    bool jovian = false;  // past Jovian: isJovian() answers true and the operator fee is Jovian's
    bool oracle_answers = true;
    bool code_answers = true;  // eth_getCode: a node that refuses it leaves the kind of chain unknown
    std::uint64_t estimate = 21000;
    std::string bank;  // lower-case: pays the amounts and every fee

    static std::string word(const Wei& v) {
        std::string h = to_quantity(v).substr(2);
        return "0x" + std::string(64 - h.size(), '0') + h;
    }
    Wei operator_fee(std::uint64_t gas) const {
        return (jovian ? Wei(gas) * operator_scalar * 100 : Wei(gas) * operator_scalar / 1'000'000) + operator_constant;
    }

    json call(const json& tx) {
        const auto to = to_lower(tx.value("to", ""));
        const auto data = tx.value("data", "");
        if (to == "0x420000000000000000000000000000000000000f" && l2 == L2::kOp) {
            if (!oracle_answers) throw std::runtime_error("execution reverted");
            const auto selector = data.substr(0, 10);
            if (selector == "0xf1c7a58b") return word(l1_fee_bound);  // getL1FeeUpperBound(uint256)
            if (selector == "0x275aedd2") return word(operator_fee(from_hex_u64("0x" + data.substr(10))));  // getOperatorFee
            if (selector == "0x105d0b81" && jovian) return word(Wei(1));  // isJovian(): absent before Jovian
            throw std::runtime_error("execution reverted");
        }
        if (to == "0x0000000000000000000000000000000000000064" && l2 == L2::kArbitrum) return word(Wei(20));  // arbOSVersion
        return "0x";
    }

    json handle(const std::string& method, const json& params) {
        if (method == "eth_chainId") return to_quantity(kChainId);
        if (method == "eth_blockNumber") {
            if (mining) mine();
            return to_quantity(block);
        }
        if (method == "eth_getBlockByNumber") {
            const auto tag = params[0].get<std::string>();
            if (tag == "finalized" || tag == "safe") throw std::runtime_error("unknown block");
            if (tag == "latest" && before_latest) std::exchange(before_latest, {})();  // e.g. a reorg just before the poll
            const std::uint64_t n = tag == "latest" || tag == "pending" ? block : from_hex_u64(tag);
            if (n > block) return nullptr;
            json b = {{"number", to_quantity(n)}, {"hash", block_hash(n)}};
            if (london) b["baseFeePerGas"] = to_quantity(base_fee);
            if (params.size() > 1 && params[1].get<bool>()) {
                b["transactions"] = json::array();
                for (const auto& [h, t] : txs)
                    if (t.block == n) b["transactions"].push_back(by_hash(t));
                for (const auto& [nonce, at] : foreign)
                    if (at == n)
                        b["transactions"].push_back(json{{"hash", "0xf0" + std::string(62, '0')}, {"from", bank_address},
                                                         {"nonce", to_quantity(nonce)}, {"blockNumber", to_quantity(n)}});
            }
            return b;
        }
        if (method == "eth_getBalance" && no_history.count(params[0].get<std::string>()) &&
            params[1].get<std::string>().rfind("0x", 0) == 0)
            throw std::runtime_error("header not found");
        if (method == "eth_getBalance")
            return to_quantity(lie_empty.count(params[0].get<std::string>()) ? Wei(0) : balance(params[0].get<std::string>()));
        if (method == "eth_getTransactionCount") {
            if (auto it = nonces.find(params[0].get<std::string>()); it != nonces.end()) {
                const auto tag = params[1].get<std::string>();
                const std::uint64_t at = tag == "latest" || tag == "pending" ? block : from_hex_u64(tag);
                std::uint64_t n = 0;
                for (const auto& [from, v] : it->second)
                    if (from <= at) n = v;
                return to_quantity(n);
            }
            const auto tag = params[1].get<std::string>();
            if (tag != "latest" && tag != "pending" && pruned) throw std::runtime_error("missing trie node (state is not available)");
            if (tag != "latest" && tag != "pending") return to_quantity(nonce_at(from_hex_u64(tag)));
            return to_quantity(tag == "pending" ? pending_nonce() : mined_nonce);
        }
        if (method == "eth_gasPrice") return to_quantity(base_fee + 1'000'000'000);
        if (method == "eth_maxPriorityFeePerGas") {
            if (!london) throw std::runtime_error("method not found");
            return to_quantity(1'000'000'000);
        }
        if (method == "eth_estimateGas") {
            if (fail_estimates) throw test::DropConnection();
            return to_quantity(estimate);
        }
        if (method == "eth_getCode" && !code_answers) throw std::runtime_error("method not supported");
        if (method == "eth_getCode")
            return l2 == L2::kOp && to_lower(params[0].get<std::string>()) == "0x420000000000000000000000000000000000000f"
                       ? "0x6080"
                       : "0x";
        if (method == "eth_call") return call(params[0]);
        if (method == "eth_sendRawTransaction") return send(params[0].get<std::string>());
        if (method == "eth_getTransactionReceipt") return receipt(params[0].get<std::string>());
        if (method == "eth_getTransactionByHash") {
            if (drop_lookups) throw test::DropConnection();
            if (index_errors.count(params[0].get<std::string>())) throw std::runtime_error("transaction indexing is in progress");
            auto it = txs.find(params[0].get<std::string>());
            if (it == txs.end() || no_index) return nullptr;
            auto t = by_hash(it->second);
            if (it->second.block && block < *it->second.block + receipt_lag) t["blockNumber"] = nullptr;  // a backend behind
            return t;
        }
        throw std::runtime_error("unexpected " + method);
    }

    std::string block_hash(std::uint64_t n) const {
        const std::string h = to_quantity(Wei(n * 1000 + salt)).substr(2);
        return "0x" + std::string(64 - h.size(), 'b') + h;
    }
    std::string bank_address = "0x" + std::string(40, '0');  // lower case, as nodes answer `from`
    json by_hash(const Tx& t) const {
        json j = {{"hash", t.hash}, {"from", bank_address}, {"nonce", to_quantity(t.stx.tx.nonce)}, {"blockNumber", nullptr}};
        if (t.block) {
            j["blockNumber"] = to_quantity(*t.block);
            j["blockHash"] = block_hash(*t.block);
            j["gasPrice"] = to_quantity(price_of(t));
        }
        return j;
    }
    // The bank's nonce count at block `n`: its transactions (ours and someone else's) mined by then.
    std::uint64_t nonce_at(std::uint64_t n) const {
        std::uint64_t count = 0;
        for (const auto& [h, t] : txs) count += t.block && *t.block <= n;
        for (const auto& [nonce, at] : foreign) count += at <= n;
        return count;
    }
    // The pending nonce as geth counts it: past the pool's transactions that follow on from the latest.
    std::uint64_t pending_nonce() {
        std::set<std::uint64_t> held;
        for (auto* t : pool()) held.insert(t->stx.tx.nonce);
        std::uint64_t n = mined_nonce;
        while (held.count(n)) ++n;
        return n;
    }
    // Someone else's transaction takes the bank's next nonce in the current block.
    void take_nonce() { foreign[mined_nonce++] = block; }

    Wei balance(const std::string& a) {
        auto it = balances.find(to_lower(a));
        return it == balances.end() ? Wei(0) : it->second;
    }

    std::vector<Tx*> pool() {
        std::vector<Tx*> out;
        for (auto& [h, t] : txs)
            if (!t.block && t.stx.tx.nonce >= mined_nonce) out.push_back(&t);
        return out;
    }

    json send(const std::string& raw_hex) {
        const auto raw = from_hex(raw_hex).value();
        auto stx = eth::decode_signed(raw).value();
        const std::string hash = to_hex(eth::transaction_hash(raw));
        if (on_send) on_send(stx, sends++);
        if (txs.count(hash)) throw std::runtime_error("already known");
        if (stx.tx.nonce < mined_nonce) throw std::runtime_error("nonce too low");
        for (auto* t : pool())
            if (t->stx.tx.nonce == stx.tx.nonce) {
                if (stx.tx.max_fee_per_gas * 10 < t->stx.tx.max_fee_per_gas * 11 &&
                    stx.tx.gas_price * 10 < t->stx.tx.gas_price * 11)
                    throw std::runtime_error("replacement transaction underpriced");
                txs.erase(t->hash);
                break;
            }
        txs[hash] = Tx{stx, hash, std::nullopt};
        return hash;
    }

    void mine() {
        ++block;
        for (bool again = true; again;) {
            again = false;
            for (auto& [h, t] : txs)
                if (!t.block && t.stx.tx.nonce == mined_nonce) {
                    t.block = block;
                    ++mined_nonce;
                    if (!revert) balances[t.stx.tx.to->lower()] += t.stx.tx.value;
                    if (!bank.empty()) balances[bank] -= (revert ? Wei(0) : t.stx.tx.value) + fee_of(t);
                    again = true;
                }
        }
    }

    Wei price_of(const Tx& t) const {
        return t.stx.tx.type == eth::TxType::kLegacy ? t.stx.tx.gas_price
                                                     : std::min(t.stx.tx.max_fee_per_gas, base_fee + t.stx.tx.max_priority_fee_per_gas);
    }
    // What a mined transaction costs its sender in fees (21000 gas used), as the chain charges it.
    Wei fee_of(const Tx& t) const {
        return Wei(21000) * price_of(t) + (l2 == L2::kOp ? l1_fee + operator_fee(21000) : Wei(0));
    }

    json receipt(const std::string& hash) {
        if (index_errors.count(hash)) throw std::runtime_error("transaction indexing is in progress");
        auto it = txs.find(hash);
        if (it == txs.end() || no_index || !it->second.block || block < *it->second.block + receipt_lag) return nullptr;
        const auto& t = it->second;
        json r = {{"status", revert ? "0x0" : "0x1"}, {"blockNumber", to_quantity(*t.block)}, {"gasUsed", "0x5208"},
                  {"blockHash", block_hash(*t.block)}};
        if (effective_gas_price) r["effectiveGasPrice"] = to_quantity(price_of(t));
        if (l2 == L2::kOp) {
            r["l1Fee"] = to_quantity(l1_fee);
            r["operatorFeeScalar"] = to_quantity(operator_scalar);
            r["operatorFeeConstant"] = to_quantity(operator_constant);
        }
        return r;
    }
};

std::string temp_dir() {
    std::random_device rd;
    auto p = std::filesystem::temp_directory_path() / ("keymaster-commit-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(p);
    return p.string();
}

eth::Address address_of(int n) {
    ByteArray<20> b{};
    b[0] = 0xa0;
    b[19] = static_cast<std::uint8_t>(n);
    return eth::Address(b);
}

// One network, `n` accounts at zero balance (threshold 1, target 2 ether), a local bank key.
struct Rig {
    boost::asio::io_context io;
    FakeChain chain;
    test::FakeRpcServer server{io, [this](const std::string& m, const json& p) {
                                   clock.advance_steady(kCallTime);
                                   return chain.handle(m, p);
                               }};
    std::string dir = temp_dir();
    // The Worker's and the ledger's clock: tests move it, never sleep. Each call the node answers
    // takes kCallTime on its steady clock: commit's wait for receipts (confirm_timeout,
    // max_receipt_poll, rebroadcast_every) counts the node's answers, not real time.
    static constexpr std::chrono::milliseconds kCallTime{25};
    test::ManualClock clock{keymaster::system_clock().wall()};
    ledger::Ledger ledger{dir, true, clock};
    std::shared_ptr<signer::Signer> bank =
        std::make_shared<signer::LocalSigner>(crypto::PrivateKey::from_hex(Secret(std::string(64, '1'))).value());
    config::Network net;
    std::shared_ptr<std::vector<funding::Account>> accounts = std::make_shared<std::vector<funding::Account>>();
    std::unique_ptr<chain::Worker> worker;
    int replaced_heard = 0;     // CommitOptions::replaced calls: each replacement when it is broadcast
    std::map<std::pair<std::string, bool>, std::size_t> rpc_calls;  // (method, ok) -> calls, as the metrics count them

    explicit Rig(int n, std::function<void(config::Network&)> tweak = {}) {
        net.name = "alpha";
        net.endpoints = {Secret(server.url())};
        net.replace_after = {1000, 3600};
        if (tweak) tweak(net);
        for (int i = 1; i <= n; ++i)
            accounts->push_back({"alpha", "alpha", config::Role::kWatcher, address_of(i), kEther, kEther * 2, {}});
        chain.balances[bank->address().lower()] = kEther * 1000;
        chain.bank_address = bank->address().lower();
        rpc::RpcObserver obs;
        obs.on_calls = [this](const std::string& m, bool ok, std::size_t k) { rpc_calls[{m, ok}] += k; };
        worker = std::make_unique<chain::Worker>(io.get_executor(), net, bank, accounts, &ledger, obs, clock);
    }
    ~Rig() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    // Each reading of the wall clock moves it on by `seconds` (time passes fast while commit waits).
    void wall_step(double seconds) { clock.step(seconds); }
    chain::RoundPlan prepare(chain::Mode mode = chain::Mode::kLive) { return test::run(io, worker->prepare(mode)); }
    chain::RoundReport commit(const chain::RoundPlan& plan, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        chain::CommitOptions o;
        o.confirm_timeout = timeout;
        o.receipt_tick = std::chrono::milliseconds(1);  // real time between readings of the (manual) clock
        o.max_receipt_poll = std::chrono::milliseconds(50);
        o.rebroadcast_every = std::chrono::milliseconds(100);
        o.replaced = [this] { ++replaced_heard; };
        return test::run(io, worker->commit(plan, o));
    }
    std::vector<ledger::Entry> history() { return ledger.history({}); }
    std::size_t sends_seen() const {
        std::size_t n = 0;
        for (const auto& b : server.bodies())
            for (const auto& r : b.is_array() ? b : json::array({b})) n += r.value("method", "") == "eth_sendRawTransaction";
        return n;
    }
};

std::size_t count_state(const std::vector<ledger::Entry>& h, ledger::State s, const std::string& role = {}) {
    std::size_t n = 0;
    for (const auto& e : h) n += e.state == s && (role.empty() || e.role == role);
    return n;
}

}  // namespace

TEST_CASE("commit: a plain round signs, journals, broadcasts in one batch and confirms", "[chain][commit]") {
    Rig rig(3);
    auto plan = rig.prepare();
    REQUIRE(plan.can_commit());
    REQUIRE(plan.plan.topups.size() == 3);
    CHECK(rig.sends_seen() == 0);  // nothing is broadcast before commit
    auto report = rig.commit(plan);
    REQUIRE(report.outcomes.size() == 3);
    for (const auto& o : report.outcomes) {
        CHECK(o.ok());
        CHECK(o.fee_paid == Wei(21000) * (rig.chain.base_fee + 1'000'000'000));
    }
    CHECK(count_state(rig.history(), ledger::State::kConfirmed) == 3);
    for (int i = 1; i <= 3; ++i) CHECK(rig.chain.balance(address_of(i).lower()) == kEther * 2);
}

// The ledger's steps after the poll are separate calls on its thread: a burn history that cannot be
// kept (its tables gone) while the audit's call works leaves the ledger answering, not away, and
// the next Round (this network's or another's on the same thread) is not blocked by it. (When they
// were one call, the burn part's failure made the whole call a failure: the ledger was away.)
TEST_CASE("commit: a failed burn step is noted and leaves the ledger thread answering", "[chain][commit]") {
    Rig rig(1);
    chain::LedgerThread thread(rig.ledger, rig.clock);
    rig.worker->set_ledger_thread(&thread);
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open((rig.dir + "/ledger.sqlite").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "DROP TABLE burn_state; DROP TABLE burn;", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    auto first = rig.prepare();
    CHECK_FALSE(first.blocking());
    const auto* burn = first.first(chain::RoundProblem::Kind::kBurn);
    REQUIRE(burn);
    CHECK_THAT(burn->message, Catch::StartsWith("cannot keep the burn history"));
    CHECK_FALSE(first.first(chain::RoundProblem::Kind::kAudit));
    CHECK(first.plan.topups.size() == 1);
    CHECK(first.can_commit());
    CHECK_FALSE(thread.away());
    auto second = rig.prepare();
    CHECK_FALSE(second.blocking());
}

TEST_CASE("commit: a refused send in the middle of a batch is filled; the others confirm", "[chain][commit]") {
    Rig rig(3);
    rig.chain.on_send = [](const eth::SignedTransaction&, int index) {
        if (index == 1) throw std::runtime_error("intrinsic gas too low (refused by the test)");
    };
    auto report = rig.commit(rig.prepare());
    CHECK(report.outcomes[0].ok());
    CHECK(report.outcomes[1].state == chain::Outcome::State::kFailed);
    CHECK(report.outcomes[1].fault == Fault::kTopUp);
    CHECK(report.outcomes[2].ok());
    const auto h = rig.history();
    CHECK(count_state(h, ledger::State::kFailed) == 1);
    CHECK(count_state(h, ledger::State::kSent, "nonce-filler") == 1);  // settled by the next reconcile
    CHECK(rig.chain.mined_nonce == 3);
}

TEST_CASE("commit: a lost batch answer is unknown, never failed; the bytes go out again and confirm", "[chain][commit]") {
    Rig rig(2);
    int drops = 0;
    rig.chain.on_send = [&](const eth::SignedTransaction&, int) {
        if (drops++ < 6) throw test::DropConnection();  // every attempt of the first batch (3 per endpoint)
    };
    auto plan = rig.prepare();
    auto report = rig.commit(plan);
    CHECK(count_state(rig.history(), ledger::State::kFailed) == 0);
    for (const auto& o : report.outcomes) CHECK(o.ok());  // re-broadcast while waiting for receipts
}

TEST_CASE("commit: unknown send results count against the daily limit and stay pending for reconcile", "[chain][commit]") {
    Rig rig(2);
    rig.chain.on_send = [](const eth::SignedTransaction&, int) { throw test::DropConnection(); };
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(400));
    for (const auto& o : report.outcomes) {
        CHECK(o.state == chain::Outcome::State::kSent);
        CHECK_FALSE(o.ok());
    }
    const auto h = rig.history();
    CHECK(count_state(h, ledger::State::kSent) == 2);
    CHECK(rig.ledger.spent_since("alpha", rig.bank->address().checksummed(), 0) == kEther * 4);
    // The next Round: the accounts wait for them, nothing is paid twice.
    rig.chain.on_send = {};
    auto next = rig.prepare();
    CHECK(next.plan.topups.empty());
    CHECK(next.plan.waiting.size() == 2);
    CHECK(next.pending.size() == 2);
}

TEST_CASE("commit: \"nonce too low\" for our own transaction already mined counts as sent", "[chain][commit]") {
    Rig rig(1);
    rig.chain.on_send = [&](const eth::SignedTransaction& stx, int index) {
        if (index == 0) {  // a retried request whose first attempt landed and was mined
            auto raw = eth::encode_signed(stx.tx, crypto::RecoverableSignature{stx.r, stx.s, stx.y_parity});
            const std::string hash = to_hex(eth::transaction_hash(raw));
            rig.chain.txs[hash] = Tx{stx, hash, std::nullopt};
            rig.chain.mine();
            throw std::runtime_error("nonce too low");
        }
    };
    auto report = rig.commit(rig.prepare());
    CHECK(report.outcomes[0].ok());
    CHECK(count_state(rig.history(), ledger::State::kConfirmed) == 1);
}

TEST_CASE("commit: \"nonce too low\" whose hash lookup fails stays unknown (pending), not failed", "[chain][commit]") {
    Rig rig(1);
    rig.chain.on_send = [](const eth::SignedTransaction&, int) { throw std::runtime_error("nonce too low"); };
    rig.chain.drop_lookups = true;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(300));
    CHECK(report.outcomes[0].state == chain::Outcome::State::kSent);
    const auto h = rig.history();
    REQUIRE(h.size() == 1);
    CHECK(h[0].state == ledger::State::kSent);
    CHECK_THAT(h[0].error, Catch::StartsWith("send result unknown"));
}

TEST_CASE("commit: a filler answered \"underpriced\" and not held is re-signed with higher fees; both stay sent", "[chain][commit]") {
    Rig rig(3);
    rig.chain.on_send = [](const eth::SignedTransaction& stx, int index) {
        if (index == 1) throw std::runtime_error("insufficient funds for gas * price + value (refused by the test)");
        if (index == 3) throw std::runtime_error("replacement transaction underpriced");  // the first filler
        (void)stx;
    };
    auto report = rig.commit(rig.prepare());
    CHECK(report.outcomes[0].ok());
    CHECK(report.outcomes[2].ok());
    const auto h = rig.history();
    std::vector<ledger::Entry> fillers;
    for (const auto& e : h)
        if (e.role == "nonce-filler") fillers.push_back(e);
    REQUIRE(fillers.size() == 2);  // newest first
    CHECK(fillers[1].state == ledger::State::kSent);  // words alone never make a failure
    CHECK_THAT(fillers[1].error, Catch::Contains("underpriced"));
    CHECK(fillers[0].state == ledger::State::kSent);
    CHECK(fillers[0].max_fee > fillers[1].max_fee);
    CHECK(fillers[0].nonce == fillers[1].nonce);
    CHECK(rig.chain.mined_nonce == 3);
}

namespace {
// The node takes the transaction into its pool (a retried request whose first attempt landed).
void take(FakeChain& chain, const eth::SignedTransaction& stx) {
    auto raw = eth::encode_signed(stx.tx, crypto::RecoverableSignature{stx.r, stx.s, stx.y_parity});
    const std::string hash = to_hex(eth::transaction_hash(raw));
    chain.txs[hash] = Tx{stx, hash, std::nullopt};
}

// What each client answers for a transaction it holds: "already known", "nonce too low" and
// "underpriced" in its own words, and words no classifier knows.
const std::vector<const char*> kHeldWords = {
    "already known",                                                    // geth, reth, Erigon, Frontier
    "AlreadyKnown",                                                     // Nethermind (older)
    "Known transaction",                                                // Besu
    "tx already in mempool",                                            // Ethermint
    "Transaction is temporarily banned",                                // Frontier (Substrate)
    "transaction already imported",                                     // anvil
    "Known transaction: 0xf07a9b8d8d3fc29ccd21ccbb7e6e8182932dd993a83bb4b53a3167e1b4dd3da8",  // hardhat
    "nonce too low: next nonce 1, tx nonce 0",                          // geth
    "OldNonce, Current nonce: 1, nonce of rejected tx: 0",              // Nethermind (older)
    "invalid nonce; got 0, expected 1: invalid sequence",               // Ethermint
    "invalid transaction nonce",                                        // Arbitrum
    "the tx doesn't have the correct nonce. account has nonce of: 1 tx has nonce of: 0",  // ganache
    "Nonce too low. Expected nonce to be 1 but got 0.",                 // hardhat
    "transaction underpriced",                                          // ganache, for a re-broadcast
    "replacement transaction underpriced",                              // geth
    "FeeTooLowToCompete",                                               // Nethermind (older)
    "Priority is too low: (2000 vs 2000)",                              // Frontier (Substrate)
    "upstream said no (words of a provider)",                           // no classifier knows them
    // A positive refusal: the node holds it all the same (a load-balanced provider: the retry hit
    // another node). Held wins.
    "insufficient funds for gas * price + value",
};

// What each client answers for a transaction it refuses outright.
const std::vector<const char*> kRefusals = {
    "insufficient funds for gas * price + value: balance 0, tx cost 1, overshot 1",  // geth
    "InsufficientFunds, Account balance: 0, cumulative cost: 21000",                 // Nethermind (older)
    "Upfront cost exceeds account balance",                                           // Besu
    "intrinsic gas too low: gas 0, minimum needed 21000",                             // geth, reth
    "Intrinsic gas exceeds gas limit",                                                // Besu
    "exceeds block gas limit",                                                        // geth
    "invalid sender",                                                                 // geth
    "Invalid signature",                                                              // Besu
    "invalid chain ID",                                                               // reth
    "only replay-protected (EIP-155) transactions allowed over RPC",                 // geth
    "tx fee (1.10 ether) exceeds the configured cap (1.00 ether)",                   // geth
    "Sender doesn't have enough funds to send tx. The max upfront cost is: 1 and the sender's balance is: 0.",  // hardhat
    "insufficient funds to pay for fees; 0aevmos < 21000aevmos: insufficient funds",  // Ethermint
};
}  // namespace

TEST_CASE("commit: a transaction the node holds is sent whatever its words; one paid once", "[chain][commit][send]") {
    for (const char* words : kHeldWords) {
        INFO(words);
        Rig rig(1);
        rig.chain.on_send = [&](const eth::SignedTransaction& stx, int index) {
            if (index != 0) return;
            take(rig.chain, stx);
            throw std::runtime_error(words);
        };
        auto report = rig.commit(rig.prepare());
        CHECK(report.outcomes[0].ok());
        // "Already known" is an answer, not a failed call; other words count as failures.
        const bool known = chain::classify_send_error(words) == chain::SendHint::kAlreadyKnown;
        CHECK(rig.rpc_calls[{"eth_sendRawTransaction", false}] == (known ? 0U : 1U));
        const auto h = rig.history();
        CHECK(h.size() == 1);
        CHECK(count_state(h, ledger::State::kConfirmed) == 1);
        CHECK(rig.chain.mined_nonce == 1);  // no second payment, no filler
        CHECK(rig.prepare().plan.topups.empty());
    }
}

TEST_CASE("commit: a transaction the node does not hold, in words that are no refusal, stays sent (unknown)", "[chain][commit][send]") {
    for (const char* words : {"transaction underpriced", "nonce too low", "AlreadyKnown", "upstream said no"}) {
        INFO(words);
        Rig rig(1);
        rig.chain.on_send = [&](const eth::SignedTransaction&, int) { throw std::runtime_error(words); };
        auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(200));
        CHECK(report.outcomes[0].state == chain::Outcome::State::kSent);
        const auto h = rig.history();
        REQUIRE(h.size() == 1);
        CHECK(h[0].state == ledger::State::kSent);
        CHECK_THAT(h[0].error, Catch::StartsWith("send result unknown: ") && Catch::Contains("not held by the node"));
        auto next = rig.prepare();  // the account waits for it: never decided again while it is unresolved
        CHECK(next.plan.topups.empty());
        CHECK(next.pending.size() == 1);
    }
}

TEST_CASE("commit: each client's refusal of a transaction it does not hold is a failure", "[chain][commit][send]") {
    for (const char* words : kRefusals) {
        INFO(words);
        Rig rig(1);
        rig.chain.on_send = [&](const eth::SignedTransaction&, int) { throw std::runtime_error(words); };
        auto report = rig.commit(rig.prepare());
        CHECK(report.outcomes[0].state == chain::Outcome::State::kFailed);
        CHECK(report.outcomes[0].fault == Fault::kTopUp);
        const auto h = rig.history();
        REQUIRE(h.size() == 1);
        CHECK(h[0].state == ledger::State::kFailed);
        CHECK(rig.chain.mined_nonce == 0);
    }
}

TEST_CASE("commit: bytes whose nonce the bank's latest nonce passed are never re-broadcast", "[chain][commit][send]") {
    Rig rig(1);
    rig.chain.receipt_lag = 1000;  // mined at once, its receipt never shows while the commit watches
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(600));  // rebroadcast_every is 100 ms
    CHECK(report.outcomes[0].state == chain::Outcome::State::kSent);
    CHECK(rig.chain.mined_nonce == 1);
    CHECK(rig.sends_seen() == 1);
    auto next = rig.prepare();  // nonce taken, no receipt yet: the account waits; commit sends nothing
    REQUIRE(next.pending.size() == 1);
    CHECK(next.pending[0].kind == chain::PendingAction::Kind::kWait);
    (void)rig.commit(next, std::chrono::milliseconds(200));
    CHECK(rig.sends_seen() == 1);
}

TEST_CASE("prepare: balance_mismatch only where the endpoint contradicts itself, never for an agent that spends", "[chain][prepare]") {
    Rig rig(2);
    const auto spender = address_of(1).lower(), liar = address_of(2).lower();
    rig.chain.nonces[spender] = {{0, 0}};
    rig.chain.nonces[liar] = {{0, 0}};
    auto report = rig.commit(rig.prepare());
    for (const auto& o : report.outcomes) REQUIRE(o.ok());
    // Within one interval: the spender sends (its nonce moves) and ends below its threshold; the
    // endpoint reports the idle liar empty.
    rig.chain.balances[spender] = Wei(1);
    rig.chain.nonces[spender].emplace_back(rig.chain.block, 1);
    rig.chain.lie_empty.insert(liar);
    auto next = rig.prepare();
    REQUIRE(next.mismatches.size() == 1);
    CHECK(next.plan.snapshot.accounts[next.mismatches[0]].account.address.lower() == liar);
    // The contradiction holds the liar's account (no second top-up); the spender is paid.
    REQUIRE(next.plan.topups.size() == 1);
    CHECK(next.plan.topups[0].account.address.lower() == spender);
    REQUIRE(next.plan.unknown.size() == 1);
    CHECK(next.plan.unknown[0].account.address.lower() == liar);
    // A backend whose balances lag its block number goes on contradicting itself for a few polls:
    // held at each (at most 10), never paid a second time meanwhile.
    (void)rig.commit(next);
    auto again = rig.prepare();
    REQUIRE(again.mismatches.size() == 1);
    CHECK(again.plan.topups.empty());
}

TEST_CASE("prepare: an account the contradiction check cannot be made on is held, not paid again, not counted", "[chain][prepare]") {
    Rig rig(2);
    const auto honest = address_of(1).lower(), unknown = address_of(2).lower();
    rig.chain.nonces[honest] = {{0, 0}};
    rig.chain.nonces[unknown] = {{0, 0}};
    auto report = rig.commit(rig.prepare());
    for (const auto& o : report.outcomes) REQUIRE(o.ok());
    // The endpoint shows one account empty after our confirmed top-up and cannot answer its
    // balance before it: nothing proves it spent, nothing proves the endpoint wrong.
    rig.chain.lie_empty.insert(unknown);
    rig.chain.no_history.insert(unknown);
    auto next = rig.prepare();
    CHECK(next.mismatches.empty());
    REQUIRE(next.unverified.size() == 1);
    CHECK(next.plan.snapshot.accounts[next.unverified[0]].account.address.lower() == unknown);
    CHECK(next.plan.topups.empty());
    REQUIRE(next.plan.unknown.size() == 1);
    CHECK(next.plan.unknown[0].account.address.lower() == unknown);
    // For that poll only: a pruned node never answers for an old block, and the agent may really
    // have spent; the limits stand behind the next poll.
    (void)rig.commit(next);
    auto after = rig.prepare();
    CHECK(after.unverified.empty());
    CHECK(after.plan.topups.size() == 1);
}

TEST_CASE("commit: a replacement whose broadcast hits a transport error stays pending, not failed", "[chain][commit]") {
    Rig rig(1, [](config::Network& n) { n.replace_after = {1000, 1}; });
    rig.chain.mining = false;
    const Wei first_fee = Wei(2) * rig.chain.base_fee + 1'000'000'000;
    rig.chain.on_send = [&](const eth::SignedTransaction& stx, int) {
        if (stx.tx.max_fee_per_gas > first_fee) throw test::DropConnection();  // the replacement
    };
    auto plan = rig.prepare();
    rig.wall_step(0.5);  // time passes fast: stuck after replaceAfter 1 s
    auto report = rig.commit(plan, std::chrono::milliseconds(600));
    rig.wall_step(0);
    CHECK(report.outcomes[0].state == chain::Outcome::State::kSent);
    CHECK(report.outcomes[0].replacements >= 1);
    CHECK(rig.replaced_heard == report.replacements);  // each heard of when it was broadcast
    const auto h = rig.history();
    CHECK(count_state(h, ledger::State::kFailed) == 0);
    CHECK(count_state(h, ledger::State::kReplaced) >= 1);
    // Reconcile settles whichever is mined, once.
    rig.chain.mining = true;
    rig.chain.on_send = {};
    auto next = rig.prepare();
    auto later = rig.commit(next);
    (void)later;
    auto settle = rig.prepare();
    CHECK(count_state(rig.history(), ledger::State::kConfirmed) == 1);
    CHECK(rig.chain.balance(address_of(1).lower()) == kEther * 2);
}

TEST_CASE("reconcile: a receipt that lags the nonce is not \"dropped\"; dropped needs several blocks", "[chain][reconcile]") {
    Rig rig(1);
    rig.chain.receipt_lag = 4;  // a load-balanced provider: the nonce is taken, the receipt served 4 blocks later
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));  // mined in block 101; no receipt yet
    REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);
    REQUIRE(rig.chain.mined_nonce == 1);
    rig.chain.mining = false;
    auto first = rig.prepare();
    CHECK(first.settled.empty());
    REQUIRE(first.pending.size() == 1);
    CHECK(first.pending[0].kind == chain::PendingAction::Kind::kWait);
    CHECK(first.plan.topups.empty());  // the account waits
    rig.chain.block += 2;
    auto still = rig.prepare();
    CHECK(still.settled.empty());  // two blocks: not yet evidence
    REQUIRE(still.pending.size() == 1);
    CHECK(still.pending[0].kind == chain::PendingAction::Kind::kWait);
    rig.chain.block += 2;
    auto second = rig.prepare();
    REQUIRE(second.settled.size() == 1);
    CHECK(second.settled[0].state == ledger::State::kConfirmed);
    CHECK(count_state(rig.history(), ledger::State::kDropped) == 0);
}

TEST_CASE("reconcile: our nonce taken by another transaction, no receipt of ours for 3 blocks: dropped", "[chain][reconcile]") {
    Rig rig(1);
    rig.chain.mining = false;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);
    rig.chain.txs.clear();  // someone else's transaction took the nonce
    rig.chain.take_nonce();
    auto taken = rig.prepare();
    REQUIRE(taken.pending.size() == 1);
    CHECK(taken.pending[0].kind == chain::PendingAction::Kind::kWait);
    CHECK(rig.history()[0].taken_block == rig.chain.block);
    rig.chain.block += 1;
    CHECK(rig.prepare().settled.empty());  // one block is not evidence enough
    rig.chain.block += 2;
    auto dropped = rig.prepare();
    REQUIRE(dropped.settled.size() == 1);
    CHECK(dropped.settled[0].state == ledger::State::kDropped);
    CHECK(dropped.plan.topups.size() == 1);  // decided afresh
}

TEST_CASE("commit: a reverted transaction is a failed top-up with its block", "[chain][commit]") {
    Rig rig(1);
    rig.chain.revert = true;
    auto report = rig.commit(rig.prepare());
    CHECK(report.outcomes[0].state == chain::Outcome::State::kFailed);
    CHECK(report.outcomes[0].fault == Fault::kTopUp);
    CHECK_THAT(report.outcomes[0].error, Catch::Contains("reverted"));
    const auto h = rig.history();
    REQUIRE(h.size() == 1);
    CHECK(h[0].state == ledger::State::kFailed);
    CHECK(h[0].block > 0);
}

TEST_CASE("commit: without effectiveGasPrice (pre-London) the fee is gas used x the transaction's gas price", "[chain][commit]") {
    Rig rig(1);
    rig.chain.london = false;
    rig.chain.effective_gas_price = false;
    auto plan = rig.prepare();
    REQUIRE(plan.plan.fees);
    CHECK(plan.plan.fees->type == eth::TxType::kLegacy);
    auto report = rig.commit(plan);
    REQUIRE(report.outcomes[0].ok());
    CHECK(report.outcomes[0].fee_paid == Wei(21000) * (rig.chain.base_fee + 1'000'000'000));
    CHECK(rig.history()[0].fee_paid == report.outcomes[0].fee_paid);
}

TEST_CASE("prepare: a stuck pending entry is in the plan and only commit replaces it", "[chain][prepare]") {
    Rig rig(1, [](config::Network& n) { n.replace_after = {1000, 10}; });
    rig.chain.mining = false;
    (void)rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    const auto before = rig.sends_seen();
    rig.clock.advance(std::chrono::seconds(60));
    auto plan = rig.prepare();
    REQUIRE(plan.pending.size() == 1);
    CHECK(plan.pending[0].kind == chain::PendingAction::Kind::kReplace);
    CHECK(rig.sends_seen() == before);  // prepare broadcast nothing
    auto report = rig.commit(plan, std::chrono::milliseconds(1));
    CHECK(report.replacements == 1);
    CHECK(rig.replaced_heard == 1);
    CHECK(rig.sends_seen() > before);
}

TEST_CASE("prepare: an absurd base fee from the node is an error for the round, never a wrapped number", "[chain][prepare]") {
    Rig rig(1);
    rig.chain.base_fee = (Wei(1) << 255);
    auto plan = rig.prepare();
    REQUIRE(plan.can_commit());
    CHECK_FALSE(plan.plan.fees);
    REQUIRE(plan.plan.fee_problem);
    CHECK_THAT(plan.plan.fee_problem->message, Catch::Contains("absurd"));
    auto report = rig.commit(plan);
    CHECK(report.outcomes[0].fault == Fault::kFees);
    CHECK(rig.sends_seen() == 0);
}

TEST_CASE("prepare: burn is measured between polls; our top-up is not spending; money on the way waits", "[chain][burn]") {
    Rig rig(1, [](config::Network& n) {
        n.runway.window = 10;  // enough history after 1 s
        n.runway.threshold = 600;
    });
    // The ledger stamps settlements with the Worker's clock, as in the daemon; the rounds are 1.1 s
    // apart on it (no sleep).
    auto pause = [&rig] { rig.clock.advance(std::chrono::duration<double>(1.1)); };
    (*rig.accounts)[0].runway = std::make_shared<const config::Runway>(rig.net.runway);  // as the topology resolves it
    const auto a = address_of(1).lower();
    rig.chain.mining = false;  // the top-up stays in the mempool
    auto p1 = rig.prepare();   // first observation: 0
    REQUIRE(p1.plan.topups.size() == 1);
    CHECK(p1.spent.empty());
    CHECK(rig.commit(p1, std::chrono::milliseconds(200)).outcomes.at(0).state == chain::Outcome::State::kSent);

    // Round 2: one endpoint already shows the money, the receipt is not there: the account waits,
    // unmeasured (measuring now would take the arrival for an incoming transfer and count it later).
    pause();
    rig.chain.balances[a] = kEther * 2;
    auto p2 = rig.prepare();
    CHECK(p2.pending.size() == 1);
    CHECK(p2.spent.empty());
    REQUIRE(rig.ledger.burn_states("alpha").size() == 2);  // the account and the bank, first seen in round 1

    // Round 3: mined and settled; the agent spent half an ether of the 2 it received.
    rig.chain.mining = true;
    rig.chain.handle("eth_blockNumber", json::array());  // a block: the top-up is mined
    rig.chain.balances[a] = kEther * 3 / 2;
    pause();
    auto p3 = rig.prepare();
    REQUIRE(p3.settled.size() == 1);
    REQUIRE(p3.spent.size() == 1);
    CHECK(p3.spent[0] == std::make_pair(std::size_t{0}, kEther / 2));
    const auto rows = rig.ledger.burn_rows("alpha", 0);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].spent == kEther / 2);
    REQUIRE(p3.plan.rates.size() == 1);
    // Over the 2.2 s observed: some 19,600 ether a day.
    CHECK(p3.plan.rates[0].per_day > kEther / 2 * 86400 / 3);
    CHECK(p3.plan.rates[0].per_day < kEther / 2 * 86400 / 2);
    // The threshold from burn: 10 minutes of that is far above the target (2): capped at it.
    CHECK(funding::levels_at(p3.plan, 0).threshold == kEther * 2);
    CHECK(funding::levels_at(p3.plan, 0).threshold_from_burn);
    REQUIRE(p3.plan.bank_rate);
    CHECK(p3.plan.bank_rate->per_day > 0);  // the bank paid 2 ether and fees

    // A new worker on the same ledger (a restart) has the same history.
    chain::Worker again(rig.io.get_executor(), rig.net, rig.bank, rig.accounts, &rig.ledger, rpc::RpcObserver{}, rig.clock);
    auto p4 = test::run(rig.io, again.prepare(chain::Mode::kStatus));
    REQUIRE(p4.plan.rates.size() == 1);
    CHECK(p4.plan.rates[0].per_day > kEther / 2 * 86400 / 3);
    CHECK(p4.plan.rates[0].per_day <= p3.plan.rates[0].per_day);  // the same spending, a little later
}

TEST_CASE("commit: a refused replacement is reported the same way in the receipts' wait and in reconcile", "[chain][commit]") {
    Rig rig(1, [](config::Network& n) { n.replace_after = {1000, 1}; });
    rig.chain.mining = false;
    const Wei first_fee = Wei(2) * rig.chain.base_fee + 1'000'000'000;
    rig.chain.on_send = [&](const eth::SignedTransaction& stx, int) {
        if (stx.tx.max_fee_per_gas > first_fee) throw std::runtime_error("insufficient funds for gas * price + value");
    };
    auto plan = rig.prepare();
    rig.wall_step(0.5);  // stuck after replaceAfter 1 s, while commit waits
    const auto during = rig.commit(plan, std::chrono::milliseconds(300));
    rig.wall_step(0);
    REQUIRE_FALSE(during.problems.empty());
    CHECK(during.problems[0].fault == Fault::kTopUp);
    CHECK_THAT(during.problems[0].message, Catch::StartsWith("replacement of 0x") && Catch::Contains("replacement refused"));
    CHECK(during.outcomes[0].state == chain::Outcome::State::kSent);  // the stuck one is still out there

    rig.clock.advance(std::chrono::seconds(60));
    auto next = rig.prepare();
    REQUIRE(next.pending.size() == 1);
    REQUIRE(next.pending[0].kind == chain::PendingAction::Kind::kReplace);
    const auto later = rig.commit(next, std::chrono::milliseconds(1));
    REQUIRE_FALSE(later.problems.empty());
    CHECK(later.problems[0].fault == Fault::kTopUp);
    CHECK_THAT(later.problems[0].message, Catch::StartsWith("replacement of 0x") && Catch::Contains("replacement refused"));
    CHECK(count_state(rig.history(), ledger::State::kFailed) >= 2);  // the refused replacements, one per try
}

TEST_CASE("prepare: a failed gas estimate keeps the fees make_plan chose; nothing is sent without a gas limit", "[chain][prepare]") {
    Rig rig(2);
    rig.chain.fail_estimates = true;
    auto plan = rig.prepare();
    REQUIRE(plan.can_commit());
    REQUIRE(plan.plan.topups.size() == 2);
    CHECK(plan.plan.fees);  // the pure decision stands
    const auto* gas = plan.first(chain::RoundProblem::Kind::kGas);
    REQUIRE(gas);
    CHECK_THAT(gas->message, Catch::StartsWith("gas estimation failed"));
    for (const auto& t : plan.plan.topups) CHECK(t.gas_limit == 0);
    const auto report = rig.commit(plan);
    for (const auto& o : report.outcomes) {
        CHECK(o.state == chain::Outcome::State::kFailed);
        CHECK(o.fault == Fault::kTopUp);
        CHECK_THAT(o.error, Catch::Contains("gas estimation failed"));
    }
    CHECK(rig.sends_seen() == 0);
    CHECK(rig.history().empty());
}

TEST_CASE("run: the exception that ends a Round reaches the observer as itself; the Round backs off", "[chain][run]") {
    Rig rig(1);
    struct Odd : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    int rounds = 0;
    bool same_type = false;
    std::string what;
    chain::Schedule schedule;
    schedule.interval = std::chrono::minutes(10);  // a healthy pace would not start a second Round in this test
    schedule.mode = chain::Mode::kDryRun;
    chain::RoundObserver obs;
    obs.prepared = [&](const chain::RoundPlan&, double) {
        if (++rounds == 1) throw Odd("odd one");
        rig.worker->stop();
    };
    obs.failed = [&](const std::exception& e) {
        same_type = dynamic_cast<const Odd*>(&e) != nullptr;
        what = e.what();
    };
    test::run(rig.io, rig.worker->run(schedule, obs), std::chrono::seconds(20));
    CHECK(same_type);
    CHECK(what == "odd one");
    CHECK(rounds == 2);  // the failed Round was followed after the backoff (1 s), not the interval
}

TEST_CASE("round: has_work and round_ok are decided once, from the plan and the report", "[chain][round]") {
    chain::RoundPlan base;
    base.plan.snapshot.reachable = true;
    chain::PendingAction wait;
    wait.kind = chain::PendingAction::Kind::kWait;
    chain::PendingAction again;
    again.kind = chain::PendingAction::Kind::kRebroadcast;
    funding::TopUp topup;
    struct Row {
        const char* what;
        std::vector<funding::TopUp> topups;
        std::vector<chain::PendingAction> pending;
        std::optional<Problem> problem;
        bool work;
    };
    const std::vector<Row> rows = {
        {"nothing", {}, {}, std::nullopt, false},
        {"a top-up", {topup}, {}, std::nullopt, true},
        {"an entry that only waits for evidence", {}, {wait}, std::nullopt, false},
        {"an entry to send again", {}, {wait, again}, std::nullopt, true},
        {"a top-up, but the ledger cannot be read", {topup}, {}, Problem{Fault::kLedger, "x"}, false},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        auto p = base;
        p.plan.topups = r.topups;
        p.pending = r.pending;
        if (r.problem) p.fail(*r.problem);
        CHECK(p.has_work() == r.work);
    }
    chain::RoundReport clean, refused, unrecorded;
    refused.outcomes.push_back(chain::Outcome{});
    refused.outcomes[0].state = chain::Outcome::State::kFailed;
    refused.outcomes[0].fault = Fault::kTopUp;
    unrecorded.problems.push_back({Fault::kLedger, "receipts not recorded"});
    auto ledger_fault = base;
    ledger_fault.fail({Fault::kLedger, "cannot read the ledger"});
    auto poll_fault = base;
    poll_fault.fail({Fault::kPoll, "unreachable"});
    CHECK(chain::round_ok(base, nullptr));
    CHECK(chain::round_ok(base, &clean));
    CHECK(chain::round_ok(base, &refused));  // a refused top-up is its own failure, not the Round's
    CHECK_FALSE(chain::round_ok(base, &unrecorded));
    CHECK_FALSE(chain::round_ok(ledger_fault, nullptr));  // counted as a success before
    CHECK_FALSE(chain::round_ok(poll_fault, nullptr));
}

TEST_CASE("round: the first step that fails decides why a Round cannot commit; a later one does not overwrite it", "[chain][round]") {
    chain::RoundPlan p;
    p.fail({Fault::kLedger, "cannot read the ledger"});
    p.fail({Fault::kPoll, "unreachable"});
    REQUIRE(p.blocking());
    CHECK(p.fault() == Fault::kLedger);
    CHECK(p.blocking()->message == "cannot read the ledger");
}

// --- Fees as each chain charges them (OP Stack, Arbitrum) ---

TEST_CASE("l2: on an OP Stack chain the plan budgets the L1 data and operator fees, and the ledger books what the bank lost", "[chain][l2]") {
    Rig rig(3);
    rig.chain.l2 = FakeChain::L2::kOp;
    rig.chain.operator_scalar = 2'000'000;  // 2 wei per gas: 42,000 for a transfer
    rig.chain.operator_constant = 7;
    rig.chain.bank = rig.bank->address().lower();
    const Wei start = rig.chain.balance(rig.chain.bank);
    auto plan = rig.prepare();
    REQUIRE(plan.can_commit());
    REQUIRE(plan.plan.snapshot.l2 == funding::L2Kind::kOp);
    REQUIRE(plan.plan.snapshot.op_fees.has_value());
    CHECK_FALSE(plan.plan.snapshot.op_fees->jovian);  // isJovian() reverts: Isthmus' formula
    const Wei per_gas = plan.plan.fees->per_gas_cap();
    // Each transfer: gas x cap, the oracle's bound x 1.5 (the default l1FeeMargin), the operator fee for 21000 gas.
    CHECK(plan.plan.max_fee_cost == (Wei(21000) * per_gas + rig.chain.l1_fee_bound * 3 / 2 + 42'007) * 3);
    auto report = rig.commit(plan);
    Wei booked = 0;
    for (const auto& o : report.outcomes) {
        REQUIRE(o.ok());
        CHECK(o.l1_fee == rig.chain.l1_fee);
        CHECK(o.operator_fee == Wei(42'007));
        CHECK(o.fee_paid == Wei(21000) * (rig.chain.base_fee + 1'000'000'000) + rig.chain.l1_fee + 42'007);
    }
    for (const auto& e : rig.history()) {
        CHECK(e.l1_fee == rig.chain.l1_fee);
        CHECK(e.operator_fee == Wei(42'007));
        booked += e.amount + e.fee_paid;
    }
    // To the wei: what the ledger says the bank paid is what it lost on chain.
    CHECK(start - rig.chain.balance(rig.chain.bank) == booked);
    CHECK(rig.ledger.paid_since("alpha", rig.bank->address().checksummed(), 0) == booked);
}

TEST_CASE("l2: on an OP Stack chain past Jovian the ledger books Jovian's operator fee (x 100, not / 1e6)", "[chain][l2]") {
    Rig rig(2);
    rig.chain.l2 = FakeChain::L2::kOp;
    rig.chain.jovian = true;
    rig.chain.operator_scalar = 2;  // Jovian: 21000 x 2 x 100 + 7 = 4,200,007 for a transfer (Isthmus' reading: 7)
    rig.chain.operator_constant = 7;
    rig.chain.bank = rig.bank->address().lower();
    const Wei start = rig.chain.balance(rig.chain.bank);
    auto plan = rig.prepare();
    REQUIRE(plan.can_commit());
    REQUIRE(plan.plan.snapshot.op_fees.has_value());
    CHECK(plan.plan.snapshot.op_fees->jovian);
    // Budgeted from the oracle's getOperatorFee, which computes the chain's own formula.
    CHECK(plan.plan.max_fee_cost ==
          (Wei(21000) * plan.plan.fees->per_gas_cap() + rig.chain.l1_fee_bound * 3 / 2 + 4'200'007) * 2);
    SECTION("booked when commit sees the receipt") {
        auto report = rig.commit(plan);
        for (const auto& o : report.outcomes) {
            REQUIRE(o.ok());
            CHECK(o.operator_fee == Wei(4'200'007));
        }
    }
    SECTION("booked when reconcile settles it in a later Round") {
        rig.chain.receipt_lag = 4;
        auto report = rig.commit(plan, std::chrono::milliseconds(1));
        for (const auto& o : report.outcomes) REQUIRE(o.state == chain::Outcome::State::kSent);
        rig.chain.mining = false;
        rig.chain.block += 4;
        auto next = rig.prepare();
        REQUIRE(next.settled.size() == 2);
    }
    Wei booked = 0;
    for (const auto& e : rig.history()) {
        CHECK(e.state == ledger::State::kConfirmed);
        CHECK(e.operator_fee == Wei(4'200'007));
        booked += e.amount + e.fee_paid;
    }
    CHECK(start - rig.chain.balance(rig.chain.bank) == booked);  // to the wei
}

TEST_CASE("l2: a bank that covers gas x price but not the L1 data fee is short before anything is sent", "[chain][l2]") {
    Rig rig(1);
    rig.chain.l2 = FakeChain::L2::kOp;
    rig.chain.l1_fee_bound = kEther / 10;  // 0.15 ether budgeted per transfer
    // Enough for the amount and its gas at the plan's cap, not for the L1 fee.
    rig.chain.balances[rig.bank->address().lower()] = kEther * 2 + kEther / 100;
    auto plan = rig.prepare();
    CHECK_FALSE(plan.plan.covered);
    auto report = rig.commit(plan);
    for (const auto& o : report.outcomes) {
        CHECK(o.state == chain::Outcome::State::kFailed);
        CHECK(o.error.find("bank balance too low") != std::string::npos);
    }
    CHECK(rig.sends_seen() == 0);
    CHECK(rig.history().empty());
}

TEST_CASE("l2: an OP Stack chain whose oracle does not answer is not sent to (its fees cannot be budgeted)", "[chain][l2]") {
    Rig rig(1);
    rig.chain.l2 = FakeChain::L2::kOp;
    rig.chain.oracle_answers = false;
    auto plan = rig.prepare();
    REQUIRE(plan.plan.fee_problem.has_value());
    CHECK(plan.plan.fee_problem->fault == Fault::kFees);
    auto report = rig.commit(plan);
    for (const auto& o : report.outcomes) CHECK(o.fault == Fault::kFees);
    CHECK(rig.sends_seen() == 0);
    CHECK(rig.history().empty());
}

TEST_CASE("l2: a chain whose kind cannot be read is not sent to until it can; \"l2\" in the config skips the probe", "[chain][l2]") {
    Rig rig(1);
    rig.chain.code_answers = false;
    auto plan = rig.prepare();
    REQUIRE(plan.plan.fee_problem.has_value());
    CHECK(plan.plan.fee_problem->fault == Fault::kFees);
    CHECK(plan.plan.fee_problem->message.find("\"l2\"") != std::string::npos);
    (void)rig.commit(plan);
    CHECK(rig.sends_seen() == 0);
    rig.chain.code_answers = true;  // the next poll asks again
    auto next = rig.prepare();
    CHECK(next.plan.snapshot.l2 == funding::L2Kind::kNone);
    CHECK_FALSE(next.plan.fee_problem.has_value());
}

TEST_CASE("l2: on Arbitrum the gas limit is eth_estimateGas x gasMargin, never 21000", "[chain][l2]") {
    Rig rig(2);
    rig.chain.l2 = FakeChain::L2::kArbitrum;
    rig.chain.estimate = 700'000;  // a transfer's estimate with its L1 component
    auto plan = rig.prepare();
    REQUIRE(plan.plan.snapshot.l2 == funding::L2Kind::kArbitrum);
    for (const auto& t : plan.plan.topups) CHECK(t.gas_limit == 840'000u);  // + 20%
    auto report = rig.commit(plan);
    for (const auto& e : rig.history()) CHECK(e.gas_limit == 840'000u);
    for (const auto& o : report.outcomes) CHECK(o.ok());
}

TEST_CASE("l2: the kind is detected once; set in the config, it is not probed and the oracle is read only on OP", "[chain][l2]") {
    SECTION("detected on the first poll only") {
        Rig rig(1);
        rig.chain.l2 = FakeChain::L2::kOp;
        (void)rig.prepare();
        (void)rig.prepare();
        CHECK(rig.rpc_calls[{"eth_getCode", true}] == 1);
        CHECK(rig.rpc_calls[{"eth_call", true}] == 1 + 2 * 3);  // ArbSys once; the oracle each poll
        CHECK(rig.rpc_calls[{"eth_call", false}] == 2 * 2);     // getL1Fee and isJovian revert (past Fjord, before Jovian)
    }
    SECTION("\"l2\": \"none\" on an L1") {
        Rig rig(1, [](config::Network& n) { n.l2 = config::L2Setting::kNone; });
        auto plan = rig.prepare();
        CHECK(plan.plan.snapshot.l2 == funding::L2Kind::kNone);
        CHECK(rig.rpc_calls[{"eth_getCode", true}] == 0);
        CHECK(rig.rpc_calls[{"eth_call", true}] + rig.rpc_calls[{"eth_call", false}] == 0);
    }
    SECTION("\"l2\": \"op\" with l1FeeMargin 2") {
        Rig rig(1, [](config::Network& n) {
            n.l2 = config::L2Setting::kOp;
            n.l1_fee_margin_permille = 2000;
        });
        rig.chain.l2 = FakeChain::L2::kOp;
        auto plan = rig.prepare();
        CHECK(rig.rpc_calls[{"eth_getCode", true}] == 0);
        CHECK(plan.plan.max_fee_cost == Wei(21000) * plan.plan.fees->per_gas_cap() + rig.chain.l1_fee_bound * 2);
    }
}

// --- Issue 26: never pay twice, part two ---

TEST_CASE("prepare: a poll older than a block already seen plans nothing; a fresh one does", "[chain][stale]") {
    Rig rig(2);
    auto report = rig.commit(rig.prepare());
    for (const auto& o : report.outcomes) REQUIRE(o.ok());
    const auto seen = rig.chain.block;
    rig.chain.mining = false;
    // A backend three blocks behind answers the next poll: the accounts read as they were.
    for (int i = 1; i <= 2; ++i) rig.chain.balances[address_of(i).lower()] = 0;
    rig.chain.block = seen - 3;
    auto stale = rig.prepare();
    CHECK(stale.stale);
    CHECK(stale.plan.topups.empty());
    // (held as unknown, or waiting: the stale view does not even show the block of their top-ups)
    CHECK(stale.plan.unknown.size() + stale.plan.waiting.size() == 2);
    CHECK_FALSE(stale.has_work());
    // The backend ahead answers again: a fresh view at the newest block decides.
    rig.chain.block = seen;
    auto fresh = rig.prepare();
    CHECK_FALSE(fresh.stale);
    CHECK(fresh.plan.topups.size() == 2);
}

TEST_CASE("reconcile: a node without receipts: a mined top-up is found in its block, booked at most its fee, never dropped",
          "[chain][reconcile][evidence]") {
    Rig rig(1);
    rig.chain.no_index = true;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(50));
    REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);
    REQUIRE(rig.chain.mined_nonce == 1);
    rig.chain.mining = false;
    for (int k = 0; k < 5; ++k) {
        auto p = rig.prepare();
        CHECK(p.plan.topups.empty());  // the account waits: never paid a second time
        rig.chain.block += 1;
    }
    const auto h = rig.history();
    REQUIRE(h.size() == 1);
    CHECK(h[0].state == ledger::State::kConfirmed);
    CHECK(h[0].fee_estimated);
    CHECK(h[0].fee_paid == Wei(21000) * (rig.chain.base_fee + 1'000'000'000));  // gas limit x the price it paid
    CHECK(count_state(h, ledger::State::kDropped) == 0);
    CHECK(rig.ledger.spent_since(kChainId, rig.bank->address().checksummed(), 0) == kEther * 2);  // counted against daily
    // The receipt comes at last (the node finished indexing): the fee as paid, no longer estimated.
    rig.chain.no_index = false;
    (void)rig.prepare();
    CHECK_FALSE(rig.history()[0].fee_estimated);
}

TEST_CASE("reconcile: an error on one receipt delays that entry only", "[chain][reconcile][evidence]") {
    Rig rig(2);
    rig.chain.mining = false;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    REQUIRE(report.outcomes.size() == 2);
    rig.chain.index_errors.insert(report.outcomes[0].tx_hash);
    rig.chain.mining = true;
    rig.chain.mine();
    rig.chain.mining = false;
    auto p = rig.prepare();
    REQUIRE_FALSE(p.blocking());
    REQUIRE(p.settled.size() == 1);  // the other one
    CHECK(p.settled[0].tx_hash == report.outcomes[1].tx_hash);
    REQUIRE(p.pending.size() == 1);
    CHECK(p.pending[0].kind == chain::PendingAction::Kind::kWait);
    CHECK(p.plan.topups.empty());
    rig.chain.index_errors.clear();
    rig.chain.block += 1;
    CHECK(rig.prepare().settled.size() == 1);
    CHECK(count_state(rig.history(), ledger::State::kConfirmed) == 2);
}

TEST_CASE("reconcile: a top-up whose block is reorged away is sent again, the same bytes, and booked once", "[chain][reorg]") {
    Rig rig(1, [](config::Network& n) { n.finality = 10; });
    auto report = rig.commit(rig.prepare());
    REQUIRE(report.outcomes[0].ok());
    const auto hash = report.outcomes[0].tx_hash;
    rig.chain.mining = false;
    // The block is reorged away and the node forgot the transaction's place: unmined, balance back.
    auto& tx = rig.chain.txs.at(hash);
    tx.block.reset();
    rig.chain.mined_nonce = 0;
    rig.chain.balances[address_of(1).lower()] = 0;
    rig.chain.salt = 7;
    auto p = rig.prepare();
    CHECK(p.reorged == 1);
    CHECK(p.plan.topups.empty());  // the account waits for its top-up: never a second one
    REQUIRE(p.pending.size() == 1);
    CHECK(p.pending[0].entry.tx_hash == hash);
    CHECK(rig.history()[0].state == ledger::State::kSent);
    rig.chain.mining = true;
    (void)rig.commit(p);
    (void)rig.prepare();
    const auto h = rig.history();
    REQUIRE(h.size() == 1);  // one top-up, once
    CHECK(h[0].state == ledger::State::kConfirmed);
    CHECK(h[0].block == *rig.chain.txs.at(hash).block);
    CHECK(rig.chain.balance(address_of(1).lower()) == kEther * 2);
    // Final once `finality` blocks deep: no longer re-checked.
    rig.chain.mining = false;
    rig.chain.block += 10;
    (void)rig.prepare();
    CHECK(rig.history()[0].is_final);
}

TEST_CASE("reconcile: an endpoint on another chain writes nothing to the ledger", "[chain][chain_id]") {
    Rig rig(1, [](config::Network& n) { n.chain_id = kChainId + 1; });
    (void)rig.ledger.record_intent([&] {
        ledger::Entry e;
        e.network = "alpha";
        e.chain_id = kChainId + 1;
        e.bank = rig.bank->address().checksummed();
        e.recipient = address_of(1).checksummed();
        e.role = "watcher";
        e.amount = kEther;
        e.tx_hash = "0x" + std::string(64, 'a');
        e.raw = "0x00";
        return e;
    }());
    rig.chain.take_nonce();  // the other chain's bank nonce 0 is used: no evidence about ours
    for (int k = 0; k < 5; ++k) {
        auto p = rig.prepare();
        CHECK(p.fault() == Fault::kChainId);
        rig.chain.block += 1;
    }
    const auto h = rig.history();
    REQUIRE(h.size() == 1);
    CHECK(h[0].state == ledger::State::kIntent);
    CHECK(h[0].taken_block == 0);
}

TEST_CASE("reconcile: in-flight top-ups are found by chain and bank, whatever the network is named now", "[chain][rename]") {
    Rig rig(1);
    rig.chain.mining = false;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);
    // The operator renames the network: a new Worker, same chain and bank.
    auto renamed = rig.net;
    renamed.name = "beta";
    renamed.chain_id = kChainId;
    chain::Worker beta(rig.io.get_executor(), renamed, rig.bank, rig.accounts, &rig.ledger, rpc::RpcObserver{}, rig.clock);
    auto p = test::run(rig.io, beta.prepare(chain::Mode::kLive));
    CHECK(p.plan.topups.empty());  // its top-up is in flight: the account waits
    REQUIRE(p.pending.size() == 1);
    CHECK(p.pending[0].entry.tx_hash == report.outcomes[0].tx_hash);
    // Mined: settled under the new name, and the bank audit knows the nonce as ours (no false
    // "another process sent from the bank").
    rig.chain.mining = true;
    rig.chain.mine();
    rig.chain.mining = false;
    auto settled = test::run(rig.io, beta.prepare(chain::Mode::kLive));
    CHECK(settled.settled.size() == 1);
    CHECK(settled.unaccounted.empty());
    CHECK(test::run(rig.io, beta.prepare(chain::Mode::kLive)).unaccounted.empty());
}

TEST_CASE("prepare: one sender per bank and chain, whatever the processes are named", "[chain][sender]") {
    Rig rig(1);
    rig.worker->set_sender("host/1/aaaa", std::chrono::seconds(30));
    auto net2 = rig.net;
    net2.name = "other-name";
    chain::Worker second(rig.io.get_executor(), net2, rig.bank, rig.accounts, &rig.ledger, rpc::RpcObserver{}, rig.clock);
    second.set_sender("host/2/bbbb", std::chrono::seconds(30));
    auto first = rig.prepare();
    REQUIRE_FALSE(first.blocking());
    CHECK(rig.worker->sender_lease() == "sender:" + std::to_string(kChainId) + ":" + rig.bank->address().lower());
    auto refused = test::run(rig.io, second.prepare(chain::Mode::kLive));
    REQUIRE(refused.blocking());
    CHECK(refused.fault() == Fault::kSender);
    CHECK_THAT(refused.blocking()->message, Catch::Contains("host/1/aaaa/alpha"));
    CHECK(fault_exit_code(refused.fault()) == 2);
    // A plan prepared before another took the bank journals nothing: the lease is checked in the
    // journal's own transaction.
    rig.ledger.release_lease(rig.worker->sender_lease(), rig.worker->sender_holder());
    auto taken = test::run(rig.io, second.prepare(chain::Mode::kLive));
    REQUIRE_FALSE(taken.blocking());
    auto report = rig.commit(first);
    REQUIRE(report.outcomes.size() == 1);
    CHECK(report.outcomes[0].state == chain::Outcome::State::kFailed);
    CHECK(report.outcomes[0].fault == Fault::kLedger);
    CHECK(rig.sends_seen() == 0);
    CHECK(rig.history().empty());
}

TEST_CASE("commit: a nonce gap whose filler failed is filled again next Round", "[chain][gaps]") {
    Rig rig(3);
    int fillers = 0;
    rig.chain.on_send = [&](const eth::SignedTransaction& stx, int index) {
        if (index == 1) throw std::runtime_error("intrinsic gas too low (refused by the test)");
        if (stx.tx.value == 0 && fillers++ == 0) throw std::runtime_error("intrinsic gas too low (filler refused by the test)");
    };
    rig.chain.mining = false;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    CHECK(report.outcomes[1].state == chain::Outcome::State::kFailed);
    CHECK(count_state(rig.history(), ledger::State::kFailed, "nonce-filler") == 1);
    rig.chain.mining = true;
    auto next = rig.prepare();
    REQUIRE(next.gaps == std::vector<std::uint64_t>{1});
    CHECK(next.has_work());
    (void)rig.commit(next);
    (void)rig.prepare();
    CHECK(rig.chain.mined_nonce == 4);  // two top-ups, the filler, and the refused account paid afresh
    for (int i = 1; i <= 3; ++i) CHECK(rig.chain.balance(address_of(i).lower()) == kEther * 2);
}

TEST_CASE("prepare: the reserve and the bank's budget count what is in flight", "[chain][reserve]") {
    Rig rig(2, [](config::Network& n) { n.limits.reserve = kEther * 997; });
    rig.accounts->at(1).threshold = 0;  // only account 1 is low at first
    rig.chain.mining = false;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    REQUIRE(report.outcomes.size() == 1);
    REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);  // 2 ether in flight, unmined
    rig.accounts->at(1).threshold = kEther;
    auto p = rig.prepare();
    CHECK(p.in_flight > kEther * 2);
    // 1000 in the bank, 2 (and fees) in flight, 997 kept: 2 more would break the reserve (they
    // would not without what is in flight).
    CHECK(p.plan.topups.empty());
    REQUIRE(p.plan.blocked.size() == 1);
    CHECK_THAT(p.plan.blocked[0].second, Catch::Contains("reserve"));
}

TEST_CASE("reconcile: a bank no longer configured: its top-ups in flight are settled here and their accounts wait",
          "[chain][rename][orphan]") {
    Rig rig(1);
    rig.chain.mining = false;
    auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(1));
    REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);
    // The operator replaces the bank key: a new Worker on the same chain with another bank.
    auto new_bank = std::make_shared<signer::LocalSigner>(crypto::PrivateKey::from_hex(Secret(std::string(64, '2'))).value());
    rig.chain.balances[new_bank->address().lower()] = kEther * 1000;
    auto net = rig.net;
    net.chain_id = kChainId;
    net.replace_after = {1, 1};  // the old one is "stuck": still never replaced (its key is not held)
    chain::Worker replaced(rig.io.get_executor(), net, new_bank, rig.accounts, &rig.ledger, rpc::RpcObserver{}, rig.clock);
    replaced.set_configured_banks({new_bank->address().checksummed()});
    rig.clock.advance(std::chrono::seconds(10));
    auto p = test::run(rig.io, replaced.prepare(chain::Mode::kLive));
    REQUIRE_FALSE(p.blocking());
    REQUIRE(p.orphan_banks == std::vector<std::string>{rig.bank->address().checksummed()});
    CHECK(p.plan.topups.empty());  // the account waits for the old bank's top-up
    REQUIRE(p.pending.size() == 1);
    CHECK(p.pending[0].kind == chain::PendingAction::Kind::kRebroadcast);
    // Mined: settled by the new Worker; the account is not paid again.
    rig.chain.mining = true;
    rig.chain.mine();
    rig.chain.mining = false;
    auto settled = test::run(rig.io, replaced.prepare(chain::Mode::kLive));
    REQUIRE(settled.settled.size() == 1);
    CHECK(settled.settled[0].state == ledger::State::kConfirmed);
    CHECK(settled.plan.topups.empty());
    CHECK(rig.chain.balance(address_of(1).lower()) == kEther * 2);
    // Without the list of configured banks, nothing of another bank is touched.
    chain::Worker plain(rig.io.get_executor(), net, new_bank, rig.accounts, &rig.ledger, rpc::RpcObserver{}, rig.clock);
    CHECK(test::run(rig.io, plain.prepare(chain::Mode::kLive)).orphan_banks.empty());
}

TEST_CASE("prepare: a reorg between reconcile and the poll is seen by the poll itself: nobody is paid twice", "[chain][reorg]") {
    Rig rig(1, [](config::Network& n) { n.finality = 10; });
    auto report = rig.commit(rig.prepare());
    REQUIRE(report.outcomes[0].ok());
    const auto hash = report.outcomes[0].tx_hash;
    rig.chain.mining = false;
    // Reconcile has nothing unresolved; right before the poll reads the balances, the block of the
    // top-up is reorged away and the transaction goes back to the pool (as geth does).
    rig.chain.before_latest = [&] {
        rig.chain.txs.at(hash).block.reset();
        rig.chain.mined_nonce = 0;
        rig.chain.balances[address_of(1).lower()] = 0;
        rig.chain.salt = 9;
    };
    auto p = rig.prepare();
    CHECK(p.reorged == 1);
    CHECK(p.plan.topups.empty());  // its top-up is in flight again: it waits
    REQUIRE(p.pending.size() == 1);
    CHECK(p.pending[0].entry.tx_hash == hash);
    rig.chain.mining = true;
    (void)rig.commit(p);
    (void)rig.prepare();
    CHECK(rig.chain.balance(address_of(1).lower()) == kEther * 2);
    CHECK(rig.history().size() == 1);
    CHECK(rig.history()[0].state == ledger::State::kConfirmed);
}

TEST_CASE("prepare: two networks of one process on one bank and chain never both send", "[chain][sender]") {
    Rig rig(1);
    rig.worker->set_sender("host/1/aaaa", std::chrono::seconds(30));
    auto backup = rig.net;
    backup.name = "alpha-backup";  // a second endpoint configured as a second network
    chain::Worker second(rig.io.get_executor(), backup, rig.bank, rig.accounts, &rig.ledger, rpc::RpcObserver{}, rig.clock);
    second.set_sender("host/1/aaaa", std::chrono::seconds(30));  // the same process
    REQUIRE_FALSE(rig.prepare().blocking());
    auto refused = test::run(rig.io, second.prepare(chain::Mode::kLive));
    REQUIRE(refused.blocking());
    CHECK(refused.fault() == Fault::kSender);
    CHECK_THAT(refused.blocking()->message, Catch::Contains("host/1/aaaa/alpha"));
}

TEST_CASE("prepare: a chain that went back for good is accepted after a while; what it lost is sent again, once", "[chain][stale][reorg]") {
    Rig rig(1, [](config::Network& n) { n.finality = 10; });
    auto report = rig.commit(rig.prepare());
    REQUIRE(report.outcomes[0].ok());
    const auto hash = report.outcomes[0].tx_hash;
    rig.chain.mining = false;
    // A devnet reset (or a reorg to a shorter chain): three blocks gone, the top-up forgotten.
    rig.chain.txs.at(hash).block.reset();
    rig.chain.txs.erase(hash);
    rig.chain.mined_nonce = 0;
    rig.chain.balances[address_of(1).lower()] = 0;
    rig.chain.block -= 3;
    auto behind = rig.prepare();
    CHECK(behind.stale);
    CHECK(behind.plan.topups.empty());
    rig.clock.advance(std::chrono::duration<double>(funding::kRebaseAfterSeconds + 1));
    auto back = rig.prepare();
    CHECK_FALSE(back.stale);
    CHECK(back.reorged == 1);        // its block is gone: back in flight, the account waits
    CHECK(back.plan.topups.empty());
    REQUIRE(back.pending.size() == 1);
    CHECK(back.pending[0].entry.tx_hash == hash);
    rig.chain.mining = true;
    (void)rig.commit(back);  // the same bytes again: the node lost them
    (void)rig.prepare();
    CHECK(rig.chain.balance(address_of(1).lower()) == kEther * 2);
    CHECK(rig.chain.mined_nonce == 1);
    REQUIRE(rig.history().size() == 1);
    CHECK(rig.history()[0].state == ledger::State::kConfirmed);
}

TEST_CASE("reconcile: without receipts, after a long outage: the block that used the nonce is found by the bank's nonce count",
          "[chain][reconcile][evidence]") {
    for (const bool pruned : {false, true}) {
        Rig rig(1);
        rig.chain.no_index = true;
        auto report = rig.commit(rig.prepare(), std::chrono::milliseconds(50));
        REQUIRE(report.outcomes[0].state == chain::Outcome::State::kSent);
        rig.chain.mining = false;
        rig.chain.block += 200;  // keymaster was away: the nonce is first seen taken 200 blocks later
        rig.chain.pruned = pruned;
        for (int k = 0; k < 4; ++k) {
            CHECK(rig.prepare().plan.topups.empty());  // waits, whatever the node can tell
            rig.chain.block += 1;
        }
        INFO((pruned ? "a node without past state: the entry waits, never dropped" : "an archive node: found, mined"));
        const auto h = rig.history();
        REQUIRE(h.size() == 1);
        CHECK(h[0].state == (pruned ? ledger::State::kSent : ledger::State::kConfirmed));
        CHECK(count_state(h, ledger::State::kDropped) == 0);
    }
}
