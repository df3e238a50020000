#include "commands.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>

#include "keymaster/chain/leadership.hpp"
#include "keymaster/chain/ledger_thread.hpp"
#include "keymaster/chain/round.hpp"
#include "keymaster/cli/app.hpp"
#include "keymaster/cli/output.hpp"
#include "keymaster/config/secrets.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "keymaster/rpc/client.hpp"
#include "loading.hpp"
#include "report.hpp"
#include "run_sync.hpp"

namespace keymaster::cli {
namespace {

namespace net = boost::asio;
using nlohmann::json;

void print_error(const std::string& line) { std::cerr << line << "\n"; }

std::string amount_str(const Wei& w, const config::Network& n) { return format_units(w, n.decimals); }

std::string opt_amount(const std::optional<Wei>& w, const config::Network& n) {
    return w ? amount_str(*w, n) : "unknown";
}

// A one-off command's engine: one io_context (its only event loop), one Worker per selected network.
struct Session {
    explicit Session(const Clock& c) : clock(c) {}
    const Clock& clock;  // main's: the Workers', the ledger thread's
    net::io_context io;
    std::unique_ptr<chain::LedgerThread> thread;  // the ledger's calls, off the loop (the polls go on meanwhile)
    std::vector<std::unique_ptr<chain::Worker>> workers;

    void open(const Loaded& l, ledger::Ledger* ledger) {
        if (ledger)
            thread = std::make_unique<chain::LedgerThread>(*ledger, clock);
        for (const auto* n : l.selected)
            workers.push_back(std::make_unique<chain::Worker>(io.get_executor(), *n, l.signers.at(n->name),
                                                              l.accounts.at(n->name), ledger, rpc::RpcObserver{}, clock));
        for (auto& w : workers) {
            w->set_configured_banks(bank_addresses(l));
            w->set_ledger_thread(thread.get());
        }
    }

    // Runs `work` for every network at once (run_all); results in network order.
    template <typename T>
    std::vector<T> each(const std::function<net::awaitable<T>(chain::Worker&)>& work) {
        std::vector<net::awaitable<T>> tasks;
        tasks.reserve(workers.size());
        for (auto& w : workers) tasks.push_back(work(*w));
        return run_all(io, std::move(tasks));
    }

