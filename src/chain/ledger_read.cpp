// Step 1 of prepare: the chain id, the sender lease, the ledger's unresolved entries; and step 2c,
// what the ledger steps found, settled against the poll.
#include <spdlog/spdlog.h>

#include "keymaster/rpc/client.hpp"
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

namespace net = boost::asio;
using nlohmann::json;

net::awaitable<std::optional<Problem>> pin_chain_id(rpc::RpcClient& client, config::Network& net) {
    if (net.chain_id) co_return std::nullopt;
    try {
        std::string method = "eth_chainId";  // (GCC 12: no literal inside co_await)
        const auto id = rpc::as_u64(co_await client.call(std::move(method), json::array()));
        if (!id) co_return Problem{Fault::kPoll, "eth_chainId: malformed answer"};
        net.chain_id = *id;
        spdlog::info("{}: chain id {}", net.name, *id);
    } catch (const std::exception& e) {
        co_return Problem{Fault::kPoll, std::string("eth_chainId failed: ") + e.what()};
    }
    co_return std::nullopt;
}

net::awaitable<std::optional<Problem>> SenderClaim::claim(Context& ctx, const eth::Address& bank) {
    held_.reset();
    if (holder.empty() || !ctx.ledger || !ctx.net.chain_id) co_return std::nullopt;
    const std::string name = sender_lease_name(*ctx.net.chain_id, bank);
    const double seconds = std::chrono::duration<double>(duration).count();
    try {
        ledger::Lease lease;
        co_await ctx.in_ledger([&] { lease = ctx.ledger->claim_lease(name, holder, seconds); });
        if (!lease.mine)
            co_return Problem{Fault::kSender, "bank " + bank.checksummed() + " on chain " +
                                                  std::to_string(*ctx.net.chain_id) + " is sent from by " +
                                                  lease.holder + " (lease " + name + ", epoch " +
                                                  std::to_string(lease.epoch) + "): nothing sent"};
        if ((!epoch_ || *epoch_ != lease.epoch) && ctx.seen)
            ctx.seen->seeded = false;  // another may have sent meanwhile
        epoch_ = lease.epoch;
        held_ = SenderLease{name, holder, lease.epoch, seconds};
    } catch (const std::exception& e) {
        co_return problem_of(e, Fault::kLedger, "cannot claim the sender lease " + name);
    }
    co_return std::nullopt;
}

net::awaitable<Expected<LedgerView>> read_view(Context& ctx, Mode mode,
                                               const std::set<std::string>& configured_banks,
                                               const std::string& holder) {
    if (mode == Mode::kLive) {
        auto view = co_await reconcile(ctx);
        if (view && !configured_banks.empty())
            if (auto p = co_await reconcile_orphans(ctx, configured_banks, *view)) {
                co_await release_orphan_leases(ctx, *view, holder);
                co_return *p;
            }
        co_return view;
    }
    if (reads_ledger(mode)) co_return co_await pending_view(ctx);
    co_return LedgerView{};
}

net::awaitable<void> settle_view(Context& ctx, RoundPlan& rp, const funding::NetworkSnapshot& snap,
                                 LedgerView& view, const std::string& holder) {
    if (sends(rp.mode))
        if (auto p = co_await recheck_unfinal(ctx, snap, !rp.stale, view)) rp.fail(*p);
    rp.ledger_log = std::move(view.log);
    rp.settled = std::move(view.settled);
    co_await release_orphan_leases(ctx, view, holder);
}

net::awaitable<void> release_orphan_leases(Context& ctx, const LedgerView& view, const std::string& holder) {
    for (const auto& name : view.orphan_leases) {
        try {
            co_await ctx.in_ledger([&] { ctx.ledger->release_lease(name, holder); });
        } catch (const std::exception& e) {
            spdlog::warn("{}: cannot release the lease {} ({}); it expires by itself", ctx.net.name, name,
                         e.what());
        }
    }
}

}  // namespace keymaster::chain::detail
