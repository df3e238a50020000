// Typed batches (src/chain/batch.hpp): a call's answer is read through the handle its add() gave,
// whatever was added before or after it, and read as the handle's type.
#include <catch2/catch.hpp>

#include <type_traits>

#include "chain/batch.hpp"
#include "keymaster/common/hex.hpp"

using namespace keymaster;
using chain::detail::Answer;
using chain::detail::Answers;
using chain::detail::Batch;
using chain::detail::Calls;
using nlohmann::json;

// A handle comes only from a batch's add(): no position can be made into one.
static_assert(!std::is_constructible_v<Answer<Wei>, std::size_t>);
static_assert(!std::is_convertible_v<std::size_t, Answer<Wei>>);
static_assert(std::is_trivially_copyable_v<Answer<Wei>> && sizeof(Answer<Wei>) == sizeof(std::size_t));

namespace {

rpc::CallResult ok(json v) { return {std::move(v), std::nullopt}; }
rpc::CallResult refused(const char* words) { return {std::nullopt, rpc::RpcError(-32000, words)}; }

// A node's answers to `calls`: each eth_getBalance returns the number in its params, each
// eth_blockNumber the next of `heads`.
std::vector<rpc::CallResult> answer(const std::vector<rpc::Call>& calls, std::vector<std::uint64_t> heads) {
    std::vector<rpc::CallResult> out;
    std::size_t next_head = 0;
    for (const auto& c : calls) {
        if (c.method == "eth_blockNumber") out.push_back(ok(to_quantity(Wei(heads.at(next_head++)))));
        else if (c.method == "eth_getBalance") out.push_back(ok(to_quantity(Wei(c.params.at(0).get<std::uint64_t>()))));
        else out.push_back(ok("0x7a69"));
    }
    return out;
}

}  // namespace

TEST_CASE("batch: each answer read through its handle, as its type", "[chain][batch]") {
    Calls calls;
    const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
    const auto balance = calls.add<Wei>({"eth_getBalance", json::array({"0xab", "latest"})});
    const auto block = calls.add<rpc::BlockInfo>({"eth_getBlockByNumber", json::array({"latest", false})});
    const auto receipt = calls.add<rpc::ReceiptInfo>({"eth_getTransactionReceipt", json::array({"0x01"})});
    const auto code = calls.add<std::string>({"eth_getCode", json::array({"0xab", "latest"})});
    const auto raw = calls.add<json>({"eth_getBlockByNumber", json::array({"0x5", true})});
    const auto failed = calls.add<Wei>({"eth_getBalance", json::array({"0xcd", "latest"})});
    const auto malformed = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({"0xab", "latest"})});
    const auto sent = calls.take();
    REQUIRE(sent.size() == 8);
    CHECK(sent[0].method == "eth_chainId");
    CHECK(sent[6].params[0] == "0xcd");

    const Answers answers({ok("0x7a69"), ok("0x0de0b6b3a7640000"), ok(json{{"number", "0x10"}, {"hash", "0xbeef"}}), ok(nullptr),
                           ok("0x6080"), ok(json{{"number", "0x5"}, {"transactions", json::array()}}),
                           refused("header not found"), ok("not a number")});
    CHECK(answers.get(chain) == 31337u);
    CHECK(answers.get(balance) == Wei(1'000'000'000'000'000'000ull));
    REQUIRE(answers.get(block));
    CHECK(answers.get(block)->number == 16);
    CHECK(answers.get(block)->hash == "0xbeef");
    // JSON null: answered, nothing to read (no receipt yet).
    CHECK(answers.answered(receipt));
    CHECK(answers.null(receipt));
    CHECK_FALSE(answers.get(receipt));
    CHECK(answers.get(code) == std::string("0x6080"));
    CHECK(answers.get(raw)->at("transactions").empty());
    // A refused call: not answered, its error kept; never a default value.
    CHECK_FALSE(answers.answered(failed));
    CHECK_FALSE(answers.get(failed));
    REQUIRE(answers.call(failed).error);
    CHECK(answers.call(failed).error->message() == "header not found");
    // Malformed: answered, but unread.
    CHECK(answers.answered(malformed));
    CHECK_FALSE(answers.null(malformed));
    CHECK_FALSE(answers.get(malformed));
}

TEST_CASE("batch: no answer at all, and a handle of no call, read as not answered", "[chain][batch]") {
    Calls calls;
    const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
    const Answers none;
    CHECK(none.empty());
    CHECK_FALSE(none.answered(chain));
    CHECK_FALSE(none.null(chain));
    CHECK_FALSE(none.get(chain));
    CHECK_FALSE(none.call(chain).error);
    const Answers some({ok("0x1")});
    CHECK_FALSE(some.answered(Answer<std::uint64_t>{}));
    CHECK_FALSE(some.get(Answer<std::uint64_t>{}));
}

TEST_CASE("batch: every later request's eth_blockNumber shifts no handle", "[chain][batch]") {
    for (const std::size_t size : {1, 2, 3, 100}) {
        INFO("batch size " << size);
        Batch b(size, Batch::Riders::kUntilEnded);
        // More riders than a request holds: they all go with the first request, no head among them.
        std::vector<Answer<std::uint64_t>> riders;
        for (int k = 0; k < 4; ++k) riders.push_back(b.add<std::uint64_t>({"eth_chainId", json::array()}));
        b.end_riders();
        CHECK(b.riders() == 4);
        b.reserve(10);
        std::vector<std::pair<std::uint64_t, Answer<Wei>>> balances;
        for (std::uint64_t v = 1; v <= 10; ++v) balances.emplace_back(v, b.add<Wei>({"eth_getBalance", json::array({v})}));
        const auto calls = b.take();
        // Requests: 4 riders + `size` balances, then (head + `size` balances) each.
        const std::size_t later = size >= 10 ? 0 : (10 - size + size - 1) / size;  // ceil((10 - size) / size)
        REQUIRE(calls.size() == 4 + 10 + later);
        for (std::size_t k = 0; k < later; ++k) CHECK(calls.at(4 + size + k * (size + 1)).method == "eth_blockNumber");

        const Answers answers(answer(calls, {40, 39, 41, 42, 43, 44, 45, 46, 47, 48}));
        for (const auto& r : riders) CHECK(answers.get(r) == 31337u);
        for (const auto& [v, h] : balances) CHECK(answers.get(h) == Wei(v));
        if (later == 0) CHECK_FALSE(b.oldest_head(answers));
        else CHECK(b.oldest_head(answers) == (later > 1 ? 39u : 40u));
    }
}

TEST_CASE("batch: a later request whose eth_blockNumber failed is as old as can be", "[chain][batch]") {
    Batch b(1);
    const auto first = b.add<Wei>({"eth_getBalance", json::array({1})});
    const auto second = b.add<Wei>({"eth_getBalance", json::array({2})});
    const auto calls = b.take();
    REQUIRE(calls.size() == 3);
    CHECK(calls[1].method == "eth_blockNumber");
    const Answers answers({ok("0x1"), refused("busy"), ok("0x2")});
    CHECK(answers.get(first) == Wei(1));
    CHECK(answers.get(second) == Wei(2));
    CHECK(b.oldest_head(answers) == 0u);
}
