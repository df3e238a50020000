#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>
#include <utility>

#include "keymaster/chain/poll.hpp"
#include "keymaster/funding/fees.hpp"
#include "keymaster/funding/limits.hpp"
#include "keymaster/common/clock.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"
#include "batch.hpp"
#include "burn_tracker.hpp"
#include "steps.hpp"

namespace keymaster::chain {

using funding::NetworkPlan;
using funding::NetworkSnapshot;

namespace net = boost::asio;
using nlohmann::json;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

// A node's "already known" for a re-broadcast is an answer, not a failed call (for the metrics).
rpc::RpcObserver with_answers(rpc::RpcObserver obs) {
    obs.is_answer = [](const std::string& method, const rpc::RpcError& e) {
        return method == "eth_sendRawTransaction" && classify_send_error(e.message()) == SendHint::kAlreadyKnown;
    };
    return obs;
}

rpc::RpcOptions rpc_options(const config::Network& n) {
    rpc::RpcOptions o;
    o.batch_size = n.batch_size;
    return o;
}

// Gas limits: the config's gasLimit, else eth_estimateGas (one batch); on Arbitrum always the
// estimate (it holds the L1 component) times gasMargin, gasLimit a floor. A failed estimate leaves
// that top-up with gas_limit 0: it will not be sent. The fees make_plan chose stay as they are.
net::awaitable<std::optional<Problem>> estimate_gas(rpc::RpcClient& client, const config::Network& net, NetworkPlan& plan) {
    const bool arbitrum = plan.snapshot.l2 == funding::L2Kind::kArbitrum;
    if (plan.topups.empty() || (net.gas_limit && !arbitrum)) co_return std::nullopt;
    detail::Calls calls;
    std::vector<std::pair<funding::TopUp*, detail::Answer<std::uint64_t>>> estimates;
    for (auto& t : plan.topups) {
        json tx{{"from", plan.snapshot.bank.lower()}, {"to", t.account.address.lower()},
                {"value", to_quantity(t.amount)}};
        estimates.emplace_back(&t, calls.add<std::uint64_t>({"eth_estimateGas", json::array({std::move(tx)})}));
    }
    detail::Answers answers;
    try {
        answers = detail::Answers(co_await client.batch(calls.take()));
    } catch (const std::exception& e) {
        for (auto& t : plan.topups) t.gas_limit = 0;
        funding::update_costs(plan);
        co_return Problem{Fault::kPoll, std::string("gas estimation failed: ") + e.what()};
    }
    for (const auto& [t, estimate] : estimates) {
        auto g = answers.get(estimate);
        if (g && arbitrum) g = funding::with_margin(*g, net.gas_margin_permille, net.gas_limit.value_or(0));
        t->gas_limit = g.value_or(0);
    }
    funding::update_costs(plan);
    co_return std::nullopt;
}

// The self-contradiction check of one account (its index in the poll): its balance and nonce at
// the block before our top-up, and its nonce now.
struct ContradictionCheck {
    std::size_t account;
    detail::Answer<Wei> balance_before;
    detail::Answer<std::uint64_t> nonce_before, nonce_now;
};

}  // namespace

struct Worker::Impl {
    Impl(net::any_io_executor ex, config::Network n, std::shared_ptr<signer::Signer> s,
         std::shared_ptr<const std::vector<funding::Account>> a, ledger::Ledger* l, const rpc::RpcObserver& obs,
         const Clock& c)
        : net_(std::move(n)), signer(std::move(s)), accounts(std::move(a)), ledger(l), clock(c), bank(signer->address()),
          client(ex, net_.name, net_.endpoints, rpc_options(net_), with_answers(obs)), sleep(ex),
          burn(net_.name, *accounts, net_.runway.window_seconds()) {}

