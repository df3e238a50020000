// The steps of a Round, shared by the files of the chain module (not a public header).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keymaster/chain/ledger_thread.hpp"
#include "keymaster/chain/round.hpp"
#include "keymaster/chain/send_result.hpp"
#include "keymaster/eth/transaction.hpp"
#include "keymaster/funding/pending.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::chain::detail {

//! What the Worker has seen of its chain, across Rounds: the newest block in any answer (polls,
//! reconcile, receipts). A view older than it decides nothing a newer one could contradict, and
//! block counts are taken from it, never from a number that went backwards.
struct Seen {
    std::uint64_t newest = 0;
    std::uint64_t fresh_answers = 0;  //!< answers at or above the newest block seen so far
    void block(std::uint64_t b) {
        if (b < newest) return;
        newest = b;
        ++fresh_answers;
    }
    //! The chain went back for good (funding::chain_went_back): `b` is the newest from now on.
    void rebase(std::uint64_t b) { newest = b; }
    //! The blocks of the ledger's mined entries not final yet, once (what the chain showed even to
    //! an earlier process); not answers, and not again after a rebase.
    bool seeded = false;
    void seed(std::uint64_t b) { newest = std::max(newest, b); }
    //! `b`, or the newest block seen if that is later.
    [[nodiscard]] std::uint64_t at_least(std::uint64_t b) const { return std::max(newest, b); }
};

//! The sender lease a live Round holds for its bank on its chain (shared ledger only): journal()
//! checks and extends it in the same ledger transaction as the intents it writes.
struct SenderLease {
    std::string name, holder;
    std::uint64_t epoch = 0;
    double seconds = 0;
};

//! What every step works with.
struct Context {
    rpc::RpcClient& client;
    std::shared_ptr<signer::Signer> signer;
    ledger::Ledger* ledger;  //!< null only when there is no ledger (status before the first top-up)
    const config::Network& net;
    std::function<double()> now;     //!< the Worker's clock on the ledger's time (unix seconds; the database's on Postgres)
    const Clock& clock;              //!< the Worker's (steady(): the receipts' wait)
    std::function<void()> replaced;  //!< a replacement was broadcast (counted then, not at the Round's end)
    bool jovian = false;             //!< an OP Stack chain past Jovian (a poll read it): its operator fee formula
    Seen* seen = nullptr;            //!< the Worker's (none: nothing seen is kept)
    const SenderLease* sender = nullptr;  //!< held for this Round (none: the ledger is not shared)
    //! The signer's bank is no longer configured (reconcile_orphans): its key is not held, its
    //! unresolved entries are settled and sent again as they are, never replaced.
    bool orphan = false;
    //! The newest block seen, or `b` if later.
    [[nodiscard]] std::uint64_t block_at_least(std::uint64_t b) const { return seen ? seen->at_least(b) : b; }
    void saw(std::uint64_t b) const {
        if (seen) seen->block(b);
    }
    //! Where the ledger's calls run (none: on the caller's thread, as a unit test may).
    LedgerThread* thread = nullptr;
    //! Runs `fn` (ledger calls, and what they need) on the ledger's thread, awaited: the loop serves
    //! HTTP and polls meanwhile. `fn` touches only the ledger and the caller's locals.
    [[nodiscard]] boost::asio::awaitable<void> in_ledger(std::function<void()> fn) const {
        if (!thread) {
            fn();
            co_return;
        }
        co_await thread->run([&](ledger::Ledger&) { fn(); });
    }
};

//! One transaction's broadcast: the verdict (from the chain's evidence), the node's words as a hint.
struct Sent {
    SendVerdict verdict = SendVerdict::kUnknown;
    SendHint hint = SendHint::kNoAnswer;
    std::string words;     //!< the node's error message, or why there was no answer
    std::string evidence;  //!< what the chain showed, when it was asked
    //! For the log and the ledger: the words and the evidence ("" for a hash).
    [[nodiscard]] std::string why() const;
};

//! One top-up through commit, in one record: the decision, the transaction chosen for it, its
//! signature, every journaled transaction of its nonce (first first, newest last), what its first
//! broadcast showed and what became of it.
struct Payment {
    Outcome outcome;                     //!< the decision (outcome.topup) and what became of it
    std::optional<eth::Transaction> tx;  //!< chosen: its unsigned transaction, nonce assigned
    std::optional<signer::SignResult> signature;  //!< tx's, once signing got to it
    std::vector<ledger::Entry> entries;  //!< its journaled transactions, newest last
    Sent sent;                           //!< what its first broadcast showed
    //! Sent and journaled: commit waits for its receipt.
    [[nodiscard]] bool watched() const { return outcome.state == Outcome::State::kSent && !entries.empty(); }
    void fail(Fault f, std::string why);
    void fail(const Problem& p) { fail(p.fault, p.message); }
};

//! What a step of commit tells besides its payments: problems tied to no payment, replacements.
struct StepReport {
    int replacements = 0;
    std::vector<Problem> problems;
    StepReport& operator+=(StepReport other);
};

