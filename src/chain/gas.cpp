// Step 6 of prepare: the top-ups' gas limits.
#include "batch.hpp"
#include "keymaster/funding/fees.hpp"
#include "keymaster/rpc/client.hpp"
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

namespace net = boost::asio;
using nlohmann::json;

net::awaitable<std::optional<Problem>> estimate_gas(rpc::RpcClient& client, const config::Network& net,
                                                    funding::NetworkPlan& plan) {
    const bool arbitrum = plan.snapshot.l2 == funding::L2Kind::kArbitrum;
    if (plan.topups.empty() || (net.gas_limit && !arbitrum)) co_return std::nullopt;
    Calls calls;
    std::vector<std::pair<funding::TopUp*, Answer<std::uint64_t>>> estimates;
    for (auto& t : plan.topups) {
        json tx{{"from", plan.snapshot.bank.lower()},
                {"to", t.account.address.lower()},
                {"value", to_quantity(t.amount)}};
        estimates.emplace_back(&t,
                               calls.add<std::uint64_t>({"eth_estimateGas", json::array({std::move(tx)})}));
    }
    Answers answers;
    try {
        answers = Answers(co_await client.batch(calls.take()));
    } catch (const std::exception& e) {
        for (auto& t : plan.topups) t.gas_limit = 0;
        funding::update_costs(plan);
        co_return Problem{Fault::kPoll, std::string("gas estimation failed: ") + e.what()};
    }
    for (const auto& [t, estimate] : estimates) {
        auto g = answers.get(estimate);
        if (g && arbitrum) g = funding::with_margin(*g, net.gas_margin_permille, net.gas_limit.value_or(0));
        t->gas_limit = g.value_or(0);
    }
    funding::update_costs(plan);
    co_return std::nullopt;
}

}  // namespace keymaster::chain::detail