    config::Network net_;
    std::shared_ptr<signer::Signer> signer;
    std::shared_ptr<const std::vector<funding::Account>> accounts;
    ledger::Ledger* ledger;
    const Clock& clock;
    LedgerThread* thread = nullptr;  // where the ledger's calls run (none: on the loop, as unit tests may)
    eth::Address bank;
    rpc::RpcClient client;
    net::steady_timer sleep;
    bool ready = false;
    bool stopping = false;
    int failures = 0;
    detail::BurnTracker burn;
    std::vector<funding::BurnRate> last_rates;  // what the last Round measured
    std::optional<funding::L2Kind> l2_kind;  // the kind of chain, once a poll has read it
    bool jovian = false;  // an OP Stack chain past Jovian, once a poll has read it (a fork is one-way)
    std::mt19937 rng{std::random_device{}()};
    std::map<eth::Address, funding::ConfirmedTopUp> confirmed_since_poll;  // checked at the next poll, then forgotten
    detail::Seen seen;  // the newest block seen on this network, across Rounds
    double stale_logged = -1e18;  // when a stale view was last logged (once a minute)
    std::optional<funding::Behind> behind;  // since when every answer has been below the newest block seen
    // The sender lease (shared ledger): who we are, for how long a claim holds, and the claim held
    // by the current live Round (none: not claimed, or not ours).
    std::string sender_holder;
    std::chrono::milliseconds sender_duration{0};
    std::optional<detail::SenderLease> sender;
    std::optional<std::uint64_t> sender_epoch;  // of the last claim: a new one re-reads what the ledger saw
    std::set<std::string> configured_banks;  // lower case: any other bank's entries on the chain are orphans

    // Now on the ledger's clock (the database's on Postgres): for what is compared with the
    // ledger's stamps (replaceAfter, the 24-hour windows of the limits).
    double ledger_now() { return now() + (ledger ? ledger->clock_offset() : 0); }
    double now() const { return clock.wall(); }

    detail::Context context() {
        auto ctx = detail::Context{client, signer, ledger, net_, [this] { return ledger_now(); }, clock, {}};
        ctx.jovian = jovian;
        ctx.seen = &seen;
        ctx.sender = sender ? &*sender : nullptr;
        ctx.thread = thread;
        return ctx;
    }

    // Step 0 (kLive): the chain id, before the ledger is read by it (the first Round only, when
    // the config has none: one eth_chainId).
    net::awaitable<std::optional<Problem>> pin_chain_id() {
        if (net_.chain_id) co_return std::nullopt;
        try {
            std::string method = "eth_chainId";  // (GCC 12: no literal inside co_await)
            const auto id = rpc::as_u64(co_await client.call(std::move(method), json::array()));
            if (!id) co_return Problem{Fault::kPoll, "eth_chainId: malformed answer"};
            net_.chain_id = *id;
            spdlog::info("{}: chain id {}", net_.name, *id);
        } catch (const std::exception& e) {
            co_return Problem{Fault::kPoll, std::string("eth_chainId failed: ") + e.what()};
        }
        co_return std::nullopt;
    }

    // Step 0b (kLive, shared ledger): the sender lease of this bank on this chain, whatever the
    // processes or their configs are named: another holder means this Round sends nothing.
    net::awaitable<std::optional<Problem>> claim_sender() {
        sender.reset();
        if (sender_holder.empty() || !ledger || !net_.chain_id) co_return std::nullopt;
        const std::string name = sender_lease_name(*net_.chain_id, bank);
        const double seconds = std::chrono::duration<double>(sender_duration).count();
        try {
            ledger::Lease lease;
            co_await context().in_ledger([&] { lease = ledger->claim_lease(name, sender_holder, seconds); });
            if (!lease.mine)
                co_return Problem{Fault::kSender, "bank " + bank.checksummed() + " on chain " + std::to_string(*net_.chain_id) +
                                                   " is sent from by " + lease.holder + " (lease " + name + ", epoch " +
                                                   std::to_string(lease.epoch) + "): nothing sent"};
            if (!sender_epoch || *sender_epoch != lease.epoch) seen.seeded = false;  // another may have sent meanwhile
            sender_epoch = lease.epoch;
            sender = detail::SenderLease{name, sender_holder, lease.epoch, seconds};
        } catch (const std::exception& e) {
            co_return Problem{Fault::kLedger, std::string("cannot claim the sender lease ") + name + ": " + e.what()};
        }
        co_return std::nullopt;
    }