// --- transactions.cpp: the one place a transaction and its ledger entry are built and journaled ---
[[nodiscard]] eth::Transaction build_tx(const funding::Fees& fees, std::uint64_t chain_id, std::uint64_t nonce,
                                        const eth::Address& to, const Wei& value, std::uint64_t gas_limit);
[[nodiscard]] ledger::Entry entry_of(const Context& ctx, const eth::Transaction& tx, const Bytes& raw,
                                     const std::string& home, const std::string& role, std::uint64_t block);
[[nodiscard]] funding::Fees fees_of(const ledger::Entry& e);
//! The one place a receipt becomes what the bank paid (gas, and an OP Stack chain's L1 data and
//! operator fees, the latter by Jovian's formula where `ctx.jovian`); a receipt whose fee fields
//! cannot be read is logged (the fee is understated).
[[nodiscard]] funding::FeePaid paid_for(const Context& ctx, const ledger::Entry& e, const rpc::ReceiptInfo& r);
//! A transaction to sign, and where its signature (or why not) goes.
struct ToSign {
    const eth::Transaction* tx;
    std::optional<signer::SignResult>* signature;
};
//! Signs the jobs' transactions in order, up to four at a time, whatever the signer (a KMS Sign is
//! a network round trip). Every job up to and including the first failure gets its result; nothing
//! after it is signed (its signature stays empty).
[[nodiscard]] boost::asio::awaitable<void> sign_in_order(std::shared_ptr<signer::Signer> signer, std::vector<ToSign> jobs);
//! Signs one transaction: its entry (not yet journaled), or why not (kSigning).
[[nodiscard]] boost::asio::awaitable<Expected<ledger::Entry>> sign_entry(const Context& ctx, const eth::Transaction& tx,
                                                                        const std::string& home, const std::string& role,
                                                                        std::uint64_t block);
//! The one place an intent is journaled: every entry in one ledger transaction (one sync), each
//! given its id and its creation time (the Worker's clock), after checking in that transaction
//! that the Round still holds its sender lease (ctx.sender). Durable before any broadcast; on a
//! Problem (kLedger) none is written.
[[nodiscard]] boost::asio::awaitable<std::optional<Problem>> journal(Context& ctx, std::vector<ledger::Entry>& entries);
//! The same for entries kept in their own records (each given its id and creation time there).
[[nodiscard]] boost::asio::awaitable<std::optional<Problem>> journal(Context& ctx, const std::vector<ledger::Entry*>& entries);

// --- broadcast.cpp ---
//! One transaction to broadcast: its journaled entry, and where what its send showed is written
//! (the record the caller keeps of it: a Payment's `sent`).
struct Outgoing {
    const ledger::Entry* entry;
    Sent* sent;
};
//! Sends the entries' raw bytes in one batch, once (never retried blind); after any answer other
//! than a hash, asks the chain in one more batch (own hash, receipt, the bank's latest and pending
//! nonce) and decides from that.
[[nodiscard]] boost::asio::awaitable<void> broadcast(Context& ctx, const std::vector<Outgoing>& out);
//! The same for one transaction: what its send showed.
[[nodiscard]] boost::asio::awaitable<Sent> broadcast_one(Context& ctx, const ledger::Entry& entry);
//! The entries worth sending again, asked of the chain just before (one batch): their nonce not yet
//! passed by the bank's latest nonce, and not held by the node. Bytes of a used nonce are never
//! sent again, nor bytes the node holds (some nodes execute such bytes twice: ganache does for nonce 0).
//! Nothing when the chain cannot be asked.
[[nodiscard]] boost::asio::awaitable<std::vector<ledger::Entry>> lost_by_node(Context& ctx, std::vector<ledger::Entry> entries);
//! Whether a send is an entry's first broadcast or the same bytes again.
enum class SendKind { kFirst, kAgain };
//! The one place a send's verdict reaches the ledger (inside the caller's ledger transaction, if any).
//! First send: held and unknown are `sent` (unknown says so, `note` follows), failed is `failed` with
//! the node's words. Again: only an `intent` the node now holds becomes `sent`; nothing else changes
//! (the chain settles it in reconcile).
void record_send(Context& ctx, const ledger::Entry& entry, const Sent& sent, SendKind kind, const std::string& note = {});
//! Fills each refused nonce (proven failed) that has others after it with a zero-value transfer from
//! the bank to itself (role "nonce-filler"); a filler worded "underpriced" and not held is re-signed
//! with bumped fees (every one of them stays `sent` until one of the nonce is mined).
[[nodiscard]] boost::asio::awaitable<StepReport> fill_gaps(Context& ctx, const funding::Fees& fees, std::uint64_t chain_id,
                                                           std::uint64_t block, const std::vector<std::uint64_t>& nonces);
//! Nonces to fill: failed ones with a transaction held by the node (or of unknown fate) after them.
[[nodiscard]] std::vector<std::uint64_t> gap_nonces(const std::vector<Outgoing>& out);

