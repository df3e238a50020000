// The journal: every top-up is written (intent) before it is broadcast, and each change of its
// state after (sent, confirmed, replaced, dropped, failed, reorged), with its time. Also the reads
// a Round makes of its own entries: what is unresolved, what is not final, what a bank spent and
// each recipient received within a window.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/ledger/types.hpp"

namespace keymaster::ledger {

//! The journal of top-ups (a concern of the Ledger, which offers it; see ledger.hpp).
class Journal {
public:
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    //! Writes a new entry (state intent) and syncs it; returns its id. Throws LedgerError.
    [[nodiscard]] std::int64_t record_intent(Entry e);
    //! Writes new entries (state intent) in one transaction, a few statements for all of them,
    //! and sets each one's `id` and `created`. Throws LedgerError (then none is written).
    void record_intents(std::vector<Entry>& entries);
    //! Runs `fn`, whose ledger calls (of every concern) form one transaction: all of them are on
    //! disk when it returns (one sync instead of one per call), none if it throws.
    void atomically(const std::function<void()>& fn);
    //! Records a change of state. Throws LedgerError.
    void mark(std::int64_t id, State s, const std::string& error = {});
    //! Records a receipt: `confirmed` (success) or `failed` (reverted) in `block`, with what it
    //! paid. Throws LedgerError.
    //! `fee_paid` is the whole fee; `l1_fee` and `operator_fee` the parts of it an OP Stack chain
    //! charges beyond gas.
    //! `block_hash`: the block's hash as the chain showed it (kept to notice a reorg); `estimated`:
    //! the transaction was seen mined without its receipt and `fee_paid` is the most it can be.
    //! The entry is not final until finalized().
    void confirmed(std::int64_t id, bool success, std::uint64_t block, std::uint64_t gas_used, const Wei& fee_paid,
                   const Wei& l1_fee = 0, const Wei& operator_fee = 0, const std::string& block_hash = {},
                   bool estimated = false);
    //! Records that the entry's block is final: no longer re-checked.
    void finalized(std::int64_t id);
    //! Records that the block holding the entry is gone (a reorg): it is `sent` again (unresolved,
    //! its booking undone), with `why` in its events, and waits for `replaceAfter` from `block` (the
    //! newest seen) and from now, as if just sent.
    void reorged(std::int64_t id, const std::string& why, std::uint64_t block = 0);
    //! Records that another transaction of the same nonce (`by_hash`) took the entry's place.
    //! Throws LedgerError.
    void replaced(std::int64_t id, const std::string& by_hash);
    //! Records the block from which the entry's nonce has been seen taken with no receipt of ours
    //! (0: no longer seen so). Evidence for "dropped", kept across restarts.
    void taken(std::int64_t id, std::uint64_t since_block);

    //! Unresolved entries of a network and bank, oldest nonce first: intent and sent, and replaced
    //! ones whose nonce is not yet settled (the replaced transaction may still be the one mined).
    std::vector<Entry> pending(const std::string& network, const std::string& bank) const;
    //! The same, found by chain id and bank (whatever network name they were journaled under): what
    //! must be reconciled before that bank sends again on that chain.
    std::vector<Entry> pending(std::uint64_t chain_id, const std::string& bank) const;
    //! Every bank (EIP-55) with unresolved entries, or mined ones not final, on the chain.
    [[nodiscard]] std::vector<std::string> unresolved_banks(std::uint64_t chain_id) const;
    //! Mined entries (confirmed, or reverted in a block) of the bank on the chain whose block is not
    //! final yet, oldest nonce first.
    std::vector<Entry> unfinal(std::uint64_t chain_id, const std::string& bank) const;
    //! What the bank of `network` committed since `since` (unix seconds): every entry not dropped
    //! or failed, each nonce counted once.
    Wei spent_since(const std::string& network, const std::string& bank, double since) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    Wei spent_since(std::uint64_t chain_id, const std::string& bank, double since) const;
    //! What each recipient of the bank of `network` was sent since `since` (unix seconds), by
    //! EIP-55 address: amount and number of transfers, counted as spent_since() counts (every
    //! entry not dropped or failed, each nonce once). Nonce fillers are not counted.
    struct Received {
        Wei amount = 0;
        std::uint64_t count = 0;
    };
    [[nodiscard]] std::map<std::string, Received> received_since(const std::string& network, const std::string& bank, double since) const;
    //! The same, for the bank on a chain (whatever network names it was journaled under).
    [[nodiscard]] std::map<std::string, Received> received_since(std::uint64_t chain_id, const std::string& bank, double since) const;

protected:
    //! On the store a Ledger opened (and keeps open while this lives).
    explicit Journal(detail::Store& store) : store_(&store) {}
    ~Journal() = default;

private:
    detail::Store* store_;
};

}  // namespace keymaster::ledger