    // Step 1: the ledger's unresolved entries (the accounts they pay wait). Step 2 is the poll.
    net::awaitable<Expected<detail::LedgerView>> read_ledger(Mode mode) {
        if (thread && reads_ledger(mode) && thread->away())  // never queued behind a call that hangs
            co_return Problem{Fault::kLedger, "the ledger has not answered for " + std::to_string(static_cast<int>(thread->away_for())) +
                                                  " s: balances are polled, nothing is sent"};
        if (mode == Mode::kLive) {
            if (auto p = co_await pin_chain_id()) co_return *p;
            if (auto p = co_await claim_sender()) co_return *p;
            auto ctx = context();
            auto view = co_await detail::reconcile(ctx);
            if (view && !configured_banks.empty())
                if (auto p = co_await detail::reconcile_orphans(ctx, configured_banks, *view)) {
                    co_await release_orphan_leases(*view);
                    co_return *p;
                }
            co_return view;
        }
        auto ctx = context();
        if (reads_ledger(mode)) co_return co_await detail::pending_view(ctx);
        co_return detail::LedgerView{};
    }

    // Step 2b: a poll older than a block already seen decides nothing (read your own writes):
    // counted, logged once a minute. Then it is seen.
    bool stale_poll(const NetworkSnapshot& snap) {
        if (!snap.reachable) return false;
        if (went_back(snap.block)) return false;
        const bool stale = funding::is_stale(snap.block, seen.newest);
        if (stale && now() - stale_logged >= 60) {
            stale_logged = now();
            spdlog::warn("{}: the endpoint answered from block {}, older than block {} already seen (a backend behind "
                         "another?): no top-up is planned from it (logged once a minute)",
                         net_.name, snap.block, seen.newest);
        }
        seen.block(snap.block);
        return stale;
    }

    // Every answer below the newest block seen for a long while, none reaching it: the chain went
    // back for good (a reset, a reorg to a shorter chain, one bogus block number). Accepted, logged:
    // blocks are counted from where the chain is, and what it no longer holds is found gone.
    bool went_back(std::uint64_t block) {
        if (block == 0) return false;  // a poll of unknown age (a request's block unread) proves nothing
        if (block >= seen.newest) {
            behind.reset();
            return false;
        }
        if (!behind || behind->fresh_answers != seen.fresh_answers) behind = funding::Behind{now(), seen.fresh_answers, block};
        behind->highest = std::max(behind->highest, block);
        if (!funding::chain_went_back(*behind, seen.fresh_answers, now())) return false;
        spdlog::warn("{}: every answer for {:.0f} s has been below block {}, none reaching it: the chain went back (a reset or a "
                     "reorg to a shorter chain?); counting from block {} now",
                     net_.name, now() - behind->since, seen.newest, behind->highest);
        seen.rebase(behind->highest);
        behind.reset();
        return true;
    }

    // Step 3: the chain id is pinned by the first poll; every later one must see the same.
    std::optional<Problem> check_chain(const NetworkSnapshot& snap) {
        if (!snap.reachable) return Problem{snap.chain_id_mismatch ? Fault::kChainId : Fault::kPoll, snap.error};
        if (!net_.chain_id) {
            net_.chain_id = snap.chain_id;
            spdlog::info("{}: chain id {}", net_.name, snap.chain_id);
        }
        ready = true;
        return std::nullopt;
    }

    // Step 7: limits, from what the ledger saw sent in 24 hours (after step 5, the decision, and 6,
    // gas): what is left of limits.daily.
    net::awaitable<Expected<std::optional<Wei>>> apply_limits(NetworkPlan& plan, const Wei& in_flight) {
        if (!ledger) co_return std::optional<Wei>{};
        const double day_ago = ledger_now() - 86400;
        const auto chain = plan.snapshot.chain_id;
        Wei spent = 0;
        std::map<eth::Address, funding::Received> received;
        try {
            co_await context().in_ledger([&] {
                spent = ledger->spent_since(chain, bank.checksummed(), day_ago);
                if (net_.limits.per_account.any())
                    for (const auto& [recipient, r] : ledger->received_since(chain, bank.checksummed(), day_ago))
                        if (auto a = eth::Address::parse(recipient)) received[*a] = {r.amount, r.count};
            });
        } catch (const std::exception& e) {
            co_return Problem{Fault::kLedger, std::string("cannot read spending from the ledger (") + e.what() +
                                                  "); sending nothing this round"};
        }
        co_return funding::apply_limits(plan, net_.limits, spent, received, in_flight);
    }

