#include "keymaster/funding/pending.hpp"

namespace keymaster::funding {

bool is_stuck(double created, std::uint64_t sent_block, const config::ReplaceAfter& after, double now,
              std::uint64_t block) {
    return now - created >= static_cast<double>(after.seconds) ||
           (sent_block > 0 && block >= sent_block + after.blocks);
}

NonceJudgement judge_nonce(bool mined, bool taken, std::optional<std::uint64_t> taken_since, std::uint64_t block) {
    if (mined) return {NonceState::kMined, std::nullopt};
    if (!taken) return {NonceState::kUnmined, std::nullopt};
    const std::uint64_t since = taken_since && *taken_since <= block ? *taken_since : block;
    if (block >= since + kDropEvidenceBlocks) return {NonceState::kDropped, since};
    return {NonceState::kTaken, since};
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
