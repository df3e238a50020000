#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <set>

#include "keymaster/common/duration.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "batch.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {
namespace {

namespace net = boost::asio;
using nlohmann::json;
using SteadyTime = std::chrono::steady_clock::time_point;

// A receipt of one of a payment's transactions (by index: the payment's entries only grow).
struct Mined {
    std::size_t payment;
    std::size_t entry;
    rpc::ReceiptInfo receipt;
};

// The receipt asked for one of a payment's transactions.
struct Asked {
    std::size_t payment;
    std::size_t entry;
    Answer<rpc::ReceiptInfo> receipt;
};

// The receipt loop of one commit, as named steps.
class Watch {
public:
    Watch(Context& ctx, std::vector<Payment>& payments, const CommitOptions& opt) : ctx_(ctx), pay_(payments), opt_(opt) {}

    net::awaitable<StepReport> run() {
        const auto deadline = ctx_.clock.steady() + opt_.confirm_timeout;
        const std::size_t total = waiting().size();
        std::size_t last_reported = SIZE_MAX;
        net::steady_timer timer(co_await net::this_coro::executor);
        last_rebroadcast_ = ctx_.clock.steady();
        bool first = true;
        while (!waiting().empty() && ctx_.clock.steady() < deadline) {
            timer.expires_after(opt_.receipt_tick);
            co_await timer.async_wait(net::use_awaitable);
            if (!first && !(co_await receipts_due())) continue;
            first = false;
            const auto w = waiting();
            std::optional<std::uint64_t> block;
            std::vector<Mined> mined;
            if (!(co_await fetch(w, block, mined))) continue;
            co_await record(mined);
            std::set<std::size_t> done;
            for (const auto& m : mined) done.insert(m.payment);
            co_await rebroadcast_unmined(w, done);
            if (block) co_await replace_stuck_ones(w, done, *block);
            const std::size_t confirmed = total - waiting().size();
            if (confirmed != last_reported && opt_.progress)
                opt_.progress(ctx_.net.name + ": " + std::to_string(confirmed) + "/" + std::to_string(total) + " confirmed");
            last_reported = confirmed;
        }
        for (auto i : waiting()) {
            auto& o = pay_[i].outcome;
            o.error = "not confirmed within " + format_duration(static_cast<double>(opt_.confirm_timeout.count()) / 1000.0) +
                      " (tx " + o.tx_hash + "); the ledger keeps it and the next round reconciles it, never paying the account twice";
        }
        co_return std::move(report_);
    }

private:
    std::vector<std::size_t> waiting() const {
        std::vector<std::size_t> w;
        for (std::size_t i = 0; i < pay_.size(); ++i)
            if (pay_[i].watched()) w.push_back(i);
        return w;
    }

    // Receipts are fetched when a new block appears (only eth_blockNumber is asked every tick), and
    // at least every max_receipt_poll even without one (a node that lags or lies).
    net::awaitable<bool> receipts_due() {
        if (!receipts_block_ || ctx_.clock.steady() - last_fetch_ >= opt_.max_receipt_poll) co_return true;
        std::optional<std::uint64_t> now_block;
        try {
            std::string method = "eth_blockNumber";  // (GCC 12: no literal inside co_await)
            now_block = rpc::as_u64(co_await ctx_.client.call(std::move(method), json::array()));
        } catch (const std::exception& e) {
            spdlog::debug("{}: eth_blockNumber failed while waiting for receipts: {}", ctx_.net.name, e.what());
        }
        co_return !now_block || *now_block > *receipts_block_;
    }

    net::awaitable<bool> fetch(const std::vector<std::size_t>& w, std::optional<std::uint64_t>& block, std::vector<Mined>& mined) {
        last_fetch_ = ctx_.clock.steady();
        Calls calls;
        const auto chain_id = calls.add<std::uint64_t>({"eth_chainId", json::array()});
        const auto head = calls.add<std::uint64_t>({"eth_blockNumber", json::array()});
        std::vector<Asked> asked;
        for (auto i : w)
            for (std::size_t k = 0; k < pay_[i].entries.size(); ++k) {
                const auto& hash = pay_[i].entries[k].tx_hash;
                asked.push_back({i, k, calls.add<rpc::ReceiptInfo>({"eth_getTransactionReceipt", json::array({hash})})});
            }
        Answers answers;
        try {
            answers = Answers(co_await ctx_.client.batch(calls.take()));
        } catch (const std::exception& e) {
            spdlog::warn("{}: receipt poll failed: {}", ctx_.net.name, e.what());
            co_return false;
        }
        // What is written from this batch is written only for the chain it is meant for.
        const auto chain = answers.get(chain_id);
        if (!chain || (ctx_.net.chain_id && *chain != *ctx_.net.chain_id)) {
            spdlog::warn("{}: receipt poll: {}; nothing recorded", ctx_.net.name,
                         chain ? "chain id " + std::to_string(*chain) + ", expected " + std::to_string(*ctx_.net.chain_id)
                               : std::string("eth_chainId failed"));
            co_return false;
        }
        block = answers.get(head);
        if (block) {
            receipts_block_ = block;
            ctx_.saw(*block);
            block = ctx_.block_at_least(*block);
        }
        for (const auto& a : asked) {
            const auto rec = answers.get(a.receipt);
            if (!rec) continue;
            ctx_.saw(rec->block);
            mined.push_back({a.payment, a.entry, *rec});
        }
        co_return true;
    }