    // What step 4 measured.
    struct Burn {
        std::vector<funding::BurnRate> rates;                  //!< per snapshot account
        std::optional<funding::BurnRate> bank_rate;
        std::vector<std::pair<std::size_t, Wei>> spent;        //!< accounts that spent since the last poll
        std::optional<Problem> problem;                        //!< the history could not be read or kept
    };

    // Step 4: measured burn (live: recorded; dry run: in memory; status: read), each account's rate
    // and the bank's. Trouble with it costs no Round: the amounts apply, and the plan says why.
    net::awaitable<Burn> measure_burn(Mode mode, const NetworkSnapshot& snap, const std::set<eth::Address>& busy) {
        Burn out;
        const double t = now();
        try {
            co_await context().in_ledger([&] {
                if (!reads_ledger(mode)) {
                    if (ledger) burn.load(*ledger, t);
                } else {
                    out.spent = burn.measure(ledger, sends(mode) ? ledger : nullptr, snap, busy, t);
                }
                if (ledger) out.bank_rate = burn.bank_rate(*ledger, bank.checksummed(), t);
            });
        } catch (const std::exception& e) {
            out.problem = Problem{Fault::kLedger, std::string("cannot keep the burn history (") + e.what() + "): amounts apply"};
        }
        out.rates = burn.rates(t);
        last_rates = out.rates;  // for /status, which never touches `burn` (the ledger's thread may be in it)
        co_return out;
    }

    // The bank audit's place is kept per chain and bank ("chain:<id>" in bank_audit's network
    // column), like its nonces: a renamed network's audit carries on. (A ledger's place kept under a
    // network's name by an earlier version is left: the bank's first audit here starts where it stands.)
    static std::string audit_key(const NetworkSnapshot& snap) { return "chain:" + std::to_string(snap.chain_id); }

    // What step 4b found.
    struct Audit {
        std::vector<std::uint64_t> unaccounted;
        Wei unexplained = 0;
        std::optional<Problem> problem;
    };

    // Step 4b (kLive): the bank audit, from the poll (no round trip of its own): every nonce the
    // bank used since the last audit must be a mined transaction of ours, and, where nothing of the
    // bank's was pending at the poll (so its balance and nonce describe one state), what the bank
    // lost since the last point with nothing unaccounted must be what those took. A bank's first
    // audit starts where it stands.
    net::awaitable<Audit> audit_bank(Mode mode, const NetworkSnapshot& snap) {
        Audit out;
        if (!sends(mode) || !ledger || !snap.bank_latest_nonce || !snap.bank_balance) co_return out;
        const funding::AuditPoint here{*snap.bank_latest_nonce, snap.block, *snap.bank_balance};
        const bool quiet = snap.bank_nonce == snap.bank_latest_nonce;
        try {
            co_await context().in_ledger([&] { audit_in_ledger(snap, here, quiet, out); });
        } catch (const std::exception& e) {
            out.problem = Problem{Fault::kLedger, std::string("bank audit: cannot use the ledger (") + e.what() + ")"};
        }
        co_return out;
    }

    // Step 4b's reads and write, on the ledger's thread.
    void audit_in_ledger(const NetworkSnapshot& snap, const funding::AuditPoint& here, bool quiet, Audit& out) {
        const auto bank_id = bank.checksummed();
        const auto kept = ledger->audit(audit_key(snap), bank_id);
        funding::AuditStep step;
        if (!kept) {
            step.state = {here.nonce, quiet ? std::optional<funding::AuditPoint>(here) : std::nullopt};
        } else {
            funding::AuditState before{kept->next_nonce, std::nullopt};
            if (kept->point_nonce) before.point = funding::AuditPoint{*kept->point_nonce, kept->point_block.value_or(0), kept->point_balance};
            std::map<std::uint64_t, funding::NonceRecord> records;
            for (const auto& [n, u] : ledger->nonce_uses(snap.chain_id, bank_id, before.next, here.nonce)) records[n] = {u.mined, u.open};
            const auto walk = funding::audit_nonces(before.next, here.nonce, records);
            step = funding::next_audit_state(before, walk, here, quiet);
            out.unaccounted = walk.unaccounted;
            if (step.compare)
                out.unexplained = funding::unexplained_outflow(
                    before.point->balance, here.balance, ledger->outflow(snap.chain_id, bank_id, before.point->nonce, here.nonce));
        }
        save_audit(audit_key(snap), bank_id, kept, step.state);
    }

