#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keymaster/common/clock.hpp"
#include "keymaster/common/fault.hpp"
#include "keymaster/funding/plan.hpp"
#include "keymaster/ledger/ledger.hpp"

namespace keymaster::rpc {
class RpcClient;
struct RpcObserver;
}  // namespace keymaster::rpc
namespace keymaster::signer {
class Signer;
}

//! The round engine: one Worker per network, each Round a prepare (read, decide: nothing is
//! broadcast) and a commit (sign, journal, broadcast, watch). `top-up` runs one Round with its
//! confirmation between the two phases; `run` runs Rounds on a schedule; `status` only prepares.
namespace keymaster::chain {

class LedgerThread;


//! What a Round may do: the one place the mode is kept (a RoundPlan carries the mode it was
//! prepared in; commit, the burn tracker and the cli ask these functions, never compare).
enum class Mode {
    kStatus,  //!< read balances only: the ledger, when there is one, only for the burn history
    kDryRun,  //!< read the ledger (unresolved entries make their accounts wait), never write or send
    kLive,    //!< reconcile the ledger, then commit may send
};
//! Whether a Round in this mode decides top-ups from the ledger's unresolved entries.
[[nodiscard]] constexpr bool reads_ledger(Mode m) { return m != Mode::kStatus; }
//! Whether a Round in this mode writes the ledger and may send.
[[nodiscard]] constexpr bool sends(Mode m) { return m == Mode::kLive; }

//! One unresolved ledger payment (a nonce of ours, newest transaction first) and what commit does with it.
struct PendingAction {
    enum class Kind {
        kRebroadcast,  //!< unmined, nonce free: the same bytes again, if the node lost them (it takes them back)
        kReplace,      //!< unmined for replaceAfter: re-sign with higher fees
        kWait,         //!< nonce taken, no receipt yet: gathering evidence before "dropped"
    };
    Kind kind = Kind::kRebroadcast;
    ledger::Entry entry;  //!< the newest transaction of the nonce
    funding::Fees first_fees;      //!< the fees of the nonce's first transaction (replacement ceiling)
    std::string note;     //!< for the plan, e.g. "nonce taken since block 12, no receipt"
};

//! Why a step of prepare could not do all it does, and what that costs the Round.
struct RoundProblem {
    enum class Kind {
        kBlocks,  //!< this network cannot commit this Round
        kBurn,    //!< the burn history could not be read or kept: the configured amounts apply
        kAudit,   //!< the bank audit could not read or keep its place in the ledger: skipped this Round
        kGas,     //!< eth_estimateGas gave no answer: no top-up has a gas limit (none is sent)
    };
    Kind kind = Kind::kBlocks;
    Problem problem;
    [[nodiscard]] bool blocks() const { return kind == Kind::kBlocks; }
};

//! Prepare's result: the decision of one network's Round, and everything commit needs.
struct RoundPlan {
    Mode mode = Mode::kStatus;
    funding::NetworkPlan plan;                       //!< snapshot, top-ups, waiting, unknown, held back
    std::vector<PendingAction> pending;     //!< unresolved ledger entries and what commit does with them
    std::vector<ledger::Entry> settled;     //!< earlier top-ups settled from the chain while preparing
    std::vector<std::string> ledger_log;    //!< one line per ledger change while preparing
    std::vector<std::size_t> mismatches;    //!< snapshot accounts whose confirmed top-up the balance does not show
    //! Snapshot accounts that would be paid again where that check could not be made (its query
    //! failed): held like a mismatch, not counted as one.
    std::vector<std::size_t> unverified;
    std::optional<Wei> spend_remaining;     //!< what is left of limits.daily
    //! Snapshot accounts that spent since the last measurement: (index, amount), by index.
    std::vector<std::pair<std::size_t, Wei>> spent;
    //! The bank audit (kLive): nonces the bank used with no transaction of ours mined with them.
    std::vector<std::uint64_t> unaccounted;
    //! What the bank lost since the audit's last point beyond what our mined transactions took.
    Wei unexplained = 0;
    std::uint64_t first_nonce = 0;          //!< the first nonce commit uses
    //! The poll read the chain at a block older than one already seen on this network (a backend
    //! behind another, a lagging node): no top-up is planned from it (its accounts are unknown).
    bool stale = false;
    int reorged = 0;                        //!< mined top-ups reconcile found no longer in their block
    //! Nonces below our highest unresolved one that neither the node holds nor we have an entry
    //! for: nothing after them can be mined until commit fills them.
    std::vector<std::uint64_t> gaps;
    Wei in_flight = 0;                      //!< what our unresolved transactions may still take from the bank
    //! Banks no network funds from any more with unresolved entries on this chain: reconciled by
    //! this Round (settled, sent again as they are; their accounts wait), never replaced.
    std::vector<std::string> orphan_banks;
    //! What the steps met, in the order they met it: at most one that blocks commit (the first step
    //! that fails; no later one overwrites it, see `fail`), and those noted (burn, audit, gas).
    //! (No fees: `plan.fee_problem`, funding's.)
    std::vector<RoundProblem> problems;
    //! Why this network cannot commit this Round (null: nothing blocks it).
    [[nodiscard]] const Problem* blocking() const { return first(RoundProblem::Kind::kBlocks); }
    //! The first problem of `kind` (null: none).
    [[nodiscard]] const Problem* first(RoundProblem::Kind kind) const {
        for (const auto& p : problems)
            if (p.kind == kind) return &p.problem;
        return nullptr;
    }
    [[nodiscard]] Fault fault() const { return blocking() ? blocking()->fault : Fault::kNone; }
    //! Records why this Round cannot commit, unless an earlier step already did.
    void fail(Problem p) {
        if (!blocking()) problems.push_back({RoundProblem::Kind::kBlocks, std::move(p)});
    }
    //! Records trouble that costs the Round less than commit (`kind`: what it costs). A kBlocks
    //! given here is recorded as `fail` records it (at most one blocks: the first).
    void note(RoundProblem::Kind kind, Problem p) {
        if (kind == RoundProblem::Kind::kBlocks) fail(std::move(p));
        else problems.push_back({kind, std::move(p)});
    }
    [[nodiscard]] bool can_commit() const { return !blocking() && plan.snapshot.reachable; }
    //! Whether commit would broadcast anything: top-ups, or unresolved entries to send again or
    //! replace (an entry that only waits for evidence is not work). The one definition, for `run`
    //! and `top-up` alike.
    [[nodiscard]] bool has_work() const;
};

//! What happened to one top-up.
struct Outcome {
    funding::TopUp topup;
    //! kSent at the end of a commit: sent, unconfirmed at the deadline; the ledger keeps it and a
    //! later Round settles it (never paid twice, never recorded as failed).
    enum class State { kNotSent, kSent, kConfirmed, kFailed } state = State::kNotSent;
    std::string tx_hash;
    std::uint64_t nonce = 0;
    std::uint64_t block = 0;
    Wei fee_paid = 0;      //!< the whole fee (ledger::Entry::fee_paid)
    Wei l1_fee = 0;        //!< of which the OP Stack L1 data fee
    Wei operator_fee = 0;  //!< of which the OP Stack operator fee
    Fault fault = Fault::kNone;  //!< why it failed (kTopUp, kSigning, kFees, kLedger, ...)
    std::string error;
    std::int64_t ledger_id = 0;
    int replacements = 0;     //!< times re-signed with higher fees while stuck
    bool unrecorded = false;  //!< sent, but the ledger could not record it all: not ok (reconcile settles it)
    [[nodiscard]] bool ok() const { return state == State::kConfirmed && !unrecorded; }
};

//! Commit's result: every outcome, typed.
struct RoundReport {
    std::vector<Outcome> outcomes;  //!< one per planned top-up, in plan order
    int replacements = 0;           //!< stuck transactions re-signed with higher fees (pending ones included;
                                    //!< CommitOptions::replaced heard of each when it was broadcast)
    std::vector<Problem> problems;  //!< problems tied to no one top-up (ledger, fillers, replacements)
};

//! Whether a Round went well enough for `run` to keep its pace (otherwise it backs off and tries
//! again sooner): nothing stopped the plan, and commit (if it ran) met no problem tied to no
//! top-up. A refused or reverted top-up is the top-up's failure, not the Round's.
[[nodiscard]] bool round_ok(const RoundPlan& plan, const RoundReport* report);

//! How commit waits and what it tells its caller while it runs.
struct CommitOptions {
    //! How long commit waits for receipts (`run` waits at most until the next poll is due).
    std::chrono::milliseconds confirm_timeout{std::chrono::minutes(5)};
    std::chrono::milliseconds receipt_tick{100};        //!< eth_blockNumber this often while waiting
    std::chrono::milliseconds max_receipt_poll{2000};   //!< receipts at least this often, new block or not
    std::chrono::milliseconds rebroadcast_every{3000};  //!< unmined bytes the node lost sent again this often
    std::function<void(const std::string&)> progress;   //!< human progress lines
    std::function<void()> replaced;                     //!< each replacement, when it is broadcast
};

//! How `run` schedules Rounds.
struct Schedule {
    std::chrono::milliseconds interval{60'000};
    Mode mode = Mode::kLive;  //!< kLive, or kDryRun (decide and report, never send)
    //! When set, asked before each Round and again before its commit: false makes a kLive Round a
    //! kDryRun one (a standby replica: it polls and reports, never signs).
    std::function<bool()> may_send;
    CommitOptions commit;
};

//! What `run` tells its caller (cli maps it to logs and metrics).
struct RoundObserver {
    std::function<void(const RoundPlan&, double seconds)> prepared;  //!< after every prepare
    std::function<void(const RoundPlan&, const RoundReport&)> committed;
    //! An unexpected exception ended a Round: the original one, of its own type.
    std::function<void(const std::exception&)> failed;
};

//! The name of the sender lease of `bank` on `chain_id` (`sender:<chain id>:<bank, lower case>`):
//! what excludes two senders from one bank's nonces on one chain.
[[nodiscard]] std::string sender_lease_name(std::uint64_t chain_id, const eth::Address& bank);

//! One network's worker: its settings (chain id pinned by the first poll), bank signer, accounts,
//! RPC client, and what one Round tells the next. Single-threaded: used on one io_context. Every
//! time it reads comes from `clock` (the ledger's too; it outlives the Worker).
class Worker {
public:
    Worker(boost::asio::any_io_executor ex, config::Network net, std::shared_ptr<signer::Signer> signer,
           std::shared_ptr<const std::vector<funding::Account>> accounts, ledger::Ledger* ledger,
           const rpc::RpcObserver& observer, const Clock& clock);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    //! Reconciles the ledger (kLive: chain facts recorded, nothing broadcast), polls in one batch,
    //! pins or checks the chain id, decides, applies limits, estimates gas, chooses fees. Never
    //! throws for network or ledger trouble: the plan carries the fault.
    [[nodiscard]] boost::asio::awaitable<RoundPlan> prepare(Mode mode);

