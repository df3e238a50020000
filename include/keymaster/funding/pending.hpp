#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
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
//! the chain is searched for the transaction that took it: a load-balanced provider's receipt can
//! lag behind its nonce, and the search costs round trips.
inline constexpr std::uint64_t kDropEvidenceBlocks = 3;

//! Whether a view read at `view_block` is older than the newest block already seen on the network
//! (a provider's backend behind another, or a lagging node): such a view decides nothing that a
//! newer view could contradict (no new top-up, no "dropped", no reorg).
[[nodiscard]] constexpr bool is_stale(std::uint64_t view_block, std::uint64_t newest_seen) { return view_block < newest_seen; }

//! A network answering only from below the newest block seen: since when, how many answers at or
//! above it had been seen then, and the highest block it answered since.
struct Behind {
    double since = 0;
    std::uint64_t fresh_answers = 0;
    std::uint64_t highest = 0;
};
//! How long every answer must stay below the newest block seen, with no answer reaching it, before
//! the chain is taken to have gone back for good (a reset, a reorg to a shorter chain, a bogus
//! block number once): then the newest block seen becomes the highest answered since.
inline constexpr double kRebaseAfterSeconds = 300;
//! Whether to accept that the chain went back (see kRebaseAfterSeconds): no answer at or above the
//! newest block seen (`fresh_answers` unchanged since `b` began) for that long. A provider with one
//! backend behind another never qualifies: its fresh backend's answers count.
[[nodiscard]] bool chain_went_back(const Behind& b, std::uint64_t fresh_answers, double now);

//! What is known of one nonce of ours.
enum class NonceState {
    kMined,           //!< a receipt for one of its transactions
    kMinedNoReceipt,  //!< the node shows one of them in a block (by hash) but serves no receipt
    kUnknown,         //!< a query about one of them failed: nothing concluded, the entry waits
    kUnmined,         //!< the nonce is still free: ours may still be mined
    kTaken,           //!< the nonce is used, no receipt of ours yet: evidence is being gathered
    kSearch,          //!< used for kDropEvidenceBlocks blocks with no receipt of ours: find in the
                      //!< chain's blocks which transaction used it (ours: mined; another: dropped)
};

//! What one reconcile batch showed about one nonce of ours.
struct NonceEvidence {
    bool receipt = false;        //!< a receipt for one of its transactions
    bool mined_by_hash = false;  //!< eth_getTransactionByHash shows one of them with a block number
    bool failed_query = false;   //!< a receipt or by-hash query about one of them failed
    bool taken = false;          //!< the bank's latest nonce is above it
};

struct NonceJudgement {
    NonceState state = NonceState::kUnmined;
    std::optional<std::uint64_t> taken_since;  //!< the block the nonce was first seen taken (kTaken, kSearch)
};

//! Judges a nonce: positive evidence first (a receipt, then a block number by hash), a failed query
//! concludes nothing, then the bank's nonce; `taken_since` is the block it was first seen taken
//! (earlier Rounds), `block` the newest block seen. Missing receipts alone never make a drop: only
//! the block that used the nonce can (kSearch).
[[nodiscard]] NonceJudgement judge_nonce(const NonceEvidence& e, std::optional<std::uint64_t> taken_since, std::uint64_t block);

//! Who used a nonce, as the block that used it shows (the search's answer).
enum class NonceUser { kOurs, kOther, kUnknown };

//! A mined entry whose block is not final yet, re-checked against the poll's view.
struct MinedCheck {
    std::uint64_t block = 0;  //!< where the ledger has it
    std::string hash;         //!< that block's hash as booked ("" if not known)
};
//! What the batch showed: the entry's receipt (block and block hash), whether that query failed,
//! the hash of the chain's block at the entry's height ("" when there is no block there), whether
//! that query failed, and the batch's own latest block and freshness (not older than the newest
//! block seen).
struct MinedEvidence {
    std::optional<std::pair<std::uint64_t, std::string>> receipt;
    bool receipt_failed = false;
    std::optional<std::string> hash_at_height;  //!< none: not asked or the query failed
    bool fresh = true;
};
//! A receipt that contradicts the block at the height (or a move seen from a stale view) concludes
//! nothing.
enum class Recheck {
    kHolds,    //!< still in the block the ledger has
    kMoved,    //!< its receipt is in another block (re-included after a reorg), seen fresh: book it there
    kGone,     //!< the block that held it is gone and no receipt shows it elsewhere: it is `sent` again
    kUnknown,  //!< nothing can be concluded this Round (a failed query, a stale view)
};
[[nodiscard]] Recheck recheck_mined(const MinedCheck& booked, const MinedEvidence& e);

//! Whether a mined block is final: `depth` blocks under the newest block seen when the network
//! configures `finality`; else at or below the chain's `finalized` block where the node answers
//! that tag; else `depth` (the default for the chain) under the newest block seen.
[[nodiscard]] bool is_final(std::uint64_t block, std::uint64_t newest, std::uint64_t depth, bool depth_configured,
                            std::optional<std::uint64_t> finalized_tag);
//! The finality depth of a chain whose config sets none: a block count past which its reorgs are
//! not seen in practice (64 for chains not listed: two Ethereum epochs).
[[nodiscard]] std::uint64_t default_finality(std::uint64_t chain_id);

//! One unresolved payment (a nonce of ours) as the reserve counts it: what it sends and the most
//! its fees can cost.
struct InFlight {
    std::uint64_t nonce = 0;
    Wei amount = 0, worst_fee = 0;
};
//! What the unresolved payments may still take from the bank: per nonce (replacements are one
//! payment) the largest amount plus worst-case fee of its transactions.
[[nodiscard]] Wei in_flight_total(const std::vector<InFlight>& entries);

//! Nonces that hold ours back: from the first nonce no transaction holds (`free_from`: the node's
//! pending count, and at least its latest) up to our highest unresolved nonce, those with no
//! unresolved entry of ours (a refused send, a filler that failed, a transaction a node forgot
//! that was never ours). Nothing of ours above a gap can be mined until it is filled.
[[nodiscard]] std::vector<std::uint64_t> nonce_gaps(std::uint64_t free_from, const std::set<std::uint64_t>& ours);

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
