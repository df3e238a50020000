#include "keymaster/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace keymaster::metrics {

using prometheus::Labels;

struct Metrics::Impl {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

    prometheus::Family<prometheus::Gauge>& balance = prometheus::BuildGauge()
        .Name("keymaster_account_balance_ether").Help("Agent account balance, in the network's native unit").Register(*registry);
    prometheus::Family<prometheus::Gauge>& threshold = prometheus::BuildGauge()
        .Name("keymaster_account_threshold_ether").Help("Top-up threshold of the account").Register(*registry);
    prometheus::Family<prometheus::Gauge>& target = prometheus::BuildGauge()
        .Name("keymaster_account_target_ether").Help("Balance a top-up brings the account to").Register(*registry);
    prometheus::Family<prometheus::Gauge>& bank = prometheus::BuildGauge()
        .Name("keymaster_bank_balance_ether").Help("Funding (bank) account balance").Register(*registry);
    prometheus::Family<prometheus::Gauge>& bank_threshold = prometheus::BuildGauge()
        .Name("keymaster_bank_threshold_ether").Help("bankThreshold: warn when the bank holds less").Register(*registry);
    prometheus::Family<prometheus::Counter>& topups = prometheus::BuildCounter()
        .Name("keymaster_topups_total").Help("Top-up transactions by outcome").Register(*registry);
    prometheus::Family<prometheus::Counter>& topup_amount = prometheus::BuildCounter()
        .Name("keymaster_topup_amount_ether_total").Help("Amount sent by confirmed top-ups").Register(*registry);
    prometheus::Family<prometheus::Gauge>& topup_last = prometheus::BuildGauge()
        .Name("keymaster_topup_last_timestamp_seconds").Help("Unix time of the last confirmed top-up").Register(*registry);
    prometheus::Family<prometheus::Counter>& gas = prometheus::BuildCounter()
        .Name("keymaster_gas_spent_ether_total").Help("Transaction fees paid by the bank").Register(*registry);
    prometheus::Family<prometheus::Counter>& rpc_requests = prometheus::BuildCounter()
        .Name("keymaster_rpc_requests_total").Help("JSON-RPC calls (batch members count one each)").Register(*registry);
    prometheus::Family<prometheus::Histogram>& rpc_duration = prometheus::BuildHistogram()
        .Name("keymaster_rpc_request_duration_seconds").Help("Duration of one HTTP round trip to a node").Register(*registry);
    prometheus::Family<prometheus::Histogram>& poll_duration = prometheus::BuildHistogram()
        .Name("keymaster_poll_duration_seconds").Help("Duration of one whole poll of a network").Register(*registry);
    prometheus::Family<prometheus::Gauge>& poll_last = prometheus::BuildGauge()
        .Name("keymaster_poll_last_success_timestamp_seconds").Help("Unix time of the last successful poll").Register(*registry);
    prometheus::Family<prometheus::Gauge>& block = prometheus::BuildGauge()
        .Name("keymaster_block_number").Help("Latest block number seen").Register(*registry);
    prometheus::Family<prometheus::Counter>& errors = prometheus::BuildCounter()
        .Name("keymaster_errors_total").Help("Errors by network and scope").Register(*registry);
    prometheus::Family<prometheus::Gauge>& spend_remaining = prometheus::BuildGauge()
        .Name("keymaster_spend_remaining_ether").Help("What is left of the daily spend limit").Register(*registry);
    prometheus::Family<prometheus::Counter>& replacements = prometheus::BuildCounter()
        .Name("keymaster_replacements_total").Help("Stuck transactions re-signed with higher fees").Register(*registry);
    prometheus::Family<prometheus::Gauge>& build = prometheus::BuildGauge()
        .Name("keymaster_build_info").Help("Build information (always 1)").Register(*registry);

    static const prometheus::Histogram::BucketBoundaries& buckets() {
        static const prometheus::Histogram::BucketBoundaries kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                         0.5,   1,    2.5,   5,    10,  30};
        return kBuckets;
    }
};

namespace {
Labels labels(const AccountLabels& a) {
    return {{"network", a.network}, {"home", a.home}, {"role", a.role}, {"address", a.address}};
}
}  // namespace

Metrics::Metrics(const std::string& version, const std::string& revision) : impl_(std::make_unique<Impl>()) {
    impl_->build.Add({{"version", version}, {"revision", revision}}).Set(1);
}

Metrics::~Metrics() = default;

void Metrics::account(const AccountLabels& a, double balance, double threshold, double target) {
    const auto l = labels(a);
    impl_->balance.Add(l).Set(balance);
    impl_->threshold.Add(l).Set(threshold);
    impl_->target.Add(l).Set(target);
}

void Metrics::forget_account(const AccountLabels& a) {
    const auto l = labels(a);
    for (auto* f : {&impl_->balance, &impl_->threshold, &impl_->target, &impl_->topup_last})
        if (f->Has(l)) f->Remove(&f->Add(l));
}

void Metrics::bank(const std::string& network, const std::string& address, double balance) {
    impl_->bank.Add({{"network", network}, {"address", address}}).Set(balance);
}

void Metrics::bank_threshold(const std::string& network, const std::string& address, double threshold) {
    impl_->bank_threshold.Add({{"network", network}, {"address", address}}).Set(threshold);
}

void Metrics::forget_bank(const std::string& network, const std::string& address) {
    const Labels l{{"network", network}, {"address", address}};
    for (auto* f : {&impl_->bank, &impl_->bank_threshold})
        if (f->Has(l)) f->Remove(&f->Add(l));
}

void Metrics::topup(const AccountLabels& a, bool success, double amount, double unix_time) {
    auto l = labels(a);
    if (success) {
        impl_->topup_amount.Add(l).Increment(amount);
        impl_->topup_last.Add(l).Set(unix_time);
    }
    l["result"] = success ? "success" : "failure";
    impl_->topups.Add(l).Increment();
}

void Metrics::gas_spent(const std::string& network, double amount) { impl_->gas.Add({{"network", network}}).Increment(amount); }

void Metrics::rpc_call(const std::string& network, const std::string& method, bool ok) {
    impl_->rpc_requests.Add({{"network", network}, {"method", method}, {"result", ok ? "success" : "failure"}}).Increment();
}

void Metrics::rpc_round_trip(const std::string& network, double seconds) {
    impl_->rpc_duration.Add({{"network", network}}, Impl::buckets()).Observe(seconds);
}

void Metrics::poll(const std::string& network, double seconds, bool ok, double unix_time) {
    impl_->poll_duration.Add({{"network", network}}, Impl::buckets()).Observe(seconds);
    if (ok) impl_->poll_last.Add({{"network", network}}).Set(unix_time);
}

void Metrics::block(const std::string& network, double number) { impl_->block.Add({{"network", network}}).Set(number); }

void Metrics::error(const std::string& network, const std::string& scope) {
    impl_->errors.Add({{"network", network}, {"scope", scope}}).Increment();
}

void Metrics::replacements(const std::string& network, int count) {
    impl_->replacements.Add({{"network", network}}).Increment(count);
}

void Metrics::spend_remaining(const std::string& network, double amount) {
    impl_->spend_remaining.Add({{"network", network}}).Set(amount);
}

std::string Metrics::serialize() const { return prometheus::TextSerializer().Serialize(impl_->registry->Collect()); }

}  // namespace keymaster::metrics
