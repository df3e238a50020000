#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/config/config.hpp"

//! Rules for transactions of ours that are not mined yet (pure; time comes in as an argument).
namespace keymaster::funding {

//! Whether an unmined transaction has waited `replaceAfter` (seconds since `created`, or blocks
//! since `sent_block`, whichever comes first) and should be replaced with higher fees.
[[nodiscard]] bool is_stuck(double created, std::uint64_t sent_block, const config::ReplaceAfter& after, double now,
                            std::uint64_t block);

//! Blocks in a row a nonce must be seen taken, with no receipt for any of its transactions, before
//! they count as dropped: a load-balanced provider's receipt can lag behind its nonce.
inline constexpr std::uint64_t kDropEvidenceBlocks = 3;

//! What is known of one nonce of ours.
enum class NonceState {
    kMined,    //!< a receipt for one of its transactions
    kUnmined,  //!< the nonce is still free: ours may still be mined
    kTaken,    //!< the nonce is used, no receipt of ours yet: evidence is being gathered
    kDropped,  //!< the nonce used, and no receipt of ours, for kDropEvidenceBlocks blocks in a row
};

struct NonceJudgement {
    NonceState state = NonceState::kUnmined;
    std::optional<std::uint64_t> taken_since;  //!< the block the nonce was first seen taken (kTaken)
};

//! Judges a nonce from this poll: `mined` (a receipt of ours), `taken` (the account's latest
//! nonce is above it), the block it was first seen taken (earlier polls), and the latest block.
[[nodiscard]] NonceJudgement judge_nonce(bool mined, bool taken, std::optional<std::uint64_t> taken_since,
                                         std::uint64_t block);

//! What the ledger holds for one nonce of the bank.
struct NonceRecord {
    bool mined = false;  //!< a transaction of ours with this nonce has a receipt (confirmed or reverted)
    bool open = false;   //!< one is still unresolved (intent, sent, replaced pending settlement)
};

//! The bank audit of one Round: the nonces the chain shows used and what became of them.
struct BankAudit {
    std::vector<std::uint64_t> unaccounted;  //!< used on chain, no transaction of ours mined with it
    std::uint64_t next = 0;                  //!< where the next audit starts
};

//! A point where every nonce of the bank below `nonce` was a mined transaction of ours: the block
//! and the bank's balance there (both read at that block).
struct AuditPoint {
    std::uint64_t nonce = 0, block = 0;
    Wei balance = 0;
};

//! What the bank audit keeps between Rounds.
struct AuditState {
    std::uint64_t next = 0;            //!< the next nonce to walk
    std::optional<AuditPoint> point;   //!< the last point with nothing unaccounted since (none: wait for one)
};

//! The audit's state after this Round's walk, and whether the bank's balance can be compared with
//! what our mined transactions took since `before.point` (every nonce since is ours and mined).
//! `quiet`: nothing of the bank's was pending when `now` was read (its pending nonce equal to its
//! latest), so its balance and nonce describe the same state and `now` can be a point.
struct AuditStep {
    AuditState state;
    bool compare = false;
};
[[nodiscard]] AuditStep next_audit_state(const AuditState& before, const BankAudit& walk, const AuditPoint& now, bool quiet);

//! What the bank lost between two points beyond what our transactions took (amounts and fees):
//! spending the ledger does not know (0 when none; money received only hides it, never invents it).
[[nodiscard]] Wei unexplained_outflow(const Wei& before, const Wei& after, const Wei& ours);

//! Most nonces one audit walks (the rest waits for the next Round).
inline constexpr std::uint64_t kAuditStep = 10'000;

//! Walks the bank's nonces from `from` up to `latest` (its latest nonce, exclusive): a nonce whose
//! transaction of ours is mined is accounted for; one the ledger still has unresolved stops the
//! walk (reconcile settles it first); any other was used by a transaction keymaster did not journal
//! (or dropped: another took it). `latest` below `from` (a chain reset) starts again at `latest`.
[[nodiscard]] BankAudit audit_nonces(std::uint64_t from, std::uint64_t latest, const std::map<std::uint64_t, NonceRecord>& records);

}  // namespace keymaster::funding
