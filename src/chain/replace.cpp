#include <spdlog/spdlog.h>

#include "keymaster/rpc/client.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

namespace net = boost::asio;

net::awaitable<Replacement> replace_stuck(Context& ctx, const ledger::Entry& stuck, const Fees& first_fees,
                                          std::uint64_t block) {
    Replacement out;
    const Wei ceiling = funding::replacement_ceiling(first_fees, ctx.net);
    auto fees = funding::bumped_fees(fees_of(stuck), ceiling);
    if (!fees) {
        out.ceiling = true;
        out.why = "cannot raise fees: the ceiling of " + format_units(ceiling, 9) + " gwei per gas is reached (" +
                  (ctx.net.max_fee_per_gas && *ctx.net.max_fee_per_gas == ceiling
                       ? std::string("maxFeePerGas")
                       : std::to_string(ctx.net.replace_fee_ceiling) + "x the nonce's first fees, replaceFeeCeiling") +
                  ")";
        co_return out;
    }
    auto to = eth::Address::parse(stuck.recipient);
    if (!to) {
        out.why = "bad recipient in the ledger";
        co_return out;
    }
    const auto tx = build_tx(*fees, stuck.chain_id, stuck.nonce, *to, stuck.amount, stuck.gas_limit);
    auto e = co_await sign_entry(ctx, tx, stuck.home, stuck.role, block, out.why);
    if (!e) co_return out;
    try {
        e->id = ctx.ledger->record_intent(*e);
        e->created = ctx.now();
    } catch (const std::exception& ex) {
        out.why = std::string("ledger cannot be written: ") + ex.what();
        co_return out;
    }
    const std::vector<ledger::Entry> one(1, *e);
    const auto sent = (co_await broadcast(ctx, one))[0];
    const bool refused = sent.verdict == SendVerdict::kFailed;
    try {
        record_send(ctx, e->id, sent, "replaces " + stuck.tx_hash);
        if (refused) {
            out.why = "replacement refused: " + sent.why();
            co_return out;
        }
        // Unknown: it may be out there. Both stay unresolved for reconcile (pending() keeps a
        // replaced entry until its nonce is settled), whichever is mined settles the nonce.
        ctx.ledger->replaced(stuck.id, e->tx_hash);
    } catch (const std::exception& ex) {
        out.why = std::string("ledger cannot be written: ") + ex.what();
        if (refused) co_return out;
    }
    e->state = ledger::State::kSent;
    spdlog::warn("{}: tx {} (nonce {}) stuck; replaced by {} with fees raised to {} gwei{}", ctx.net.name, stuck.tx_hash,
                 stuck.nonce, e->tx_hash, format_units(fees->per_gas_cap(), 9),
                 sent.verdict == SendVerdict::kUnknown ? " (send result unknown: " + sent.why() + ")" : "");
    out.entry = std::move(*e);
    if (ctx.replaced) ctx.replaced();
    co_return out;
}

}  // namespace keymaster::chain::detail
