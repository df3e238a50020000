// The steps of prepare, shared by the files of the chain module (not a public header): each takes
// what it needs and returns what it found; Worker::prepare (worker.cpp) calls them in order.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keymaster/common/clock.hpp"
#include "keymaster/funding/limits.hpp"
#include "keymaster/funding/pending.hpp"
#include "burn_tracker.hpp"
#include "steps.hpp"

namespace keymaster::chain::detail {

// --- ledger_read.cpp: step 1, the ledger's unresolved entries (step 2 is the poll, poll.cpp) ---
//! kLive, when the config has none (the first Round only): the chain id, before the ledger is read
//! by it (one eth_chainId), pinned in `net`.
[[nodiscard]] boost::asio::awaitable<std::optional<Problem>> pin_chain_id(rpc::RpcClient& client,
                                                                          config::Network& net);

//! The sender lease of a bank on a chain (shared ledger), whatever the processes or their configs
//! are named: another holder means this Round sends nothing.
class SenderClaim {
public:
    std::string holder;                     //!< who we are ("" : no lease)
    std::chrono::milliseconds duration{0};  //!< how long a claim holds
    //! kLive: claims it for this Round (kSender: another holds it; kLedger: the ledger cannot be
    //! used). A new epoch makes `ctx.seen` read again what the ledger saw (another may have sent).
    [[nodiscard]] boost::asio::awaitable<std::optional<Problem>> claim(Context& ctx,
                                                                       const eth::Address& bank);
    //! The claim held by the current live Round (null: not claimed, or not ours).
    [[nodiscard]] const SenderLease* held() const { return held_ ? &*held_ : nullptr; }

private:
    std::optional<SenderLease> held_;
    std::optional<std::uint64_t> epoch_;  // of the last claim
};

//! kLive: reconcile (and the unresolved entries of banks no longer configured, `configured_banks`
//! lower case; none: not looked for); kDryRun: the unresolved entries as the ledger has them;
//! kStatus: nothing. `holder`: whose orphan leases to give back when reconciling them fails.
[[nodiscard]] boost::asio::awaitable<Expected<LedgerView>> read_view(
    Context& ctx, Mode mode, const std::set<std::string>& configured_banks, const std::string& holder);
//! Step 2c (kLive): the mined top-ups not final yet, against the poll's view (a reorg between
//! reconcile and the poll is seen by the poll itself); then what the ledger steps found goes to
//! `rp` (its log, what settled), and the orphan banks' leases taken for this Round are given back.
[[nodiscard]] boost::asio::awaitable<void> settle_view(Context& ctx, RoundPlan& rp,
                                                       const funding::NetworkSnapshot& snap, LedgerView& view,
                                                       const std::string& holder);
//! The orphan banks' sender leases `view` took, given back (one that cannot be expires by itself).
[[nodiscard]] boost::asio::awaitable<void> release_orphan_leases(Context& ctx, const LedgerView& view,
                                                                 const std::string& holder);

// --- view_checks.cpp: step 3, whether the poll may decide ---
//! Whether the poll's view can be used: its chain, and its age against the newest block seen,
//! across Rounds (the stale view's log once a minute; since when every answer has been behind).
class ViewChecks {
public:
    ViewChecks(std::string network, const Clock& clock) : network_(std::move(network)), clock_(clock) {}
    //! The chain id is pinned by the first poll (in `net`); every later one must see the same.
    //! A Problem (kPoll, kChainId) when the poll failed.
    [[nodiscard]] static std::optional<Problem> check_chain(config::Network& net,
                                                            const funding::NetworkSnapshot& snap);
    //! A poll older than a block already seen decides nothing (read your own writes): logged once
    //! a minute. Then it is seen (`seen`). A chain that went back for good is accepted first.
    [[nodiscard]] bool stale(const funding::NetworkSnapshot& snap, Seen& seen);

private:
    bool went_back(std::uint64_t block, Seen& seen);
    std::string network_;
    const Clock& clock_;
    double stale_logged_ = -1e18;            // when a stale view was last logged
    std::optional<funding::Behind> behind_;  // since when every answer has been below the newest block seen
};

// --- contradictions.cpp: step 3b, an endpoint that contradicts itself about our top-ups ---
//! Snapshot accounts held this Round: their confirmed top-up the balance does not show
//! (mismatches), or that could not be checked (unverified).
struct Contradicted {
    std::vector<std::size_t> mismatches, unverified;
};
//! The confirmed top-ups since the last poll, checked at the next one; one still contradicted is
//! checked again, for at most kPolls polls.
class Contradictions {
public:
    static constexpr int kPolls = 10;
    //! A top-up of ours confirmed (commit).
    void confirmed(const eth::Address& account, funding::ConfirmedTopUp topup) {
        since_poll_[account] = topup;
    }
    //! Top-ups reconcile settled as confirmed this Round (nonce fillers pay the bank: not counted).
    void settled(const std::vector<ledger::Entry>& entries);
    //! kLive, on a reachable poll: the accounts a confirmed top-up reached since the last poll that
    //! the endpoint contradicts itself about (one batch, those accounts only). Forgets the rest.
    [[nodiscard]] boost::asio::awaitable<Contradicted> check(rpc::RpcClient& client,
                                                             const std::string& network, Mode mode,
                                                             const funding::NetworkSnapshot& snap);

private:
    using Recent = std::map<eth::Address, funding::ConfirmedTopUp>;
    boost::asio::awaitable<Contradicted> ask(rpc::RpcClient& client, const std::string& network,
                                             const funding::NetworkSnapshot& snap, const Recent& recent);
    void keep(const funding::NetworkSnapshot& snap, const std::vector<std::size_t>& held,
              const Recent& recent);
    Recent since_poll_;                  // checked at the next poll, then forgotten
    std::map<eth::Address, int> polls_;  // how many polls each has been contradicted
};

// --- burn_step.cpp, audit.cpp, spend_limits.cpp: the ledger's part of steps 4 to 7 ---
//! What step 4 measured (the rates are read from the tracker on the loop, after).
struct BurnMeasure {
    std::vector<std::pair<std::size_t, Wei>> spent;  //!< accounts that spent since the last poll
    std::optional<funding::BurnRate> bank_rate;
    std::optional<Problem> problem;  //!< the history could not be read or kept (the amounts apply)
};
//! Step 4, on the ledger's thread: measured burn (live: recorded; dry run: in memory; status:
//! read) and the bank's rate, into `out` as they are found. Throws LedgerError (ledger_pass makes
//! it `out.problem`: the amounts apply; what was measured before stays).
void measure_burn(BurnMeasure& out, BurnTracker& burn, ledger::Ledger* ledger, Mode mode,
                  const funding::NetworkSnapshot& snap, const std::set<eth::Address>& busy,
                  const std::string& bank, double now);

//! What step 4b found.
struct AuditFound {
    std::vector<std::uint64_t> unaccounted;
    Wei unexplained = 0;
    std::optional<Problem> problem;  //!< the ledger could not be used (the audit is skipped)
};
//! Whether step 4b runs: kLive, a ledger, the bank's nonce and balance read by the poll.
[[nodiscard]] bool audits(Mode mode, const ledger::Ledger* ledger, const funding::NetworkSnapshot& snap);
//! Step 4b, on the ledger's thread (only where `audits`): the bank audit from the poll, into `out`
//! as it is found. Throws LedgerError (ledger_pass makes it `out.problem`: its place is not kept).
void audit_bank(AuditFound& out, ledger::Ledger& ledger, const funding::NetworkSnapshot& snap,
                const std::string& bank);

//! What the ledger saw the bank send in 24 hours (for limits.daily and limits.perAccount).
struct Spending {
    Wei spent = 0;
    std::map<eth::Address, funding::Received> received;  //!< per account (read only with per-account limits)
};
//! Step 7's reads, on the ledger's thread: since `since` (the ledger's time). Throws LedgerError
//! (the awaiting read_spending makes it a Problem that blocks the Round).
[[nodiscard]] Spending read_spending(const ledger::Ledger& ledger, const config::Network& net,
                                     std::uint64_t chain_id, const std::string& bank, double since);
//! Step 7, on the loop: the limits on `plan`, with what is in flight; what is left of
//! limits.daily. A failed read blocks the Round.
[[nodiscard]] Expected<std::optional<Wei>> apply_limits(funding::NetworkPlan& plan,
                                                        const config::Network& net,
                                                        const Expected<Spending>& read, const Wei& in_flight);

// --- ledger_pass.cpp: the ledger's part of steps 4 to 7, one call on its thread per part ---
//! What steps 4 and 4b need.
struct LedgerPassInput {
    Mode mode;
    const funding::NetworkSnapshot& snap;
    const std::set<eth::Address>& busy;  //!< accounts with an unresolved top-up (not measured)
    std::string bank;                    //!< checksummed
    double now;                          //!< the Worker's clock
};
//! What they found.
struct LedgerPass {
    BurnMeasure burn;
    AuditFound audit;
};
//! Steps 4 and 4b, each its own call on the ledger's thread (so the thread judges each alone: a
//! part's failure is its own, and no call lasts as long as both); each part's trouble is its Problem.
[[nodiscard]] boost::asio::awaitable<LedgerPass> ledger_pass(const Context& ctx, BurnTracker& burn,
                                                             const LedgerPassInput& in);
//! Step 7's reads, in their own call on the ledger's thread, after the plan and its gas (only a
//! plan with top-ups needs them): since `since` (the ledger's time). None: no ledger, or a mode that
//! does not read it (no limits apply); a failed read is a Problem that blocks the Round.
[[nodiscard]] boost::asio::awaitable<std::optional<Expected<Spending>>> read_spending(
    const Context& ctx, Mode mode, std::uint64_t chain_id, const std::string& bank, double since);

// --- decide.cpp: step 5, the plan ---
//! What step 5 decides from.
struct Findings {
    funding::NetworkSnapshot snap;
    LedgerView view;
    std::vector<funding::BurnRate> rates;  //!< per snapshot account
    std::optional<funding::BurnRate> bank_rate;
    std::uint64_t newest_seen = 0;  //!< the newest block seen (a stale view's note)
};
//! Step 5: `funding` decides (the plan), balances that could mislead are held (every one of a
//! stale poll; those in rp.mismatches and rp.unverified), and what commit needs goes to `rp`: the
//! pending entries, the first nonce, the nonce gaps (and the fees of their fillers), what is in flight.
void decide(RoundPlan& rp, const config::Network& net, Findings in);

// --- gas.cpp: step 6 ---
//! Gas limits: the config's gasLimit, else eth_estimateGas (one batch); on Arbitrum always the
//! estimate (it holds the L1 component) times gasMargin, gasLimit a floor. A failed estimate leaves
//! that top-up with gas_limit 0: it will not be sent. The fees make_plan chose stay as they are.
[[nodiscard]] boost::asio::awaitable<std::optional<Problem>> estimate_gas(rpc::RpcClient& client,
                                                                          const config::Network& net,
                                                                          funding::NetworkPlan& plan);

}  // namespace keymaster::chain::detail
