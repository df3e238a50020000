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

}  // namespace keymaster::funding
