#include <spdlog/spdlog.h>

#include "keymaster/common/text.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/signer/signer.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {
namespace {

namespace net = boost::asio;
using nlohmann::json;

std::vector<rpc::Call> calls_of(const char* method, const std::vector<std::string>& params) {
    std::vector<rpc::Call> calls;
    calls.reserve(params.size());
    for (const auto& p : params) calls.push_back({method, json::array({p})});
    return calls;
}

// "nonce too low": ours if the node knows our hash. Not found: refused. Lookup failed: unknown.
net::awaitable<void> look_up_own(Context& ctx, const std::vector<ledger::Entry>& entries, std::vector<SendVerdict>& verdicts) {
    std::vector<std::size_t> which;
    std::vector<std::string> hashes;
    for (std::size_t k = 0; k < verdicts.size(); ++k)
        if (verdicts[k] == SendVerdict::kNonceTooLow) {
            which.push_back(k);
            hashes.push_back(entries[k].tx_hash);
        }
    if (which.empty()) co_return;
    std::vector<rpc::CallResult> found;
    try {
        auto calls = calls_of("eth_getTransactionByHash", hashes);  // (GCC 12: no literal inside co_await)
        found = co_await ctx.client.batch(std::move(calls));
    } catch (const std::exception& e) {
        spdlog::warn("{}: cannot look up {} transaction(s) refused as \"nonce too low\": {}; their fate is unknown",
                     ctx.net.name, which.size(), e.what());
        for (auto k : which) verdicts[k] = SendVerdict::kUnknown;
        co_return;
    }
    for (std::size_t c = 0; c < which.size(); ++c) {
        const auto& r = found[c];
        if (!r.ok()) verdicts[which[c]] = SendVerdict::kUnknown;
        else verdicts[which[c]] = r.result->is_null() ? SendVerdict::kRefused : SendVerdict::kAccepted;
    }
}

}  // namespace

net::awaitable<std::vector<SendVerdict>> broadcast(Context& ctx, const std::vector<ledger::Entry>& entries,
                                                   std::vector<std::string>& reasons) {
    std::vector<std::string> raws;
    raws.reserve(entries.size());
    for (const auto& e : entries) raws.push_back(e.raw);
    std::vector<SendVerdict> verdicts(entries.size(), SendVerdict::kUnknown);
    reasons.assign(entries.size(), "no answer");
    std::vector<rpc::CallResult> results;
    try {
        auto calls = calls_of("eth_sendRawTransaction", raws);
        results = co_await ctx.client.batch(std::move(calls));
    } catch (const std::exception& e) {
        spdlog::warn("{}: broadcast of {} transaction(s) got no answer: {}", ctx.net.name, entries.size(), e.what());
        for (auto& r : reasons) r = std::string("no answer: ") + e.what();
        co_return verdicts;
    }
    for (std::size_t k = 0; k < entries.size() && k < results.size(); ++k) {
        verdicts[k] = classify_send(&results[k]);
        reasons[k] = results[k].error ? results[k].error->message() : std::string();
    }
    co_await look_up_own(ctx, entries, verdicts);
    co_return verdicts;
}

std::vector<std::uint64_t> gap_nonces(const std::vector<SendVerdict>& verdicts, const std::vector<ledger::Entry>& entries) {
    auto refused = [](SendVerdict v) { return v == SendVerdict::kRefused || v == SendVerdict::kUnderpriced; };
    std::vector<std::uint64_t> out;
    for (std::size_t k = 0; k < verdicts.size(); ++k) {
        if (!refused(verdicts[k])) continue;
        bool later = false;
        for (std::size_t j = k + 1; j < verdicts.size(); ++j) later |= !refused(verdicts[j]);
        if (later) out.push_back(entries[k].nonce);
    }
    return out;
}

namespace {

constexpr int kFillerAttempts = 4;

// One filler for `nonce`: signed, journaled, sent. Returns the verdict (kUnderpriced: try higher fees).
net::awaitable<std::optional<SendVerdict>> send_filler(Context& ctx, const Fees& fees, std::uint64_t chain_id,
                                                       std::uint64_t block, std::uint64_t nonce, RoundReport& report) {
    const auto bank = ctx.signer->address();
    std::string why;
    const std::string role = "nonce-filler";
    const auto tx = build_tx(fees, chain_id, nonce, bank, Wei(0), 21000);
    auto e = co_await sign_entry(ctx, tx, ctx.net.name, role, block, why);
    if (!e) {
        report.faults.emplace_back(Fault::kSigning, "cannot sign the filler for nonce " + std::to_string(nonce) + ": " + why);
        co_return std::nullopt;
    }
    try {
        e->id = ctx.ledger->record_intent(*e);
    } catch (const std::exception& ex) {
        report.faults.emplace_back(Fault::kLedger, std::string("ledger cannot be written (") + ex.what() + "); nonce " +
                                                       std::to_string(nonce) + " stays a gap");
        co_return std::nullopt;
    }
    std::vector<std::string> reasons;
    const std::vector<ledger::Entry> one(1, *e);
    const auto verdict = (co_await broadcast(ctx, one, reasons))[0];
    try {
        if (held_by_node(verdict)) ctx.ledger->mark(e->id, ledger::State::kSent, "fills nonce " + std::to_string(nonce));
        else if (verdict == SendVerdict::kUnknown) ctx.ledger->mark(e->id, ledger::State::kSent, "send result unknown");
        else ctx.ledger->mark(e->id, ledger::State::kFailed, "filler refused: " + reasons[0]);
    } catch (const std::exception& ex) {
        report.faults.emplace_back(Fault::kLedger, std::string("ledger cannot record the filler for nonce ") +
                                                       std::to_string(nonce) + " (" + ex.what() + "); reconcile settles it");
    }
    if (held_by_node(verdict))
        spdlog::warn("{}: nonce {} was refused; filled with a zero-value transfer to the bank, tx {}", ctx.net.name, nonce,
                     e->tx_hash);
    else if (verdict == SendVerdict::kUnknown)
        spdlog::warn("{}: the filler for nonce {} (tx {}): send result unknown; reconcile settles it", ctx.net.name, nonce,
                     e->tx_hash);
    else
        spdlog::error("{}: the filler for nonce {} was refused ({})", ctx.net.name, nonce, reasons[0]);
    co_return verdict;
}

}  // namespace

net::awaitable<void> fill_gaps(Context& ctx, const Fees& fees, std::uint64_t chain_id, std::uint64_t block,
                               const std::vector<std::uint64_t>& nonces, RoundReport& report) {
    const Wei ceiling = funding::replacement_ceiling(fees, ctx.net);
    for (auto n : nonces) {
        Fees f = fees;
        for (int attempt = 0; attempt < kFillerAttempts; ++attempt) {
            const auto verdict = co_await send_filler(ctx, f, chain_id, block, n, report);
            if (verdict != SendVerdict::kUnderpriced) break;
            auto higher = funding::bumped_fees(f, ceiling);
            if (!higher) {
                report.faults.emplace_back(Fault::kTopUp, "the filler for nonce " + std::to_string(n) +
                                                              " is underpriced and its fee ceiling is reached; later top-ups wait");
                break;
            }
            f = *higher;
        }
    }
}

}  // namespace keymaster::chain::detail
