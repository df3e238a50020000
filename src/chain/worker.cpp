#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "keymaster/chain/network_state.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"
#include "burn_tracker.hpp"
#include "steps.hpp"

namespace keymaster::chain {

namespace net = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

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

// Gas limits: the config's gasLimit, else eth_estimateGas (one batch). A failed estimate leaves
// that top-up with gas_limit 0: it will not be sent.
net::awaitable<void> estimate_gas(rpc::RpcClient& client, const config::Network& net, NetworkPlan& plan) {
    if (plan.topups.empty() || net.gas_limit) co_return;
    std::vector<rpc::Call> calls;
    for (const auto& t : plan.topups)
        calls.push_back({"eth_estimateGas", json::array({json{{"from", plan.snapshot.bank.lower()},
                                                                {"to", t.account.address.lower()},
                                                                {"value", to_quantity(t.amount)}}})});
    std::vector<rpc::CallResult> r;
    try {
        r = co_await client.batch(std::move(calls));
    } catch (const std::exception& e) {
        plan.fee_error = std::string("gas estimation failed: ") + e.what();
        plan.fees.reset();
        co_return;
    }
    for (std::size_t i = 0; i < plan.topups.size(); ++i) {
        auto g = r[i].ok() ? rpc::as_u64(*r[i].result) : std::nullopt;
        plan.topups[i].gas_limit = g.value_or(0);
    }
    funding::update_costs(plan);
}

}  // namespace

struct Worker::Impl {
    Impl(net::any_io_executor ex, config::Network n, std::shared_ptr<signer::Signer> s,
         std::shared_ptr<const std::vector<funding::Account>> a, ledger::Ledger* l, const rpc::RpcObserver& obs)
        : net_(std::move(n)), signer(std::move(s)), accounts(std::move(a)), ledger(l), bank(signer->address()),
          client(ex, net_.name, net_.endpoints, rpc_options(net_), with_answers(obs)), sleep(ex),
          burn(net_.name, *accounts, net_.runway.window_seconds()) {}

    config::Network net_;
    std::shared_ptr<signer::Signer> signer;
    std::shared_ptr<const std::vector<funding::Account>> accounts;
    ledger::Ledger* ledger;
    eth::Address bank;
    rpc::RpcClient client;
    net::steady_timer sleep;
    std::function<double()> now = [] { return unix_now(); };
    bool ready = false;
    bool stopping = false;
    int failures = 0;
    detail::BurnTracker burn;
    std::map<eth::Address, funding::ConfirmedTopUp> confirmed_last_round;
    std::mt19937 rng{std::random_device{}()};

    detail::Context context() { return detail::Context{client, signer, ledger, net_, now, {}}; }

    // Step 1: the ledger's unresolved entries (the accounts they pay wait). Step 2 is the poll.
    net::awaitable<detail::LedgerView> read_ledger(Mode mode, RoundPlan& rp) {
        auto ctx = context();
        try {
            if (mode == Mode::kLive) co_return co_await detail::reconcile(ctx);
            if (mode == Mode::kDryRun) co_return detail::pending_view(ctx);
        } catch (const RoundError& e) {
            rp.fault = e.fault();
            rp.error = e.what();
        }
        co_return detail::LedgerView{};
    }

    // Step 3: the chain id is pinned by the first poll; every later one must see the same.
    void check_chain(RoundPlan& rp, const NetworkSnapshot& snap) {
        if (!snap.reachable) {
            rp.fault = snap.chain_id_mismatch ? Fault::kChainId : Fault::kPoll;
            rp.error = snap.error;
            return;
        }
        if (!net_.chain_id) {
            net_.chain_id = snap.chain_id;
            spdlog::info("{}: chain id {}", net_.name, snap.chain_id);
        }
        ready = true;
    }

    // Step 7: limits, from what the ledger saw sent in 24 hours (after step 5, the decision, and 6, gas).
    void apply_limits(RoundPlan& rp) {
        if (!ledger) return;
        try {
            const double day_ago = now() - 86400;
            const Wei spent = ledger->spent_since(net_.name, bank.checksummed(), day_ago);
            std::map<eth::Address, funding::Received> received;
            if (net_.limits.per_account.any())
                for (const auto& [recipient, r] : ledger->received_since(net_.name, bank.checksummed(), day_ago))
                    if (auto a = eth::Address::parse(recipient)) received[*a] = {r.amount, r.count};
            rp.spend_remaining = funding::apply_limits(rp.plan, net_.limits, spent, received);
        } catch (const std::exception& e) {
            rp.fault = Fault::kLedger;
            rp.error = std::string("cannot read spending from the ledger (") + e.what() + "); sending nothing this round";
        }
    }

