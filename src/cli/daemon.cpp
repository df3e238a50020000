// keymaster run: one Worker per network on one io_context, metrics and health over HTTP.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <iostream>
#include <set>

#include "commands.hpp"
#include "keymaster/chain/leadership.hpp"
#include "keymaster/chain/ledger_thread.hpp"
#include "keymaster/cli/app.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "keymaster/metrics/metrics.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/server/http_server.hpp"
#include "loading.hpp"
#include "report.hpp"
#include "run_sync.hpp"

namespace keymaster::cli {
namespace {

namespace net = boost::asio;
using nlohmann::json;

// One network as the daemon runs it: its Worker, the coroutine's lifetime, and its view.
struct Slot {
    std::unique_ptr<chain::Worker> worker;
    std::unique_ptr<RoundView> view;
    net::cancellation_signal cancel;
    bool running = false;  // the Worker's coroutine has not exited
};

class Daemon {
public:
    Daemon(const GlobalOptions& g, const RunOptions& o)
        : g_(g),
          o_(o),
          clock_(*g.clock),
          metrics_(KEYMASTER_VERSION, KEYMASTER_REVISION, clock_.wall()),
          signals_(io_, SIGINT, SIGTERM, SIGHUP) {}

    int run() {
        auto l = run_on(io_, load_all(g_, o_.networks, [](const std::string& line) { std::cerr << line << "\n"; }));
        if (!l) return kExitUsage;
        auto opened = open_ledger(g_, LedgerUse::kWrite);
        if (!opened) {
            std::cerr << "keymaster run: " << opened.error().message << "\n";
            return kExitUsage;
        }
        ledger_ = std::move(*opened);
        spdlog::info("ledger {}", ledger_->path());
        thread_ = std::make_unique<chain::LedgerThread>(*ledger_, clock_);
        if (!listen()) return kExitUsage;
        metrics_.init_network("", {std::string(fault_scope(Fault::kConfig)), std::string(fault_scope(Fault::kInternal))});
        metrics_.ledger_up(true);
        if (auto name = lease_name(g_)) {
            lead_ = std::make_unique<chain::Leadership>(*ledger_, *name, holder_, o_.lease_duration, clock_);
            (void)run_on(io_, [this]() -> net::awaitable<bool> {  // before the first Round: it knows whether it may send
                co_await renew_lease();
                co_return true;
            }());
        }
        net::co_spawn(io_, keep_lease(), net::detached);
        net::co_spawn(io_, watch_ledger(), net::detached);
        start(std::move(*l));
        wait_signal();
        io_.restart();
        io_.run();
        spdlog::info("stopped");
        return kExitOk;
    }

private:
    bool listen() {
        std::string host;
        unsigned short port = 0;
        if (!server::parse_listen_address(o_.metrics_addr, host, port)) {
            std::cerr << "--metrics-addr: expected host:port, e.g. 0.0.0.0:9090\n";
            return false;
        }
        try {
            server_ = std::make_unique<server::HttpServer>(io_.get_executor(), host, port,
                                                           [this](const std::string& m, const std::string& t) { return handle(m, t); });
        } catch (const std::exception& e) {
            std::cerr << "--metrics-addr " << o_.metrics_addr << ": cannot listen: " << e.what() << "\n";
            return false;
        }
        spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz, /status)", host, server_->port());
        return true;
    }

    chain::Schedule schedule() const {
        chain::Schedule s;
        s.interval = o_.interval;
        s.mode = o_.dry_run ? chain::Mode::kDryRun : chain::Mode::kLive;
        if (lead_) s.may_send = [lead = lead_.get()] { return lead->leading(); };  // a standby never signs
        return s;
    }

    // One claim of the leader lease: the gauge, a log line when who leads changes. A ledger that
    // cannot be reached leaves this replica standing by (it cannot journal anyway).
    net::awaitable<void> renew_lease() {
        const auto before = lead_->last();
        try {
            ledger::Lease now;
            co_await thread_->run([&](ledger::Ledger&) { now = lead_->claim(); });
            if (chain::lease_changed(before, now)) {
                if (now.mine) spdlog::info("lease {}: leading (epoch {}, holder {})", lead_->name(), now.epoch, lead_->holder());
                else spdlog::info("lease {}: standing by; {} leads (epoch {})", lead_->name(), now.holder, now.epoch);
            }
        } catch (const std::exception& e) {
            metrics_.error("", std::string(fault_scope(Fault::kLedger)));
            spdlog::error("lease {}: cannot claim it: {}; standing by", lead_->name(), e.what());
        }
        metrics_.leader(lead_->name(), lead_->leading());
        co_await keep_senders();
    }

