#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "keymaster/common/text.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/signer/signer.hpp"
#include "batch.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

using funding::Fees;
namespace {

namespace net = boost::asio;
using nlohmann::json;

// An eth_chainId answer of the network's own chain (a batch whose answers lead to a ledger write
// or a send carries one: an endpoint that failed over to another chain decides nothing).
bool on_our_chain(const Context& ctx, std::optional<std::uint64_t> chain_id) {
    return chain_id && (!ctx.net.chain_id || *chain_id == *ctx.net.chain_id);
}

// A transaction the node did not take with a hash, asked about: its own hash, its receipt.
struct Asked {
    const Outgoing* of;
    Answer<rpc::TxInfo> by_hash;
    Answer<rpc::ReceiptInfo> receipt;
};

// After any answer other than a hash: the chain decides, in one batch (the bank's latest and
// pending nonce, then each transaction's own hash and its receipt). Words never decide alone.
net::awaitable<void> gather_evidence(Context& ctx, const std::vector<Outgoing>& out) {
    Calls calls;
    const auto bank = ctx.signer->address().lower();
    const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
    const auto latest = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({bank, "latest"})});
    const auto pending = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({bank, "pending"})});
    std::vector<Asked> asked;
    for (const auto& o : out)
        if (o.sent->hint != SendHint::kHash) {
            Asked a{&o, {}, {}};
            a.by_hash = calls.add<rpc::TxInfo>({"eth_getTransactionByHash", json::array({o.entry->tx_hash})});
            a.receipt = calls.add<rpc::ReceiptInfo>({"eth_getTransactionReceipt", json::array({o.entry->tx_hash})});
            asked.push_back(a);
        }
    if (asked.empty()) co_return;
    Answers answers;
    try {
        answers = Answers(co_await ctx.client.batch(calls.take()));
    } catch (const std::exception& e) {
        spdlog::warn("{}: cannot ask the chain about {} transaction(s) the node did not take with a hash: {}; their fate "
                     "is unknown (reconcile settles it)",
                     ctx.net.name, asked.size(), e.what());
    }
    if (!answers.empty() && !on_our_chain(ctx, answers.get(chain))) {
        spdlog::warn("{}: the evidence for {} send(s) came from another chain (or without its id): their fate is unknown",
                     ctx.net.name, asked.size());
        answers = Answers();
    }
    SendEvidence common;
    common.latest_nonce = answers.get(latest);
    common.pending_nonce = answers.get(pending);
    for (const auto& a : asked) {
        SendEvidence ev = common;
        ev.answered = answers.answered(a.by_hash) && answers.answered(a.receipt);
        ev.held = answers.answered(a.by_hash) && !answers.null(a.by_hash);
        ev.mined = answers.answered(a.receipt) && !answers.null(a.receipt);
        a.of->sent->verdict = decide_send(a.of->sent->hint, ev);
        a.of->sent->evidence = describe_evidence(ev, a.of->entry->nonce);
    }
}

}  // namespace

std::string Sent::why() const {
    if (hint == SendHint::kHash) return {};
    return (words.empty() ? std::string(hint_name(hint)) : words) + (evidence.empty() ? "" : " (" + evidence + ")");
}

net::awaitable<std::vector<ledger::Entry>> lost_by_node(Context& ctx, std::vector<ledger::Entry> entries) {
    if (entries.empty()) co_return entries;
    Calls calls;
    const auto chain = calls.add<std::uint64_t>({"eth_chainId", json::array()});
    // Each entry's own bank's latest nonce (a bank no longer configured may have entries here too).
    std::map<std::string, Answer<std::uint64_t>> latest;
    for (const auto& e : entries) {
        const auto bank = to_lower(e.bank);
        if (!latest.count(bank))
            latest.emplace(bank, calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({bank, "latest"})}));
    }
    struct Candidate {
        ledger::Entry entry;
        Answer<std::uint64_t> latest;
        Answer<rpc::TxInfo> held;
    };
    std::vector<Candidate> candidates;
    for (auto& e : entries) {
        const auto held = calls.add<rpc::TxInfo>({"eth_getTransactionByHash", json::array({e.tx_hash})});
        const auto bank_latest = latest.at(to_lower(e.bank));
        candidates.push_back({std::move(e), bank_latest, held});
    }
    Answers answers;
    try {
        answers = Answers(co_await ctx.client.batch(calls.take()));
    } catch (const std::exception& e) {
        spdlog::warn("{}: cannot ask the chain before a re-broadcast ({}); not re-broadcasting now", ctx.net.name, e.what());
        co_return std::vector<ledger::Entry>{};
    }
    if (!on_our_chain(ctx, answers.get(chain))) co_return std::vector<ledger::Entry>{};
    std::vector<ledger::Entry> out;
    for (auto& c : candidates) {
        const auto nonce = answers.get(c.latest);
        if (nonce && c.entry.nonce >= *nonce && answers.null(c.held)) out.push_back(std::move(c.entry));
    }
    co_return out;
}

void record_send(Context& ctx, const ledger::Entry& entry, const Sent& sent, SendKind kind, const std::string& note) {
    if (kind == SendKind::kAgain) {
        if (entry.state == ledger::State::kIntent && held_by_node(sent.verdict))
            ctx.ledger->mark(entry.id, ledger::State::kSent, note);
        return;
    }
    switch (sent.verdict) {
        case SendVerdict::kHeld: ctx.ledger->mark(entry.id, ledger::State::kSent, note); return;
        case SendVerdict::kUnknown:
            ctx.ledger->mark(entry.id, ledger::State::kSent,
                             "send result unknown: " + sent.why() + (note.empty() ? "" : "; " + note));
            return;
        case SendVerdict::kFailed: ctx.ledger->mark(entry.id, ledger::State::kFailed, "refused: " + sent.why()); return;
    }
}