    //! Resolves the plan's pending entries (re-broadcast, replace), then signs the top-ups in nonce
    //! order, journals them in one sync, broadcasts them in one batch, fills nonce gaps and waits for
    //! receipts, replacing stuck transactions. Only for a kLive plan that can_commit().
    [[nodiscard]] boost::asio::awaitable<RoundReport> commit(const RoundPlan& plan, CommitOptions options);

    //! Rounds until stop(): prepare, commit (unless dry run; receipts awaited until the next poll is
    //! due), sleep until one interval (with jitter) after the Round started (on failure an
    //! exponential backoff from 1 s). Returns once stopped; a terminal cancellation of
    //! the coroutine ends it at its next wait.
    [[nodiscard]] boost::asio::awaitable<void> run(Schedule schedule, RoundObserver observer);
    //! No new Round starts; a sleeping run() returns at once, a running one after its Round.
    void stop();

    [[nodiscard]] const config::Network& network() const;
    [[nodiscard]] const eth::Address& bank() const;
    [[nodiscard]] const std::vector<funding::Account>& accounts() const;
    [[nodiscard]] bool ready() const;  //!< a poll has succeeded
    //! Each account's burn rate as the last Round measured it (for /status).
    [[nodiscard]] std::vector<funding::BurnRate> burn_rates() const;
    //! Where the ledger's calls run (set by run and top-up: the loop never waits for the
    //! database). Not set: on the loop (unit tests). With it, a Round that finds the ledger away
    //! (LedgerThread::away) polls and sends nothing, without queueing behind the call that hangs.
    void set_ledger_thread(LedgerThread* thread);

    //! Every live Round first claims the sender lease of its bank on its chain (sender_lease_name)
    //! for `duration`, as `process` (this process's holder id) and the network's name (two Workers
    //! of one process on one bank and chain exclude each other too), and sends nothing (kSender,
    //! naming who sends) while another holds it; journal writes check it. Not set: no lease.
    void set_sender(const std::string& process, std::chrono::milliseconds duration);
    //! The banks (any case) the config funds from: unresolved entries of any other bank on this
    //! Worker's chain are reconciled by its live Rounds (RoundPlan::orphan_banks). Empty: none is.
    void set_configured_banks(std::set<std::string> banks);
    //! The sender lease's name while this Worker holds it ("" otherwise), and its holder id, for the
    //! caller's renewal and release.
    [[nodiscard]] std::string sender_lease() const;
    [[nodiscard]] const std::string& sender_holder() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keymaster::chain
