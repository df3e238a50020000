#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keymaster/common/hex.hpp"
#include "keymaster/signer/signer.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

using funding::Fees;

namespace net = boost::asio;

eth::Transaction build_tx(const Fees& fees, std::uint64_t chain_id, std::uint64_t nonce, const eth::Address& to,
                          const Wei& value, std::uint64_t gas_limit) {
    eth::Transaction tx;
    tx.type = fees.type;
    tx.chain_id = chain_id;
    tx.nonce = nonce;
    tx.gas_price = fees.gas_price;
    tx.max_fee_per_gas = fees.max_fee;
    tx.max_priority_fee_per_gas = fees.priority_fee;
    tx.gas_limit = gas_limit;
    tx.to = to;
    tx.value = value;
    return tx;
}

ledger::Entry entry_of(const Context& ctx, const eth::Transaction& tx, const Bytes& raw, const std::string& home,
                       const std::string& role, std::uint64_t block) {
    ledger::Entry e;
    e.network = ctx.net.name;
    e.chain_id = tx.chain_id.value_or(0);
    e.bank = ctx.signer->address().checksummed();
    e.recipient = tx.to ? tx.to->checksummed() : std::string();
    e.home = home;
    e.role = role;
    e.amount = tx.value;
    e.nonce = tx.nonce;
    e.tx_type = static_cast<int>(tx.type);
    e.max_fee = tx.max_fee_per_gas;
    e.priority_fee = tx.max_priority_fee_per_gas;
    e.gas_price = tx.gas_price;
    e.gas_limit = tx.gas_limit;
    e.raw = to_hex(raw);
    e.tx_hash = to_hex(eth::transaction_hash(raw));
    e.sent_block = block;
    return e;
}

Fees fees_of(const ledger::Entry& e) {
    Fees f;
    f.type = static_cast<eth::TxType>(e.tx_type);
    f.gas_price = e.gas_price;
    f.max_fee = e.max_fee;
    f.priority_fee = e.priority_fee;
    return f;
}

funding::FeePaid paid_for(const Context& ctx, const ledger::Entry& e, const rpc::ReceiptInfo& r) {
    if (r.fee_unreadable)
        spdlog::error("{}: the receipt of tx {} has an unreadable l1Fee or operator fee field: booked without it, so "
                      "understated (the bank audit will show the difference)",
                      ctx.net.name, e.tx_hash);
    return funding::fee_paid({r.gas_used, r.effective_gas_price, r.l1_fee, r.operator_fee_scalar, r.operator_fee_constant},
                             fees_of(e), ctx.jovian);
}

namespace {

// Shared by the signing coroutines, which may outlive a cancelled caller: they own what they use
// (each job's transaction and result; its caller's slot is written only once all are done).
struct SignState {
    struct Job {
        eth::Transaction tx;
        std::optional<signer::SignResult> result;
        std::optional<signer::SignResult>* into;
    };
    std::shared_ptr<signer::Signer> signer;
    std::vector<Job> jobs;
    std::size_t next = 0, running = 0;
    bool stop = false;
    std::optional<net::steady_timer> all_done;
};

net::awaitable<void> sign_some(std::shared_ptr<SignState> st) {
    while (!st->stop && st->next < st->jobs.size()) {
        auto& job = st->jobs[st->next++];
        try {
            job.result = co_await st->signer->sign(eth::signing_hash(job.tx));
        } catch (const std::exception& e) {
            job.result = signer::sign_failure(e.what());
        }
        if (!*job.result) st->stop = true;  // nothing after a failure is sent: stop signing
    }
    if (--st->running == 0) st->all_done->cancel();
}

}  // namespace

net::awaitable<void> sign_in_order(std::shared_ptr<signer::Signer> signer, std::vector<ToSign> jobs) {
    constexpr std::size_t kSigners = 4;
    auto ex = co_await net::this_coro::executor;
    auto st = std::make_shared<SignState>();
    st->signer = std::move(signer);
    st->jobs.reserve(jobs.size());
    for (const auto& j : jobs) st->jobs.push_back({*j.tx, std::nullopt, j.signature});
    st->all_done.emplace(ex, net::steady_timer::time_point::max());
    st->running = std::min(kSigners, st->jobs.size());
    for (std::size_t k = 0, n = st->running; k < n; ++k) net::co_spawn(ex, sign_some(st), net::detached);
    struct StopOnExit {
        SignState& st;
        ~StopOnExit() { st.stop = true; }  // a cancelled caller: the signers finish the Sign in hand, then stop
    } guard{*st};
    while (st->running > 0) {
        boost::system::error_code ec;
        co_await st->all_done->async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    for (auto& job : st->jobs) {
        if (!job.result) break;  // not signed after an earlier failure
        *job.into = std::move(*job.result);
        if (!**job.into) break;
    }
}

net::awaitable<Expected<ledger::Entry>> sign_entry(const Context& ctx, const eth::Transaction& tx, const std::string& home,
                                                  const std::string& role, std::uint64_t block) {
    std::optional<signer::SignResult> sig;
    std::vector<ToSign> one(1, ToSign{&tx, &sig});  // (GCC 12: no braced list inside co_await)
    co_await sign_in_order(ctx.signer, std::move(one));
    if (!sig || !*sig)
        co_return Problem{Fault::kSigning, "signing failed: " + (sig ? sig->error().message : std::string("no signature"))};
    co_return entry_of(ctx, tx, eth::encode_signed(tx, **sig), home, role, block);
}

net::awaitable<std::optional<Problem>> journal(Context& ctx, std::vector<ledger::Entry>& entries) {
    try {
        co_await ctx.in_ledger([&] {
            ctx.ledger->atomically([&] {
                if (ctx.sender) ctx.ledger->hold_lease(ctx.sender->name, ctx.sender->holder, ctx.sender->epoch, ctx.sender->seconds);
                ctx.ledger->record_intents(entries);
            });
        });
    } catch (const std::exception& ex) {
        co_return problem_of(ex, Fault::kLedger, "ledger cannot be written, not sent");
    }
    co_return std::nullopt;
}

net::awaitable<std::optional<Problem>> journal(Context& ctx, const std::vector<ledger::Entry*>& entries) {
    std::vector<ledger::Entry> written;
    written.reserve(entries.size());
    for (const auto* e : entries) written.push_back(*e);
    if (auto problem = co_await journal(ctx, written)) co_return problem;
    auto it = written.begin();
    for (auto* e : entries) *e = std::move(*it++);  // with its id and creation time
    co_return std::nullopt;
}

void Payment::fail(Fault f, std::string why) {
    outcome.state = Outcome::State::kFailed;
    outcome.fault = f;
    outcome.error = std::move(why);
}

StepReport& StepReport::operator+=(StepReport other) {
    replacements += other.replacements;
    for (auto& p : other.problems) problems.push_back(std::move(p));
    return *this;
}

}  // namespace keymaster::chain::detail