net::awaitable<void> broadcast(Context& ctx, const std::vector<Outgoing>& out) {
    Calls calls;
    std::vector<std::pair<Sent*, Answer<std::string>>> hashes;
    hashes.reserve(out.size());
    for (const auto& o : out) {
        *o.sent = Sent{};
        hashes.emplace_back(o.sent, calls.add<std::string>({"eth_sendRawTransaction", json::array({o.entry->raw})}));
    }
    Answers answers;
    try {
        // Sent once: a lost answer is settled by asking the chain (below), never by sending again blind.
        answers = Answers(co_await ctx.client.batch(calls.take(), 0, rpc::RpcClient::Attempts::kOnce));
    } catch (const std::exception& e) {
        spdlog::warn("{}: broadcast of {} transaction(s) got no answer: {}", ctx.net.name, out.size(), e.what());
        for (const auto& o : out) o.sent->words = std::string("no answer: ") + e.what();
    }
    for (const auto& [sent, hash] : hashes) {
        const auto& answer = answers.call(hash);
        sent->hint = classify_send(&answer);
        sent->verdict = sent->hint == SendHint::kHash ? SendVerdict::kHeld : SendVerdict::kUnknown;
        if (answer.error) sent->words = answer.error->message();
    }
    co_await gather_evidence(ctx, out);
}

net::awaitable<Sent> broadcast_one(Context& ctx, const ledger::Entry& entry) {
    Sent sent;
    const std::vector<Outgoing> one(1, Outgoing{&entry, &sent});
    co_await broadcast(ctx, one);
    co_return sent;
}

std::vector<std::uint64_t> gap_nonces(const std::vector<Outgoing>& out) {
    auto failed = [](const Outgoing& o) { return o.sent->verdict == SendVerdict::kFailed; };
    std::vector<std::uint64_t> nonces;
    for (auto it = out.begin(); it != out.end(); ++it)
        if (failed(*it) && !std::all_of(std::next(it), out.end(), failed)) nonces.push_back(it->entry->nonce);
    return nonces;
}

namespace {

constexpr int kFillerAttempts = 4;

void log_filler(const Context& ctx, std::uint64_t nonce, const ledger::Entry& e, const Sent& sent) {
    if (sent.verdict == SendVerdict::kHeld)
        spdlog::warn("{}: nonce {} was refused; filled with a zero-value transfer to the bank, tx {}", ctx.net.name, nonce,
                     e.tx_hash);
    else if (sent.verdict == SendVerdict::kUnknown)
        spdlog::warn("{}: the filler for nonce {} (tx {}): send result unknown ({}); reconcile settles it", ctx.net.name,
                     nonce, e.tx_hash, sent.why());
    else
        spdlog::error("{}: the filler for nonce {} was refused: {}", ctx.net.name, nonce, sent.why());
}

// One filler for `nonce`: signed, journaled, sent. What the send showed, or why nothing was sent.
net::awaitable<Expected<Sent>> send_filler(Context& ctx, const Fees& fees, std::uint64_t chain_id, std::uint64_t block,
                                           std::uint64_t nonce) {
    const auto bank = ctx.signer->address();
    const std::string role = "nonce-filler";
    const auto tx = build_tx(fees, chain_id, nonce, bank, Wei(0), 21000);
    auto e = co_await sign_entry(ctx, tx, ctx.net.name, role, block);
    if (!e) co_return Problem{Fault::kSigning, "cannot sign the filler for nonce " + std::to_string(nonce) + ": " + e.error().message};
    std::vector<ledger::Entry> one(1, *e);
    if (auto problem = co_await journal(ctx, one))
        co_return Problem{Fault::kLedger, problem->message + "; nonce " + std::to_string(nonce) + " stays a gap"};
    const auto sent = co_await broadcast_one(ctx, one[0]);
    log_filler(ctx, nonce, one[0], sent);
    try {
        const std::string note = "fills nonce " + std::to_string(nonce);
        co_await ctx.in_ledger([&] { record_send(ctx, one[0], sent, SendKind::kFirst, note); });
    } catch (const std::exception& ex) {
        // Sent: the chain settles it in reconcile; the report says so.
        co_return Problem{fault_of(ex, Fault::kLedger), std::string("ledger cannot record the filler for nonce ") +
                                                            std::to_string(nonce) + " (" + ex.what() + "); reconcile settles it"};
    }
    co_return sent;
}

}  // namespace

net::awaitable<StepReport> fill_gaps(Context& ctx, const Fees& fees, std::uint64_t chain_id, std::uint64_t block,
                                     const std::vector<std::uint64_t>& nonces) {
    StepReport report;
    const Wei ceiling = funding::replacement_ceiling(fees, ctx.net);
    for (auto n : nonces) {
        Fees f = fees;
        for (int attempt = 0; attempt < kFillerAttempts; ++attempt) {
            // Not held and worded "underpriced": the same nonce again with bumped fees (whichever
            // transaction of the nonce is mined settles it).
            const auto sent = co_await send_filler(ctx, f, chain_id, block, n);
            if (!sent) {
                report.problems.push_back(sent.error());
                break;
            }
            if (sent->verdict == SendVerdict::kHeld || sent->hint != SendHint::kUnderpriced) break;
            auto higher = funding::bumped_fees(f, ceiling);
            if (!higher) {
                report.problems.push_back({Fault::kTopUp, "the filler for nonce " + std::to_string(n) +
                                                              " is underpriced and its fee ceiling is reached; later top-ups wait"});
                break;
            }
            f = *higher;
        }
    }
    co_return report;
}

}  // namespace keymaster::chain::detail