    // The sender leases our Workers hold (one per bank and chain, claimed by their live Rounds):
    // renewed every --lease-renew while we may send, so that between Rounds no other process takes
    // a bank we send from; ended when we stand by, so that the new leader can.
    net::awaitable<void> keep_senders() {
        const double seconds = std::chrono::duration<double>(o_.lease_duration).count();
        if (lead_ && !lead_->leading()) co_return co_await release_senders();
        std::vector<std::pair<std::string, std::string>> held;
        for (const auto& s : slots_)
            if (auto name = s->worker->sender_lease(); !name.empty()) held.emplace_back(std::move(name), s->worker->sender_holder());
        try {
            co_await thread_->run([&](ledger::Ledger& l) { (void)l.renew_leases(held, seconds); });  // one transaction for all
        } catch (const std::exception& e) {
            metrics_.error("", std::string(fault_scope(Fault::kLedger)));
            spdlog::error("sender leases: cannot renew them: {}", e.what());
        }
    }

    // Our Workers' sender leases, ended (they stop, or are replaced by a reload).
    net::awaitable<void> release_senders() {
        std::vector<std::pair<std::string, std::string>> held;  // copied: a reload may replace the slots meanwhile
        for (const auto& s : slots_)
            if (auto name = s->worker->sender_lease(); !name.empty()) held.emplace_back(std::move(name), s->worker->sender_holder());
        for (const auto& [name, holder] : held) {
            try {
                co_await thread_->run([&](ledger::Ledger& l) { l.release_lease(name, holder); });
            } catch (const std::exception& e) {
                spdlog::warn("sender lease {}: cannot release it ({}); it expires by itself", name, e.what());
            }
        }
    }

    // Claims the lease every --lease-renew until shutdown, then releases it so that a standby
    // takes over at once.
    net::awaitable<void> keep_lease() {
        net::steady_timer t(io_);
        while (!stopping_) {
            t.expires_after(o_.lease_renew);
            boost::system::error_code ec;
            co_await t.async_wait(net::redirect_error(net::use_awaitable, ec));
            if (stopping_) break;
            if (lead_) co_await renew_lease();
            else co_await keep_senders();
        }
    }

    // The ledger's health, every second: keymaster_ledger_up and /readyz say when it is away (a
    // call hangs past the stall time, or failed); then one cheap call now and then sees it back.
    net::awaitable<void> watch_ledger() {
        net::steady_timer t(io_);
        bool was_up = true;
        while (!stopping_) {
            t.expires_after(std::chrono::seconds(1));
            boost::system::error_code ec;
            co_await t.async_wait(net::redirect_error(net::use_awaitable, ec));
            if (stopping_) break;
            const bool up = !thread_->away() || co_await thread_->ping();
            if (up != was_up) {
                if (up) spdlog::info("ledger {}: answering again", ledger_->path());
                else spdlog::error("ledger {}: not answering: balances are polled, nothing is sent until it is back", ledger_->path());
            }
            was_up = up;
            metrics_.ledger_up(up);
        }
    }

    std::unique_ptr<Slot> make_slot(const Loaded& l, const config::Network& n) {
        auto slot = std::make_unique<Slot>();
        rpc::RpcObserver obs;
        const std::string name = n.name;
        obs.on_calls = [this, name](const std::string& method, bool ok, std::size_t count) {
            metrics_.rpc_call(name, method, ok, count);
        };
        obs.on_round_trip = [this, name](double s) { metrics_.rpc_round_trip(name, s); };
        slot->worker = std::make_unique<chain::Worker>(io_.get_executor(), n, l.signers.at(n.name), l.accounts.at(n.name),
                                                       ledger_.get(), obs, clock_);
        slot->worker->set_ledger_thread(thread_.get());
        slot->worker->set_sender(holder_, o_.lease_duration);  // one sender per bank and chain
        slot->worker->set_configured_banks(bank_addresses(l));  // another bank's entries in flight are reconciled too
        slot->view = std::make_unique<RoundView>(metrics_, *slot->worker, clock_);
        return slot;
    }

