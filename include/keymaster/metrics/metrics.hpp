#pragma once

#include <memory>
#include <string>

namespace keymaster::metrics {

//! Labels of one funded account.
struct AccountLabels {
    std::string network, home, role, address;
};

//! Every metric family keymaster exports, in one place (names and labels are a contract with
//! dashboards and alert rules). Amounts are in the network's native unit (10^decimals base units).
class Metrics {
public:
    Metrics(const std::string& version, const std::string& revision);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    //! The series of one account, for repeated updates without label lookups (the pointer stays
    //! valid until forget_account for the same labels).
    struct AccountSeries;
    AccountSeries* account_series(const AccountLabels& a);
    void set(AccountSeries* s, double balance, double threshold, double target);
    //! The account is no longer funded (config reload): drop its series.
    void forget_account(const AccountLabels& a);
    void bank(const std::string& network, const std::string& address, double balance);
    //! The network's bankThreshold, for the low-bank alert.
    void bank_threshold(const std::string& network, const std::string& address, double threshold);
    void forget_bank(const std::string& network, const std::string& address);
    void topup(const AccountLabels& a, bool success, double amount, double unix_time);
    void gas_spent(const std::string& network, double amount);
    void rpc_call(const std::string& network, const std::string& method, bool ok, std::size_t n = 1);
    void rpc_round_trip(const std::string& network, double seconds);
    void poll(const std::string& network, double seconds, bool ok, double unix_time);
    void block(const std::string& network, double number);
    void error(const std::string& network, const std::string& scope);
    //! Stuck transactions re-signed with higher fees.
    void replacements(const std::string& network, int count);
    //! What is left of the network's daily spend limit.
    void spend_remaining(const std::string& network, double amount);

    //! Prometheus text format 0.0.4.
    std::string serialize() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keymaster::metrics
