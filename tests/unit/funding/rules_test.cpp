// The pure rules of a Round, tested with tables: fees, fee bumps and their ceiling, what a receipt
// paid, "is it stuck", "is it dropped", balance mismatches.
#include <catch2/catch.hpp>

#include "keymaster/funding/fees.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/funding/plan.hpp"

using namespace keymaster;
using funding::Fees;

namespace {

const Wei kGwei = Wei(1'000'000'000);

funding::NetworkSnapshot snap(std::optional<Wei> base, std::optional<Wei> gas_price, std::optional<Wei> tip) {
    funding::NetworkSnapshot s;
    s.reachable = true;
    s.base_fee = base;
    s.gas_price = gas_price;
    s.priority_fee = tip;
    return s;
}

}  // namespace

TEST_CASE("fees: the choice of type and fees", "[fees]") {
    using T = config::TxTypeSetting;
    struct Row {
        const char* what;
        std::optional<Wei> base, gas_price, tip;
        T setting;
        std::optional<Wei> cap;
        std::optional<Fees> want;  // empty: an error
    };
    const std::vector<Row> rows = {
        {"London: 2 x base + tip", 10 * kGwei, {}, 2 * kGwei, T::kAuto, {}, Fees{eth::TxType::kDynamicFee, 0, 22 * kGwei, 2 * kGwei}},
        {"no eth_maxPriorityFeePerGas: gas price - base", 10 * kGwei, 13 * kGwei, {}, T::kAuto, {},
         Fees{eth::TxType::kDynamicFee, 0, 23 * kGwei, 3 * kGwei}},
        {"neither: 1 gwei tip", 10 * kGwei, {}, {}, T::kAuto, {}, Fees{eth::TxType::kDynamicFee, 0, 21 * kGwei, kGwei}},
        {"capped by maxFeePerGas, tip squeezed", 10 * kGwei, {}, 2 * kGwei, T::kAuto, 11 * kGwei,
         Fees{eth::TxType::kDynamicFee, 0, 11 * kGwei, kGwei}},
        {"base at the cap: refused", 10 * kGwei, {}, 2 * kGwei, T::kAuto, 10 * kGwei, {}},
        {"pre-London: legacy", {}, 5 * kGwei, {}, T::kAuto, {}, Fees{eth::TxType::kLegacy, 5 * kGwei, 0, 0}},
        {"legacy forced on London", 10 * kGwei, 12 * kGwei, kGwei, T::kLegacy, {}, Fees{eth::TxType::kLegacy, 12 * kGwei, 0, 0}},
        {"legacy above the cap: refused", {}, 5 * kGwei, {}, T::kAuto, 4 * kGwei, {}},
        {"eip1559 without a base fee: refused", {}, 5 * kGwei, {}, T::kEip1559, {}, {}},
        {"no gas price for legacy: refused", {}, {}, {}, T::kAuto, {}, {}},
        {"absurd base fee: refused, not wrapped", Wei(1) << 255, {}, kGwei, T::kAuto, {}, {}},
        {"absurd tip: refused", 10 * kGwei, {}, (Wei(1) << 255) + 7, T::kAuto, {}, {}},
        {"absurd gas price: refused", {}, max_sane_amount() + 1, {}, T::kAuto, {}, {}},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        config::Network net;
        net.tx_type = r.setting;
        net.max_fee_per_gas = r.cap;
        auto got = funding::choose_fees(snap(r.base, r.gas_price, r.tip), net);
        if (!r.want) {
            CHECK(got.has_error());
            continue;
        }
        REQUIRE(got.has_value());
        CHECK(*got == *r.want);
    }
}

TEST_CASE("fees: the replacement ceiling is replaceFeeCeiling x the first fees, and maxFeePerGas", "[fees]") {
    const Fees first{eth::TxType::kDynamicFee, 0, 20 * kGwei, kGwei};
    struct Row {
        std::uint64_t multiple;
        std::optional<Wei> cap;
        Wei want;
    };
    for (const auto& r : std::vector<Row>{{10, {}, 200 * kGwei}, {3, {}, 60 * kGwei}, {10, 50 * kGwei, 50 * kGwei},
                                          {2, 50 * kGwei, 40 * kGwei}}) {
        config::Network net;
        net.replace_fee_ceiling = r.multiple;
        net.max_fee_per_gas = r.cap;
        CHECK(funding::replacement_ceiling(first, net) == r.want);
    }
    // Bumping 12.5% at a time from 20 gwei under a 10x ceiling stops after 19 replacements.
    config::Network net;
    Fees f = first;
    int bumps = 0;
    while (auto next = funding::bumped_fees(f, funding::replacement_ceiling(first, net))) {
        f = *next;
        ++bumps;
        REQUIRE(bumps < 100);
    }
    CHECK(bumps == 19);
    CHECK(f.max_fee <= 200 * kGwei);
    CHECK(funding::bumped_fees(f, 200 * kGwei) == std::nullopt);
}

TEST_CASE("fees: what a mined transaction paid", "[fees]") {
    const Fees legacy{eth::TxType::kLegacy, 7 * kGwei, 0, 0};
    const Fees dynamic{eth::TxType::kDynamicFee, 0, 30 * kGwei, 2 * kGwei};
    struct Row {
        std::optional<Wei> effective;
        Fees fees;
        Wei want;
    };
    for (const auto& r : std::vector<Row>{{12 * kGwei, dynamic, Wei(21000) * 12 * kGwei},
                                          {std::nullopt, legacy, Wei(21000) * 7 * kGwei},  // pre-London receipt
                                          {std::nullopt, dynamic, Wei(21000) * 30 * kGwei},
                                          {Wei(1) << 250, legacy, Wei(21000) * 7 * kGwei}})  // absurd: the tx's own
        CHECK(funding::fee_paid({21000, r.effective, std::nullopt, std::nullopt, std::nullopt}, r.fees, false).total() == r.want);
}

TEST_CASE("fees: what a mined transaction paid on an OP Stack chain, by part", "[fees][l2]") {
    const Fees dynamic{eth::TxType::kDynamicFee, 0, 30 * kGwei, 2 * kGwei};
    struct Row {
        std::optional<Wei> l1, scalar, constant;
        bool jovian;  // the oracle's isJovian()
        funding::FeePaid want;
    };
    const Wei gas = Wei(21000) * 12 * kGwei;
    for (const auto& r : std::vector<Row>{
             {std::nullopt, std::nullopt, std::nullopt, false, {gas, 0, 0}},            // an L1 chain's receipt
             {Wei(123456789), std::nullopt, std::nullopt, false, {gas, 123456789, 0}},  // OP Stack before Isthmus
             {Wei(5), Wei(0), Wei(0), false, {gas, 5, 0}},                              // Isthmus, no operator fee set
             // Isthmus: gasUsed x scalar / 1e6 + constant = 21000 x 2,000,000 / 1e6 + 7 = 42,007
             {Wei(5), Wei(2'000'000), Wei(7), false, {gas, 5, 42'007}},
             {Wei(5), Wei(1), std::nullopt, false, {gas, 5, 0}},                        // 21000 / 1e6 rounds down
             // Jovian: gasUsed x scalar x 100 + constant = 21000 x 2 x 100 + 7 = 4,200,007
             {Wei(5), Wei(2), Wei(7), true, {gas, 5, 4'200'007}},
             {Wei(5), Wei(1), std::nullopt, true, {gas, 5, 2'100'000}},                 // nothing rounds
             {Wei(5), Wei(0), Wei(7), true, {gas, 5, 7}},                               // the constant alone
             {Wei(5), Wei(0), Wei(0), true, {gas, 5, 0}},                               // no operator fee set
             // Isthmus' scalar read by Jovian's formula: 1e8 times Isthmus' part (4,200,000,000,000 + 7)
             {Wei(5), Wei(2'000'000), Wei(7), true, {gas, 5, Wei(4'200'000'000'007)}},
             {Wei(5), std::nullopt, std::nullopt, true, {gas, 5, 0}},                   // a receipt without the fields
         }) {
        INFO("scalar " << r.scalar.value_or(0) << ", constant " << r.constant.value_or(0) << (r.jovian ? ", Jovian" : ", Isthmus"));
        const auto paid = funding::fee_paid({21000, 12 * kGwei, r.l1, r.scalar, r.constant}, dynamic, r.jovian);
        CHECK(paid == r.want);
        CHECK(paid.total() == r.want.gas + r.want.l1 + r.want.operator_fee);
    }
}

TEST_CASE("fees: Jovian's operator fee at its widest fits in the checked 256 bits", "[fees][l2]") {
    const Fees dynamic{eth::TxType::kDynamicFee, 0, 30 * kGwei, 2 * kGwei};
    // The spec's maximum: gas (uint64) x scalar (uint32) x 100 + constant (uint64), 103 bits.
    const Wei u64 = UINT64_MAX, u32 = UINT32_MAX;
    const auto widest = funding::fee_paid({UINT64_MAX, 1, std::nullopt, u32, u64}, dynamic, true);
    CHECK(widest.operator_fee == u64 * u32 * 100 + u64);
    // And a node's absurd fields (up to max_sane_amount, 2^128 - 1) are booked, never wrapped.
    CHECK_NOTHROW(funding::fee_paid({UINT64_MAX, 1, max_sane_amount(), max_sane_amount(), max_sane_amount()}, dynamic, true));
}

TEST_CASE("fees: the most a transfer may cost, with an OP Stack chain's L1 data and operator fees", "[fees][l2]") {
    const Fees dynamic{eth::TxType::kDynamicFee, 0, 30 * kGwei, 2 * kGwei};
    const Wei gas = Wei(21000) * 30 * kGwei;
    struct Row {
        std::optional<funding::OpFees> op;
        std::uint64_t gas_limit;
        Wei want;
    };
    for (const auto& r : std::vector<Row>{
             {std::nullopt, 21000, gas},
             {funding::OpFees{1000, 1500, 0, 0}, 21000, gas + 1500},         // the bound x 1.5
             {funding::OpFees{1001, 1500, 0, 0}, 21000, gas + 1502},         // rounded up
             {funding::OpFees{1000, 1000, 7, 0}, 21000, gas + 1000 + 7},     // plus the operator fee's constant
             // and its part per gas: 21000 x 2,000,000 / 1e6 = 42,000
             {funding::OpFees{1000, 1000, 7, 2'000'000}, 21000, gas + 1000 + 7 + 42'000},
             {funding::OpFees{0, 1000, 0, 1}, 21000, gas + 1},                // rounded up, never down
         })
        CHECK(funding::max_fee(dynamic, r.op, r.gas_limit) == r.want);
}

TEST_CASE("fees: Arbitrum's gas limit is the estimate times the margin, rounded up, at least the floor", "[fees][l2]") {
    CHECK(funding::with_margin(21000, 1200, 0) == 25200u);
    CHECK(funding::with_margin(100001, 1200, 0) == 120002u);  // 120001.2 rounded up
    CHECK(funding::with_margin(21000, 1000, 0) == 21000u);
    CHECK(funding::with_margin(21000, 1200, 30000) == 30000u);  // gasLimit: a floor
    CHECK(funding::with_margin(UINT64_MAX, 1200, 0) == std::nullopt);
}

TEST_CASE("fees: the kind of chain from the poll's probes", "[fees][l2]") {
    struct Row {
        std::uint64_t chain_id;
        bool oracle_code, arbos;
        funding::L2Kind want;
    };
    for (const auto& r : std::vector<Row>{{1, false, false, funding::L2Kind::kNone},
                                          {10, true, false, funding::L2Kind::kOp},
                                          {8453, true, false, funding::L2Kind::kOp},
                                          {42161, false, false, funding::L2Kind::kArbitrum},  // by chain id
                                          {42170, false, false, funding::L2Kind::kArbitrum},
                                          {421614, false, false, funding::L2Kind::kArbitrum},
                                          {999, false, true, funding::L2Kind::kArbitrum}})  // ArbSys answers
        CHECK(funding::detect_l2(r.chain_id, r.oracle_code, r.arbos) == r.want);
}

TEST_CASE("pending: is it stuck (replaceAfter seconds or blocks, whichever first)", "[pending]") {
    const config::ReplaceAfter after{3, 60};
    struct Row {
        double created, now;
        std::uint64_t sent_block, block;
        bool want;
    };
    for (const auto& r : std::vector<Row>{{1000, 1059, 10, 12, false},
                                          {1000, 1060, 10, 12, true},
                                          {1000, 1001, 10, 13, true},
                                          {1000, 1001, 0, 500, false},  // the block it was sent in is unknown
                                          {1000, 900, 10, 10, false}})
        CHECK(funding::is_stuck(r.created, r.sent_block, after, r.now, r.block) == r.want);
}

TEST_CASE("pending: positive evidence first; a failed query concludes nothing; only a search of blocks can drop", "[pending]") {
    using S = funding::NonceState;
    struct Row {
        bool receipt, by_hash, failed, taken;
        std::optional<std::uint64_t> since;
        std::uint64_t block;
        S want;
        std::optional<std::uint64_t> want_since;
    };
    for (const auto& r : std::vector<Row>{
             {true, false, false, true, 5, 100, S::kMined, {}},
             {true, true, true, true, 5, 100, S::kMined, {}},             // a receipt wins over a failed query
             {false, true, false, true, 5, 100, S::kMinedNoReceipt, {}},  // a node without receipts: mined by hash
             {false, true, true, true, {}, 100, S::kMinedNoReceipt, {}},
             {false, false, true, true, 90, 100, S::kUnknown, 90},        // geth's "indexing in progress": it waits
             {false, false, true, false, {}, 100, S::kUnknown, {}},
             {false, false, false, false, {}, 100, S::kUnmined, {}},
             {false, false, false, false, 90, 100, S::kUnmined, {}},  // no longer taken: evidence reset
             {false, false, false, true, {}, 100, S::kTaken, 100},    // first seen
             {false, false, false, true, 100, 102, S::kTaken, 100},
             {false, false, false, true, 100, 103, S::kSearch, 100},   // never "dropped" from receipts alone
             {false, false, false, true, 100, 5000, S::kSearch, 100},
             {false, false, false, true, 200, 100, S::kTaken, 100}}) {  // a reorg: since after now
        INFO(r.receipt << r.by_hash << r.failed << r.taken << " block " << r.block);
        const auto j = funding::judge_nonce({r.receipt, r.by_hash, r.failed, r.taken}, r.since, r.block);
        CHECK(j.state == r.want);
        CHECK(j.taken_since == r.want_since);
    }
}

TEST_CASE("pending: a view older than the newest block seen is stale", "[pending][stale]") {
    CHECK_FALSE(funding::is_stale(100, 0));
    CHECK_FALSE(funding::is_stale(100, 100));
    CHECK_FALSE(funding::is_stale(101, 100));
    CHECK(funding::is_stale(97, 100));  // a backend three blocks behind
}

TEST_CASE("pending: a chain that went back is accepted only when no answer reached the newest block for a while", "[pending][stale]") {
    const funding::Behind b{1000, 7, 90};
    CHECK_FALSE(funding::chain_went_back(b, 7, 1000 + funding::kRebaseAfterSeconds - 1));
    CHECK(funding::chain_went_back(b, 7, 1000 + funding::kRebaseAfterSeconds));
    CHECK_FALSE(funding::chain_went_back(b, 8, 1000 + 10 * funding::kRebaseAfterSeconds));  // a fresh answer came: a lagging backend
}

TEST_CASE("pending: a mined entry not final is re-checked from its receipt and the block at its height", "[pending][reorg]") {
    using R = funding::Recheck;
    using Rec = std::optional<std::pair<std::uint64_t, std::string>>;
    struct Row {
        std::string booked_hash;
        Rec receipt;
        bool receipt_failed;
        std::optional<std::string> at_height;
        bool fresh;
        R want;
    };
    const funding::MinedCheck at{10, "0xaa"};
    for (const auto& r : std::vector<Row>{
             {"0xaa", Rec{{10, "0xaa"}}, false, std::string("0xaa"), true, R::kHolds},
             {"0xaa", Rec{{10, "0xaa"}}, false, std::nullopt, false, R::kHolds},     // a receipt is enough
             {"0xaa", Rec{{12, "0xcc"}}, false, std::string("0xbb"), true, R::kMoved},  // re-included elsewhere
             {"0xaa", Rec{{10, "0xbb"}}, false, std::string("0xbb"), true, R::kMoved},  // same height, new block
             {"0xaa", Rec{{10, "0xaa"}}, false, std::string("0xbb"), true, R::kUnknown},  // receipt and block disagree
             {"", Rec{{10, "0xaa"}}, false, std::string("0xaa"), true, R::kHolds},        // booked without a hash: its receipt's
             {"0xaa", Rec{{12, "0xcc"}}, false, std::string("0xbb"), false, R::kUnknown}, // a move seen from a stale view
             {"0xaa", Rec{}, false, std::string("0xaa"), true, R::kHolds},           // the receipt lags: the block holds it
             {"0xaa", Rec{}, false, std::string("0xaa"), false, R::kHolds},
             {"0xaa", Rec{}, false, std::string("0xbb"), true, R::kGone},            // another block there: reorged
             {"0xaa", Rec{}, false, std::string(""), true, R::kGone},                // no block there any more
             {"0xaa", Rec{}, false, std::string("0xbb"), false, R::kUnknown},        // a stale view proves no absence
             {"0xaa", Rec{}, true, std::string("0xbb"), true, R::kUnknown},          // the receipt query failed
             {"0xaa", Rec{}, false, std::nullopt, true, R::kUnknown},                // the block query failed
             {"", Rec{}, false, std::string("0xbb"), true, R::kUnknown}}) {          // booked without a hash
        INFO(r.booked_hash << " " << (r.receipt ? r.receipt->second : "no receipt") << " " << r.at_height.value_or("?"));
        funding::MinedEvidence ev{r.receipt, r.receipt_failed, r.at_height, r.fresh};
        CHECK(funding::recheck_mined({at.block, r.booked_hash}, ev) == r.want);
    }
}

TEST_CASE("pending: finality from the configured depth, else the finalized tag, else the chain's default", "[pending][finality]") {
    struct Row {
        std::uint64_t block, newest, depth;
        bool configured;
        std::optional<std::uint64_t> tag;
        bool want;
    };
    for (const auto& r : std::vector<Row>{{100, 163, 64, false, {}, false},
                                          {100, 164, 64, false, {}, true},
                                          {100, 101, 64, false, 100, true},    // the node's finalized block
                                          {100, 500, 64, false, 99, false},    // deep, but the tag says not yet
                                          {100, 119, 20, true, 500, false},    // a configured depth wins over the tag
                                          {100, 120, 20, true, {}, true},
                                          {100, 90, 20, true, {}, false}}) {   // newest behind the block
        INFO(r.block << " newest " << r.newest << " depth " << r.depth);
        CHECK(funding::is_final(r.block, r.newest, r.depth, r.configured, r.tag) == r.want);
    }
    CHECK(funding::default_finality(1) == 64);
    CHECK(funding::default_finality(31337) == 64);
    CHECK(funding::default_finality(137) == 256);
    CHECK(funding::default_finality(43114) == 1);
}

TEST_CASE("pending: the reserve counts each unresolved nonce once, at its largest amount and worst fee", "[pending][limits]") {
    CHECK(funding::in_flight_total({}) == Wei(0));
    CHECK(funding::in_flight_total({{5, 100, 10}, {6, 50, 5}}) == Wei(165));
    CHECK(funding::in_flight_total({{5, 100, 10}, {5, 100, 12}, {6, 0, 3}}) == Wei(115));  // a replacement; a filler
}

TEST_CASE("pending: nonce gaps below our highest unresolved nonce, from the first one nobody holds", "[pending][gaps]") {
    using V = std::vector<std::uint64_t>;
    CHECK(funding::nonce_gaps(5, {}) == V{});
    CHECK(funding::nonce_gaps(5, {5, 6, 7}) == V{});
    CHECK(funding::nonce_gaps(5, {6, 7}) == V{5});        // a refused send, or a filler that failed
    CHECK(funding::nonce_gaps(5, {5, 8}) == V{6, 7});
    CHECK(funding::nonce_gaps(9, {5, 8}) == V{});         // the node holds or mined everything below 9
    CHECK(funding::nonce_gaps(3, {4}) == V{3});
}

TEST_CASE("plan: a balance mismatch is an endpoint contradicting itself, never an agent that spends", "[plan]") {
    struct Row {
        int before, amount, now;
        std::uint64_t nonce_before, nonce_now;
        bool mismatch;
    };
    const std::vector<Row> rows = {
        {4, 16, 20, 7, 7, false},  // shows exactly what we left
        {4, 16, 25, 7, 7, false},  // someone else sent more
        {4, 16, 5, 7, 7, true},    // sent nothing, holds less: lagging or lying
        {4, 16, 15, 7, 7, true},   // above its threshold, still less than we left
        {4, 16, 0, 7, 7, true},    // reported empty
        {4, 16, 1, 7, 9, false},   // it sent two transactions: it spent
        {0, 16, 0, 3, 4, false},   // spent everything in the same block as our top-up
    };
    for (const auto& r : rows) {
        INFO(r.before << "+" << r.amount << " -> " << r.now << ", nonce " << r.nonce_before << " -> " << r.nonce_now);
        CHECK(funding::balance_contradicts(Wei(r.before), Wei(r.amount), Wei(r.now), r.nonce_before, r.nonce_now) == r.mismatch);
    }
}

TEST_CASE("amounts: checked arithmetic throws instead of wrapping", "[amount]") {
    const Wei max = ~Wei(0);
    CHECK_THROWS(max + 1);
    CHECK_THROWS(Wei(1) - Wei(2));
    CHECK_THROWS(max * 2);
}

TEST_CASE("bank audit: every nonce the bank used must be a mined transaction of ours", "[audit]") {
    using R = funding::NonceRecord;
    struct Row {
        std::uint64_t from, latest;
        std::map<std::uint64_t, R> records;
        std::vector<std::uint64_t> unaccounted;
        std::uint64_t next;
    };
    const R mined{true, false}, open{false, true}, both{true, true};
    const std::vector<Row> rows = {
        {5, 5, {}, {}, 5},                                  // nothing new
        {5, 8, {{5, mined}, {6, mined}, {7, mined}}, {}, 8},  // all ours
        {5, 8, {{5, mined}, {7, mined}}, {6}, 8},            // 6: not journaled (another process, a replay)
        {5, 8, {{5, mined}, {6, open}, {7, mined}}, {}, 6},  // 6 unresolved: wait for reconcile
        {5, 8, {{5, both}, {6, {}}, {7, mined}}, {6}, 8},    // 5: a replacement mined; 6: failed/dropped only
        {9, 3, {}, {}, 3},                                  // the chain was reset: start again
        {0, 25'000, {}, {}, 10'000},                        // one step at most
    };
    for (const auto& r : rows) {
        INFO(r.from << ".." << r.latest);
        const auto a = funding::audit_nonces(r.from, r.latest, r.records);
        if (r.latest - std::min(r.latest, r.from) <= funding::kAuditStep) CHECK(a.unaccounted == r.unaccounted);
        else CHECK(a.unaccounted.size() == funding::kAuditStep);
        CHECK(a.next == r.next);
    }
}

TEST_CASE("bank audit: the balance is compared only across stretches where every nonce is ours and mined", "[audit]") {
    using funding::AuditPoint;
    using funding::AuditState;
    using funding::BankAudit;
    const AuditPoint p5{5, 100, Wei(1000)}, now{8, 110, Wei(700)};
    struct Row {
        const char* what;
        AuditState before;
        BankAudit walk;
        bool quiet;
        bool compare;
        std::uint64_t next;
        std::optional<AuditPoint> point;
    };
    const std::vector<Row> rows = {
        {"all ours and mined: compare, new point", {5, p5}, {{}, 8}, true, true, 8, now},
        {"a transaction in flight: no comparison, keep the point", {5, p5}, {{}, 8}, false, false, 8, p5},
        {"no point yet: no comparison, new point", {5, std::nullopt}, {{}, 8}, true, false, 8, now},
        {"an entry still open: keep the point", {5, p5}, {{}, 6}, true, false, 6, p5},
        {"another's nonce, walk complete: new start", {5, p5}, {{6}, 8}, true, false, 8, now},
        {"another's nonce, in flight: no point", {5, p5}, {{6}, 8}, false, false, 8, std::nullopt},
        {"another's nonce, walk incomplete: no point", {5, p5}, {{6}, 7}, true, false, 7, std::nullopt},
        {"a chain reset: start again here", {9, p5}, {{}, 8}, true, false, 8, now},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        const auto s = funding::next_audit_state(r.before, r.walk, now, r.quiet);
        CHECK(s.compare == r.compare);
        CHECK(s.state.next == r.next);
        REQUIRE(s.state.point.has_value() == r.point.has_value());
        if (r.point) CHECK(s.state.point->nonce == r.point->nonce);
    }
    // What the bank lost beyond what ours took; money received only hides a loss.
    CHECK(funding::unexplained_outflow(Wei(1000), Wei(700), Wei(300)) == Wei(0));
    CHECK(funding::unexplained_outflow(Wei(1000), Wei(600), Wei(300)) == Wei(100));
    CHECK(funding::unexplained_outflow(Wei(1000), Wei(900), Wei(300)) == Wei(0));  // a refill of 200
    CHECK(funding::unexplained_outflow(Wei(1000), Wei(1500), Wei(0)) == Wei(0));
}

TEST_CASE("bank low: a read balance below bankThreshold, decided once for the daemon and the cli", "[rules][bank]") {
    struct Row {
        const char* what;
        std::optional<Wei> threshold;
        std::optional<Wei> balance;
        bool low;
    };
    const Wei one = Wei("1000000000000000000");
    const std::vector<Row> rows = {
        {"no bankThreshold: never low", std::nullopt, Wei(0), false},
        {"below it", one, one - 1, true},
        {"exactly at it", one, one, false},
        {"above it", one, one * 2, false},
        {"balance unread: not judged", one, std::nullopt, false},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        config::Network net;
        net.bank_threshold = r.threshold;
        funding::NetworkSnapshot snap;
        snap.bank_balance = r.balance;
        CHECK(funding::bank_low(net, snap) == r.low);
    }
}
