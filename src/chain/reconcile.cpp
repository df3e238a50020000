#include <spdlog/spdlog.h>

#include <map>

#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {
namespace {

namespace net = boost::asio;
using nlohmann::json;

// Entries sharing a nonce are one payment (replacements): judged together, oldest first.
using Groups = std::map<std::uint64_t, std::vector<std::size_t>>;

Groups group_by_nonce(const std::vector<ledger::Entry>& pending) {
    Groups g;
    for (std::size_t i = 0; i < pending.size(); ++i) g[pending[i].nonce].push_back(i);
    return g;
}

Expected<std::vector<ledger::Entry>> read_pending(const Context& ctx) {
    try {
        return ctx.ledger->pending(ctx.net.name, ctx.signer->address().checksummed());
    } catch (const std::exception& e) {
        return Problem{Fault::kLedger, std::string("cannot read the ledger: ") + e.what()};
    }
}

PendingAction action_for(const Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members,
                         std::uint64_t block) {
    PendingAction a;
    a.entry = pending[members.back()];
    a.first_fees = fees_of(pending[members.front()]);
    const bool stuck = funding::is_stuck(a.entry.created, a.entry.sent_block, ctx.net.replace_after, ctx.now(), block);
    a.kind = stuck ? PendingAction::Kind::kReplace : PendingAction::Kind::kRebroadcast;
    a.note = stuck ? "unmined for replaceAfter: commit replaces it with higher fees" : "unmined: commit sends it again";
    return a;
}

// What the chain says about the unresolved entries: latest nonce, block, and each receipt.
struct ChainFacts {
    std::uint64_t latest_nonce = 0, block = 0;
    std::vector<std::optional<rpc::ReceiptInfo>> receipts;
};

net::awaitable<Expected<ChainFacts>> ask_chain(Context& ctx, const std::vector<ledger::Entry>& pending) {
    std::vector<rpc::Call> calls;
    calls.push_back({"eth_getTransactionCount", json::array({ctx.signer->address().lower(), "latest"})});
    calls.push_back({"eth_blockNumber", json::array()});
    for (const auto& e : pending) calls.push_back({"eth_getTransactionReceipt", json::array({e.tx_hash})});
    std::vector<rpc::CallResult> r;
    try {
        r = co_await ctx.client.batch(std::move(calls));
    } catch (const std::exception& e) {
        co_return Problem{Fault::kPoll, std::string("cannot reconcile the ledger: ") + e.what()};
    }
    const auto latest = r[0].ok() ? rpc::as_u64(*r[0].result) : std::nullopt;
    const auto block = r[1].ok() ? rpc::as_u64(*r[1].result) : std::nullopt;
    if (!latest || !block)
        co_return Problem{Fault::kPoll, "cannot reconcile the ledger: eth_getTransactionCount or eth_blockNumber failed"};
    ChainFacts f{*latest, *block, {}};
    for (std::size_t i = 0; i < pending.size(); ++i) {
        const auto& res = r[i + 2];
        if (!res.ok()) co_return Problem{Fault::kPoll, "cannot reconcile the ledger: receipt query failed: " + res.error->message()};
        f.receipts.push_back(res.result->is_null() ? std::nullopt : rpc::as_receipt(*res.result));
    }
    co_return f;
}

// Records one nonce's fate in the ledger (inside the caller's transaction); adds to `view`.
void settle_nonce(Context& ctx, const std::vector<ledger::Entry>& pending, const std::vector<std::size_t>& members,
                  const ChainFacts& facts, LedgerView& view) {
    const std::uint64_t nonce = pending[members.front()].nonce;
    std::optional<std::size_t> mined;
    std::optional<std::uint64_t> since;
    for (auto i : members) {
        if (facts.receipts[i]) mined = i;
        if (pending[i].taken_block) since = std::min(since.value_or(pending[i].taken_block), pending[i].taken_block);
    }
    const auto j = funding::judge_nonce(mined.has_value(), facts.latest_nonce > nonce, since, facts.block);
    auto& ledger = *ctx.ledger;
    switch (j.state) {
        case funding::NonceState::kMined: {
            auto done = pending[*mined];
            const auto& rec = *facts.receipts[*mined];
            const auto paid = paid_for(ctx, done, rec);
            done.fee_paid = paid.total();
            done.l1_fee = paid.l1;
            done.operator_fee = paid.operator_fee;
            ledger.confirmed(done.id, rec.success, rec.block, rec.gas_used, done.fee_paid, done.l1_fee, done.operator_fee);
            for (auto i : members)
                if (i != *mined) ledger.replaced(pending[i].id, done.tx_hash);
            done.state = rec.success ? ledger::State::kConfirmed : ledger::State::kFailed;
            done.block = rec.block;
            view.log.push_back(done.tx_hash + (rec.success ? " confirmed" : " reverted") + " in block " + std::to_string(rec.block));
            view.settled.push_back(std::move(done));
            return;
        }
        case funding::NonceState::kDropped:
            for (auto i : members) {
                ledger.mark(pending[i].id, ledger::State::kDropped,
                            "nonce " + std::to_string(nonce) + " used by another transaction since block " +
                                std::to_string(*j.taken_since) + ", no receipt of ours");
                auto done = pending[i];
                done.state = ledger::State::kDropped;
                view.settled.push_back(std::move(done));
            }
            view.log.push_back(pending[members.back()].tx_hash + " dropped: nonce " + std::to_string(nonce) +
                               " used by another transaction since block " + std::to_string(*j.taken_since) +
                               "; the account is decided afresh");
            return;
        case funding::NonceState::kTaken:
        case funding::NonceState::kUnmined: break;
    }
    const std::uint64_t want = j.state == funding::NonceState::kTaken ? *j.taken_since : 0;
    for (auto i : members)
        if (pending[i].taken_block != want) ledger.taken(pending[i].id, want);
    auto a = action_for(ctx, pending, members, facts.block);
    if (j.state == funding::NonceState::kTaken) {
        a.kind = PendingAction::Kind::kWait;
        a.note = "nonce taken since block " + std::to_string(want) + ", no receipt of ours yet: dropped after " +
                 std::to_string(funding::kDropEvidenceBlocks) + " blocks";
        view.log.push_back(a.entry.tx_hash + " (nonce " + std::to_string(nonce) + "): " + a.note);
    }
    if (auto to = eth::Address::parse(a.entry.recipient)) view.busy.insert(*to);
    view.next_nonce = std::max(view.next_nonce.value_or(0), nonce + 1);
    view.pending.push_back(std::move(a));
}

}  // namespace

