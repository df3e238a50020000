#include "report.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "keymaster/common/text.hpp"

namespace keymaster::cli {

using nlohmann::json;

metrics::AccountLabels labels_of(const funding::Account& a) {
    return {a.network, a.home, std::string(config::role_name(a.role)), a.address.checksummed()};
}

void add_burn(json& j, const funding::BurnRate* rate, const std::optional<Wei>& balance, unsigned decimals) {
    j["burnPerDay"] = rate ? json(format_units(rate->per_day, decimals)) : json(nullptr);
    const auto runway = rate && balance ? funding::runway_seconds(*balance, rate->per_day) : std::nullopt;
    j["runwaySeconds"] = runway ? json(*runway) : json(nullptr);
}

RoundView::RoundView(metrics::Metrics& metrics, const chain::Worker& worker, const Clock& clock)
    : metrics_(metrics), worker_(worker), clock_(clock) {
    series_.reserve(worker.accounts().size());
    for (const auto& a : worker.accounts()) series_.push_back(metrics_.account_series(labels_of(a)));
}

void RoundView::count(Fault f) { metrics_.error(worker_.network().name, std::string(fault_scope(f))); }

// Top-ups of earlier rounds (or runs) that settled now.
void RoundView::settled(const std::vector<ledger::Entry>& entries) {
    const auto& n = worker_.network();
    const auto& accounts = worker_.accounts();
    for (const auto& e : entries) {
        if (e.fee_paid > 0) metrics_.gas_spent(n.name, to_double(e.fee_paid, n.decimals));
        if (e.state == ledger::State::kDropped) continue;
        const auto it = std::find_if(accounts.begin(), accounts.end(),
                                     [&](const auto& a) { return a.address.checksummed() == e.recipient; });
        if (it == accounts.end()) continue;
        metrics_.topup(labels_of(*it), e.state == ledger::State::kConfirmed, to_double(e.amount, n.decimals), clock_.wall());
    }
}

void RoundView::account_gauges(const chain::RoundPlan& rp) {
    const auto& n = worker_.network();
    const auto& p = rp.plan;
    const auto& snap = p.snapshot;
    auto spent = rp.spent.begin();  // sparse, by index
    for (std::size_t i = 0; i < snap.accounts.size(); ++i) {
        const auto& a = snap.accounts[i];
        if (a.balance) {
            const auto levels = funding::levels_at(p, i);
            metrics::Metrics::AccountValues v;
            v.balance = to_double(*a.balance, n.decimals);
            v.threshold = to_double(levels.threshold, n.decimals);
            v.target = to_double(levels.target, n.decimals);
            if (spent != rp.spent.end() && spent->first == i) v.spent = to_double((spent++)->second, n.decimals);
            if (i < p.rates.size()) v.runway = funding::runway_seconds(*a.balance, p.rates[i].per_day);
            if (a.account.runway) v.runway_threshold = a.account.runway->threshold;
            v.held_back = !p.held_per_account.empty() && p.held_per_account.count(a.account.address);
            metrics_.update(series_.at(i), v);
            continue;
        }
        count(Fault::kBalance);
        spdlog::warn("{}: balance of {} {} unknown ({}): no decision this round", n.name, config::role_name(a.account.role),
                     a.account.address.checksummed(), a.error);
    }
}

// " (threshold 6h of 0.8 ETH/day, ...)" when a level came from burn.
std::string levels_note(const funding::TopUp& t, const config::Network& n) {
    const auto why = funding::describe_levels(t.account, t.levels, n.decimals, n.symbol);
    return why.empty() ? why : " (" + why + ")";
}

void RoundView::held_back(const funding::NetworkPlan& plan) {
    const auto& n = worker_.network();
    for (const auto& [b, why] : plan.blocked) {
        auto& last = limit_logged_[b.account.address];
        if (clock_.wall() - last < 3600) continue;  // once per account per hour
        last = clock_.wall();
        count(Fault::kLimit);
        spdlog::warn("{}: top-up of {} {} to {} {} held back: {}", n.name, format_units(b.amount, n.decimals), n.symbol,
                     config::role_name(b.account.role), b.account.address.checksummed(), why);
    }
}

void RoundView::prepared(const chain::RoundPlan& rp, double seconds) {
    const auto& n = worker_.network();
    const auto& snap = rp.plan.snapshot;
    for (const auto& line : rp.ledger_log) spdlog::info("{}: ledger: {}", n.name, line);
    settled(rp.settled);
    metrics_.poll(n.name, seconds, snap.reachable, clock_.wall());
    if (rp.reorged) metrics_.reorged(n.name, rp.reorged);
    if (rp.stale) metrics_.stale_read(n.name);
    if (const auto* problem = rp.blocking()) {
        last_error_ = problem->message;
        count(problem->fault);
        if (rp.fault() == Fault::kPoll || rp.fault() == Fault::kChainId) spdlog::error("{}: poll failed: {}", n.name, last_error_);
        else spdlog::error("{}: {}", n.name, last_error_);
    }
    if (!snap.reachable) return;
    if (!rp.blocking()) last_error_.clear();
    last_poll_ = clock_.wall();
    metrics_.block(n.name, static_cast<double>(snap.block));
    for (const auto& noted : rp.problems)  // burn, audit, gas: each in the order the steps met it
        if (!noted.blocks()) {
            count(noted.problem.fault);
            spdlog::error("{}: {}", n.name, noted.problem.message);
        }
    bank_view(rp);
    account_gauges(rp);
    mismatches(rp);
    last_.reset();
    last_.emplace(snap);
    last_bank_rate_ = rp.plan.bank_rate;
    if (chain::sends(rp.mode)) orphan_banks_ = rp.orphan_banks;
    decisions(rp);
}

// The bank's gauges, its audit and whether it is low.
void RoundView::bank_view(const chain::RoundPlan& rp) {
    const auto& n = worker_.network();
    const auto& snap = rp.plan.snapshot;
    const auto bank = worker_.bank().checksummed();
    if (snap.bank_balance) metrics_.bank(n.name, bank, to_double(*snap.bank_balance, n.decimals));
    else count(Fault::kPoll);
    if (snap.bank_balance && rp.plan.bank_rate)
        metrics_.bank_runway(n.name, bank, funding::runway_seconds(*snap.bank_balance, rp.plan.bank_rate->per_day));
    if (!rp.unaccounted.empty()) {
        metrics_.unaccounted(n.name, rp.unaccounted.size());
        std::string nonces;
        for (auto k : rp.unaccounted) nonces += (nonces.empty() ? "" : ", ") + std::to_string(k);
        spdlog::error("{}: bank audit: the bank {} used nonce(s) {} for {} transaction(s) keymaster did not journal or "
                      "that took the place of its own (another process sharing the bank key, a leaked key, or a node "
                      "that executed bytes twice)",
                      n.name, bank, nonces, rp.unaccounted.size());
    }
    if (rp.unexplained > 0) {
        metrics_.unexplained(n.name, to_double(rp.unexplained, n.decimals));
        spdlog::error("{}: bank audit: the bank {} lost {} {} more than the amounts and fees of keymaster's mined "
                      "transactions since the last audit (a fee the ledger does not book, or a node that executed "
                      "bytes twice)",
                      n.name, bank, format_units(rp.unexplained, n.decimals), n.symbol);
    }
    if (n.bank_threshold) metrics_.bank_threshold(n.name, bank, to_double(*n.bank_threshold, n.decimals));
    if (funding::bank_low(n, snap)) {
        count(Fault::kBankLow);
        spdlog::warn("{}: bank {} holds {} {}, below bankThreshold {}", n.name, bank, format_units(*snap.bank_balance, n.decimals),
                     n.symbol, format_units(*n.bank_threshold, n.decimals));
    }
}

void RoundView::mismatches(const chain::RoundPlan& rp) {
    const auto& n = worker_.network();
    for (auto i : rp.mismatches) {
        const auto& a = rp.plan.snapshot.accounts[i];
        count(Fault::kBalanceMismatch);
        spdlog::error("{}: {} {} was topped up last round and has sent nothing since, but the endpoint reports {} {}, "
                      "less than our top-up left it: a lagging or lying endpoint?",
                      n.name, config::role_name(a.account.role), a.account.address.checksummed(),
                      format_units(*a.balance, n.decimals), n.symbol);
    }
}

// Who waits, who is topped up, what the limits held back, whether the bank covers it.
void RoundView::decisions(const chain::RoundPlan& rp) {
    const auto& n = worker_.network();
    const auto& p = rp.plan;
    for (const auto& w : p.waiting)
        spdlog::info("{}: {} {} below threshold, waiting for its earlier top-up to confirm", n.name,
                     config::role_name(w.account.role), w.account.address.checksummed());
    for (const auto& t : p.topups)
        spdlog::info("{}: {} {} (home {}) holds {} {}, below {}: top up {}{}{}", n.name, config::role_name(t.account.role),
                     t.account.address.checksummed(), t.account.home, format_units(t.balance, n.decimals), n.symbol,
                     format_units(t.levels.threshold, n.decimals), format_units(t.amount, n.decimals),
                     levels_note(t, n), chain::sends(rp.mode) ? "" : " (dry run: not sent)");
    if (rp.spend_remaining) metrics_.spend_remaining(n.name, to_double(*rp.spend_remaining, n.decimals));
    held_back(p);
    if (!p.topups.empty() && !p.covered && chain::sends(rp.mode)) {
        count(Fault::kBank);
        spdlog::warn("{}: bank cannot cover all top-ups this round ({} {} needed with fees)", n.name,
                     format_units(p.total + p.max_fee_cost, n.decimals), n.symbol);
    }
}

void RoundView::committed(const chain::RoundPlan&, const chain::RoundReport& report) {
    const auto& n = worker_.network();
    for (const auto& problem : report.problems) {
        count(problem.fault);
        spdlog::error("{}: {}", n.name, problem.message);
    }
    for (const auto& oc : report.outcomes) {
        const auto l = labels_of(oc.topup.account);
        const std::string amount = format_units(oc.topup.amount, n.decimals);
        if (oc.fee_paid > 0) metrics_.gas_spent(n.name, to_double(oc.fee_paid, n.decimals));
        if (oc.state == chain::Outcome::State::kSent) {  // unconfirmed at the deadline: a later Round settles it
            spdlog::warn("{}: top-up of {} {} to {} {}: {}", n.name, amount, n.symbol, l.role, l.address, oc.error);
            last_topup_[oc.topup.account.address] = LastTopUp{clock_.wall(), amount, oc.tx_hash, "pending"};
            continue;
        }
        metrics_.topup(l, oc.ok(), to_double(oc.topup.amount, n.decimals), clock_.wall());
        if (oc.unrecorded) count(Fault::kLedger);
        if (!oc.ok()) {
            const Fault f = oc.fault == Fault::kNone ? Fault::kTopUp : oc.fault;
            count(f);
            if (fault_scope(f) != fault_scope(Fault::kTopUp)) count(Fault::kTopUp);  // a failed top-up, whatever the cause
            spdlog::error("{}: top-up of {} {} to {} {} failed: {}", n.name, amount, n.symbol, l.role, l.address,
                          oc.unrecorded ? "sent, but the ledger cannot record it (the next round settles it)" : oc.error);
        }
        last_topup_[oc.topup.account.address] = LastTopUp{clock_.wall(), amount, oc.tx_hash, oc.ok() ? "success" : oc.error};
    }
}

void RoundView::failed(const std::exception& e) {
    last_error_ = e.what();
    count(fault_of(e, Fault::kInternal));  // a RoundError that escaped keeps its own scope
    spdlog::error("{}: round failed: {}", worker_.network().name, e.what());
}

json RoundView::status() const {
    const auto& n = worker_.network();
    json jn = {{"name", n.name}, {"ready", worker_.ready()}, {"symbol", n.symbol},
               {"lastError", last_error_.empty() ? json(nullptr) : json(last_error_)},
               {"lastPoll", last_poll_ > 0 ? json(last_poll_) : json(nullptr)},
               {"bank", {{"address", worker_.bank().checksummed()}, {"balance", nullptr}}},
               {"accounts", json::array()}};
    if (n.chain_id) jn["chainId"] = *n.chain_id;
    jn["orphanBanks"] = orphan_banks_;  // banks no longer configured whose top-ups in flight this network reconciles
    if (last_) {
        jn["block"] = last_->block;
        if (last_->bank_balance) jn["bank"]["balance"] = format_units(*last_->bank_balance, n.decimals);
    }
    add_burn(jn["bank"], last_bank_rate_ ? &*last_bank_rate_ : nullptr, last_ ? last_->bank_balance : std::nullopt,
             n.decimals);
    const auto& accounts = worker_.accounts();
    const auto rates = last_ ? worker_.burn_rates() : std::vector<funding::BurnRate>{};
    for (std::size_t i = 0; i < accounts.size(); ++i) {
        const auto& a = accounts[i];
        const auto levels = i < rates.size() ? funding::levels(a, rates[i]) : funding::Levels{a.threshold, a.target};
        json ja = {{"home", a.home}, {"role", std::string(config::role_name(a.role))}, {"address", a.address.checksummed()},
                   {"threshold", format_units(levels.threshold, n.decimals)}, {"target", format_units(levels.target, n.decimals)},
                   {"balance", nullptr}, {"lastError", nullptr}, {"lastTopUp", nullptr}};
        // The snapshot lists the worker's accounts in the same order: no search per account.
        std::optional<Wei> balance;
        if (last_ && i < last_->accounts.size()) {
            const auto& s = last_->accounts[i];
            balance = s.balance;
            if (s.balance) ja["balance"] = format_units(*s.balance, n.decimals);
            else ja["lastError"] = s.error;
        }
        add_burn(ja, i < rates.size() ? &rates[i] : nullptr, balance, n.decimals);
        const auto why = funding::describe_levels(a, levels, n.decimals, n.symbol);
        if (!why.empty()) ja["levelsFrom"] = why;
        if (auto it = last_topup_.find(a.address); it != last_topup_.end())
            ja["lastTopUp"] = {{"time", it->second.time}, {"amount", it->second.amount}, {"tx", it->second.tx},
                               {"result", it->second.result}};
        jn["accounts"].push_back(std::move(ja));
    }
    return jn;
}

void RoundView::forget_unless(const std::set<std::pair<std::string, eth::Address>>& keep,
                              const std::optional<eth::Address>& new_bank) {
    const auto& n = worker_.network();
    for (const auto& a : worker_.accounts())
        if (!keep.count({a.network, a.address})) metrics_.forget_account(labels_of(a));
    if (!new_bank || *new_bank != worker_.bank()) metrics_.forget_bank(n.name, worker_.bank().checksummed());
}

}  // namespace keymaster::cli
