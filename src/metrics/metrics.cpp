#include "keymaster/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <mutex>
#include <unordered_map>

namespace keymaster::metrics {

using prometheus::Labels;

// Per-account gauges are kept compactly here, not as prometheus-cpp families (whose label maps
// cost about a kilobyte per series and a hashed lookup per update): one record per account with
// its label text rendered once, written straight into the text format on a scrape.
struct Metrics::AccountSeries {
    double balance = 0, threshold = 0, target = 0;
};

struct Metrics::Impl {
    mutable std::mutex accounts_mu;
    // Rendered labels (network="..",home="..",role="..",address="..") -> values; nodes are stable.
    std::unordered_map<std::string, AccountSeries> accounts;
    std::unordered_map<std::string, prometheus::Counter*> rpc_counters;  // network/method/result
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

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

// A label value escaped for the text format: backslash, double quote and newline.
std::string escaped(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string label_text(const AccountLabels& a) {
    return "network=\"" + escaped(a.network) + "\",home=\"" + escaped(a.home) + "\",role=\"" + escaped(a.role) +
           "\",address=\"" + escaped(a.address) + "\"";
}

void append_double(std::string& out, double v) {
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
    out.append(buf, static_cast<std::size_t>(n));
}
}  // namespace

Metrics::Metrics(const std::string& version, const std::string& revision) : impl_(std::make_unique<Impl>()) {
    impl_->build.Add({{"version", version}, {"revision", revision}}).Set(1);
}

Metrics::~Metrics() = default;

Metrics::AccountSeries* Metrics::account_series(const AccountLabels& a) {
    auto text = label_text(a);
    std::lock_guard lock(impl_->accounts_mu);
    return &impl_->accounts[std::move(text)];
}

void Metrics::set(AccountSeries* s, double balance, double threshold, double target) {
    std::lock_guard lock(impl_->accounts_mu);
    s->balance = balance;
    s->threshold = threshold;
    s->target = target;
}

void Metrics::forget_account(const AccountLabels& a) {
    {
        std::lock_guard lock(impl_->accounts_mu);
        impl_->accounts.erase(label_text(a));
    }
    const auto l = labels(a);
    if (impl_->topup_last.Has(l)) impl_->topup_last.Remove(&impl_->topup_last.Add(l));
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

void Metrics::rpc_call(const std::string& network, const std::string& method, bool ok, std::size_t n) {
    // Called once per JSON-RPC call (10,000 per poll of a big network): the counter is looked up
    // by a flat key, not by a label map. Only the daemon's io thread calls it.
    std::string key = network;
    key += '\x1f';
    key += method;
    key += '\x1f';
    key += ok ? '1' : '0';
    auto& c = impl_->rpc_counters[key];
    if (!c) c = &impl_->rpc_requests.Add({{"network", network}, {"method", method}, {"result", ok ? "success" : "failure"}});
    c->Increment(static_cast<double>(n));
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

std::string Metrics::serialize() const {
    std::string out = prometheus::TextSerializer().Serialize(impl_->registry->Collect());
    static const struct {
        const char* name;
        const char* help;
        double AccountSeries::*value;
    } kFamilies[] = {
        {"keymaster_account_balance_ether", "Agent account balance, in the network's native unit", &AccountSeries::balance},
        {"keymaster_account_threshold_ether", "Top-up threshold of the account", &AccountSeries::threshold},
        {"keymaster_account_target_ether", "Balance a top-up brings the account to", &AccountSeries::target},
    };
    std::lock_guard lock(impl_->accounts_mu);
    if (impl_->accounts.empty()) return out;
    out.reserve(out.size() + impl_->accounts.size() * 3 * 190);
    for (const auto& f : kFamilies) {
        out += "# HELP ";
        out += f.name;
        out += ' ';
        out += f.help;
        out += "\n# TYPE ";
        out += f.name;
        out += " gauge\n";
        for (const auto& [labels, s] : impl_->accounts) {
            out += f.name;
            out += '{';
            out += labels;
            out += "} ";
            append_double(out, s.*f.value);
            out += '\n';
        }
    }
    return out;
}

}  // namespace keymaster::metrics
