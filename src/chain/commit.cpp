#include <spdlog/spdlog.h>

#include "keymaster/signer/signer.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {
namespace {

namespace net = boost::asio;

void fail(Outcome& o, Fault f, std::string why) {
    o.state = Outcome::State::kFailed;
    o.fault = f;
    o.error = std::move(why);
}

void fail_unsent(std::vector<Outcome>& out, std::size_t from, Fault f, const std::string& why) {
    for (std::size_t i = from; i < out.size(); ++i)
        if (out[i].state == Outcome::State::kNotSent) fail(out[i], f, why);
}

// The top-ups that get a transaction, with consecutive nonces from the plan's first, as far as
// the bank's balance goes (amount plus the most the fees can cost).
struct Chosen {
    std::vector<std::size_t> outcome;  //!< index into the outcomes
    std::vector<eth::Transaction> txs;
};

Chosen choose(const Context& ctx, const RoundPlan& plan, std::vector<Outcome>& out) {
    const auto& snap = plan.plan.snapshot;
    const Fees& fees = *plan.plan.fees;
    Chosen c;
    std::uint64_t nonce = plan.first_nonce;
    Wei available = *snap.bank_balance;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto& t = out[i].topup;
        if (t.gas_limit == 0) {
            fail(out[i], Fault::kTopUp, "gas estimation failed for this recipient");
            continue;
        }
        const Wei cost = t.amount + Wei(t.gas_limit) * fees.per_gas_cap();
        if (cost > available) {
            fail(out[i], Fault::kTopUp,
                 "bank balance too low (" + format_units(available, ctx.net.decimals) + " " + ctx.net.symbol + " left)");
            continue;
        }
        c.outcome.push_back(i);
        c.txs.push_back(build_tx(fees, snap.chain_id, nonce++, t.account.address, t.amount, t.gas_limit));
        available -= cost;
    }
    return c;
}

// Signed entries in nonce order, up to the first signature that failed: a later nonce without it
// would be a gap.
net::awaitable<std::vector<ledger::Entry>> sign(Context& ctx, const RoundPlan& plan, const Chosen& c, std::vector<Outcome>& out) {
    const auto sigs = co_await sign_in_order(ctx.signer, c.txs);
    std::vector<ledger::Entry> entries;
    for (std::size_t j = 0; j < c.outcome.size(); ++j) {
        auto& o = out[c.outcome[j]];
        if (j >= sigs.size() || !sigs[j]) {
            fail(o, Fault::kSigning,
                 "signing failed: " + (j < sigs.size() ? sigs[j].error() : std::string("not signed after an earlier failure")));
            spdlog::error("{}: {}", ctx.net.name, o.error);
            fail_unsent(out, c.outcome[j] + 1, Fault::kSigning, "not sent: signing failed for an earlier top-up");
            break;
        }
        const auto& t = o.topup;
        entries.push_back(entry_of(ctx, c.txs[j], eth::encode_signed(c.txs[j], *sigs[j]), t.account.home,
                                   std::string(config::role_name(t.account.role)), plan.plan.snapshot.block));
        o.tx_hash = entries.back().tx_hash;
        o.nonce = c.txs[j].nonce;
    }
    co_return entries;
}

// Durable before broadcast: every entry in one ledger transaction (one sync).
bool journal(Context& ctx, std::vector<ledger::Entry>& entries, const std::vector<std::size_t>& order, std::vector<Outcome>& out) {
    try {
        ctx.ledger->atomically([&] {
            for (auto& e : entries) {
                e.id = ctx.ledger->record_intent(e);
                e.created = ctx.now();
            }
        });
    } catch (const std::exception& ex) {
        const std::string why = std::string("ledger cannot be written, not sent: ") + ex.what();
        spdlog::error("{}: {}", ctx.net.name, why);
        for (auto i : order) {
            fail(out[i], Fault::kLedger, why);
            out[i].tx_hash.clear();
        }
        return false;
    }
    for (std::size_t k = 0; k < order.size(); ++k) out[order[k]].ledger_id = entries[k].id;
    return true;
}