    // Step 4: measured burn (live: recorded; dry run: in memory; status: read), each account's rate
    // and the bank's. Trouble with it costs no Round: the amounts apply, and the plan says why.
    std::vector<funding::BurnRate> measure_burn(RoundPlan& rp, const NetworkSnapshot& snap,
                                                const std::set<eth::Address>& busy,
                                                std::optional<funding::BurnRate>& bank_rate) {
        const double t = now();
        try {
            if (ledger && rp.mode == Mode::kStatus) burn.load(*ledger, t);
            else if (rp.mode != Mode::kStatus)
                rp.spent = burn.measure(ledger, rp.mode == Mode::kLive ? ledger : nullptr, snap, busy, t);
            if (ledger) bank_rate = burn.bank_rate(*ledger, bank.checksummed(), t);
        } catch (const std::exception& e) {
            rp.burn_error = std::string("cannot keep the burn history (") + e.what() + "): amounts apply";
        }
        return burn.rates(t);
    }

    // Step 4b (kLive): the bank audit. Every nonce the bank used since the last audit must be a
    // transaction of ours that was mined; the first audit of a bank starts at its latest nonce.
    void audit_bank(RoundPlan& rp, const NetworkSnapshot& snap) {
        if (rp.mode != Mode::kLive || !ledger || !snap.bank_latest_nonce) return;
        const auto bank_id = bank.checksummed();
        try {
            const auto from = ledger->audited_to(net_.name, bank_id).value_or(*snap.bank_latest_nonce);
            std::map<std::uint64_t, funding::NonceRecord> records;
            for (const auto& [n, u] : ledger->nonce_uses(net_.name, bank_id, from, *snap.bank_latest_nonce))
                records[n] = {u.mined, u.open};
            const auto audit = funding::audit_nonces(from, *snap.bank_latest_nonce, records);
            ledger->set_audited_to(net_.name, bank_id, audit.next);
            rp.unaccounted = audit.unaccounted;
        } catch (const std::exception& e) {
            rp.audit_error = std::string("bank audit: cannot use the ledger (") + e.what() + ")";
        }
    }

    // Step 3b: accounts our confirmed top-up left lower than it must have, whose nonce did not move
    // since the poll that decided it (an account cannot spend without sending): the endpoint
    // contradicts itself. One batch, only for the few candidates; a failed query proves nothing.
    net::awaitable<std::vector<std::size_t>> self_contradictions(const NetworkSnapshot& snap) {
        std::vector<std::size_t> out;
        if (!snap.reachable) co_return out;
        const auto candidates = funding::mismatch_candidates(snap, confirmed_last_round);
        if (candidates.empty()) co_return out;
        std::vector<rpc::Call> calls;
        for (auto i : candidates) {
            const auto& a = snap.accounts[i].account;
            const auto& c = confirmed_last_round.at(a.address);
            calls.push_back({"eth_getTransactionCount", json::array({a.address.lower(), to_quantity(Wei(c.from_block))})});
            calls.push_back({"eth_getTransactionCount", json::array({a.address.lower(), "latest"})});
        }
        std::vector<rpc::CallResult> r;
        try {
            r = co_await client.batch(std::move(calls));
        } catch (const std::exception& e) {
            spdlog::debug("{}: cannot read the nonces of accounts topped up last round: {}", net_.name, e.what());
            co_return out;
        }
        for (std::size_t c = 0; c < candidates.size(); ++c) {
            const auto then = r[2 * c].ok() ? rpc::as_u64(*r[2 * c].result) : std::nullopt;
            const auto now_nonce = r[2 * c + 1].ok() ? rpc::as_u64(*r[2 * c + 1].result) : std::nullopt;
            if (then && now_nonce && *then == *now_nonce) out.push_back(candidates[c]);
        }
        co_return out;
    }