    // Starts one Worker per selected network. The Workers own copies of their settings and share
    // their accounts: `loaded_` may be replaced while they run.
    void start(Loaded l) {
        loaded_ = std::move(l);
        slots_.clear();
        std::vector<std::string> scopes(network_scopes().begin(), network_scopes().end());
        scopes.emplace_back(fault_scope(Fault::kInternal));
        for (const auto* n : loaded_.selected) {
            metrics_.init_network(n->name, scopes);  // every series exists from the first scrape
            slots_.push_back(make_slot(loaded_, *n));
        }
        for (auto& s : slots_) spawn(*s);
        spdlog::info("funding {} network(s) every {} ms{}", slots_.size(), o_.interval.count(), o_.dry_run ? " (dry run)" : "");
    }

    void spawn(Slot& s) {
        chain::RoundObserver obs;
        RoundView* view = s.view.get();
        obs.prepared = [view](const chain::RoundPlan& p, double seconds) { view->prepared(p, seconds); };
        obs.committed = [view](const chain::RoundPlan& p, const chain::RoundReport& r) { view->committed(p, r); };
        obs.failed = [view](const std::exception& e) { view->failed(e); };
        s.running = true;
        Slot* slot = &s;
        const std::string name = s.worker->network().name;
        auto sched = schedule();
        sched.commit.replaced = [this, name] { metrics_.replacements(name, 1); };  // counted when broadcast
        net::co_spawn(io_, s.worker->run(std::move(sched), std::move(obs)),
                      net::bind_cancellation_slot(s.cancel.slot(), [this, slot, name](std::exception_ptr e) {
                          slot->running = false;
                          if (!any_running())
                              for (auto* t : joining_) t->cancel();  // wake every join()
                          if (!e) return;
                          try {
                              std::rethrow_exception(e);
                          } catch (const std::exception& ex) {
                              spdlog::info("{}: worker ended: {}", name, ex.what());
                          }
                      }));
    }