void log_sent(const Context& ctx, const Outcome& o, const Sent& s) {
    const auto& a = o.topup.account;
    const auto role = config::role_name(a.role);
    if (s.verdict == SendVerdict::kHeld)
        spdlog::info("{}: sent {} {} to {} {} (home {}), nonce {}, tx {}{}", ctx.net.name,
                     format_units(o.topup.amount, ctx.net.decimals), ctx.net.symbol, role, a.address.checksummed(), a.home,
                     o.nonce, o.tx_hash, s.hint == SendHint::kHash ? "" : " (" + s.why() + ")");
    else if (s.verdict == SendVerdict::kUnknown)
        spdlog::warn("{}: top-up to {} {}: send result unknown, tx {}: {}; it stays sent for reconcile", ctx.net.name, role,
                     a.address.checksummed(), o.tx_hash, s.why());
    else
        spdlog::error("{}: top-up to {} {} refused: {}", ctx.net.name, role, a.address.checksummed(), s.why());
}

// Held and unknown are watched; a proven refusal is final. An unknown result is never a failure.
void record_sends(Context& ctx, const std::vector<ledger::Entry>& entries, const std::vector<std::size_t>& order,
                  const std::vector<Sent>& sent, std::vector<Outcome>& out, RoundReport& report) {
    try {
        ctx.ledger->atomically([&] {
            for (std::size_t k = 0; k < order.size(); ++k) record_send(ctx, entries[k].id, sent[k]);
        });
    } catch (const std::exception& ex) {
        // The transactions are out; their entries stay `intent` and reconcile settles them.
        spdlog::error("{}: ledger cannot be written after the broadcast ({}); reconcile will settle it", ctx.net.name, ex.what());
        report.faults.emplace_back(Fault::kLedger, std::string("send results not recorded: ") + ex.what());
        for (auto i : order) out[i].unrecorded = true;
    }
    for (std::size_t k = 0; k < order.size(); ++k) {
        auto& o = out[order[k]];
        log_sent(ctx, o, sent[k]);
        switch (sent[k].verdict) {
            case SendVerdict::kHeld: o.state = Outcome::State::kSent; break;
            case SendVerdict::kUnknown:
                o.state = Outcome::State::kSent;
                o.error = "send result unknown: " + sent[k].why();
                break;
            case SendVerdict::kFailed: fail(o, Fault::kTopUp, "node refused the transaction: " + sent[k].why()); break;
        }
    }
}

}  // namespace

net::awaitable<RoundReport> commit_round(Context& ctx, const RoundPlan& plan, const CommitOptions& opt) {
    RoundReport report;
    const auto& p = plan.plan;
    for (const auto& t : p.topups) {
        Outcome o;
        o.topup = t;
        report.outcomes.push_back(std::move(o));
    }
    auto& out = report.outcomes;
    co_await resolve_pending(ctx, plan.pending, p.snapshot.block, report);
    if (out.empty()) co_return report;
    if (!p.fees) {
        fail_unsent(out, 0, Fault::kFees, p.fee_error.empty() ? "no fee information" : p.fee_error);
        co_return report;
    }
    if (!p.snapshot.bank_nonce || !p.snapshot.bank_balance) {
        fail_unsent(out, 0, Fault::kPoll, "bank nonce or balance unknown");
        co_return report;
    }
    const auto chosen = choose(ctx, plan, out);
    auto entries = co_await sign(ctx, plan, chosen, out);
    std::vector<std::size_t> order(chosen.outcome.begin(), chosen.outcome.begin() + static_cast<long>(entries.size()));
    if (entries.empty() || !journal(ctx, entries, order, out)) co_return report;

    const auto sent = co_await broadcast(ctx, entries);
    record_sends(ctx, entries, order, sent, out, report);
    co_await fill_gaps(ctx, *p.fees, p.snapshot.chain_id, p.snapshot.block, gap_nonces(sent, entries), report);

    std::vector<std::vector<ledger::Entry>> watched(out.size());
    for (std::size_t k = 0; k < order.size(); ++k)
        if (out[order[k]].state == Outcome::State::kSent) watched[order[k]].push_back(entries[k]);
    co_await watch_receipts(ctx, out, watched, opt, report);
    co_return report;
}

}  // namespace keymaster::chain::detail
