// keymaster run: one coroutine per network on one io_context, metrics and health over HTTP.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <csignal>
#include <iostream>
#include <random>
#include <set>

#include "commands.hpp"
#include "keymaster/chain/topup.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/cli/app.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "keymaster/metrics/metrics.hpp"
#include "keymaster/server/http_server.hpp"
#include "loading.hpp"

namespace keymaster::cli {
namespace {

namespace net = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

metrics::AccountLabels labels_of(const funding::Account& a) {
    return {a.network, a.home, std::string(config::role_name(a.role)), a.address.checksummed()};
}

struct LastTopUp {
    double time = 0;
    std::string amount, tx, result;
};

// One network's worker state. Single-threaded: touched only from the io_context's thread.
struct NetworkWorker {
    config::Network net;
    eth::Address bank;
    std::shared_ptr<signer::Signer> signer;
    const std::vector<funding::Account>* accounts = nullptr;  // the loaded topology's (no copy)
    std::vector<metrics::Metrics::AccountSeries*> series;  // accounts[i]'s gauges
    std::unique_ptr<rpc::RpcClient> client;
    net::steady_timer sleep;
    bool ready = false;
    int failures = 0;
    std::optional<chain::NetworkSnapshot> last;
    std::string last_error;
    double last_poll = 0;
    std::map<eth::Address, LastTopUp> last_topup;
    std::map<eth::Address, std::uint64_t> confirmed_last_round;  // address -> block
    std::map<eth::Address, double> limit_logged;                 // address -> unix time of the last log

    explicit NetworkWorker(net::io_context& io) : sleep(io) {}
};

class Daemon {
public:
    Daemon(const GlobalOptions& g, const RunOptions& o)
        : g_(g), o_(o), metrics_(KEYMASTER_VERSION, KEYMASTER_REVISION), signals_(io_, SIGINT, SIGTERM, SIGHUP) {}

    int run() {
        auto l = load_all(g_, o_.networks, [](const std::string& line) { std::cerr << line << "\n"; });
        if (!l) return kExitUsage;
        try {
            ledger_ = std::make_unique<ledger::Ledger>(g_.data_dir, /*lock=*/true);
        } catch (const std::exception& e) {
            std::cerr << "keymaster run: " << e.what() << "\n";
            return kExitUsage;
        }
        spdlog::info("ledger {}", ledger_->path());
        std::string host;
        unsigned short port = 0;
        if (!server::parse_listen_address(o_.metrics_addr, host, port)) {
            std::cerr << "--metrics-addr: expected host:port, e.g. 0.0.0.0:9090\n";
            return kExitUsage;
        }
        try {
            server_ = std::make_unique<server::HttpServer>(io_.get_executor(), host, port,
                                                           [this](const std::string& m, const std::string& t) { return handle(m, t); });
        } catch (const std::exception& e) {
            std::cerr << "--metrics-addr " << o_.metrics_addr << ": cannot listen: " << e.what() << "\n";
            return kExitUsage;
        }
        spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz, /status)", host, server_->port());
        loaded_ = std::move(*l);
        start_workers();
        wait_signal();
        io_.run();
        spdlog::info("stopped");
        return kExitOk;
    }

private:
    void start_workers() {
        workers_.clear();
        // The topology holds every funded account: the config's agent lists are not read again
        // (at 10,000 accounts they are megabytes).
        for (auto& n : loaded_.cfg.networks) n.agents = {};
        for (const auto* n : loaded_.selected) {
            auto w = std::make_unique<NetworkWorker>(io_);
            w->net = *n;
            w->bank = loaded_.banks.at(n->name);
            w->signer = loaded_.signers.at(n->name);
            w->accounts = &loaded_.topology.find(n->name)->accounts;
            w->series.reserve(w->accounts->size());
            for (const auto& a : *w->accounts) w->series.push_back(metrics_.account_series(labels_of(a)));
            rpc::RpcObserver obs;
            const std::string name = n->name;
            obs.on_calls = [this, name](const std::string& method, bool ok, std::size_t count) {
                metrics_.rpc_call(name, method, ok, count);
            };
            obs.on_round_trip = [this, name](double s) { metrics_.rpc_round_trip(name, s); };
            w->client = std::make_unique<rpc::RpcClient>(io_.get_executor(), n->name, n->endpoints, rpc_options(*n), obs);
            workers_.push_back(std::move(w));
        }
        for (auto& w : workers_) net::co_spawn(io_, work(*w, generation_), net::detached);
        spdlog::info("funding {} network(s) every {} ms{}", workers_.size(), o_.interval.count(), o_.dry_run ? " (dry run)" : "");
    }