    [[nodiscard]] bool any_running() const {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->running; });
    }

    // Waits until no Worker's coroutine is alive, or `limit` has passed; whether they all left.
    // Awaited, not polled: the last Worker to leave cancels the waiting timers.
    net::awaitable<bool> join(std::optional<std::chrono::milliseconds> limit) {
        if (!any_running()) co_return true;
        net::steady_timer t(io_, net::steady_timer::time_point::max());
        if (limit) t.expires_after(*limit);
        joining_.push_back(&t);
        boost::system::error_code ec;
        co_await t.async_wait(net::redirect_error(net::use_awaitable, ec));
        joining_.erase(std::find(joining_.begin(), joining_.end(), &t));
        co_return !any_running();
    }

    void stop_all() {
        for (auto& s : slots_) s->worker->stop();
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

    // SIGTERM: no new Rounds; commits get --shutdown-timeout to reach the ledger, then are
    // cancelled; the process exits only after every Worker has really left.
    void shutdown(int sig) {
        if (stopping_) return;
        stopping_ = true;
        spdlog::info("signal {}: no new top-ups; waiting up to {} s for those in flight", sig, o_.shutdown_timeout.count());
        stop_all();
        net::co_spawn(io_, [this]() -> net::awaitable<void> {
            if (!co_await join(o_.shutdown_timeout)) {
                spdlog::warn("shutdown: top-ups still in flight after {} s: cancelled; their transactions may still be mined, "
                             "the ledger has them", o_.shutdown_timeout.count());
                for (auto& s : slots_)
                    if (s->running) s->cancel.emit(net::cancellation_type::terminal);
                (void)co_await join(std::nullopt);
            }
            co_await release_lease();
            server_->stop();
            signals_.cancel();
            io_.stop();
        }, net::detached);
    }

    // SIGHUP: the new config is loaded on this loop; the old Workers finish their Round and exit
    // (however long that takes) before any new one starts: two Workers never fund one network.
    net::awaitable<void> reload() {
        if (reloading_ || stopping_) co_return;
        reloading_ = true;
        spdlog::info("SIGHUP: reloading {}", g_.config);
        auto l = co_await load_all(g_, o_.networks, [](const std::string& line) { spdlog::error("{}", line); });
        if (!l) {
            metrics_.error("", std::string(fault_scope(Fault::kConfig)));
            spdlog::error("config reload failed; keeping the running config");
            reloading_ = false;
            co_return;
        }
        stop_all();
        (void)co_await join(std::nullopt);
        if (stopping_) co_return;  // SIGTERM came while the old Workers finished: the shutdown waits for them
        co_await release_senders();  // a network moved elsewhere is not kept from its new sender
        if (stopping_) co_return;    // SIGTERM came meanwhile: no new Workers
        std::set<std::pair<std::string, eth::Address>> keep;
        for (const auto& [name, accounts] : l->accounts)
            for (const auto& a : *accounts) keep.insert({a.network, a.address});
        for (auto& s : slots_) {
            const auto& name = s->worker->network().name;
            auto bank = l->banks.count(name) ? std::optional<eth::Address>(l->banks.at(name)) : std::nullopt;
            s->view->forget_unless(keep, bank);
            const bool still = std::any_of(l->selected.begin(), l->selected.end(), [&](const auto* n) { return n->name == name; });
            if (!still) metrics_.forget_network(name);
        }
        start(std::move(*l));
        spdlog::info("config reloaded");
        reloading_ = false;
    }

    server::Response handle(const std::string& method, const std::string& target) {
        const std::string path = target.substr(0, target.find('?'));
        if (method != "GET" && method != "HEAD") return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", {}, metrics_.stream()};
        if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
        if (path == "/readyz") {
            json missing = json::array();
            for (const auto& s : slots_)
                if (!s->worker->ready()) missing.push_back(s->worker->network().name);
            const bool ledger_up = !thread_->away();
            if (missing.empty() && !slots_.empty() && ledger_up) return {200, "application/json", json{{"ready", true}}.dump() + "\n"};
            return {503, "application/json", json{{"ready", false}, {"notReady", missing}, {"ledger", ledger_up ? "up" : "away"}}.dump() + "\n"};
        }
        if (path == "/status") return {200, "application/json", status().dump(2) + "\n"};
        return {404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz, /readyz, /status\n"};
    }

    // Every Worker has left: a standby may take over at once.
    net::awaitable<void> release_lease() {
        co_await release_senders();
        if (!lead_) co_return;
        try {
            co_await thread_->run([&](ledger::Ledger&) { lead_->release(); });
            metrics_.leader(lead_->name(), false);
        } catch (const std::exception& e) {
            spdlog::warn("lease {}: cannot release it ({}); it expires by itself", lead_->name(), e.what());
        }
    }

    // Balances, thresholds, last top-ups and errors. No secrets and no endpoint URLs.
    json status() const {
        json out = {{"version", KEYMASTER_VERSION}, {"dryRun", o_.dry_run}, {"networks", json::array()}};
        if (lead_) {
            const auto& l = lead_->last();
            out["lease"] = {{"name", lead_->name()}, {"holder", lead_->holder()}, {"leading", lead_->leading()},
                            {"leader", l.holder}, {"epoch", l.epoch}};
        }
        for (const auto& s : slots_) out["networks"].push_back(s->view->status());
        return out;
    }

    GlobalOptions g_;
    RunOptions o_;
    net::io_context io_;
    //! The one clock (main's) of the ledger, the Workers, the lease and the views.
    const Clock& clock_;
    metrics::Metrics metrics_;
    net::signal_set signals_;
    std::unique_ptr<server::HttpServer> server_;
    std::unique_ptr<ledger::Ledger> ledger_;
    std::unique_ptr<chain::Leadership> lead_;  //!< with a shared (Postgres) ledger only
    std::string holder_ = chain::holder_id();  //!< this process, in every lease it holds
    Loaded loaded_;
    std::vector<std::unique_ptr<Slot>> slots_;
    //! Where every ledger call runs: the loop never waits for the database. Declared after what its
    //! calls touch (the ledger, the lease, the Workers), so that it is joined before they go.
    std::unique_ptr<chain::LedgerThread> thread_;
    bool stopping_ = false;
    bool reloading_ = false;
    std::vector<net::steady_timer*> joining_;  // join()s waiting for the last Worker to leave
};

}  // namespace

int cmd_run(const GlobalOptions& g, const RunOptions& o) { return Daemon(g, o).run(); }

}  // namespace keymaster::cli
