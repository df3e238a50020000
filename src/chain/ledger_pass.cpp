// The ledger's part of steps 4 to 7 of prepare, on the ledger's thread, one call per part (as
// separate as they were before they had files of their own): the burn measurement, the bank audit,
// and, after the plan and its gas, the reads of the spend limits. Each part is its own call so that
// the ledger's thread judges each on its own: a part that fails while the next one succeeds leaves
// the ledger answering (not away), and no call lasts as long as all of them together (the thread's
// stall time is per call). What is decided from them is decided on the loop (decide.cpp,
// spend_limits.cpp).
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

namespace net = boost::asio;

namespace {

// Each part's trouble, as it has always been worded.
Problem burn_trouble(const std::string& why) {
    return {Fault::kLedger, "cannot keep the burn history (" + why + "): amounts apply"};
}
Problem audit_trouble(const std::string& why) {
    return {Fault::kLedger, "bank audit: cannot use the ledger (" + why + ")"};
}
Problem spending_trouble(const std::string& why) {
    return {Fault::kLedger, "cannot read spending from the ledger (" + why + "); sending nothing this round"};
}

}  // namespace

net::awaitable<LedgerPass> ledger_pass(const Context& ctx, BurnTracker& burn, const LedgerPassInput& in) {
    LedgerPass out;
    try {
        co_await ctx.in_ledger(
            [&] { measure_burn(out.burn, burn, ctx.ledger, in.mode, in.snap, in.busy, in.bank, in.now); });
    } catch (const std::exception& e) {
        out.burn.problem = burn_trouble(e.what());
    }
    if (!audits(in.mode, ctx.ledger, in.snap)) co_return out;
    try {
        co_await ctx.in_ledger([&] { audit_bank(out.audit, *ctx.ledger, in.snap, in.bank); });
    } catch (const std::exception& e) {
        out.audit.problem = audit_trouble(e.what());
    }
    co_return out;
}

net::awaitable<std::optional<Expected<Spending>>> read_spending(const Context& ctx, Mode mode, std::uint64_t chain_id,
                                                                const std::string& bank, double since) {
    if (!reads_ledger(mode) || !ctx.ledger) co_return std::nullopt;
    Spending read;
    try {
        co_await ctx.in_ledger([&] { read = read_spending(*ctx.ledger, ctx.net, chain_id, bank, since); });
    } catch (const std::exception& e) {
        co_return Expected<Spending>(spending_trouble(e.what()));
    }
    co_return Expected<Spending>(std::move(read));
}

}  // namespace keymaster::chain::detail