    net::awaitable<RoundPlan> prepare(Mode mode) {
        RoundPlan rp;
        rp.mode = mode;
        auto view = co_await read_ledger(mode, rp);
        rp.ledger_log = std::move(view.log);
        rp.settled = std::move(view.settled);
        if (!rp.settled.empty()) burn.paid_changed();
        auto snap = co_await chain::poll(client, net_, bank, *accounts);
        const bool ledger_ok = rp.fault == Fault::kNone;
        check_chain(rp, snap);
        rp.mismatches = co_await self_contradictions(snap);
        confirmed_last_round.clear();
        if (!snap.reachable || !ledger_ok) {  // nothing may be decided without a readable ledger
            rp.plan.snapshot = std::move(snap);
            co_return rp;
        }
        std::optional<funding::BurnRate> bank_rate;
        auto rates = measure_burn(rp, snap, view.busy, bank_rate);
        audit_bank(rp, snap);
        rp.plan = funding::make_plan(std::move(snap), net_, view.busy, std::move(rates));
        rp.plan.bank_rate = bank_rate;
        rp.pending = std::move(view.pending);
        rp.first_nonce = std::max(rp.plan.snapshot.bank_nonce.value_or(0), view.next_nonce.value_or(0));
        if (mode == Mode::kStatus || rp.plan.topups.empty()) co_return rp;
        co_await estimate_gas(client, net_, rp.plan);
        apply_limits(rp);
        co_return rp;
    }

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
               const rpc::RpcObserver& observer)
    : impl_(std::make_unique<Impl>(std::move(ex), std::move(net), std::move(signer), std::move(accounts), ledger, observer)) {}

Worker::~Worker() = default;

net::awaitable<RoundPlan> Worker::prepare(Mode mode) { return impl_->prepare(mode); }

net::awaitable<RoundReport> Worker::commit(const RoundPlan& plan, CommitOptions options) {
    if (plan.mode != Mode::kLive || !plan.can_commit() || !impl_->ledger) co_return RoundReport{};
    auto ctx = impl_->context();
    ctx.replaced = options.replaced;
    auto report = co_await detail::commit_round(ctx, plan, options);
    impl_->burn.paid_changed();
    for (const auto& o : report.outcomes)
        if (o.ok())
            impl_->confirmed_last_round[o.topup.account.address] = {plan.plan.snapshot.block, o.topup.balance, o.topup.amount};
    co_return report;
}

namespace {
net::awaitable<bool> cancelled() {
    co_return (co_await net::this_coro::cancellation_state).cancelled() != net::cancellation_type::none;
}
}  // namespace

net::awaitable<void> Worker::run(Schedule schedule, RoundObserver observer) {
    auto& w = *impl_;
    while (!w.stopping && !(co_await cancelled())) {
        bool ok = false;
        std::optional<std::string> error;
        const auto start = Clock::now();
        const auto delay = w.next_delay(schedule, true);
        try {
            auto plan = co_await prepare(schedule.dry_run ? Mode::kDryRun : Mode::kLive);
            if (observer.prepared) observer.prepared(plan, std::chrono::duration<double>(Clock::now() - start).count());
            ok = plan.fault != Fault::kPoll && plan.fault != Fault::kChainId;
            const bool work = !plan.plan.topups.empty() || !plan.pending.empty();
            if (!schedule.dry_run && !w.stopping && plan.can_commit() && work) {
                // Receipts are awaited at most until the next poll is due; what is unmined then
                // stays `sent` and the next Rounds' reconcile carries it (receipts, re-broadcast,
                // replacement): polls and metrics keep their pace while a transaction is stuck.
                auto options = schedule.commit;
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(delay - (Clock::now() - start));
                options.confirm_timeout = std::clamp(left, std::chrono::milliseconds(0), options.confirm_timeout);
                auto report = co_await commit(plan, std::move(options));
                if (observer.committed) observer.committed(plan, report);
            }
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (error) {
            if (co_await cancelled()) break;
            if (observer.failed) observer.failed(std::runtime_error(*error));
        }
        w.failures = ok ? 0 : w.failures + 1;
        if (w.stopping) break;
        // A healthy network's next Round starts one interval after this one started.
        const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
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
std::vector<funding::BurnRate> Worker::burn_rates() const { return impl_->burn.rates(impl_->now()); }
void Worker::set_clock(std::function<double()> now) { impl_->now = std::move(now); }

}  // namespace keymaster::chain