    std::vector<chain::RoundPlan> prepare(chain::Mode mode) {
        return each<chain::RoundPlan>([mode](chain::Worker& w) { return w.prepare(mode); });
    }
};

void print_network_header(std::ostream& os, const config::Network& n, const funding::NetworkSnapshot& s) {
    if (!s.reachable) {
        os << n.name << ": UNREACHABLE: " << s.error << "\n";
        return;
    }
    os << n.name << ": chain " << s.chain_id << ", block " << s.block << ", "
       << (s.base_fee ? "EIP-1559 (base fee " + format_units(*s.base_fee, 9) + " gwei)" : std::string("legacy gas price"))
       << "\n  bank " << s.bank.checksummed() << ": " << opt_amount(s.bank_balance, n) << " " << n.symbol << "\n";
    if (funding::bank_low(n, s))
        os << "  WARNING: bank balance is below bankThreshold " << amount_str(*n.bank_threshold, n) << " " << n.symbol << "\n";
}

// Account i of a plan at its effective levels, with its burn.
json account_json(const funding::NetworkPlan& p, std::size_t i, const config::Network& n) {
    const auto& a = p.snapshot.accounts[i];
    const auto levels = funding::levels_at(p, i);
    const auto d = funding::decide(levels, a.balance);
    json j = {{"network", a.account.network},
              {"home", a.account.home},
              {"role", std::string(config::role_name(a.account.role))},
              {"address", a.account.address.checksummed()},
              {"threshold", amount_str(levels.threshold, n)},
              {"target", amount_str(levels.target, n)},
              {"thresholdWei", levels.threshold.str()},
              {"targetWei", levels.target.str()}};
    if (a.balance) {
        j["balance"] = amount_str(*a.balance, n);
        j["balanceWei"] = a.balance->str();
        j["topUp"] = amount_str(d.amount, n);
        j["topUpWei"] = d.amount.str();
    } else {
        j["balance"] = nullptr;
        j["error"] = a.error;
    }
    add_burn(j, i < p.rates.size() ? &p.rates[i] : nullptr, a.balance, n.decimals);
    const auto why = funding::describe_levels(a.account, levels, n.decimals, n.symbol);
    if (!why.empty()) j["levelsFrom"] = why;
    return j;
}

// "0.8" per day, "-" without history; "12h", "inf" (nothing spent), "?" (balance unknown).
std::string burn_cell(const funding::NetworkPlan& p, std::size_t i, const config::Network& n) {
    return i < p.rates.size() && p.rates[i].covered > 0 ? amount_str(p.rates[i].per_day, n) : "-";
}

std::string runway_cell(const std::optional<Wei>& balance, const funding::BurnRate* rate) {
    if (!balance) return "?";
    if (!rate || rate->covered <= 0) return "-";
    const auto r = funding::runway_seconds(*balance, rate->per_day);
    if (!r) return "inf";
    return format_runway(*r);
}

// Every account, at its effective levels, with its burn (status sorts nothing away).
void print_accounts(const funding::NetworkPlan& p, const config::Network& n) {
    if (!p.snapshot.reachable) return;
    Table t({"ROLE", "HOME", "ADDRESS", "BALANCE", "THRESHOLD", "TARGET", "BURN/DAY", "RUNWAY", "TOP-UP"},
            {false, false, false, true, true, true, true, true, true});
    std::vector<std::string> notes;
    for (std::size_t i = 0; i < p.snapshot.accounts.size(); ++i) {
        const auto& a = p.snapshot.accounts[i];
        const auto levels = funding::levels_at(p, i);
        const auto d = funding::decide(levels, a.balance);
        t.add({std::string(config::role_name(a.account.role)), a.account.home, a.account.address.checksummed(),
               a.balance ? amount_str(*a.balance, n) : "unknown", amount_str(levels.threshold, n), amount_str(levels.target, n),
               burn_cell(p, i, n), runway_cell(a.balance, i < p.rates.size() ? &p.rates[i] : nullptr),
               d.action == funding::Action::kTopUp ? amount_str(d.amount, n)
               : d.action == funding::Action::kUnknown ? "?" : "-"});
        const auto why = funding::describe_levels(a.account, levels, n.decimals, n.symbol);
        if (!why.empty()) notes.push_back(a.account.address.checksummed() + ": " + why);
    }
    t.print(std::cout);
    for (const auto& note : notes) std::cout << "  " << note << "\n";
}

}  // namespace

int cmd_validate(const GlobalOptions& g) {
    auto l = run_sync(load_all(g, {}, print_error));
    if (!l) return kExitUsage;
    std::cout << g.config << ": OK, " << l->cfg.networks.size() << " network(s)\n";
    Table t({"NETWORK", "ENDPOINTS", "BANK", "THRESHOLD", "ACCOUNTS", "REPLICAS"}, {false, true, false, true, true, false});
    std::size_t total = 0;
    for (const auto& n : l->cfg.networks) {
        const auto& accs = *l->accounts.at(n.name);
        total += accs.size();
        std::string reps;
        for (const auto& r : n.replicas) reps += (reps.empty() ? "" : ",") + r;
        t.add({n.name, std::to_string(n.endpoints.size()), l->banks.at(n.name).checksummed(),
               amount_str(n.threshold, n) + " " + n.symbol, std::to_string(accs.size()), reps.empty() ? "-" : reps});
    }
    t.print(std::cout);
    std::cout << total << " funded account(s) in all\n";
    return kExitOk;
}

int cmd_address(const std::string& key_env, const std::string& key_file) {
    auto key = key_env.empty() ? config::read_key_file(key_file) : config::read_key_env(key_env, config::process_env());
    if (!key) {
        std::cerr << "keymaster address: " << key.error().message << "\n";
        return fault_exit_code(key.error().fault);
    }
    std::cout << eth::Address::from_public_key(key->public_key()).checksummed() << "\n";
    return kExitOk;
}

int cmd_status(const GlobalOptions& g, const std::vector<std::string>& networks, bool as_json) {
    Session s(*g.clock);
    auto l = run_on(s.io, load_all(g, networks, print_error));
    if (!l) return kExitUsage;
    // The burn history, read beside a running daemon without its lock (as history does); no
    // ledger yet: no history, and none is created.
    auto opened = open_ledger(g, LedgerUse::kIfExists);
    if (opened.has_error() && opened.error().fault == Fault::kConfig) {
        std::cerr << "keymaster status: " << opened.error().message << "\n";
        return fault_exit_code(Fault::kConfig);
    }
    if (opened.has_error()) std::cerr << "keymaster status: no burn history: " << opened.error().message << "\n";
    std::unique_ptr<ledger::Ledger> history = opened ? std::move(*opened) : nullptr;
    s.open(*l, history.get());
    const auto plans = s.prepare(chain::Mode::kStatus);
    int exit_code = kExitOk;
    json out = {{"networks", json::array()}};
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const auto& n = *l->selected[i];
        const auto& p = plans[i].plan;
        const auto& snap = p.snapshot;
        exit_code = std::max(exit_code, fault_exit_code(plans[i].fault()));
        if (const auto* burn = plans[i].first(chain::RoundProblem::Kind::kBurn)) std::cerr << n.name << ": " << burn->message << "\n";
        if (as_json) {
            json jn = {{"name", n.name}, {"reachable", snap.reachable}, {"symbol", n.symbol},
                       {"bank", {{"address", snap.bank.checksummed()}}}, {"accounts", json::array()}};
            if (snap.reachable) {
                jn["chainId"] = snap.chain_id;
                jn["block"] = snap.block;
                jn["bank"]["balance"] = snap.bank_balance ? json(amount_str(*snap.bank_balance, n)) : json(nullptr);
                jn["bank"]["balanceWei"] = snap.bank_balance ? json(snap.bank_balance->str()) : json(nullptr);
            } else {
                jn["error"] = snap.error;
            }
            add_burn(jn["bank"], p.bank_rate ? &*p.bank_rate : nullptr, snap.bank_balance, n.decimals);
            for (std::size_t k = 0; k < snap.accounts.size(); ++k) jn["accounts"].push_back(account_json(p, k, n));
            out["networks"].push_back(jn);
            continue;
        }
        print_network_header(std::cout, n, snap);
        if (snap.reachable && p.bank_rate)
            std::cout << "  bank pays " << amount_str(p.bank_rate->per_day, n) << " " << n.symbol << "/day, runway "
                      << runway_cell(snap.bank_balance, &*p.bank_rate) << "\n";
        print_accounts(p, n);
        std::cout << "\n";
    }
    if (as_json) std::cout << out.dump(2) << "\n";
    return exit_code;
}

