#include "keymaster/chain/ledger_thread.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keymaster/ledger/ledger.hpp"

namespace keymaster::chain {

namespace net = boost::asio;

struct LedgerThread::Impl {
    Impl(std::function<double()> s, double st) : steady(std::move(s)), stall(st) {}
    net::thread_pool pool{1};
    std::function<double()> steady;
    double stall;
    std::atomic<double> busy_since{-1};   // when the call in progress began (-1: none)
    std::atomic<double> failing_since{-1};  // when the first of the failed calls since the last success began (-1: none)
};

LedgerThread::LedgerThread(ledger::Ledger& ledger, std::function<double()> steady, double stall)
    : ledger_(ledger), impl_(std::make_unique<Impl>(std::move(steady), stall)) {}

LedgerThread::~LedgerThread() { impl_->pool.join(); }

net::awaitable<void> LedgerThread::run(std::function<void(ledger::Ledger&)> fn) {
    auto& s = *impl_;
    co_await net::co_spawn(
        s.pool.get_executor(),
        [&]() -> net::awaitable<void> {
            const double began = s.steady();
            s.busy_since = began;
            try {
                fn(ledger_);
            } catch (const ledger::FencedError&) {
                s.busy_since = -1;  // the database answered: another replica leads
                throw;
            } catch (const ledger::LedgerError&) {
                s.busy_since = -1;
                if (s.failing_since.load() < 0) s.failing_since = began;
                throw;
            } catch (...) {
                s.busy_since = -1;
                throw;
            }
            s.busy_since = -1;
            s.failing_since = -1;
            co_return;
        },
        net::use_awaitable);
}

double LedgerThread::away_for() const {
    const double now = impl_->steady();
    const double busy = impl_->busy_since.load(), failing = impl_->failing_since.load();
    double since = -1;
    if (busy >= 0 && now - busy > impl_->stall) since = busy;
    if (failing >= 0 && (since < 0 || failing < since)) since = failing;
    return since < 0 ? 0.0 : std::max(now - since, 1e-9);
}

bool LedgerThread::away() const { return away_for() > 0; }

net::awaitable<bool> LedgerThread::ping() {
    if (impl_->busy_since.load() >= 0) co_return false;
    try {
        co_await run([](ledger::Ledger& l) { l.ping(); });
    } catch (const std::exception&) {
        co_return false;
    }
    co_return true;
}

}  // namespace keymaster::chain
