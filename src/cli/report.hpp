#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "keymaster/chain/round.hpp"
#include "keymaster/metrics/metrics.hpp"

namespace keymaster::cli {

//! The labels of one funded account's series.
[[nodiscard]] metrics::AccountLabels labels_of(const funding::Account& a);

//! `burnPerDay` (native unit, decimal string) and `runwaySeconds` (null: nothing spent, or the
//! balance unknown) of an account or bank, for /status and `status --json`.
void add_burn(nlohmann::json& j, const funding::BurnRate* rate, const std::optional<Wei>& balance, unsigned decimals);

//! The last top-up of an account, for /status.
struct LastTopUp {
    double time = 0;
    std::string amount, tx, result;
};

//! What the daemon shows of one network between Rounds, and maps each Round to: logs and
//! metrics, in one place. Single-threaded (the daemon's io_context).
class RoundView {
public:
    //! `clock`: the one the daemon gives its workers and ledger (its wall time), for time stamps
    //! and the log throttling.
    RoundView(metrics::Metrics& metrics, const chain::Worker& worker, const Clock& clock);

    //! After prepare: poll metrics, balances, bank, mismatches, waiting, held back, the plan.
    void prepared(const chain::RoundPlan& plan, double seconds);
    //! After commit: every outcome, replacements, fees, problems.
    void committed(const chain::RoundPlan& plan, const chain::RoundReport& report);
    //! A Round ended by an unexpected exception.
    void failed(const std::exception& e);

    //! This network in /status; linear in the number of accounts.
    [[nodiscard]] nlohmann::json status() const;
    //! Drops the series of accounts and bank not in `keep` (network, address), after a reload.
    void forget_unless(const std::set<std::pair<std::string, eth::Address>>& keep, const std::optional<eth::Address>& new_bank);

private:
    void count(Fault f);
    void settled(const std::vector<ledger::Entry>& entries);
    void account_gauges(const chain::RoundPlan& rp);
    void bank_gauges(const funding::NetworkPlan& plan);
    void held_back(const funding::NetworkPlan& plan);
    void bank_view(const chain::RoundPlan& rp);
    void mismatches(const chain::RoundPlan& rp);
    void decisions(const chain::RoundPlan& rp);

    metrics::Metrics& metrics_;
    const chain::Worker& worker_;
    const Clock& clock_;
    std::vector<metrics::Metrics::AccountSeries*> series_;  // accounts()[i]'s gauges
    std::optional<funding::NetworkSnapshot> last_;
    std::optional<funding::BurnRate> last_bank_rate_;  // accounts' rates are asked of the worker
    std::vector<std::string> orphan_banks_;  // banks no longer configured, reconciled by the last live Round
    std::string last_error_;
    double last_poll_ = 0;
    std::map<eth::Address, LastTopUp> last_topup_;
    std::map<eth::Address, double> limit_logged_;  // address -> unix time of the last log
};

}  // namespace keymaster::cli
