#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keymaster::metrics {

//! Labels of one funded account.
struct AccountLabels {
    std::string network, home, role, address;
};

//! Every metric family keymaster exports, in one place (names and labels are a contract with
//! dashboards and alert rules). Amounts are in the network's native unit (10^decimals base units).
class Metrics {
public:
    //! Registers every family; keymaster_build_info{version,revision} is 1 from the start.
    Metrics(const std::string& version, const std::string& revision);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    //! The series of one account, for repeated updates without label lookups (the pointer stays
    //! valid until forget_account for the same labels).
    struct AccountSeries;
    AccountSeries* account_series(const AccountLabels& a);
    //! keymaster_account_balance_ether, _threshold_ether and _target_ether of one account.
    void set(AccountSeries* s, double balance, double threshold, double target);
    //! What one poll tells of an account, in one update.
    struct AccountValues {
        double balance = 0, threshold = 0, target = 0;  //!< effective threshold and target
        double spent = 0;                   //!< since the last poll: added to keymaster_account_spent_ether_total
        std::optional<double> runway;       //!< seconds; nullopt: +Inf (nothing spent)
        std::optional<double> runway_threshold;  //!< runway.threshold, where set
        bool held_back = false;             //!< limits.perAccount holds back a top-up it needs
    };
    //! Every per-account series of one poll (balance, levels, spent, runway, held back).
    void update(AccountSeries* s, const AccountValues& v);
    //! The account is no longer funded (config reload): drop its series.
    void forget_account(const AccountLabels& a);
    //! keymaster_bank_balance_ether of the network's bank.
    void bank(const std::string& network, const std::string& address, double balance);
    //! The network's bankThreshold, for the low-bank alert.
    void bank_threshold(const std::string& network, const std::string& address, double threshold);
    //! How long the bank lasts at what it paid over runway.window (nullopt: +Inf).
    void bank_runway(const std::string& network, const std::string& address, std::optional<double> seconds);
    //! The bank changed (config reload): drop the old bank's series.
    void forget_bank(const std::string& network, const std::string& address);
    //! A settled top-up. keymaster_topups_total{result="success"|"failure"} and
    //! keymaster_topup_amount_ether_total exist at 0 for every account from account_series() on.
    void topup(const AccountLabels& a, bool success, double amount, double unix_time);
    //! Zero-initialised series of a network: keymaster_errors_total for each scope,
    //! keymaster_replacements_total, keymaster_stale_reads_total, keymaster_reorged_topups_total,
    //! keymaster_bank_unaccounted_transactions_total,
    //! keymaster_bank_unaccounted_ether_total and keymaster_gas_spent_ether_total ("" network: the daemon's own).
    void init_network(const std::string& network, const std::vector<std::string>& scopes);
    //! The network is no longer funded (config reload): drop every series of it.
    void forget_network(const std::string& network);
    //! A fee the bank paid (keymaster_gas_spent_ether_total).
    void gas_spent(const std::string& network, double amount);
    //! `n` JSON-RPC calls of one method, answered or failed (keymaster_rpc_requests_total).
    void rpc_call(const std::string& network, const std::string& method, bool ok, std::size_t n = 1);
    //! One HTTP round trip to a node (keymaster_rpc_request_duration_seconds).
    void rpc_round_trip(const std::string& network, double seconds);
    //! One whole poll: its duration, and when it succeeded its time (keymaster_poll_*).
    void poll(const std::string& network, double seconds, bool ok, double unix_time);
    //! The latest block seen (keymaster_block_number).
    void block(const std::string& network, double number);
    //! One error of a scope (keymaster_errors_total{scope}: fault_scope() of its Fault).
    void error(const std::string& network, const std::string& scope);
    //! Transactions of the bank the bank audit could not match to a mined transaction of ours.
    void unaccounted(const std::string& network, std::size_t count);
    //! What the bank lost beyond what the ledger's mined transactions took.
    void unexplained(const std::string& network, double amount);
    //! Stuck transactions re-signed with higher fees.
    void replacements(const std::string& network, int count);
    //! A poll answered from a block older than one already seen (keymaster_stale_reads_total).
    void stale_read(const std::string& network);
    //! Mined top-ups whose block the chain no longer holds (keymaster_reorged_topups_total).
    void reorged(const std::string& network, int count);
    //! keymaster_ledger_up: 1 while the ledger answers, 0 while it is away (a call hangs past the
    //! stall time, or failed and nothing has succeeded since).
    void ledger_up(bool up);
    //! keymaster_leader{lease}: 1 while this replica holds the leader lease, 0 while it stands by
    //! (only with a lease: a shared Postgres ledger).
    void leader(const std::string& lease, bool leading);
    //! What is left of the network's daily spend limit.
    void spend_remaining(const std::string& network, double amount);

    //! Prometheus text format 0.0.4, whole (tests, small fleets).
    std::string serialize() const;
    //! The same text in pieces of about 64 KiB: each call appends the next piece to `out` and
    //! returns whether more follow. Per-account series are rendered as the pieces are asked for,
    //! so 10,000 accounts never make one large string. Single-threaded with the updates (the
    //! daemon's loop); an account forgotten meanwhile (a reload) ends the text early.
    std::function<bool(std::string& out)> stream() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keymaster::metrics