    // Written only when it moved: an idle bank costs no ledger write per poll. A point that moved
    // only in block (same nonce and balance) is not written either.
    void save_audit(const std::string& key, const std::string& bank_id, const std::optional<ledger::Ledger::Audit>& kept,
                    const funding::AuditState& state) {
        ledger::Ledger::Audit a{state.next, std::nullopt, std::nullopt, Wei(0)};
        if (state.point) {
            a.point_nonce = state.point->nonce;
            a.point_block = state.point->block;
            a.point_balance = state.point->balance;
        }
        if (kept && kept->next_nonce == a.next_nonce && kept->point_nonce == a.point_nonce &&
            kept->point_balance == a.point_balance)
            return;
        ledger->save_audit(key, bank_id, a);
    }

    // A top-up the endpoint still contradicts itself about is checked again at the next poll (its
    // account held while it lasts: a backend whose balances lag behind its block number), for at
    // most kContradictionPolls polls; then the limits alone stand between a lie and the bank.
    static constexpr int kContradictionPolls = 10;
    std::map<eth::Address, int> contradicted_polls;
    void keep_contradicted(const NetworkSnapshot& snap, const std::vector<std::size_t>& held,
                           const std::map<eth::Address, funding::ConfirmedTopUp>& recent) {
        std::map<eth::Address, int> still;
        for (auto i : held) {
            const auto& a = snap.accounts[i].account.address;
            const int n = contradicted_polls.count(a) ? contradicted_polls.at(a) + 1 : 1;
            if (n >= kContradictionPolls || !recent.count(a)) continue;
            still[a] = n;
            confirmed_since_poll.emplace(a, recent.at(a));
        }
        contradicted_polls = std::move(still);
    }

    // Top-ups reconcile settled as confirmed this Round (nonce fillers pay the bank: not counted).
    void note_confirmed(const std::vector<ledger::Entry>& settled) {
        for (const auto& e : settled)
            if (e.state == ledger::State::kConfirmed && e.role != "nonce-filler")
                if (auto a = eth::Address::parse(e.recipient)) confirmed_since_poll[*a] = {e.block, e.amount};
    }