net::awaitable<Expected<LedgerView>> reconcile(Context& ctx) {
    LedgerView view;
    const auto read = read_pending(ctx);
    if (!read) co_return read.error();
    const auto& pending = *read;
    if (pending.empty()) co_return view;
    const auto facts = co_await ask_chain(ctx, pending);
    if (!facts) co_return facts.error();
    const auto groups = group_by_nonce(pending);
    try {
        ctx.ledger->atomically([&] {
            for (const auto& [nonce, members] : groups) settle_nonce(ctx, pending, members, *facts, view);
        });
    } catch (const std::exception& e) {
        co_return Problem{Fault::kLedger, std::string("ledger cannot be written: ") + e.what()};
    }
    co_return view;
}

Expected<LedgerView> pending_view(const Context& ctx) {
    LedgerView view;
    const auto read = read_pending(ctx);
    if (!read) return read.error();
    const auto& pending = *read;
    for (const auto& [nonce, members] : group_by_nonce(pending)) {
        auto a = action_for(ctx, pending, members, 0);
        if (auto to = eth::Address::parse(a.entry.recipient)) view.busy.insert(*to);
        view.next_nonce = std::max(view.next_nonce.value_or(0), nonce + 1);
        view.pending.push_back(std::move(a));
    }
    return view;
}

namespace {

// The very same bytes again, to a node that lost them (eviction, restart), so a nonce never stays a
// gap. Only a held verdict changes the ledger (intent -> sent).
net::awaitable<void> rebroadcast(Context& ctx, std::vector<ledger::Entry> candidates) {
    const auto entries = co_await lost_by_node(ctx, std::move(candidates));
    if (entries.empty()) co_return;
    const auto sent = co_await broadcast(ctx, entries);
    try {
        ctx.ledger->atomically([&] {
            for (std::size_t k = 0; k < entries.size(); ++k)
                record_send(ctx, entries[k], sent[k], SendKind::kAgain, "broadcast on reconcile");
        });
    } catch (const std::exception& e) {
        spdlog::error("{}: ledger cannot record a re-broadcast ({}); the next round settles it", ctx.net.name, e.what());
    }
    for (std::size_t k = 0; k < entries.size(); ++k)
        spdlog::info("{}: ledger: {} (nonce {}) not mined and not held by the node: broadcast again{}", ctx.net.name, entries[k].tx_hash,
                     entries[k].nonce, sent[k].hint == SendHint::kHash ? "" : " (" + sent[k].why() + ")");
}

}  // namespace

net::awaitable<StepReport> resolve_pending(Context& ctx, const std::vector<PendingAction>& pending, std::uint64_t block) {
    StepReport report;
    std::vector<ledger::Entry> again;
    for (const auto& a : pending) {
        if (a.kind == PendingAction::Kind::kWait) continue;
        if (a.kind == PendingAction::Kind::kReplace) {
            auto rep = co_await replace_stuck(ctx, a.entry, a.first_fees, block);
            report += std::move(rep.report);
            if (rep.entry) continue;
        }
        again.push_back(a.entry);
    }
    co_await rebroadcast(ctx, again);
    co_return report;
}

}  // namespace keymaster::chain::detail
