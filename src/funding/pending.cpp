#include "keymaster/funding/pending.hpp"

#include <algorithm>

namespace keymaster::funding {

bool is_stuck(double created, std::uint64_t sent_block, const config::ReplaceAfter& after, double now,
              std::uint64_t block) {
    return now - created >= static_cast<double>(after.seconds) ||
           (sent_block > 0 && block >= sent_block + after.blocks);
}

NonceJudgement judge_nonce(const NonceEvidence& e, std::optional<std::uint64_t> taken_since, std::uint64_t block) {
    if (e.receipt) return {NonceState::kMined, std::nullopt};
    if (e.mined_by_hash) return {NonceState::kMinedNoReceipt, std::nullopt};
    if (e.failed_query) return {NonceState::kUnknown, taken_since};
    if (!e.taken) return {NonceState::kUnmined, std::nullopt};
    const std::uint64_t since = taken_since && *taken_since <= block ? *taken_since : block;
    if (block >= since + kDropEvidenceBlocks) return {NonceState::kSearch, since};
    return {NonceState::kTaken, since};
}

bool chain_went_back(const Behind& b, std::uint64_t fresh_answers, double now) {
    return fresh_answers == b.fresh_answers && now - b.since >= kRebaseAfterSeconds;
}

Recheck recheck_mined(const MinedCheck& booked, const MinedEvidence& e) {
    if (e.receipt) {
        const bool same = e.receipt->first == booked.block && (booked.hash.empty() || e.receipt->second == booked.hash);
        const bool conflict = !booked.hash.empty() && e.hash_at_height && *e.hash_at_height != booked.hash;
        if (same) return conflict ? Recheck::kUnknown : Recheck::kHolds;
        return e.fresh ? Recheck::kMoved : Recheck::kUnknown;  // (a backend on an old fork moves nothing)
    }
    if (!e.hash_at_height) return Recheck::kUnknown;
    if (!booked.hash.empty() && *e.hash_at_height == booked.hash) return Recheck::kHolds;  // a receipt that lags
    // Absence is concluded only from a view not older than what was seen, and from blocks: the
    // chain's block at that height is another (or there is none), and no receipt says otherwise.
    if (!e.fresh || e.receipt_failed || booked.hash.empty()) return Recheck::kUnknown;
    return Recheck::kGone;
}

bool is_final(std::uint64_t block, std::uint64_t newest, std::uint64_t depth, bool depth_configured,
              std::optional<std::uint64_t> finalized_tag) {
    if (!depth_configured && finalized_tag) return block <= *finalized_tag;
    return newest >= block && newest - block >= depth;
}

std::uint64_t default_finality(std::uint64_t chain_id) {
    switch (chain_id) {
        case 137:    // Polygon PoS: reorgs of over a hundred blocks have been seen
        case 80002:  // Polygon Amoy
            return 256;
        case 43114:  // Avalanche C-Chain: final when accepted
        case 43113:  // Fuji
            return 1;
        default: return 64;  // two Ethereum epochs
    }
}

std::vector<std::uint64_t> nonce_gaps(std::uint64_t free_from, const std::set<std::uint64_t>& ours) {
    std::vector<std::uint64_t> out;
    if (ours.empty()) return out;
    const std::uint64_t top = *ours.rbegin();
    for (std::uint64_t n = free_from; n < top && out.size() < 64; ++n)
        if (!ours.count(n)) out.push_back(n);
    return out;
}

Wei in_flight_total(const std::vector<InFlight>& entries) {
    std::map<std::uint64_t, Wei> by_nonce;
    for (const auto& e : entries) {
        auto& most = by_nonce[e.nonce];
        const Wei w = e.amount + e.worst_fee;
        if (w > most) most = w;
    }
    Wei total = 0;
    for (const auto& [_, w] : by_nonce) total += w;
    return total;
}

BankAudit audit_nonces(std::uint64_t from, std::uint64_t latest, const std::map<std::uint64_t, NonceRecord>& records) {
    BankAudit out;
    if (latest <= from) {
        out.next = latest;
        return out;
    }
    const std::uint64_t stop = latest - from > kAuditStep ? from + kAuditStep : latest;
    for (std::uint64_t n = from; n < stop; ++n) {
        const auto it = records.find(n);
        if (it != records.end() && it->second.mined) continue;
        if (it != records.end() && it->second.open) {
            out.next = n;
            return out;
        }
        out.unaccounted.push_back(n);
    }
    out.next = stop;
    return out;
}

AuditStep next_audit_state(const AuditState& before, const BankAudit& walk, const AuditPoint& now, bool quiet) {
    AuditStep out;
    std::optional<AuditPoint> here;  // (GCC 12 warns of a maybe-uninitialized optional in a ?: here)
    if (quiet) here = now;
    if (now.nonce < before.next) {  // a chain reset: start again from here
        out.state = {now.nonce, here};
        return out;
    }
    const bool complete = walk.next == now.nonce;
    out.state.next = walk.next;
    if (!walk.unaccounted.empty()) {
        if (complete) out.state.point = here;  // a new start: what others took is not ours to explain
    } else if (complete && here) {
        out.compare = before.point.has_value();
        out.state.point = here;
    } else {
        out.state.point = before.point;  // ours still unresolved or in flight: compare when they settle
    }
    return out;
}

Wei unexplained_outflow(const Wei& before, const Wei& after, const Wei& ours) {
    if (before <= after) return Wei(0);
    const Wei lost = before - after;
    return lost > ours ? lost - ours : Wei(0);
}

}  // namespace keymaster::funding
