// Measured burn of one network's accounts, kept in memory and in the ledger (not a public header).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "keymaster/funding/burn.hpp"
#include "keymaster/funding/snapshot.hpp"
#include "keymaster/ledger/burn_history.hpp"

namespace keymaster::chain::detail {

//! Buckets are kept at least a week (longer when a window is longer).
inline constexpr double kBurnRetentionSeconds = 7 * 86400;

//! One history per account of the worker (same order), loaded from the ledger once, measured
//! every live Round: what changed is written in one transaction. A failed write or load makes the
//! next Round start again from the ledger, which stays consistent (a measurement always starts at
//! the last state written).
class BurnTracker {
public:
    //! `bank_window`: the network's runway.window, over which the bank's rate is measured.
    BurnTracker(std::string network, const std::vector<funding::Account>& accounts, double bank_window);

    //! Measures every account of `snap` whose balance was read and that has no unresolved top-up
    //! (`busy`: its money may be on the way), at `now`. `reader` null: no arrivals known; `writer`
    //! null: in memory only (dry run).
    //! Returns the accounts that spent since the last measurement: (snapshot index, amount), by
    //! index. Throws LedgerError (nothing measured then).
    std::vector<std::pair<std::size_t, Wei>> measure(const ledger::BurnHistory* reader, ledger::BurnHistory* writer,
                                                     const funding::NetworkSnapshot& snap,
                                                     const std::set<eth::Address>& busy, double now);
    //! Loads the history if not yet loaded (status: read only). Throws LedgerError.
    void load(const ledger::BurnHistory& ledger, double now);

    //! Each account's rate over its runway.window at `now`.
    [[nodiscard]] std::vector<funding::BurnRate> rates(double now) const;
    //! The bank's: what it paid (top-ups and fees, from the ledger) over `window`, since its
    //! first observation. The sum is read again once entries settled (paid_changed()) or a minute
    //! passed (the window slides), not every Round. Throws LedgerError.
    [[nodiscard]] funding::BurnRate bank_rate(const ledger::BurnHistory& ledger, const std::string& bank, double now);
    //! Entries of the bank settled (commit, reconcile): its next rate reads the ledger.
    void paid_changed() { paid_at_.reset(); }

private:
    std::map<std::size_t, Wei> arrivals(const ledger::BurnHistory& ledger, const std::string& bank, double now) const;
    void prune(ledger::BurnHistory* writer, double now);

    std::string network_;
    const std::vector<funding::Account>& accounts_;
    std::optional<std::size_t> find(const std::string& address) const;

    std::vector<std::pair<eth::Address, std::size_t>> index_;  // sorted: an account by address
    std::vector<funding::BurnHistory> history_;
    funding::BurnHistory bank_;  // since: the bank's first observation
    double bank_window_;
    double retention_ = kBurnRetentionSeconds;
    double last_prune_ = 0;
    std::optional<double> paid_at_;  // when paid_ was read
    Wei paid_ = 0;
    bool loaded_ = false;
};

}  // namespace keymaster::chain::detail
