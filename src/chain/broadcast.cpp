#include <spdlog/spdlog.h>

#include <map>

#include "keymaster/common/text.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/signer/signer.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

using funding::Fees;
namespace {

namespace net = boost::asio;
using nlohmann::json;

std::vector<rpc::Call> calls_of(const char* method, const std::vector<std::string>& params) {
    std::vector<rpc::Call> calls;
    calls.reserve(params.size());
    for (const auto& p : params) calls.push_back({method, json::array({p})});
    return calls;
}

// An eth_chainId answer of the network's own chain (a batch whose answers lead to a ledger write
// or a send carries one: an endpoint that failed over to another chain decides nothing).
bool on_our_chain(const Context& ctx, const rpc::CallResult& chain_id) {
    const auto id = chain_id.ok() ? rpc::as_u64(*chain_id.result) : std::nullopt;
    return id && (!ctx.net.chain_id || *id == *ctx.net.chain_id);
}

// After any answer other than a hash: the chain decides, in one batch (the bank's latest and
// pending nonce, then each transaction's own hash and its receipt). Words never decide alone.
net::awaitable<void> gather_evidence(Context& ctx, const std::vector<ledger::Entry>& entries, std::vector<Sent>& sent) {
    std::vector<std::size_t> which;
    std::vector<rpc::Call> calls;
    const auto bank = ctx.signer->address().lower();
    calls.push_back({"eth_chainId", json::array()});
    calls.push_back({"eth_getTransactionCount", json::array({bank, "latest"})});
    calls.push_back({"eth_getTransactionCount", json::array({bank, "pending"})});
    for (std::size_t k = 0; k < sent.size(); ++k)
        if (sent[k].hint != SendHint::kHash) {
            which.push_back(k);
            calls.push_back({"eth_getTransactionByHash", json::array({entries[k].tx_hash})});
            calls.push_back({"eth_getTransactionReceipt", json::array({entries[k].tx_hash})});
        }
    if (which.empty()) co_return;
    std::vector<rpc::CallResult> r;
    try {
        r = co_await ctx.client.batch(std::move(calls));
    } catch (const std::exception& e) {
        spdlog::warn("{}: cannot ask the chain about {} transaction(s) the node did not take with a hash: {}; their fate "
                     "is unknown (reconcile settles it)",
                     ctx.net.name, which.size(), e.what());
    }
    if (!r.empty() && !on_our_chain(ctx, r[0])) {
        spdlog::warn("{}: the evidence for {} send(s) came from another chain (or without its id): their fate is unknown",
                     ctx.net.name, which.size());
        r.clear();
    }
    SendEvidence common;
    if (!r.empty()) {
        common.latest_nonce = r[1].ok() ? rpc::as_u64(*r[1].result) : std::nullopt;
        common.pending_nonce = r[2].ok() ? rpc::as_u64(*r[2].result) : std::nullopt;
    }
    for (std::size_t c = 0; c < which.size(); ++c) {
        auto& s = sent[which[c]];
        SendEvidence ev = common;
        if (!r.empty()) {
            const auto& by_hash = r[3 + 2 * c];
            const auto& receipt = r[4 + 2 * c];
            ev.answered = by_hash.ok() && receipt.ok();
            ev.held = by_hash.ok() && !by_hash.result->is_null();
            ev.mined = receipt.ok() && !receipt.result->is_null();
        }
        s.verdict = decide_send(s.hint, ev);
        s.evidence = describe_evidence(ev, entries[which[c]].nonce);
    }
}

}  // namespace

std::string Sent::why() const {
    if (hint == SendHint::kHash) return {};
    return (words.empty() ? std::string(hint_name(hint)) : words) + (evidence.empty() ? "" : " (" + evidence + ")");
}