    bool current(int gen) const { return !stopping_ && gen == generation_; }

    std::chrono::milliseconds next_delay(NetworkWorker& w, bool ok) {
        std::uniform_real_distribution<double> jitter(0.9, 1.1);
        if (ok) return std::chrono::milliseconds(static_cast<long>(o_.interval.count() * jitter(rng_)));
        // Exponential backoff from 1 s, capped at the interval (and at 5 minutes).
        const long cap = std::min<long>(std::max<long>(o_.interval.count(), 1000), 300'000);
        const long base = std::min<long>(cap, 1000L << std::min(w.failures, 16));
        return std::chrono::milliseconds(static_cast<long>(base * jitter(rng_)));
    }

    net::awaitable<void> work(NetworkWorker& w, int gen) {
        ++active_;
        const auto& n = w.net;
        while (current(gen)) {
            bool ok = false;
            try {
                ok = co_await round(w, gen);
            } catch (const std::exception& e) {
                w.last_error = e.what();
                metrics_.error(n.name, "internal");
                spdlog::error("{}: round failed: {}", n.name, e.what());
            }
            w.failures = ok ? 0 : w.failures + 1;
            if (!current(gen)) break;
            w.sleep.expires_after(next_delay(w, ok));
            boost::system::error_code ec;
            co_await w.sleep.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
        --active_;
    }

    // One round: poll, decide, send. Returns whether the poll succeeded.
    net::awaitable<bool> round(NetworkWorker& w, int gen) {
        auto& n = w.net;
        const auto start = Clock::now();
        // Unresolved top-ups first, before balances are read: one mined in between is never paid twice.
        chain::Reconciled rec;
        std::string rec_error;
        if (!o_.dry_run) {
            try {
                rec = co_await chain::reconcile(*w.client, *w.signer, *ledger_, n);
                for (const auto& line : rec.log) spdlog::info("{}: ledger: {}", n.name, line);
                if (rec.replacements) metrics_.replacements(n.name, rec.replacements);
                // Top-ups of earlier rounds (or runs) that settled now.
                for (const auto& e : rec.resolved) {
                    const auto it = std::find_if(w.accounts->begin(), w.accounts->end(),
                                                 [&](const auto& a) { return a.address.checksummed() == e.recipient; });
                    if (it == w.accounts->end() || e.state == ledger::State::kDropped) continue;
                    metrics_.topup(labels_of(*it), e.state == ledger::State::kConfirmed, to_double(e.amount, n.decimals), unix_now());
                    if (e.fee_paid > 0) metrics_.gas_spent(n.name, to_double(e.fee_paid, n.decimals));
                }
            } catch (const std::exception& e) {
                rec_error = e.what();
            }
        } else {
            for (const auto& e : ledger_->pending(n.name, w.bank.checksummed()))
                if (auto a = eth::Address::parse(e.recipient)) rec.busy.insert(*a);
        }
        auto snap = co_await chain::poll(*w.client, n, w.bank, *w.accounts);
        if (!rec_error.empty() && snap.reachable) {
            snap.reachable = false;
            snap.error = "cannot reconcile the ledger: " + rec_error;
        }
        const double took = std::chrono::duration<double>(Clock::now() - start).count();
        metrics_.poll(n.name, took, snap.reachable, unix_now());
        if (!snap.reachable) {
            w.last_error = snap.error;
            metrics_.error(n.name, snap.error.rfind("chain id mismatch", 0) == 0 ? "chain_id" : "poll");
            spdlog::error("{}: poll failed: {}", n.name, snap.error);
            co_return false;
        }
        if (!n.chain_id) {
            n.chain_id = snap.chain_id;  // pinned: every later poll must see the same chain
            spdlog::info("{}: chain id {}", n.name, snap.chain_id);
        }
        w.ready = true;
        w.last_poll = unix_now();
        w.last_error.clear();
        metrics_.block(n.name, static_cast<double>(snap.block));
        if (snap.bank_balance) metrics_.bank(n.name, w.bank.checksummed(), to_double(*snap.bank_balance, n.decimals));
        else metrics_.error(n.name, "poll");
        if (n.bank_threshold) metrics_.bank_threshold(n.name, w.bank.checksummed(), to_double(*n.bank_threshold, n.decimals));
        if (n.bank_threshold && snap.bank_balance && *snap.bank_balance < *n.bank_threshold) {
            metrics_.error(n.name, "bank_low");
            spdlog::warn("{}: bank {} holds {} {}, below bankThreshold {}", n.name, w.bank.checksummed(),
                         format_units(*snap.bank_balance, n.decimals), n.symbol, format_units(*n.bank_threshold, n.decimals));
        }
        for (std::size_t i = 0; i < snap.accounts.size(); ++i) {
            const auto& a = snap.accounts[i];
            if (a.balance)
                metrics_.set(w.series.at(i), to_double(*a.balance, n.decimals), to_double(a.account.threshold, n.decimals),
                             to_double(a.account.target, n.decimals));
            else {
                metrics_.error(n.name, "balance");
                spdlog::warn("{}: balance of {} {} unknown ({}): no decision this round", n.name,
                             config::role_name(a.account.role), a.account.address.checksummed(), a.error);
            }
        }
        // A top-up confirmed last round that the balance does not show: a lying or lagging endpoint.
        for (const auto& a : snap.accounts) {
            auto it = w.confirmed_last_round.find(a.account.address);
            if (it != w.confirmed_last_round.end() && a.balance && *a.balance < a.account.threshold) {
                metrics_.error(n.name, "balance_mismatch");
                spdlog::error("{}: {} {} was topped up in block {} but the endpoint reports {} {} (below {}): "
                              "a lagging or lying endpoint?", n.name, config::role_name(a.account.role),
                              a.account.address.checksummed(), it->second, format_units(*a.balance, n.decimals), n.symbol,
                              format_units(a.account.threshold, n.decimals));
            }
        }
        w.confirmed_last_round.clear();
        auto plan = chain::make_plan(snap, n, rec.busy);
        w.last = std::move(snap);
        for (const auto& wt : plan.waiting)
            spdlog::info("{}: {} {} below threshold, waiting for its earlier top-up to confirm", n.name,
                         config::role_name(wt.account.role), wt.account.address.checksummed());
        if (plan.topups.empty()) co_return true;
        for (const auto& t : plan.topups)
            spdlog::info("{}: {} {} (home {}) holds {} {}, below {}: top up {}{}", n.name, config::role_name(t.account.role),
                         t.account.address.checksummed(), t.account.home, format_units(t.balance, n.decimals), n.symbol,
                         format_units(t.account.threshold, n.decimals), format_units(t.amount, n.decimals),
                         o_.dry_run ? " (dry run: not sent)" : "");
        if (o_.dry_run || !current(gen)) co_return true;
        co_await chain::estimate_gas(*w.client, n, plan);
        try {
            const auto left = chain::apply_limits(plan, n.limits, ledger_->spent_since(n.name, w.bank.checksummed(), unix_now() - 86400));
            if (left) metrics_.spend_remaining(n.name, to_double(*left, n.decimals));
        } catch (const std::exception& e) {  // the ledger cannot be read: no budget, no sends
            metrics_.error(n.name, "ledger");
            spdlog::error("{}: cannot read spending from the ledger ({}); sending nothing this round", n.name, e.what());
            co_return true;
        }
        for (const auto& [b, why] : plan.blocked) {
            auto& last = w.limit_logged[b.account.address];
            if (unix_now() - last < 3600) continue;  // once per account per hour
            last = unix_now();
            metrics_.error(n.name, "limit");
            spdlog::warn("{}: top-up of {} {} to {} {} held back: {}", n.name, format_units(b.amount, n.decimals), n.symbol,
                         config::role_name(b.account.role), b.account.address.checksummed(), why);
        }
        if (plan.topups.empty()) co_return true;
        if (!plan.covered) {
            metrics_.error(n.name, "bank");
            spdlog::warn("{}: bank cannot cover all top-ups this round ({} {} needed with fees)", n.name,
                         format_units(plan.total + plan.max_fee_cost, n.decimals), n.symbol);
        }
        chain::ExecuteOptions eo;
        eo.confirm_timeout = std::chrono::minutes(5);
        const std::uint64_t first = std::max(plan.snapshot.bank_nonce.value_or(0), rec.next_nonce.value_or(0));
        auto outcomes = co_await chain::execute(*w.client, *w.signer, *ledger_, n, plan, first, eo);
        for (const auto& oc : outcomes) {
            const auto l = labels_of(oc.topup.account);
            if (oc.replacements) metrics_.replacements(n.name, oc.replacements);
            metrics_.topup(l, oc.ok(), to_double(oc.topup.amount, n.decimals), unix_now());
            if (oc.fee_paid > 0) metrics_.gas_spent(n.name, to_double(oc.fee_paid, n.decimals));
            if (oc.ok()) w.confirmed_last_round[oc.topup.account.address] = oc.block;
            if (!oc.ok() && oc.error.rfind("ledger cannot be written", 0) == 0) metrics_.error(n.name, "ledger");
            if (!oc.ok()) {
                metrics_.error(n.name, "topup");
                spdlog::error("{}: top-up of {} {} to {} {} failed: {}", n.name, format_units(oc.topup.amount, n.decimals),
                              n.symbol, l.role, l.address, oc.error);
            }
            w.last_topup[oc.topup.account.address] =
                LastTopUp{unix_now(), format_units(oc.topup.amount, n.decimals), oc.tx_hash, oc.ok() ? "success" : oc.error};
        }
        co_return true;
    }

    void wait_signal() {
        signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                net::co_spawn(io_, reload(), net::detached);
                wait_signal();
                return;
            }
            shutdown(sig);
        });
    }

