#include <spdlog/spdlog.h>

#include "keymaster/signer/signer.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

using funding::Fees;
using funding::NetworkPlan;
namespace {

namespace net = boost::asio;

std::vector<Payment> payments_of(const RoundPlan& plan) {
    std::vector<Payment> out;
    out.reserve(plan.plan.topups.size());
    for (const auto& t : plan.plan.topups) {
        Payment p;
        p.outcome.topup = t;
        out.push_back(std::move(p));
    }
    return out;
}

// Fails every payment not yet sent (nor failed) from `from` on.
void fail_unsent(std::vector<Payment>& payments, std::size_t from, const Problem& p) {
    for (std::size_t i = from; i < payments.size(); ++i)
        if (payments[i].outcome.state == Outcome::State::kNotSent) payments[i].fail(p);
}

// Nonces are assigned here: each payment the bank's balance covers (amount plus the most the fees
// can cost) gets a transaction, with consecutive nonces from the plan's first.
void choose(const Context& ctx, const RoundPlan& plan, std::vector<Payment>& payments) {
    const auto& snap = plan.plan.snapshot;
    const Fees& fees = *plan.plan.fees;
    std::uint64_t nonce = plan.first_nonce;
    // What our unresolved transactions may still take leaves the bank first.
    Wei available = *snap.bank_balance > plan.in_flight ? *snap.bank_balance - plan.in_flight : Wei(0);
    for (auto& p : payments) {
        const auto& t = p.outcome.topup;
        if (t.gas_limit == 0) {
            p.fail(Fault::kTopUp, "gas estimation failed for this recipient");
            continue;
        }
        const Wei cost = t.amount + funding::max_fee(plan.plan, t);
        if (cost > available) {
            p.fail(Fault::kTopUp,
                   "bank balance too low (" + format_units(available, ctx.net.decimals) + " " + ctx.net.symbol + " left)");
            continue;
        }
        p.tx = build_tx(fees, snap.chain_id, nonce++, t.account.address, t.amount, t.gas_limit);
        available -= cost;
    }
}

// The chosen payments in nonce order, signed, up to the first signature that failed (a later nonce
// without it would be a gap): each gets its entry (not yet journaled). Returns the signed ones.
net::awaitable<std::vector<Payment*>> sign(Context& ctx, const RoundPlan& plan, std::vector<Payment>& payments) {
    std::vector<ToSign> jobs;
    for (auto& p : payments)
        if (p.tx) jobs.push_back({&*p.tx, &p.signature});
    co_await sign_in_order(ctx.signer, std::move(jobs));
    std::vector<Payment*> signed_ones;
    for (auto& p : payments) {
        if (!p.tx) continue;
        if (!p.signature || !*p.signature) {
            p.fail(Fault::kSigning, "signing failed: " + (p.signature ? p.signature->error().message
                                                                      : std::string("not signed after an earlier failure")));
            spdlog::error("{}: {}", ctx.net.name, p.outcome.error);
            fail_unsent(payments, static_cast<std::size_t>(&p - payments.data()) + 1,
                        Problem{Fault::kSigning, "not sent: signing failed for an earlier top-up"});
            break;
        }
        const auto& t = p.outcome.topup;
        p.entries.push_back(entry_of(ctx, *p.tx, eth::encode_signed(*p.tx, **p.signature), t.account.home,
                                     std::string(config::role_name(t.account.role)), plan.plan.snapshot.block));
        p.outcome.tx_hash = p.entries.back().tx_hash;
        p.outcome.nonce = p.tx->nonce;
        signed_ones.push_back(&p);
    }
    co_return signed_ones;
}

// Durable before broadcast: every signed payment's entry in one ledger transaction (one sync).
net::awaitable<bool> journal_all(Context& ctx, const std::vector<Payment*>& signed_ones) {
    std::vector<ledger::Entry*> entries;
    for (auto* p : signed_ones) entries.push_back(&p->entries.back());
    if (auto problem = co_await journal(ctx, entries)) {
        spdlog::error("{}: {}", ctx.net.name, problem->message);
        for (auto* p : signed_ones) {
            p->fail(*problem);
            p->outcome.tx_hash.clear();
            p->entries.clear();
        }
        co_return false;
    }
    for (auto* p : signed_ones) p->outcome.ledger_id = p->entries.back().id;
    co_return true;
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

// What a send verdict makes of a payment: held and unknown are watched; a proven refusal is final.
// An unknown result is never a failure.
void apply_verdict(Payment& p, const Sent& s) {
    switch (s.verdict) {
        case SendVerdict::kHeld: p.outcome.state = Outcome::State::kSent; return;
        case SendVerdict::kUnknown:
            p.outcome.state = Outcome::State::kSent;
            p.outcome.error = "send result unknown: " + s.why();
            return;
        case SendVerdict::kFailed:
            p.fail(Fault::kTopUp, "node refused the transaction: " + s.why());
            return;
    }
}

// The broadcast's verdicts, in the ledger (one transaction) and in the payments.
net::awaitable<StepReport> record_sends(Context& ctx, const std::vector<Payment*>& sent_ones) {
    StepReport report;
    try {
        co_await ctx.in_ledger([&] {
            ctx.ledger->atomically([&] {
                for (const auto* p : sent_ones) record_send(ctx, p->entries.back(), p->sent, SendKind::kFirst);
            });
        });
    } catch (const std::exception& ex) {
        // The transactions are out; their entries stay `intent` and reconcile settles them.
        spdlog::error("{}: ledger cannot be written after the broadcast ({}); reconcile will settle it", ctx.net.name, ex.what());
        report.problems.push_back(problem_of(ex, Fault::kLedger, "send results not recorded"));
        for (auto* p : sent_ones) p->outcome.unrecorded = true;
    }
    for (auto* p : sent_ones) {
        log_sent(ctx, p->outcome, p->sent);
        apply_verdict(*p, p->sent);
    }
    co_return report;
}

// Sign, journal, broadcast, record, fill gaps: the payments' first send.
net::awaitable<StepReport> send_payments(Context& ctx, const RoundPlan& plan, std::vector<Payment>& payments) {
    const auto& p = plan.plan;
    choose(ctx, plan, payments);
    const auto signed_ones = co_await sign(ctx, plan, payments);
    if (signed_ones.empty() || !(co_await journal_all(ctx, signed_ones))) co_return StepReport{};
    std::vector<Outgoing> out;
    for (auto* s : signed_ones) out.push_back({&s->entries.back(), &s->sent});
    co_await broadcast(ctx, out);
    auto report = co_await record_sends(ctx, signed_ones);
    report += co_await fill_gaps(ctx, *p.fees, p.snapshot.chain_id, p.snapshot.block, gap_nonces(out));
    co_return report;
}

std::string join_nonces(const std::vector<std::uint64_t>& nonces) {
    std::string out;
    for (auto n : nonces) out += (out.empty() ? "" : ", ") + std::to_string(n);
    return out;
}

// Why no payment can be sent at all, if so.
std::optional<Problem> cannot_send(const NetworkPlan& p) {
    if (!p.fees) return p.fee_problem.value_or(Problem{Fault::kFees, "no fee information"});
    if (!p.snapshot.bank_nonce || !p.snapshot.bank_balance) return Problem{Fault::kPoll, "bank nonce or balance unknown"};
    return std::nullopt;
}

}  // namespace

net::awaitable<RoundReport> commit_round(Context& ctx, const RoundPlan& plan, const CommitOptions& opt) {
    auto payments = payments_of(plan);
    const auto block = ctx.block_at_least(plan.plan.snapshot.block);
    StepReport steps = co_await resolve_pending(ctx, plan.pending, block);
    if (!plan.gaps.empty() && plan.plan.fees) {  // every Round, whatever became of an earlier filler
        spdlog::warn("{}: nonce(s) {} hold ours back: filling them", ctx.net.name, join_nonces(plan.gaps));
        steps += co_await fill_gaps(ctx, *plan.plan.fees, plan.plan.snapshot.chain_id, block, plan.gaps);
    }
    if (!payments.empty()) {
        if (const auto problem = cannot_send(plan.plan)) fail_unsent(payments, 0, *problem);
        else {
            steps += co_await send_payments(ctx, plan, payments);
            steps += co_await watch_receipts(ctx, payments, opt);
        }
    }
    RoundReport report;
    report.replacements = steps.replacements;
    report.problems = std::move(steps.problems);
    for (auto& p : payments) report.outcomes.push_back(std::move(p.outcome));
    co_return report;
}

}  // namespace keymaster::chain::detail