// --- replace.cpp ---
//! A replacement: the new transaction (sent or of unknown fate), and what to report of it.
struct Replacement {
    std::optional<ledger::Entry> entry;
    StepReport report;  //!< one replacement, or the Problem (none when only the fee ceiling stops it)
};
//! Re-signs a stuck transaction with the same nonce and fees raised 12.5% (never above the
//! ceiling), journals it before the broadcast; the stuck one becomes `replaced` unless the new
//! one is refused. An unknown send result leaves the new one `sent` for reconcile. Logs the result
//! (the one way a replacement is reported, in reconcile's and in the receipts' wait alike).
[[nodiscard]] boost::asio::awaitable<Replacement> replace_stuck(Context& ctx, const ledger::Entry& stuck, const funding::Fees& first_fees,
                                                               std::uint64_t block);

// --- reconcile.cpp ---
//! What the ledger's unresolved entries are (prepare's first step).
struct LedgerView {
    std::vector<PendingAction> pending;
    std::vector<ledger::Entry> settled;
    std::set<eth::Address> busy;
    std::optional<std::uint64_t> next_nonce;
    std::set<std::uint64_t> nonces;          //!< every unresolved nonce of ours
    std::vector<funding::InFlight> in_flight;  //!< what the unresolved entries may still take from the bank
    int reorged = 0;                         //!< mined entries whose block the chain no longer holds
    std::vector<std::string> orphans;        //!< banks no longer configured whose entries were reconciled here
    //! Mined entries not final yet (of ours, or of an orphan bank): re-checked against the poll.
    struct Mined {
        ledger::Entry entry;
        bool orphan = false;
    };
    std::vector<Mined> unfinal;
    std::vector<std::string> orphan_leases;  //!< orphan banks' sender leases taken for this Round (shared ledger)
    std::vector<std::string> log;
};
//! kLive: asks the chain, in one batch that carries eth_chainId (a mismatch writes nothing), about
//! every unresolved entry (receipt and by hash), and records what it proves: mined (confirmed or
//! reverted; without a receipt, at an estimated fee), dropped (the block that used the nonce holds
//! another transaction). The mined entries not final yet (the ledger's, and those it settled) go to
//! `view.unfinal`, for recheck_unfinal after the poll. kChainId, kPoll or kLedger when the chain or
//! the ledger cannot be used.
[[nodiscard]] boost::asio::awaitable<Expected<LedgerView>> reconcile(Context& ctx);
//! kLive: the same for every other bank with unresolved entries on the chain that no network of the
//! config funds from (`configured`: lower-case addresses; a bank replaced in the config, its
//! top-ups still in flight): settled from the chain, sent again as they are if the node lost them,
//! never replaced (no key); their accounts wait. Added to `view` (not its nonces or what is in
//! flight: they are another bank's); the banks are listed in `view.orphans`.
[[nodiscard]] boost::asio::awaitable<std::optional<Problem>> reconcile_orphans(Context& ctx, const std::set<std::string>& configured,
                                                                              LedgerView& view);
//! kLive, after the poll (whose batch asked the block at each height of `view.unfinal`, and the
//! `finalized` tag): each mined entry not final is still there (final when its block is, seen from
//! a `fresh` poll), moved (booked where its receipt is), or gone (back to `sent`, its account
//! busy); receipts are asked only where the block changed or the fee is estimated. An account
//! whose top-up's block the poll does not show and nothing can be concluded about waits.
[[nodiscard]] boost::asio::awaitable<std::optional<Problem>> recheck_unfinal(Context& ctx, const funding::NetworkSnapshot& snap,
                                                                            bool fresh, LedgerView& view);
//! The heights to ask the poll about for `view` (distinct, ascending): all of them up to
//! 2 x kHeightsEachEnd, else the oldest and the newest kHeightsEachEnd (the first request stays
//! small; those between are re-checked as the oldest become final).
inline constexpr std::size_t kHeightsEachEnd = 16;
[[nodiscard]] std::vector<std::uint64_t> unfinal_heights(const LedgerView& view);
//! kDryRun: the unresolved entries as the ledger has them, nothing asked or written.
[[nodiscard]] boost::asio::awaitable<Expected<LedgerView>> pending_view(const Context& ctx);
//! Commit's first step: re-broadcast or replace the plan's pending entries.
[[nodiscard]] boost::asio::awaitable<StepReport> resolve_pending(Context& ctx, const std::vector<PendingAction>& pending,
                                                                 std::uint64_t block);

// --- receipts.cpp ---
//! Waits for receipts of every watched payment (any transaction of its nonce), records them in one
//! ledger transaction per poll, re-broadcasts and replaces.
[[nodiscard]] boost::asio::awaitable<StepReport> watch_receipts(Context& ctx, std::vector<Payment>& payments,
                                                                const CommitOptions& opt);

}  // namespace keymaster::chain::detail

namespace keymaster::chain::detail {
// --- commit.cpp ---
//! The commit phase of a Round (Worker::commit).
[[nodiscard]] boost::asio::awaitable<RoundReport> commit_round(Context& ctx, const RoundPlan& plan, const CommitOptions& opt);
}  // namespace keymaster::chain::detail
