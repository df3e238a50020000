#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "keymaster/chain/network_state.hpp"
#include "keymaster/eth/transaction.hpp"
#include "keymaster/ledger/ledger.hpp"

namespace keymaster::signer {
class Signer;
}
namespace keymaster::ledger {
class Ledger;
}

namespace keymaster::chain {

//! Fee parameters for this round's transactions.
struct Fees {
    eth::TxType type = eth::TxType::kDynamicFee;
    Wei gas_price = 0;     //!< legacy
    Wei max_fee = 0;       //!< EIP-1559 max fee per gas
    Wei priority_fee = 0;  //!< EIP-1559 tip
    //! The most one unit of gas can cost.
    Wei per_gas_cap() const { return type == eth::TxType::kLegacy ? gas_price : max_fee; }
};

//! Chooses the transaction type (txType, or EIP-1559 when the latest block has a base fee) and
//! fees: max fee = 2 x base fee + tip. Never above maxFeePerGas: if the chain's price is above it,
//! an error says so and nothing is sent.
std::variant<Fees, std::string> choose_fees(const NetworkSnapshot& snap, const config::Network& net);

//! One planned transfer.
struct TopUp {
    funding::Account account;
    Wei balance = 0;
    Wei amount = 0;
    std::uint64_t gas_limit = 21000;
};

//! What one network needs this round.
struct NetworkPlan {
    NetworkSnapshot snapshot;
    std::vector<TopUp> topups;
    std::vector<AccountState> unknown;  //!< balance unread: no decision this round
    std::vector<AccountState> waiting;  //!< below threshold, but an earlier top-up is not confirmed yet
    std::vector<std::pair<TopUp, std::string>> blocked;  //!< held back by a spend limit, and why
    Wei total = 0;                      //!< sum of amounts
    std::optional<Fees> fees;
    std::string fee_error;
    Wei max_fee_cost = 0;  //!< sum of gas_limit x per-gas cap
    bool covered = false;  //!< bank balance >= total + max_fee_cost
};

//! Applies the decision rule to every account of a snapshot (pure). Accounts in `busy` (a top-up
//! of theirs is not yet confirmed) get no new one.
NetworkPlan make_plan(NetworkSnapshot snap, const config::Network& net, const std::set<eth::Address>& busy = {});

//! Applies the network's spend limits to a plan (pure): each amount is capped at maxTopUp; top-ups
//! that would take the last 24 hours' spending (`spent_24h`, from the ledger) above `daily`, or the
//! bank below `reserve` (with the most the fees can cost), are held back in order. Returns what is
//! left of the daily budget, if there is one.
std::optional<Wei> apply_limits(NetworkPlan& plan, const config::Limits& limits, const Wei& spent_24h);

//! Fills gas limits (config gasLimit, else eth_estimateGas, batched) and the fee cost. A failed
//! estimate leaves that top-up with gas_limit 0: it will not be sent.
boost::asio::awaitable<void> estimate_gas(rpc::RpcClient& client, const config::Network& net, NetworkPlan& plan);

//! What happened to one top-up.
struct Outcome {
    TopUp topup;
    enum class State { kNotSent, kSent, kConfirmed, kFailed } state = State::kNotSent;
    std::string tx_hash;
    std::uint64_t nonce = 0;
    std::uint64_t block = 0;
    Wei fee_paid = 0;
    std::string error;
    std::int64_t ledger_id = 0;
    int replacements = 0;  //!< times re-signed with higher fees while stuck
    bool unrecorded = false;  //!< sent, but the ledger could not record it all: not ok (reconcile settles it)
    bool ok() const { return state == State::kConfirmed && !unrecorded; }
};

struct ExecuteOptions {
    std::chrono::milliseconds confirm_timeout{std::chrono::minutes(5)};
    std::chrono::milliseconds first_receipt_poll{100};
    std::chrono::milliseconds max_receipt_poll{2000};
    std::function<void(const std::string&)> progress;  //!< human progress lines
};

//! Signs and sends a plan's top-ups with consecutive nonces from `first_nonce`, stops at the first
//! refused send (no nonce gaps), then waits for receipts. Every transaction is written to the
//! ledger (and synced) before it is broadcast; if the ledger cannot be written nothing more is sent.
//! A transaction still unconfirmed at the timeout stays `sent` in the ledger for reconcile().
boost::asio::awaitable<std::vector<Outcome>> execute(rpc::RpcClient& client, signer::Signer& signer,
                                                     ledger::Ledger& ledger, const config::Network& net,
                                                     const NetworkPlan& plan, std::uint64_t first_nonce,
                                                     ExecuteOptions options);

//! What reconcile() learned.
struct Reconciled {
    std::set<eth::Address> busy;              //!< recipients with a top-up still unconfirmed
    std::optional<std::uint64_t> next_nonce;  //!< one past the highest unresolved nonce
    std::vector<std::string> log;             //!< one line per change
    int replacements = 0;                     //!< stuck transactions re-signed with higher fees
    std::vector<ledger::Entry> resolved;      //!< entries that reached a final state just now
};

//! Resolves the ledger's unresolved top-ups of a network before any new decision: a receipt
//! found: confirmed (or failed, if reverted); the nonce taken by another transaction: replaced
//! (by a sibling of ours) or dropped; otherwise the same raw transaction is broadcast again.
//! Throws when the node cannot be asked (then nothing may be decided this round).
//! A transaction unmined for `replaceAfter` is re-signed with the same nonce and fees raised by at
//! least 12.5% (never above maxFeePerGas), recorded in the ledger before it is broadcast.
boost::asio::awaitable<Reconciled> reconcile(rpc::RpcClient& client, signer::Signer& signer, ledger::Ledger& ledger,
                                             const config::Network& net);

//! Fees of a replacement: at least 12.5% above the stuck transaction's, rounded up (nodes want 10%);
//! empty when that would exceed maxFeePerGas.
std::optional<Fees> bumped_fees(const Fees& old, const std::optional<Wei>& cap);

}  // namespace keymaster::chain