    // Step 3b (kLive): accounts a confirmed top-up of ours reached since the last poll and that are
    // still below their threshold (a balance that would have them paid again), where the endpoint
    // contradicts itself: the account sent nothing since the block before the top-up, yet holds less
    // than it held there plus what we sent. Held (no second top-up) this Round. One batch, only for
    // those few accounts, at the endpoint's own state. A query that fails proves nothing either way:
    // the account is held all the same this poll (rp.unverified), not longer (a pruned node never
    // answers for an old block). (A
    // reorg is the poll's block check's to find; a backend behind, the stale view's.)
    net::awaitable<void> self_contradictions(RoundPlan& rp, const NetworkSnapshot& snap,
                                             const std::map<eth::Address, funding::ConfirmedTopUp>& recent) {
        detail::Calls calls;
        std::vector<ContradictionCheck> checks;
        if (!sends(rp.mode) || !snap.reachable) co_return;
        for (std::size_t i = 0; i < snap.accounts.size() && !recent.empty(); ++i) {
            const auto& s = snap.accounts[i];
            if (!s.balance || *s.balance >= s.account.threshold) continue;
            const auto it = recent.find(s.account.address);
            if (it == recent.end()) continue;
            const auto addr = s.account.address.lower();
            const auto tag = to_quantity(Wei(it->second.block - 1));
            ContradictionCheck c{i, {}, {}, {}};
            c.balance_before = calls.add<Wei>({"eth_getBalance", json::array({addr, tag})});
            c.nonce_before = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({addr, tag})});
            c.nonce_now = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({addr, "latest"})});
            checks.push_back(c);
        }
        if (checks.empty()) co_return;
        detail::Answers answers;
        try {
            answers = detail::Answers(co_await client.batch(calls.take()));
        } catch (const std::exception& e) {
            spdlog::info("{}: cannot check the balances of accounts just topped up ({}): held this poll", net_.name, e.what());
            for (const auto& c : checks) rp.unverified.push_back(c.account);
            co_return;
        }
        for (const auto& c : checks) {
            const auto before = answers.get(c.balance_before);
            const auto nonce_before = answers.get(c.nonce_before), nonce_now = answers.get(c.nonce_now);
            const auto& s = snap.accounts[c.account];
            if (!before || !nonce_before || !nonce_now) rp.unverified.push_back(c.account);
            else if (funding::balance_contradicts(*before, recent.at(s.account.address).amount, *s.balance,
                                                  *nonce_before, *nonce_now))
                rp.mismatches.push_back(c.account);
        }
    }

    net::awaitable<RoundPlan> prepare(Mode mode) {
        RoundPlan rp;
        rp.mode = mode;
        auto view = co_await read_ledger(mode);
        if (!view) rp.fail(view.error());
        chain::BlockChecks checks;  // our mined top-ups not final yet: seen from the poll's own view
        if (view && sends(mode)) checks = {detail::unfinal_heights(*view), !view->unfinal.empty() && !net_.finality};
        auto snap = co_await chain::poll(client, net_, bank, *accounts, l2_kind, checks);
        if (snap.l2) l2_kind = snap.l2;  // detected once
        if (snap.op_fees && snap.op_fees->jovian) jovian = true;
        if (auto p = check_chain(snap)) rp.fail(*p);
        rp.stale = stale_poll(snap);
        if (view) co_await settle_view(rp, snap, *view);
        note_confirmed(rp.settled);
        const auto recent = std::exchange(confirmed_since_poll, {});  // checked now; kept by keep_contradicted
        co_await self_contradictions(rp, snap, recent);
        keep_contradicted(snap, rp.mismatches, recent);  // (an unverified one: this poll only; a pruned node never answers)
        if (!snap.reachable || !view) {  // nothing may be decided without a readable ledger
            rp.plan.snapshot = std::move(snap);
            co_return rp;
        }
        co_await decide(rp, std::move(snap), std::move(*view));
        co_return rp;
    }

    // Step 2c (kLive): the mined top-ups not final yet, against the poll's view (a reorg between
    // reconcile and the poll is seen by the poll itself); then what the ledger steps found goes to
    // the plan, and the orphan banks' leases taken for this Round are given back.
    net::awaitable<void> settle_view(RoundPlan& rp, const NetworkSnapshot& snap, detail::LedgerView& view) {
        if (sends(rp.mode)) {
            auto ctx = context();
            if (auto p = co_await detail::recheck_unfinal(ctx, snap, !rp.stale, view)) rp.fail(*p);
        }
        rp.ledger_log = std::move(view.log);
        rp.settled = std::move(view.settled);
        if (!rp.settled.empty()) burn.paid_changed();
        co_await release_orphan_leases(view);
    }

    net::awaitable<void> release_orphan_leases(const detail::LedgerView& view) {
        for (const auto& name : view.orphan_leases) {
            try {
                co_await context().in_ledger([&] { ledger->release_lease(name, sender_holder); });
            } catch (const std::exception& e) {
                spdlog::warn("{}: cannot release the lease {} ({}); it expires by itself", net_.name, name, e.what());
            }
        }
    }

    // Step 5b: balances that could mislead decide nothing: every one of a stale poll, and those
    // the endpoint contradicts itself about (a top-up of ours it does not show) or could not be checked on.
    void hold_misleading(RoundPlan& rp) {
        if (rp.stale) {
            funding::hold_unknown(rp.plan, {}, "stale view: block " + std::to_string(rp.plan.snapshot.block) + ", block " +
                                                   std::to_string(seen.newest) + " already seen");
            return;
        }
        std::set<eth::Address> contradicted, unverified;
        for (auto i : rp.mismatches) contradicted.insert(rp.plan.snapshot.accounts[i].account.address);
        for (auto i : rp.unverified) unverified.insert(rp.plan.snapshot.accounts[i].account.address);
        if (!contradicted.empty())
            funding::hold_unknown(rp.plan, contradicted, "the endpoint does not show our confirmed top-up: no second one");
        if (!unverified.empty())
            funding::hold_unknown(rp.plan, unverified, "our confirmed top-up could not be checked against the endpoint: no second one");
    }

    // Steps 4 to 7, on a readable ledger and a reachable chain.
    net::awaitable<void> decide(RoundPlan& rp, NetworkSnapshot snap, detail::LedgerView view) {
        auto measured = co_await measure_burn(rp.mode, snap, view.busy);
        rp.spent = std::move(measured.spent);
        rp.burn_problem = std::move(measured.problem);
        auto audit = co_await audit_bank(rp.mode, snap);
        rp.unaccounted = std::move(audit.unaccounted);
        rp.unexplained = audit.unexplained;
        rp.audit_problem = std::move(audit.problem);
        rp.plan = funding::make_plan(std::move(snap), net_, view.busy, std::move(measured.rates));
        rp.plan.bank_rate = measured.bank_rate;
        rp.pending = std::move(view.pending);
        rp.reorged = view.reorged;
        rp.orphan_banks = std::move(view.orphans);
        rp.in_flight = funding::in_flight_total(view.in_flight);
        hold_misleading(rp);
        const auto& s = rp.plan.snapshot;
        // The next nonce: past every transaction the node holds, every one mined, and ours.
        rp.first_nonce = std::max({s.bank_nonce.value_or(0), s.bank_latest_nonce.value_or(0), view.next_nonce.value_or(0)});
        if (!rp.stale && s.bank_nonce)
            rp.gaps = funding::nonce_gaps(std::max(*s.bank_nonce, s.bank_latest_nonce.value_or(0)), view.nonces);
        if (!rp.gaps.empty() && !rp.plan.fees && !rp.plan.fee_problem) {  // a filler needs fees even with no top-up
            if (auto fees = funding::choose_fees(s, net_)) rp.plan.fees = *fees;
            else rp.plan.fee_problem = fees.error();
        }
        if (rp.plan.fees)  // the fillers commit will send: their fees leave the bank too
            rp.in_flight += Wei(rp.gaps.size()) * Wei(21000) * rp.plan.fees->per_gas_cap();
        if (!reads_ledger(rp.mode) || rp.plan.topups.empty()) co_return;
        rp.gas_problem = co_await estimate_gas(client, net_, rp.plan);
        auto left = co_await apply_limits(rp.plan, rp.in_flight);
        if (left) rp.spend_remaining = *left;
        else rp.fail(left.error());
    }

    net::awaitable<bool> round(Worker& self, const Schedule& schedule, const RoundObserver& observer, SteadyTime start,
                               std::chrono::milliseconds delay);

    std::chrono::milliseconds next_delay(const Schedule& s, bool ok) {
        std::uniform_real_distribution<double> jitter(0.9, 1.1);
        if (ok) return std::chrono::milliseconds(static_cast<long>(static_cast<double>(s.interval.count()) * jitter(rng)));
        // Exponential backoff from 1 s, capped at the interval (and at 5 minutes).
        const long cap = std::min<long>(std::max<long>(s.interval.count(), 1000), 300'000);
        const long base = std::min<long>(cap, 1000L << std::min(failures, 16));
        return std::chrono::milliseconds(static_cast<long>(static_cast<double>(base) * jitter(rng)));
    }
};