    // A receipt in the payment's outcome.
    void settle(const Mined& m) {
        auto& p = pay_[m.payment];
        const auto& e = p.entries[m.entry];
        auto& o = p.outcome;
        o.tx_hash = e.tx_hash;
        o.ledger_id = e.id;
        o.block = m.receipt.block;
        const auto paid = paid_for(ctx_, e, m.receipt);
        o.fee_paid = paid.total();
        o.l1_fee = paid.l1;
        o.operator_fee = paid.operator_fee;
        if (m.receipt.success) {
            o.state = Outcome::State::kConfirmed;
            o.error.clear();
            spdlog::info("{}: confirmed tx {} in block {}", ctx_.net.name, o.tx_hash, o.block);
        } else {
            p.fail(Fault::kTopUp, "transaction reverted in block " + std::to_string(o.block));
            spdlog::error("{}: tx {} reverted in block {}", ctx_.net.name, o.tx_hash, o.block);
        }
    }

    // Receipts of one poll: one ledger transaction (one sync). A nonce has one receipt at most.
    net::awaitable<void> record(const std::vector<Mined>& mined) {
        for (const auto& m : mined) settle(m);
        if (mined.empty()) co_return;
        try {
            co_await ctx_.in_ledger([&] {
                ctx_.ledger->atomically([&] {
                    for (const auto& m : mined) {
                        const auto& p = pay_[m.payment];
                        const auto& e = p.entries[m.entry];
                        ctx_.ledger->confirmed(e.id, m.receipt.success, m.receipt.block, m.receipt.gas_used, p.outcome.fee_paid,
                                               p.outcome.l1_fee, p.outcome.operator_fee, m.receipt.block_hash);
                        for (const auto& other : p.entries)
                            if (other.id != e.id) ctx_.ledger->replaced(other.id, e.tx_hash);
                    }
                });
            });
        } catch (const std::exception& ex) {
            spdlog::error("{}: ledger cannot be written: {} receipt(s) not recorded ({})", ctx_.net.name, mined.size(), ex.what());
            report_.problems.push_back(problem_of(ex, Fault::kLedger, "receipts not recorded"));
            for (const auto& m : mined) pay_[m.payment].outcome.unrecorded = true;
        }
    }

    // A node may lose a pending transaction (eviction, restart): the same bytes again now and then,
    // only to a node that does not hold them and only while their nonce is free (lost_by_node).
    net::awaitable<void> rebroadcast_unmined(const std::vector<std::size_t>& w, const std::set<std::size_t>& done) {
        if (ctx_.clock.steady() - last_rebroadcast_ < opt_.rebroadcast_every) co_return;
        last_rebroadcast_ = ctx_.clock.steady();
        std::vector<ledger::Entry> candidates;
        for (auto i : w)
            if (!done.count(i)) candidates.push_back(pay_[i].entries.back());
        std::vector<rpc::Call> again;
        for (const auto& e : co_await lost_by_node(ctx_, std::move(candidates)))
            again.push_back({"eth_sendRawTransaction", json::array({e.raw})});
        if (again.empty()) co_return;
        try {
            // Answers do not matter (receipts decide); sent once, never retried blind.
            (void)co_await ctx_.client.batch(std::move(again), 0, rpc::RpcClient::Attempts::kOnce);
        } catch (const std::exception& e) {
            spdlog::warn("{}: re-broadcast failed: {}", ctx_.net.name, e.what());
        }
    }

    net::awaitable<void> replace_stuck_ones(const std::vector<std::size_t>& w, const std::set<std::size_t>& done,
                                            std::uint64_t block) {
        for (auto i : w) {
            auto& p = pay_[i];
            auto& newest = p.entries.back();
            if (done.count(i) || !funding::is_stuck(newest.created, newest.sent_block, ctx_.net.replace_after, ctx_.now(), block))
                continue;
            auto rep = co_await replace_stuck(ctx_, newest, fees_of(p.entries.front()), block);
            report_ += std::move(rep.report);
            if (rep.entry) {
                p.outcome.tx_hash = rep.entry->tx_hash;
                p.outcome.ledger_id = rep.entry->id;
                ++p.outcome.replacements;
                p.entries.push_back(std::move(*rep.entry));
                continue;
            }
            newest.created = ctx_.now();  // try again after another replaceAfter
            newest.sent_block = block;
        }
    }

    Context& ctx_;
    std::vector<Payment>& pay_;
    const CommitOptions& opt_;
    StepReport report_;
    std::optional<std::uint64_t> receipts_block_;
    SteadyTime last_fetch_ = ctx_.clock.steady();
    SteadyTime last_rebroadcast_ = ctx_.clock.steady();
};

}  // namespace

net::awaitable<StepReport> watch_receipts(Context& ctx, std::vector<Payment>& payments, const CommitOptions& opt) {
    Watch w(ctx, payments, opt);
    co_return co_await w.run();
}

}  // namespace keymaster::chain::detail