net::awaitable<std::vector<ledger::Entry>> lost_by_node(Context& ctx, std::vector<ledger::Entry> entries) {
    if (entries.empty()) co_return entries;
    // Each entry's own bank's latest nonce (a bank no longer configured may have entries here too).
    std::map<std::string, std::size_t> latest_at;
    std::vector<rpc::Call> calls{{"eth_chainId", json::array()}};
    for (const auto& e : entries) {
        const auto bank = to_lower(e.bank);
        if (latest_at.emplace(bank, calls.size()).second) calls.push_back({"eth_getTransactionCount", json::array({bank, "latest"})});
    }
    const std::size_t first_hash = calls.size();
    for (const auto& e : entries) calls.push_back({"eth_getTransactionByHash", json::array({e.tx_hash})});
    std::vector<rpc::CallResult> r;
    try {
        r = co_await ctx.client.batch(std::move(calls));
    } catch (const std::exception& e) {
        spdlog::warn("{}: cannot ask the chain before a re-broadcast ({}); not re-broadcasting now", ctx.net.name, e.what());
        co_return std::vector<ledger::Entry>{};
    }
    if (!on_our_chain(ctx, r[0])) co_return std::vector<ledger::Entry>{};
    std::vector<ledger::Entry> out;
    for (std::size_t k = 0; k < entries.size(); ++k) {
        const auto& nonce = r[latest_at.at(to_lower(entries[k].bank))];
        const auto latest = nonce.ok() ? rpc::as_u64(*nonce.result) : std::nullopt;
        const auto& held = r[first_hash + k];
        if (latest && entries[k].nonce >= *latest && held.ok() && held.result->is_null()) out.push_back(std::move(entries[k]));
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

net::awaitable<std::vector<Sent>> broadcast(Context& ctx, const std::vector<ledger::Entry>& entries) {
    std::vector<std::string> raws;
    raws.reserve(entries.size());
    for (const auto& e : entries) raws.push_back(e.raw);
    std::vector<Sent> sent(entries.size());
    std::vector<rpc::CallResult> results;
    try {
        // Sent once: a lost answer is settled by asking the chain (below), never by sending again blind.
        auto calls = calls_of("eth_sendRawTransaction", raws);
        results = co_await ctx.client.batch(std::move(calls), 0, rpc::RpcClient::Attempts::kOnce);
    } catch (const std::exception& e) {
        spdlog::warn("{}: broadcast of {} transaction(s) got no answer: {}", ctx.net.name, entries.size(), e.what());
        for (auto& s : sent) s.words = std::string("no answer: ") + e.what();
    }
    for (std::size_t k = 0; k < entries.size() && k < results.size(); ++k) {
        sent[k].hint = classify_send(&results[k]);
        sent[k].verdict = sent[k].hint == SendHint::kHash ? SendVerdict::kHeld : SendVerdict::kUnknown;
        if (results[k].error) sent[k].words = results[k].error->message();
    }
    co_await gather_evidence(ctx, entries, sent);
    co_return sent;
}

std::vector<std::uint64_t> gap_nonces(const std::vector<Sent>& sent, const std::vector<ledger::Entry>& entries) {
    auto failed = [](const Sent& s) { return s.verdict == SendVerdict::kFailed; };
    std::vector<std::uint64_t> out;
    for (std::size_t k = 0; k < sent.size(); ++k) {
        if (!failed(sent[k])) continue;
        bool later = false;
        for (std::size_t j = k + 1; j < sent.size(); ++j) later |= !failed(sent[j]);
        if (later) out.push_back(entries[k].nonce);
    }
    return out;
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
    const auto sent = (co_await broadcast(ctx, one))[0];
    log_filler(ctx, nonce, one[0], sent);
    try {
        const std::string note = "fills nonce " + std::to_string(nonce);
        co_await ctx.in_ledger([&] { record_send(ctx, one[0], sent, SendKind::kFirst, note); });
    } catch (const std::exception& ex) {
        // Sent: the chain settles it in reconcile; the report says so.
        co_return Problem{Fault::kLedger, std::string("ledger cannot record the filler for nonce ") + std::to_string(nonce) +
                                              " (" + ex.what() + "); reconcile settles it"};
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