Worker::Worker(net::any_io_executor ex, config::Network net, std::shared_ptr<signer::Signer> signer,
               std::shared_ptr<const std::vector<funding::Account>> accounts, ledger::Ledger* ledger,
               const rpc::RpcObserver& observer, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(net), std::move(signer), std::move(accounts), ledger, observer,
                                   clock)) {}

Worker::~Worker() = default;

net::awaitable<RoundPlan> Worker::prepare(Mode mode) { return impl_->prepare(mode); }

net::awaitable<RoundReport> Worker::commit(const RoundPlan& plan, CommitOptions options) {
    if (!sends(plan.mode) || !plan.can_commit() || !impl_->ledger) co_return RoundReport{};
    auto ctx = impl_->context();
    ctx.replaced = options.replaced;
    auto report = co_await detail::commit_round(ctx, plan, options);
    impl_->burn.paid_changed();
    for (const auto& o : report.outcomes)
        if (o.ok()) impl_->confirmed_since_poll[o.topup.account.address] = {o.block, o.topup.amount};
    co_return report;
}

namespace {
net::awaitable<bool> cancelled() {
    co_return (co_await net::this_coro::cancellation_state).cancelled() != net::cancellation_type::none;
}

// The observer hears the original exception, of its own type.
void report_failure(const std::exception_ptr& error, const RoundObserver& observer) {
    if (!observer.failed) return;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        observer.failed(e);
    } catch (...) {
        observer.failed(std::runtime_error("unknown exception"));
    }
}
}  // namespace