    void wake_all() {
        for (auto& w : workers_) w->sleep.cancel();
    }

    // Waits until every worker of the current generation has left its loop.
    net::awaitable<bool> drain(std::chrono::milliseconds limit) {
        net::steady_timer t(io_);
        const auto deadline = Clock::now() + limit;
        while (active_ > 0 && Clock::now() < deadline) {
            t.expires_after(std::chrono::milliseconds(50));
            co_await t.async_wait(net::use_awaitable);
        }
        co_return active_ == 0;
    }

    void shutdown(int sig) {
        if (stopping_) return;
        stopping_ = true;
        spdlog::info("signal {}: no new top-ups; waiting up to {} s for those in flight", sig, o_.shutdown_timeout.count());
        wake_all();
        net::co_spawn(io_, [this]() -> net::awaitable<void> {
            const bool clean = co_await drain(o_.shutdown_timeout);
            if (!clean) spdlog::warn("shutdown: top-ups still in flight after {} s; their transactions may still be mined",
                                     o_.shutdown_timeout.count());
            server_->stop();
            signals_.cancel();
            io_.stop();
        }, net::detached);
    }

    net::awaitable<void> reload() {
        if (reloading_ || stopping_) co_return;
        reloading_ = true;
        spdlog::info("SIGHUP: reloading {}", g_.config);
        auto l = load_all(g_, o_.networks, [](const std::string& line) { spdlog::error("{}", line); });
        if (!l) {
            metrics_.error("", "config");
            spdlog::error("config reload failed; keeping the running config");
            reloading_ = false;
            co_return;
        }
        // Old workers finish their round (no two workers ever fund one network at once).
        ++generation_;
        wake_all();
        co_await drain(std::chrono::minutes(10));
        std::set<std::pair<std::string, eth::Address>> keep;
        for (const auto& na : l->topology.networks)
            for (const auto& a : na.accounts) keep.insert({a.network, a.address});
        for (auto& w : workers_) {
            for (const auto& a : *w->accounts)
                if (!keep.count({a.network, a.address})) metrics_.forget_account(labels_of(a));
            if (!l->banks.count(w->net.name) || l->banks.at(w->net.name) != w->bank)
                metrics_.forget_bank(w->net.name, w->bank.checksummed());
        }
        loaded_ = std::move(*l);
        start_workers();
        spdlog::info("config reloaded");
        reloading_ = false;
    }