namespace {

std::string_view pending_verb(chain::PendingAction::Kind k) {
    switch (k) {
        case chain::PendingAction::Kind::kRebroadcast: return "send again";
        case chain::PendingAction::Kind::kReplace: return "replace with higher fees";
        case chain::PendingAction::Kind::kWait: return "wait";
    }
    return "wait";
}

// What the bank audit found, if anything.
void print_audit(const config::Network& n, const chain::RoundPlan& rp) {
    if (const auto* problem = rp.first(chain::RoundProblem::Kind::kAudit)) std::cout << "  " << problem->message << "\n";
    if (!rp.unaccounted.empty()) {
        std::cout << "  BANK AUDIT: nonce(s)";
        for (auto k : rp.unaccounted) std::cout << " " << k;
        std::cout << " used by transactions keymaster did not journal (another process sharing the bank key, a "
                     "leaked key, or a node that executed bytes twice)\n";
    }
    if (rp.unexplained > 0)
        std::cout << "  BANK AUDIT: the bank lost " << amount_str(rp.unexplained, n) << " " << n.symbol
                  << " more than the amounts and fees of keymaster's mined transactions since the last audit\n";
}

// How an L2's own fees are budgeted in the plan: an OP Stack chain's L1 data and operator fees per
// transfer, Arbitrum's estimated gas limits.
void print_chain_fees(const config::Network& n, const funding::NetworkPlan& p) {
    if (p.fees && p.snapshot.op_fees) {
        const auto& op = *p.snapshot.op_fees;
        std::cout << "  OP Stack: each transfer's L1 data fee budgeted at "
                  << amount_str(funding::times_permille(op.l1_fee_bound, op.margin_permille), n) << " " << n.symbol
                  << " (the oracle's upper bound " << amount_str(op.l1_fee_bound, n) << " x l1FeeMargin "
                  << format_units(Wei(op.margin_permille), 3) << ")";
        if (op.operator_fee_base > 0 || op.operator_fee_per_mgas > 0)
            std::cout << ", plus the operator fee (" << amount_str(op.operator_fee_base, n) << " + "
                      << amount_str(op.operator_fee_per_mgas, n) << " per million gas)";
        std::cout << "; included above\n";
    }
    if (p.snapshot.l2 == funding::L2Kind::kArbitrum && !p.topups.empty()) {
        std::uint64_t lo = UINT64_MAX, hi = 0;
        for (const auto& t : p.topups) {
            lo = std::min(lo, t.gas_limit);
            hi = std::max(hi, t.gas_limit);
        }
        std::cout << "  Arbitrum: gas limits from eth_estimateGas x gasMargin " << format_units(Wei(n.gas_margin_permille), 3)
                  << ": " << lo << (hi != lo ? ".." + std::to_string(hi) : std::string()) << " gas\n";
    }
}

// What the ledger holds and reconcile did: changes, the bank audit, banks no longer configured,
// unresolved entries and what commit does with them.
void print_ledger(const config::Network& n, const chain::RoundPlan& rp) {
    for (const auto& line : rp.ledger_log) std::cout << "  ledger: " << line << "\n";
    print_audit(n, rp);
    for (const auto& bank : rp.orphan_banks)
        std::cout << "  bank " << bank << " is no longer configured: its unresolved top-ups on this chain are reconciled "
                  << "here (settled, sent again as they are, never replaced); their accounts wait\n";
    for (const auto& a : rp.pending)
        std::cout << "  unresolved in the ledger: tx " << a.entry.tx_hash << " (nonce " << a.entry.nonce << ", "
                  << amount_str(a.entry.amount, n) << " " << n.symbol << " to " << a.entry.role << " " << a.entry.recipient
                  << "): " << a.note << "; on commit: " << pending_verb(a.kind) << "\n";
}

// The plan of one network; the Fault of its worst problem (kNone: none worth a non-zero exit).
Fault print_plan(const config::Network& n, const chain::RoundPlan& rp) {
    const auto& p = rp.plan;
    print_network_header(std::cout, n, p.snapshot);
    Fault worst = rp.fault();
    if (rp.blocking() && p.snapshot.reachable) std::cout << "  CANNOT SEND: " << rp.blocking()->message << "\n";
    if (!p.snapshot.reachable || rp.blocking()) {
        std::cout << "\n";
        return worst;
    }
    print_ledger(n, rp);
    for (const auto& [b, why] : p.blocked) {
        worst = worse(worst, Fault::kLimit);
        std::cout << "  held back: " << amount_str(b.amount, n) << " " << n.symbol << " to " << config::role_name(b.account.role)
                  << " " << b.account.address.checksummed() << ": " << why << "\n";
    }
    for (const auto& w : p.waiting)
        std::cout << "  waiting for an earlier top-up of " << config::role_name(w.account.role) << " "
                  << w.account.address.checksummed() << " to confirm: no second one\n";
    for (const auto& u : p.unknown) {
        worst = worse(worst, Fault::kBalance);
        std::cout << "  balance unknown for " << config::role_name(u.account.role) << " " << u.account.address.checksummed()
                  << " (" << u.error << "): no decision this round\n";
    }
    if (p.topups.empty()) {
        std::cout << "  nothing to top up (" << p.snapshot.accounts.size() << " account(s) at or above threshold)\n\n";
        return worst;
    }
    Table t({"ROLE", "HOME", "ADDRESS", "BALANCE", "THRESHOLD", "TARGET", "TOP-UP"}, {false, false, false, true, true, true, true});
    std::vector<std::string> notes;
    for (const auto& tu : p.topups) {
        t.add({std::string(config::role_name(tu.account.role)), tu.account.home, tu.account.address.checksummed(),
               amount_str(tu.balance, n), amount_str(tu.levels.threshold, n), amount_str(tu.levels.target, n),
               amount_str(tu.amount, n)});
        const auto why = funding::describe_levels(tu.account, tu.levels, n.decimals, n.symbol);
        if (!why.empty()) notes.push_back(tu.account.address.checksummed() + ": " + why);
    }
    t.print(std::cout);
    for (const auto& note : notes) std::cout << "  " << note << "\n";
    std::cout << "  total " << amount_str(p.total, n) << " " << n.symbol << " to " << p.topups.size() << " account(s)";
    if (p.fees)
        std::cout << ", fees at most " << amount_str(p.max_fee_cost, n) << " " << n.symbol << " ("
                  << (p.fees->type == eth::TxType::kLegacy ? "legacy EIP-155" : "EIP-1559") << ")";
    std::cout << "\n";
    print_chain_fees(n, p);
    if (p.fee_problem) std::cout << "  CANNOT SEND: " << p.fee_problem->message << "\n";
    if (const auto* gas = rp.first(chain::RoundProblem::Kind::kGas)) std::cout << "  CANNOT SEND: " << gas->message << "\n";
    std::cout << "  bank " << (p.covered ? "covers it" : "DOES NOT cover it: only what fits will be sent, in order") << "\n\n";
    return worst;
}

// One network's failed or pending top-ups in the summary; the worst of their Faults.
Fault print_outcomes(const config::Network& n, const chain::RoundReport& report) {
    Fault worst = Fault::kNone;
    for (const auto& problem : report.problems) {
        worst = worse(worst, problem.fault);
        std::cout << "    " << problem.message << "\n";
    }
    for (const auto& oc : report.outcomes) {
        if (oc.ok()) continue;
        // Sent and unconfirmed (or unrecorded): the top-up is not done.
        worst = worse(worst, oc.fault == Fault::kNone ? Fault::kTopUp : oc.fault);
        std::cout << "    " << (oc.state == chain::Outcome::State::kSent ? "PENDING " : "FAILED ")
                  << config::role_name(oc.topup.account.role) << " " << oc.topup.account.address.checksummed() << " "
                  << amount_str(oc.topup.amount, n) << " " << n.symbol << ": "
                  << (oc.unrecorded ? "sent, but the ledger cannot be written (the next run settles it from the chain)"
                                    : oc.error)
                  << (oc.tx_hash.empty() ? "" : " (tx " + oc.tx_hash + ")") << "\n";
    }
    return worst;
}

// The summary after commit, from a fresh read; the Fault of the worst problem (kNone: done).
Fault print_summary(const Loaded& l, const std::vector<chain::RoundPlan>& plans, const std::vector<chain::RoundReport>& reports,
                    const std::vector<chain::RoundPlan>& after) {
    std::cout << "\nSummary\n";
    Fault worst = Fault::kNone;
    for (std::size_t i = 0; i < after.size(); ++i) {
        const auto& n = *l.selected[i];
        const auto& snap = after[i].plan.snapshot;
        std::size_t confirmed = 0;
        for (const auto& oc : reports[i].outcomes) confirmed += oc.ok();
        if (!snap.reachable) {
            worst = worse(worst, Fault::kPoll);
            std::cout << "  " << n.name << ": UNREACHABLE: " << snap.error << "\n";
            continue;
        }
        if (!plans[i].plan.waiting.empty()) worst = worse(worst, Fault::kTopUp);  // an earlier top-up still open
        const auto st = funding::standing(after[i].plan);  // at the effective (burn-sized) levels
        std::cout << "  " << n.name << ": " << confirmed << " of " << reports[i].outcomes.size() << " top-up(s) confirmed; "
                  << st.ok << "/" << snap.accounts.size() << " account(s) at or above threshold";
        if (st.unknown) std::cout << ", " << st.unknown << " unknown";
        std::cout << "; bank " << opt_amount(snap.bank_balance, n) << " " << n.symbol << "\n";
        worst = worse(worst, print_outcomes(n, reports[i]));
        if (st.low) worst = worse(worst, Fault::kTopUp);
        if (st.unknown) worst = worse(worst, Fault::kBalance);
    }
    return worst;
}

// A live top-up on a shared (Postgres) ledger leads for its whole run, confirmation and receipts
// included: refused while another keymaster leads. Released when it ends.
// Its Workers claim the sender leases of their banks (one sender per bank and chain, whatever the
// processes are named) for a minute at a time (each journal write extends it: a top-up left at its
// prompt, or killed there, keeps no bank from its sender for long), released when it ends.
struct TopUpLease {
    static constexpr std::chrono::seconds kSenderHold{60};
    std::unique_ptr<chain::Leadership> lead;
    ledger::Ledger* ledger = nullptr;
    Session* session = nullptr;
    TopUpLease() = default;
    TopUpLease(const TopUpLease&) = delete;
    TopUpLease& operator=(const TopUpLease&) = delete;
    void senders(Session& s, ledger::Ledger& l) {
        session = &s;
        ledger = &l;
        const auto holder = lead ? lead->holder() : chain::holder_id();
        for (auto& w : s.workers) w->set_sender(holder, kSenderHold);
    }
    ~TopUpLease() {
        if (session)
            for (auto& w : session->workers)
                if (const auto name = w->sender_lease(); !name.empty()) release([&] { ledger->release_lease(name, w->sender_holder()); });
        if (lead) release([&] { lead->release(); });
    }
    template <typename Fn>
    static void release(Fn&& fn) {  // each on its own: one that fails leaves the others to be released
        try {
            fn();
        } catch (const std::exception& e) {
            std::cerr << "keymaster top-up: cannot release a lease (" << e.what() << "); it expires by itself\n";
        }
    }
};

bool take_lease(const GlobalOptions& g, const TopUpOptions& o, ledger::Ledger& ledger, TopUpLease& out) {
    const auto name = lease_name(g);
    if (!name || o.dry_run) return true;
    out.lead = std::make_unique<chain::Leadership>(ledger, *name, chain::holder_id(),
                                                  o.confirm_timeout + std::chrono::minutes(10), *g.clock);
    try {
        const auto l = out.lead->claim();
        if (l.mine) return true;
        std::cerr << "keymaster top-up: the ledger's lease " << *name << " is held by " << l.holder << " (epoch " << l.epoch
                  << "): a keymaster run leads and funds these accounts; nothing sent\n";
    } catch (const std::exception& e) {
        std::cerr << "keymaster top-up: cannot claim the lease " << *name << ": " << e.what() << "; nothing sent\n";
    }
    out.lead.reset();
    return false;
}

bool confirmed_by_user() {
    std::cout << "Proceed? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace

int cmd_topup(const GlobalOptions& g, const TopUpOptions& o) {
    Session s(*g.clock);
    auto l = run_on(s.io, load_all(g, o.networks, print_error));
    if (!l) return kExitUsage;
    if (!o.dry_run && !o.yes && !::isatty(STDIN_FILENO)) {
        std::cerr << "keymaster top-up: refusing to send without confirmation: no terminal; pass --yes (or --dry-run)\n";
        return kExitUsage;
    }
    auto opened = open_ledger(g, o.dry_run ? LedgerUse::kRead : LedgerUse::kWrite);
    if (!opened) {
        std::cerr << "keymaster top-up: " << opened.error().message << "\n";
        return kExitUsage;  // nothing sent: like a config error (as before the --ledger option)
    }
    auto ledger = std::move(*opened);
    TopUpLease lease;
    if (!take_lease(g, o, *ledger, lease)) return kExitUsage;  // nothing sent
    s.open(*l, ledger.get());
    if (!o.dry_run) lease.senders(s, *ledger);
    // Prepare: nothing is broadcast before the confirmation.
    const auto plans = s.prepare(o.dry_run ? chain::Mode::kDryRun : chain::Mode::kLive);
    Fault worst = Fault::kNone;
    bool anything = false;
    for (std::size_t i = 0; i < plans.size(); ++i) {
        worst = worse(worst, print_plan(*l->selected[i], plans[i]));
        anything |= plans[i].has_work();
    }
    if (o.dry_run) {
        std::cout << "dry run: nothing sent\n";
        return kExitOk;
    }
    if (anything && !o.yes && !confirmed_by_user()) {
        std::cout << "Aborted: nothing sent\n";
        return fault_exit_code(Fault::kDeclined);
    }
    // Commit, networks concurrently.
    std::vector<chain::RoundReport> reports(plans.size());
    if (anything) {
        chain::CommitOptions co;
        co.confirm_timeout = o.confirm_timeout;
        co.progress = [](const std::string& line) { std::cout << "  " << line << std::endl; };
        std::size_t i = 0;
        std::vector<const chain::RoundPlan*> by_worker;
        for (const auto& p : plans) by_worker.push_back(&p);
        reports = s.each<chain::RoundReport>([&](chain::Worker& w) -> net::awaitable<chain::RoundReport> {
            const auto* plan = by_worker[i++];
            if (!plan->has_work()) co_return chain::RoundReport{};
            co_return co_await w.commit(*plan, co);
        });
    }
    const auto after = anything ? s.prepare(chain::Mode::kStatus) : plans;
    return fault_exit_code(worse(worst, print_summary(*l, plans, reports, after)));
}

namespace {

//! The ledger filter from history's flags (--since counts back from `clock`); nullopt after a usage
//! error on stderr.
std::optional<ledger::Filter> history_filter(const HistoryOptions& o, const Clock& clock) {
    ledger::Filter f;
    if (!o.network.empty()) f.network = o.network;
    if (!o.address.empty()) {
        auto a = eth::Address::parse(o.address);
        if (!a) {
            std::cerr << "--address: " << a.error().message() << "\n";
            return std::nullopt;
        }
        f.address = a->checksummed();
    }
    if (!o.since.empty()) {
        auto d = parse_duration(o.since);
        if (!d) {
            std::cerr << "--since: expected a duration such as 30m, 24h or 7d, got '" << o.since << "'\n";
            return std::nullopt;
        }
        f.since = clock.wall() - std::chrono::duration<double>(*d).count();
    }
    return f;
}

//! Each network's decimals, from the config when it can be read (history works without one:
//! then 18, Ether's, and a note on stderr).
std::map<std::string, unsigned> history_decimals(const GlobalOptions& g) {
    std::map<std::string, unsigned> decimals;
    if (auto cfg = config::load(g.config, config::process_env())) {
        for (const auto& n : cfg->networks) decimals[n.name] = n.decimals;
    } else {
        std::cerr << "keymaster history: " << g.config << " cannot be read: amounts shown with 18 decimals\n";
    }
    return decimals;
}

std::string iso_time(double t) {
    const std::time_t tt = static_cast<std::time_t>(t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
    return buf;
}

json history_json(const ledger::Entry& e, const std::string& amount) {
    json j = {{"id", e.id}, {"time", iso_time(e.created)}, {"updated", iso_time(e.updated)}, {"network", e.network},
              {"chainId", e.chain_id}, {"bank", e.bank}, {"recipient", e.recipient}, {"home", e.home},
              {"role", e.role}, {"amountWei", e.amount.str()}, {"amount", amount},
              {"nonce", e.nonce}, {"txHash", e.tx_hash}, {"state", std::string(ledger::state_name(e.state))}};
    if (e.block) j["block"] = e.block;
    if (e.gas_used) j["gasUsed"] = e.gas_used;
    if (e.fee_paid > 0) j["feePaidWei"] = e.fee_paid.str();
    if (e.l1_fee > 0) j["l1FeeWei"] = e.l1_fee.str();
    if (e.operator_fee > 0) j["operatorFeeWei"] = e.operator_fee.str();
    if (e.block) {  // mined: where, whether that block is final yet, whether the fee is the receipt's
        if (!e.block_hash.empty()) j["blockHash"] = e.block_hash;
        j["final"] = e.is_final;
        j["feeEstimated"] = e.fee_estimated;
    }
    if (e.tx_type == 0) j["gasPriceWei"] = e.gas_price.str();
    else {
        j["maxFeePerGasWei"] = e.max_fee.str();
        j["maxPriorityFeePerGasWei"] = e.priority_fee.str();
    }
    if (!e.replaced_by.empty()) j["replacedBy"] = e.replaced_by;
    if (!e.error.empty()) j["error"] = e.error;
    return j;
}

}  // namespace

int cmd_history(const GlobalOptions& g, const HistoryOptions& o) {
    const auto f = history_filter(o, *g.clock);
    if (!f) return kExitUsage;
    std::vector<ledger::Entry> entries;
    try {
        auto opened = open_ledger(g, LedgerUse::kRead);
        if (!opened) {  // a bad --ledger, or a ledger that cannot be opened: as in run and top-up
            std::cerr << "keymaster history: " << opened.error().message << "\n";
            return kExitUsage;
        }
        const ledger::Reader& reader = **opened;  // the history's read side only
        entries = reader.history(*f);
    } catch (const std::exception& e) {  // a ledger that cannot be read: nothing shown
        std::cerr << "keymaster history: " << e.what() << "\n";
        return kExitUsage;
    }
    const auto decimals = history_decimals(g);
    auto units = [&](const ledger::Entry& e, const Wei& w) {
        auto it = decimals.find(e.network);
        return format_units(w, it == decimals.end() ? 18 : it->second);
    };
    auto amount_of = [&](const ledger::Entry& e) { return units(e, e.amount); };
    // The fee paid, with the parts an OP Stack chain charges beyond gas.
    auto fee_of = [&](const ledger::Entry& e) {
        if (e.fee_paid == 0) return std::string();
        std::string out = units(e, e.fee_paid);
        if (e.l1_fee > 0) out += " (L1 " + units(e, e.l1_fee) + ")";
        if (e.operator_fee > 0) out += " (operator " + units(e, e.operator_fee) + ")";
        return out;
    };
    if (o.json) {
        for (const auto& e : entries) std::cout << history_json(e, amount_of(e)).dump() << "\n";
        return kExitOk;
    }
    Table t({"TIME", "NETWORK", "ROLE", "HOME", "RECIPIENT", "AMOUNT", "NONCE", "STATE", "TX", "FEE"},
            {false, false, false, false, false, true, true, false, false, false});
    for (const auto& e : entries)
        t.add({iso_time(e.created), e.network, e.role, e.home, e.recipient, amount_of(e), std::to_string(e.nonce),
               std::string(ledger::state_name(e.state)) + (e.error.empty() ? "" : " (" + e.error + ")"), e.tx_hash,
               fee_of(e)});
    t.print(std::cout, "");
    return kExitOk;
}

}  // namespace keymaster::cli
