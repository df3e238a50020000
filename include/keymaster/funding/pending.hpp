#pragma once

#include <cstdint>
#include <optional>

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

}  // namespace keymaster::funding
