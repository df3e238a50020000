// The burn history: measured burn per account (see funding/burn.hpp), kept as each account's
// place and its spending bucket by bucket, and the journal's settled top-ups it is measured
// against: what arrived at each account, what the bank paid.
#pragma once

#include <string>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger {

//! The burn history of a ledger (a concern of the Ledger, which offers it; see ledger.hpp).
class BurnHistory {
public:
    BurnHistory(const BurnHistory&) = delete;
    BurnHistory& operator=(const BurnHistory&) = delete;

    //! A confirmed top-up (nonce fillers left out) and when it was recorded confirmed.
    struct Arrival {
        std::string recipient;  //!< EIP-55
        Wei amount = 0;
        double time = 0;
    };
    //! Top-ups of the bank of `network` first recorded confirmed after `since` (unix seconds): a
    //! booking changed later (a receipt after an estimate, a reorg) is not a second arrival.
    std::vector<Arrival> confirmed_since(const std::string& network, const std::string& bank, double since) const;
    //! What the bank of `network` paid in entries first settled since `since`: amounts and fees of
    //! confirmed top-ups, fees of reverted ones.
    Wei paid_since(const std::string& network, const std::string& bank, double since) const;

    //! Measured burn (see funding/burn.hpp): per account, where the next measurement starts...
    struct BurnState {
        std::string address;  //!< EIP-55
        double since = 0, time = 0;
        Wei balance = 0;
    };
    //! ...and what it spent, bucket by bucket.
    struct BurnRow {
        std::string address;
        double start = 0, stop = 0;
        Wei spent = 0;
    };
    //! Every account's BurnState of `network`.
    [[nodiscard]] std::vector<BurnState> burn_states(const std::string& network) const;
    //! Buckets of `network` that end at or after `since`, by address then start.
    std::vector<BurnRow> burn_rows(const std::string& network, double since) const;
    //! Writes states and buckets (replacing those with the same key) in one transaction.
    void save_burn(const std::string& network, const std::vector<BurnState>& states, const std::vector<BurnRow>& rows);
    //! Deletes the buckets of `network` that ended before `before`.
    void prune_burn(const std::string& network, double before);

protected:
    //! On the store a Ledger opened (and keeps open while this lives).
    explicit BurnHistory(detail::Store& store) : store_(&store) {}
    ~BurnHistory() = default;

private:
    detail::Store* store_;
};

}  // namespace keymaster::ledger
