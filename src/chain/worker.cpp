#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>
#include <utility>

#include "keymaster/chain/poll.hpp"
#include "keymaster/common/clock.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"
#include "prepare_steps.hpp"

namespace keymaster::chain {

using funding::NetworkSnapshot;

namespace net = boost::asio;
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

}  // namespace

struct Worker::Impl {
    Impl(net::any_io_executor ex, config::Network n, std::shared_ptr<signer::Signer> s,
         std::shared_ptr<const std::vector<funding::Account>> a, ledger::Ledger* l, const rpc::RpcObserver& obs,
         const Clock& c)
        : net_(std::move(n)), signer(std::move(s)), accounts(std::move(a)), ledger(l), clock(c), bank(signer->address()),
          client(ex, net_.name, net_.endpoints, rpc_options(net_), with_answers(obs)), sleep(ex),
          burn(net_.name, *accounts, net_.runway.window_seconds()), views(net_.name, c) {}

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
    detail::Seen seen;  // the newest block seen on this network, across Rounds
    detail::ViewChecks views;  // the stale view's log, since when answers have been behind
    detail::Contradictions contradictions;  // confirmed top-ups, checked at the next poll
    detail::SenderClaim sender;  // the sender lease (shared ledger)
    std::set<std::string> configured_banks;  // lower case: any other bank's entries on the chain are orphans

    // Now on the ledger's clock (the database's on Postgres): for what is compared with the
    // ledger's stamps (replaceAfter, the 24-hour windows of the limits).
    double ledger_now() { return now() + (ledger ? ledger->clock_offset() : 0); }
    double now() const { return clock.wall(); }

    detail::Context context() {
        auto ctx = detail::Context{client, signer, ledger, net_, [this] { return ledger_now(); }, clock, {}};
        ctx.jovian = jovian;
        ctx.seen = &seen;
        ctx.sender = sender.held();
        ctx.thread = thread;
        return ctx;
    }

    // Step 1: the ledger's unresolved entries (the accounts they pay wait); kLive: the chain id
    // and the sender lease first.
    net::awaitable<Expected<detail::LedgerView>> read_ledger(Mode mode) {
        if (thread && reads_ledger(mode) && thread->away())  // never queued behind a call that hangs
            co_return Problem{Fault::kLedger, "the ledger has not answered for " + std::to_string(static_cast<int>(thread->away_for())) +
                                                  " s: balances are polled, nothing is sent"};
        if (mode == Mode::kLive) {
            if (auto p = co_await detail::pin_chain_id(client, net_)) co_return *p;
            auto ctx = context();
            if (auto p = co_await sender.claim(ctx, bank)) co_return *p;
        }
        auto ctx = context();  // (with the lease just claimed)
        co_return co_await detail::read_view(ctx, mode, configured_banks, sender.holder);
    }

    // Step 2: the poll, with our mined top-ups not final yet seen from its own view.
    net::awaitable<NetworkSnapshot> poll(Mode mode, const Expected<detail::LedgerView>& view) {
        chain::BlockChecks checks;
        if (view && sends(mode)) checks = {detail::unfinal_heights(*view), !view->unfinal.empty() && !net_.finality};
        auto snap = co_await chain::poll(client, net_, bank, *accounts, l2_kind, checks);
        if (snap.l2) l2_kind = snap.l2;  // detected once
        if (snap.op_fees && snap.op_fees->jovian) jovian = true;
        co_return snap;
    }

    net::awaitable<RoundPlan> prepare(Mode mode) {
        RoundPlan rp;
        rp.mode = mode;
        auto view = co_await read_ledger(mode);
        if (!view) rp.fail(view.error());
        auto snap = co_await poll(mode, view);
        if (auto p = detail::ViewChecks::check_chain(net_, snap)) rp.fail(*p);
        else ready = true;
        rp.stale = views.stale(snap, seen);
        if (view) co_await settle_view(rp, snap, *view);
        contradictions.settled(rp.settled);
        auto held = co_await contradictions.check(client, net_.name, mode, snap);
        rp.mismatches = std::move(held.mismatches);
        rp.unverified = std::move(held.unverified);
        if (!snap.reachable || !view) {  // nothing may be decided without a readable ledger
            rp.plan.snapshot = std::move(snap);
            co_return rp;
        }
        co_await decide(rp, std::move(snap), std::move(*view));
        co_return rp;
    }

    // Step 2c.
    net::awaitable<void> settle_view(RoundPlan& rp, const NetworkSnapshot& snap, detail::LedgerView& view) {
        auto ctx = context();
        co_await detail::settle_view(ctx, rp, snap, view, sender.holder);
        if (!rp.settled.empty()) burn.paid_changed();
    }

    // Steps 4 to 7, on a readable ledger and a reachable chain: burn and the bank audit (each its
    // own call on the ledger's thread), the plan, gas, and the limits from the ledger's reads.
    net::awaitable<void> decide(RoundPlan& rp, NetworkSnapshot snap, detail::LedgerView view) {
        const double t = now();
        const auto ctx = context();
        const detail::LedgerPassInput in{rp.mode, snap, view.busy, bank.checksummed(), t};
        auto found = co_await detail::ledger_pass(ctx, burn, in);
        rp.spent = std::move(found.burn.spent);
        if (found.burn.problem) rp.note(RoundProblem::Kind::kBurn, std::move(*found.burn.problem));
        rp.unaccounted = std::move(found.audit.unaccounted);
        rp.unexplained = found.audit.unexplained;
        if (found.audit.problem) rp.note(RoundProblem::Kind::kAudit, std::move(*found.audit.problem));
        auto rates = burn.rates(t);
        last_rates = rates;  // for /status, which never touches `burn` (the ledger's thread may be in it)
        const auto chain_id = snap.chain_id;
        detail::decide(rp, net_, {std::move(snap), std::move(view), std::move(rates), found.burn.bank_rate, seen.newest});
        if (!reads_ledger(rp.mode) || rp.plan.topups.empty()) co_return;
        if (auto p = co_await detail::estimate_gas(client, net_, rp.plan)) rp.note(RoundProblem::Kind::kGas, std::move(*p));
        const auto spending = co_await detail::read_spending(ctx, rp.mode, chain_id, bank.checksummed(), ledger_now() - 86400);
        if (!spending) co_return;  // no ledger: no limits
        auto left = detail::apply_limits(rp.plan, net_, *spending, rp.in_flight);
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
        if (o.ok()) impl_->contradictions.confirmed(o.topup.account.address, {o.block, o.topup.amount});
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
    return !plan.blocking() && (!report || report->problems.empty());
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
    impl_->sender.holder = process + "/" + impl_->net_.name;
    impl_->sender.duration = duration;
}
void Worker::set_configured_banks(std::set<std::string> banks) {
    impl_->configured_banks.clear();
    for (const auto& b : banks) impl_->configured_banks.insert(to_lower(b));
}
std::string Worker::sender_lease() const { return impl_->sender.held() ? impl_->sender.held()->name : std::string(); }
const std::string& Worker::sender_holder() const { return impl_->sender.holder; }

std::string sender_lease_name(std::uint64_t chain_id, const eth::Address& bank) {
    return "sender:" + std::to_string(chain_id) + ":" + bank.lower();
}

}  // namespace keymaster::chain
