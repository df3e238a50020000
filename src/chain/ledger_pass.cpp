// The ledger's part of steps 4 to 7 of prepare, in one call on the ledger's thread: the burn
// measurement, the bank audit and the reads of the spend limits. What is decided from them is
// decided on the loop (decide.cpp, spend_limits.cpp).
#include <exception>

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

// Runs one part: what it throws becomes its Problem (worded by `trouble`); the first LedgerError
// is kept in `failed`, for the ledger's thread to hear once every part ran.
template <class Fn>
std::optional<Problem> part(Fn&& fn, Problem (*trouble)(const std::string&), std::exception_ptr& failed) {
    try {
        fn();
        return std::nullopt;
    } catch (const ledger::LedgerError& e) {
        if (!failed) failed = std::current_exception();
        return trouble(e.what());
    } catch (const std::exception& e) {
        return trouble(e.what());
    }
}

}  // namespace

net::awaitable<LedgerPass> ledger_pass(const Context& ctx, BurnTracker& burn, const LedgerPassInput& in) {
    LedgerPass out;
    const bool audit = audits(in.mode, ctx.ledger, in.snap);
    const bool limits = reads_ledger(in.mode) && ctx.ledger;
    bool ran = false;
    try {
        co_await ctx.in_ledger([&] {
            std::exception_ptr failed;
            out.burn.problem = part(
                [&] { measure_burn(out.burn, burn, ctx.ledger, in.mode, in.snap, in.busy, in.bank, in.now); },
                burn_trouble, failed);
            if (audit)
                out.audit.problem = part([&] { audit_bank(out.audit, *ctx.ledger, in.snap, in.bank); },
                                         audit_trouble, failed);
            if (limits) {
                Spending read;
                auto p = part(
                    [&] {
                        read = read_spending(*ctx.ledger, ctx.net, in.snap.chain_id, in.bank, in.day_ago);
                    },
                    spending_trouble, failed);
                out.spending = p ? Expected<Spending>(std::move(*p)) : Expected<Spending>(std::move(read));
            }
            ran = true;
            if (failed)
                std::rethrow_exception(failed);  // the ledger failed in this call: its thread hears it
        });
    } catch (const std::exception& e) {
        if (!ran) {  // the call itself failed: every part with it
            out.burn.problem = burn_trouble(e.what());
            if (audit) out.audit.problem = audit_trouble(e.what());
            if (limits) out.spending = spending_trouble(e.what());
        }
    }
    co_return out;
}

}  // namespace keymaster::chain::detail
