// Step 3 of prepare: whether the poll's view may decide (its chain, its age).
#include <spdlog/spdlog.h>

#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

std::optional<Problem> ViewChecks::check_chain(config::Network& net, const funding::NetworkSnapshot& snap) {
    if (!snap.reachable) return Problem{snap.chain_id_mismatch ? Fault::kChainId : Fault::kPoll, snap.error};
    if (!net.chain_id) {
        net.chain_id = snap.chain_id;
        spdlog::info("{}: chain id {}", net.name, snap.chain_id);
    }
    return std::nullopt;
}

bool ViewChecks::stale(const funding::NetworkSnapshot& snap, Seen& seen) {
    if (!snap.reachable) return false;
    if (went_back(snap.block, seen)) return false;
    const bool stale = funding::is_stale(snap.block, seen.newest);
    if (stale && clock_.wall() - stale_logged_ >= 60) {
        stale_logged_ = clock_.wall();
        spdlog::warn(
            "{}: the endpoint answered from block {}, older than block {} already seen (a backend behind "
            "another?): no top-up is planned from it (logged once a minute)",
            network_, snap.block, seen.newest);
    }
    seen.block(snap.block);
    return stale;
}

// Every answer below the newest block seen for a long while, none reaching it: the chain went
// back for good (a reset, a reorg to a shorter chain, one bogus block number). Accepted, logged:
// blocks are counted from where the chain is, and what it no longer holds is found gone.
bool ViewChecks::went_back(std::uint64_t block, Seen& seen) {
    if (block == 0) return false;  // a poll of unknown age (a request's block unread) proves nothing
    if (block >= seen.newest) {
        behind_.reset();
        return false;
    }
    const double now = clock_.wall();
    if (!behind_ || behind_->fresh_answers != seen.fresh_answers)
        behind_ = funding::Behind{now, seen.fresh_answers, block};
    behind_->highest = std::max(behind_->highest, block);
    if (!funding::chain_went_back(*behind_, seen.fresh_answers, now)) return false;
    spdlog::warn(
        "{}: every answer for {:.0f} s has been below block {}, none reaching it: the chain went back (a "
        "reset or a "
        "reorg to a shorter chain?); counting from block {} now",
        network_, now - behind_->since, seen.newest, behind_->highest);
    seen.rebase(behind_->highest);
    behind_.reset();
    return true;
}

}  // namespace keymaster::chain::detail