bool RoundPlan::has_work() const {
    if (!can_commit()) return false;
    if (!plan.topups.empty() || !gaps.empty()) return true;
    return std::any_of(pending.begin(), pending.end(), [](const auto& a) { return a.kind != PendingAction::Kind::kWait; });
}

bool round_ok(const RoundPlan& plan, const RoundReport* report) {
    return !plan.problem && (!report || report->problems.empty());
}

// One Round of run(): prepare, and commit when there is work. Whether it went well (round_ok).
net::awaitable<bool> Worker::Impl::round(Worker& self, const Schedule& schedule, const RoundObserver& observer,
                                         SteadyTime start, std::chrono::milliseconds delay) {
    const bool allowed = !schedule.may_send || schedule.may_send();
    auto plan = co_await self.prepare(allowed ? schedule.mode : Mode::kDryRun);
    if (observer.prepared) observer.prepared(plan, std::chrono::duration<double>(clock.steady() - start).count());
    if (!sends(plan.mode) || stopping || !plan.has_work()) co_return round_ok(plan, nullptr);
    if (schedule.may_send && !schedule.may_send()) co_return round_ok(plan, nullptr);  // lost the right meanwhile
    // Receipts are awaited at most until the next poll is due; what is unmined then stays `sent`
    // and the next Rounds' reconcile carries it (receipts, re-broadcast, replacement): polls and
    // metrics keep their pace while a transaction is stuck.
    auto options = schedule.commit;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(delay - (clock.steady() - start));
    options.confirm_timeout = std::clamp(left, std::chrono::milliseconds(0), options.confirm_timeout);
    auto report = co_await self.commit(plan, std::move(options));
    if (observer.committed) observer.committed(plan, report);
    co_return round_ok(plan, &report);
}

net::awaitable<void> Worker::run(Schedule schedule, RoundObserver observer) {
    auto& w = *impl_;
    while (!w.stopping && !(co_await cancelled())) {
        bool ok = false;
        std::exception_ptr error;
        const auto start = w.clock.steady();
        const auto delay = w.next_delay(schedule, true);
        try {
            ok = co_await w.round(*this, schedule, observer, start, delay);
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            if (co_await cancelled()) break;
            report_failure(error, observer);
        }
        w.failures = ok ? 0 : w.failures + 1;
        if (w.stopping) break;
        // A healthy network's next Round starts one interval after this one started; a failed
        // one's after the backoff.
        const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(w.clock.steady() - start);
        w.sleep.expires_after(ok ? std::max(std::chrono::milliseconds(0), delay - elapsed) : w.next_delay(schedule, false));
        boost::system::error_code ec;
        co_await w.sleep.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
}

void Worker::stop() {
    impl_->stopping = true;
    impl_->sleep.cancel();
}

const config::Network& Worker::network() const { return impl_->net_; }
const eth::Address& Worker::bank() const { return impl_->bank; }
const std::vector<funding::Account>& Worker::accounts() const { return *impl_->accounts; }
bool Worker::ready() const { return impl_->ready; }
std::vector<funding::BurnRate> Worker::burn_rates() const { return impl_->last_rates; }
void Worker::set_ledger_thread(LedgerThread* thread) { impl_->thread = thread; }
void Worker::set_sender(const std::string& process, std::chrono::milliseconds duration) {
    impl_->sender_holder = process + "/" + impl_->net_.name;
    impl_->sender_duration = duration;
}
void Worker::set_configured_banks(std::set<std::string> banks) {
    impl_->configured_banks.clear();
    for (const auto& b : banks) impl_->configured_banks.insert(to_lower(b));
}
std::string Worker::sender_lease() const { return impl_->sender ? impl_->sender->name : std::string(); }
const std::string& Worker::sender_holder() const { return impl_->sender_holder; }

std::string sender_lease_name(std::uint64_t chain_id, const eth::Address& bank) {
    return "sender:" + std::to_string(chain_id) + ":" + bank.lower();
}

}  // namespace keymaster::chain