    server::Response handle(const std::string& method, const std::string& target) {
        const std::string path = target.substr(0, target.find('?'));
        if (method != "GET" && method != "HEAD") return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.serialize()};
        if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
        if (path == "/readyz") {
            json missing = json::array();
            for (const auto& w : workers_)
                if (!w->ready) missing.push_back(w->net.name);
            if (missing.empty() && !workers_.empty()) return {200, "application/json", json{{"ready", true}}.dump() + "\n"};
            return {503, "application/json", json{{"ready", false}, {"notReady", missing}}.dump() + "\n"};
        }
        if (path == "/status") return {200, "application/json", status().dump(2) + "\n"};
        return {404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz, /readyz, /status\n"};
    }

    // Balances, thresholds, last top-ups and errors. No secrets and no endpoint URLs.
    json status() const {
        json out = {{"version", KEYMASTER_VERSION}, {"dryRun", o_.dry_run}, {"networks", json::array()}};
        for (const auto& w : workers_) {
            const auto& n = w->net;
            json jn = {{"name", n.name}, {"ready", w->ready}, {"symbol", n.symbol},
                       {"lastError", w->last_error.empty() ? json(nullptr) : json(w->last_error)},
                       {"lastPoll", w->last_poll > 0 ? json(w->last_poll) : json(nullptr)},
                       {"bank", {{"address", w->bank.checksummed()}, {"balance", nullptr}}},
                       {"accounts", json::array()}};
            if (n.chain_id) jn["chainId"] = *n.chain_id;
            if (w->last) {
                jn["block"] = w->last->block;
                if (w->last->bank_balance) jn["bank"]["balance"] = format_units(*w->last->bank_balance, n.decimals);
            }
            for (const auto& a : *w->accounts) {
                json ja = {{"home", a.home}, {"role", std::string(config::role_name(a.role))},
                           {"address", a.address.checksummed()}, {"threshold", format_units(a.threshold, n.decimals)},
                           {"target", format_units(a.target, n.decimals)}, {"balance", nullptr},
                           {"lastError", nullptr}, {"lastTopUp", nullptr}};
                if (w->last)
                    for (const auto& s : w->last->accounts)
                        if (s.account.address == a.address) {
                            if (s.balance) ja["balance"] = format_units(*s.balance, n.decimals);
                            else ja["lastError"] = s.error;
                        }
                if (auto it = w->last_topup.find(a.address); it != w->last_topup.end())
                    ja["lastTopUp"] = {{"time", it->second.time}, {"amount", it->second.amount},
                                       {"tx", it->second.tx}, {"result", it->second.result}};
                jn["accounts"].push_back(ja);
            }
            out["networks"].push_back(jn);
        }
        return out;
    }

    GlobalOptions g_;
    RunOptions o_;
    net::io_context io_;
    metrics::Metrics metrics_;
    net::signal_set signals_;
    std::unique_ptr<server::HttpServer> server_;
    std::unique_ptr<ledger::Ledger> ledger_;
    Loaded loaded_;
    std::vector<std::unique_ptr<NetworkWorker>> workers_;
    int generation_ = 0;
    int active_ = 0;
    bool stopping_ = false;
    bool reloading_ = false;
    std::mt19937 rng_{std::random_device{}()};
};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == 0 || i > 9) return std::nullopt;
    long v = std::stol(text.substr(0, i));
    const std::string unit = text.substr(i);
    long ms;
    if (unit.empty() || unit == "s") ms = v * 1000;
    else if (unit == "d") ms = v * 86'400'000;
    else if (unit == "ms") ms = v;
    else if (unit == "m") ms = v * 60'000;
    else if (unit == "h") ms = v * 3'600'000;
    else return std::nullopt;
    if (ms <= 0) return std::nullopt;
    return std::chrono::milliseconds(ms);
}

int cmd_run(const GlobalOptions& g, const RunOptions& o) { return Daemon(g, o).run(); }

}  // namespace keymaster::cli
