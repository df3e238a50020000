// Step 5 of prepare: the plan, from what the steps before found (no I/O).
#include "keymaster/funding/fees.hpp"
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

namespace {

// Balances that could mislead decide nothing: every one of a stale poll, and those the endpoint
// contradicts itself about (a top-up of ours it does not show) or could not be checked on.
void hold_misleading(RoundPlan& rp, std::uint64_t newest_seen) {
    if (rp.stale) {
        funding::hold_unknown(rp.plan, {},
                              "stale view: block " + std::to_string(rp.plan.snapshot.block) + ", block " +
                                  std::to_string(newest_seen) + " already seen");
        return;
    }
    std::set<eth::Address> contradicted, unverified;
    for (auto i : rp.mismatches) contradicted.insert(rp.plan.snapshot.accounts[i].account.address);
    for (auto i : rp.unverified) unverified.insert(rp.plan.snapshot.accounts[i].account.address);
    if (!contradicted.empty())
        funding::hold_unknown(rp.plan, contradicted,
                              "the endpoint does not show our confirmed top-up: no second one");
    if (!unverified.empty())
        funding::hold_unknown(
            rp.plan, unverified,
            "our confirmed top-up could not be checked against the endpoint: no second one");
}

// The first nonce commit uses, the nonce gaps below our highest unresolved one, and the fees and
// cost of their fillers.
void nonces(RoundPlan& rp, const config::Network& net, const LedgerView& view) {
    const auto& s = rp.plan.snapshot;
    // The next nonce: past every transaction the node holds, every one mined, and ours.
    rp.first_nonce =
        std::max({s.bank_nonce.value_or(0), s.bank_latest_nonce.value_or(0), view.next_nonce.value_or(0)});
    if (!rp.stale && s.bank_nonce)
        rp.gaps = funding::nonce_gaps(std::max(*s.bank_nonce, s.bank_latest_nonce.value_or(0)), view.nonces);
    if (!rp.gaps.empty() && !rp.plan.fees &&
        !rp.plan.fee_problem) {  // a filler needs fees even with no top-up
        if (auto fees = funding::choose_fees(s, net))
            rp.plan.fees = *fees;
        else
            rp.plan.fee_problem = fees.error();
    }
    if (rp.plan.fees)  // the fillers commit will send: their fees leave the bank too
        rp.in_flight += Wei(rp.gaps.size()) * Wei(21000) * rp.plan.fees->per_gas_cap();
}

}  // namespace

void decide(RoundPlan& rp, const config::Network& net, Findings in) {
    rp.plan = funding::make_plan(std::move(in.snap), net, in.view.busy, std::move(in.rates));
    rp.plan.bank_rate = in.bank_rate;
    rp.pending = std::move(in.view.pending);
    rp.reorged = in.view.reorged;
    rp.orphan_banks = std::move(in.view.orphans);
    rp.in_flight = funding::in_flight_total(in.view.in_flight);
    hold_misleading(rp, in.newest_seen);
    nonces(rp, net, in.view);
}

}  // namespace keymaster::chain::detail
