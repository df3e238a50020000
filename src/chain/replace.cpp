#include <spdlog/spdlog.h>

#include "keymaster/rpc/client.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

using funding::Fees;
namespace {

namespace net = boost::asio;

// The fees of the replacement, or why there are none (kFees: the ceiling is reached; the caller
// reports it as a warning, not a Round's Problem: the stuck one is left to be mined at its fees).
Expected<Fees> raise_fees(const Context& ctx, const ledger::Entry& stuck, const Fees& first_fees) {
    const Wei ceiling = funding::replacement_ceiling(first_fees, ctx.net);
    if (auto fees = funding::bumped_fees(fees_of(stuck), ceiling)) return *fees;
    const std::string set_by = ctx.net.max_fee_per_gas && *ctx.net.max_fee_per_gas == ceiling
                                   ? std::string("maxFeePerGas")
                                   : std::to_string(ctx.net.replace_fee_ceiling) + "x the nonce's first fees, replaceFeeCeiling";
    return Problem{Fault::kFees,
                   "cannot raise fees: the ceiling of " + format_units(ceiling, 9) + " gwei per gas is reached (" + set_by + ")"};
}

// Signs and journals the replacement (durable before its broadcast).
net::awaitable<Expected<ledger::Entry>> journaled_replacement(Context& ctx, const ledger::Entry& stuck, const Fees& fees,
                                                              std::uint64_t block) {
    auto to = eth::Address::parse(stuck.recipient);
    if (!to) co_return Problem{Fault::kLedger, "bad recipient in the ledger"};
    const auto tx = build_tx(fees, stuck.chain_id, stuck.nonce, *to, stuck.amount, stuck.gas_limit);
    auto e = co_await sign_entry(ctx, tx, stuck.home, stuck.role, block);
    if (!e) co_return e.error();
    std::vector<ledger::Entry> one(1, *e);
    if (auto problem = co_await journal(ctx, one)) co_return *problem;
    co_return one[0];
}

// The broadcast's verdict in the ledger: the new one's state; the stuck one `replaced` unless the
// new one was refused (then the Problem; a ledger that cannot record an accepted one is logged). Unknown: it may be out there; both stay unresolved for reconcile (pending()
// keeps a replaced entry until its nonce is settled), whichever is mined settles the nonce.
net::awaitable<std::optional<Problem>> record_replacement(Context& ctx, const ledger::Entry& stuck, const ledger::Entry& e,
                                                          const Sent& sent) {
    const bool refused = sent.verdict == SendVerdict::kFailed;
    try {
        co_await ctx.in_ledger([&] {
            ctx.ledger->atomically([&] {
                record_send(ctx, e, sent, SendKind::kFirst, "replaces " + stuck.tx_hash);
                if (!refused) ctx.ledger->replaced(stuck.id, e.tx_hash);
            });
        });
    } catch (const std::exception& ex) {
        const Problem p = problem_of(ex, Fault::kLedger, "ledger cannot be written");
        if (refused) co_return p;
        spdlog::error("{}: replacement {} of {}: {}; reconcile settles it", ctx.net.name, e.tx_hash, stuck.tx_hash, p.message);
    }
    if (refused) co_return Problem{Fault::kTopUp, "replacement refused: " + sent.why()};
    co_return std::nullopt;
}

// The one way a replacement that did not happen is reported, wherever it was tried.
Replacement not_replaced(const Context& ctx, const ledger::Entry& stuck, const std::string& why, bool ceiling) {
    Replacement out;
    if (ceiling) {
        spdlog::warn("{}: tx {} (nonce {}) stuck, not replaced: {}", ctx.net.name, stuck.tx_hash, stuck.nonce, why);
        return out;
    }
    spdlog::error("{}: tx {} (nonce {}) stuck, not replaced: {}", ctx.net.name, stuck.tx_hash, stuck.nonce, why);
    out.report.problems.push_back({Fault::kTopUp, "replacement of " + stuck.tx_hash + ": " + why});
    return out;
}

}  // namespace

net::awaitable<Replacement> replace_stuck(Context& ctx, const ledger::Entry& stuck, const Fees& first_fees,
                                          std::uint64_t block) {
    const auto raised = raise_fees(ctx, stuck, first_fees);
    if (!raised) co_return not_replaced(ctx, stuck, raised.error().message, true);
    auto e = co_await journaled_replacement(ctx, stuck, *raised, block);
    if (!e) co_return not_replaced(ctx, stuck, e.error().message, false);
    const auto sent = co_await broadcast_one(ctx, *e);
    if (auto refused = co_await record_replacement(ctx, stuck, *e, sent)) co_return not_replaced(ctx, stuck, refused->message, false);
    e->state = ledger::State::kSent;
    spdlog::warn("{}: tx {} (nonce {}) stuck; replaced by {} with fees raised to {} gwei{}", ctx.net.name, stuck.tx_hash,
                 stuck.nonce, e->tx_hash, format_units(raised->per_gas_cap(), 9),
                 sent.verdict == SendVerdict::kUnknown ? " (send result unknown: " + sent.why() + ")" : "");
    if (ctx.replaced) ctx.replaced();
    Replacement out;
    out.entry = std::move(*e);
    out.report.replacements = 1;
    co_return out;
}

}  // namespace keymaster::chain::detail
