#include "keymaster/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace keymaster::metrics {

using prometheus::Labels;

// Per-account gauges are kept compactly here, not as prometheus-cpp families (whose label maps
// cost about a kilobyte per series and a hashed lookup per update): one record per account with
// its label text rendered once, written straight into the text format on a scrape.
struct Metrics::AccountSeries {
    double balance = 0, threshold = 0, target = 0;
    double successes = 0, failures = 0, amount = 0, spent = 0;  // counters, present from the start at 0
    double last_topup = 0;                           // gauge, present once a top-up confirmed
    double runway = std::numeric_limits<double>::infinity();  // with the balance
    double runway_threshold = 0;                     // present when runway.threshold is set
    bool held_back = false;                          // with the balance
    bool has_balance = false, has_last_topup = false, has_runway_threshold = false;
};

struct Metrics::Impl {
    mutable std::mutex accounts_mu;
    // Rendered labels (network="..",home="..",role="..",address="..") -> values; nodes are stable.
    std::unordered_map<std::string, AccountSeries> accounts;
    std::uint64_t erasures = 0;  // accounts erased so far (a stream in progress stops at one)
    std::unordered_map<std::string, prometheus::Counter*> rpc_counters;  // network/method/result
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

    prometheus::Family<prometheus::Gauge>& bank = prometheus::BuildGauge()
        .Name("keymaster_bank_balance_ether").Help("Funding (bank) account balance").Register(*registry);
    prometheus::Family<prometheus::Gauge>& bank_threshold = prometheus::BuildGauge()
        .Name("keymaster_bank_threshold_ether").Help("bankThreshold: warn when the bank holds less").Register(*registry);
    prometheus::Family<prometheus::Gauge>& bank_runway = prometheus::BuildGauge()
        .Name("keymaster_bank_runway_seconds")
        .Help("How long the bank lasts at what it paid (top-ups and fees) over runway.window; +Inf: nothing paid")
        .Register(*registry);
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
    prometheus::Family<prometheus::Counter>& stale_reads = prometheus::BuildCounter()
        .Name("keymaster_stale_reads_total")
        .Help("Polls answered from a block older than one already seen on the network: no top-up planned from them")
        .Register(*registry);
    prometheus::Family<prometheus::Counter>& reorged = prometheus::BuildCounter()
        .Name("keymaster_reorged_topups_total")
        .Help("Mined top-ups whose block the chain no longer holds (sent again, or booked where mined again)")
        .Register(*registry);
    prometheus::Family<prometheus::Counter>& unaccounted = prometheus::BuildCounter()
        .Name("keymaster_bank_unaccounted_transactions_total")
        .Help("Transactions of the bank (by nonce) that keymaster did not journal or that were not its own mined transaction")
        .Register(*registry);
    prometheus::Family<prometheus::Counter>& unexplained = prometheus::BuildCounter()
        .Name("keymaster_bank_unaccounted_ether_total")
        .Help("What the bank lost beyond the amounts and fees of keymaster's own mined transactions (native unit)")
        .Register(*registry);
    prometheus::Family<prometheus::Gauge>& ledger_up = prometheus::BuildGauge()
        .Name("keymaster_ledger_up")
        .Help("1 while the ledger answers, 0 while it is away (a call hangs or fails): nothing is sent, balances are still polled")
        .Register(*registry);
    prometheus::Gauge& ledger_up_gauge = ledger_up.Add({});
    prometheus::Family<prometheus::Gauge>& leader = prometheus::BuildGauge()
        .Name("keymaster_leader")
        .Help("1 while this replica holds the leader lease (it may send), 0 while it stands by")
        .Register(*registry);
    prometheus::Family<prometheus::Gauge>& build = prometheus::BuildGauge()
        .Name("keymaster_build_info").Help("Build information (always 1)").Register(*registry);
    prometheus::Family<prometheus::Gauge>& start_time = prometheus::BuildGauge()
        .Name("process_start_time_seconds").Help("Start time of the process since unix epoch in seconds").Register(*registry);

    static const prometheus::Histogram::BucketBoundaries& buckets() {
        static const prometheus::Histogram::BucketBoundaries kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                         0.5,   1,    2.5,   5,    10,  30};
        return kBuckets;
    }
};

namespace {
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
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
    out.append(buf, static_cast<std::size_t>(n));
}
}  // namespace

Metrics::Metrics(const std::string& version, const std::string& revision) : impl_(std::make_unique<Impl>()) {
    impl_->build.Add({{"version", version}, {"revision", revision}}).Set(1);
    impl_->start_time.Add({}).Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

Metrics::~Metrics() = default;

Metrics::AccountSeries* Metrics::account_series(const AccountLabels& a) {
    auto text = label_text(a);
    std::lock_guard lock(impl_->accounts_mu);
    return &impl_->accounts[std::move(text)];
}

void Metrics::set(AccountSeries* s, double balance, double threshold, double target) {
    std::lock_guard lock(impl_->accounts_mu);
    s->has_balance = true;
    s->balance = balance;
    s->threshold = threshold;
    s->target = target;
}

void Metrics::update(AccountSeries* s, const AccountValues& v) {
    std::lock_guard lock(impl_->accounts_mu);
    s->has_balance = true;
    s->balance = v.balance;
    s->threshold = v.threshold;
    s->target = v.target;
    s->spent += v.spent;
    s->runway = v.runway.value_or(std::numeric_limits<double>::infinity());
    s->has_runway_threshold = v.runway_threshold.has_value();
    s->runway_threshold = v.runway_threshold.value_or(0);
    s->held_back = v.held_back;
}

void Metrics::forget_account(const AccountLabels& a) {
    std::lock_guard lock(impl_->accounts_mu);
    if (impl_->accounts.erase(label_text(a))) ++impl_->erasures;
}

void Metrics::bank(const std::string& network, const std::string& address, double balance) {
    impl_->bank.Add({{"network", network}, {"address", address}}).Set(balance);
}

void Metrics::bank_threshold(const std::string& network, const std::string& address, double threshold) {
    impl_->bank_threshold.Add({{"network", network}, {"address", address}}).Set(threshold);
}

void Metrics::bank_runway(const std::string& network, const std::string& address, std::optional<double> seconds) {
    impl_->bank_runway.Add({{"network", network}, {"address", address}})
        .Set(seconds.value_or(std::numeric_limits<double>::infinity()));
}

void Metrics::forget_bank(const std::string& network, const std::string& address) {
    const Labels l{{"network", network}, {"address", address}};
    for (auto* f : {&impl_->bank, &impl_->bank_threshold, &impl_->bank_runway})
        if (f->Has(l)) f->Remove(&f->Add(l));
}

void Metrics::topup(const AccountLabels& a, bool success, double amount, double unix_time) {
    auto text = label_text(a);
    std::lock_guard lock(impl_->accounts_mu);
    auto& s = impl_->accounts[std::move(text)];
    if (!success) {
        s.failures += 1;
        return;
    }
    s.successes += 1;
    s.amount += amount;
    s.last_topup = unix_time;
    s.has_last_topup = true;
}

void Metrics::init_network(const std::string& network, const std::vector<std::string>& scopes) {
    const Labels n{{"network", network}};
    impl_->replacements.Add(n);
    impl_->stale_reads.Add(n);
    impl_->reorged.Add(n);
    impl_->unaccounted.Add(n);
    impl_->unexplained.Add(n);
    impl_->gas.Add(n);
    for (const auto& scope : scopes) impl_->errors.Add({{"network", network}, {"scope", scope}});
}

void Metrics::forget_network(const std::string& network) {
    const Labels n{{"network", network}};
    for (auto* f : {&impl_->replacements, &impl_->stale_reads, &impl_->reorged, &impl_->unaccounted, &impl_->unexplained, &impl_->gas})
        if (f->Has(n)) f->Remove(&f->Add(n));
    for (auto* f : {&impl_->poll_last, &impl_->block, &impl_->spend_remaining})
        if (f->Has(n)) f->Remove(&f->Add(n));
    if (impl_->poll_duration.Has(n)) impl_->poll_duration.Remove(&impl_->poll_duration.Add(n, Impl::buckets()));
    if (impl_->rpc_duration.Has(n)) impl_->rpc_duration.Remove(&impl_->rpc_duration.Add(n, Impl::buckets()));
    std::vector<prometheus::Counter*> gone;
    for (const auto& m : impl_->errors.Collect())
        for (const auto& series : m.metric)
            for (const auto& l : series.label)
                if (l.name == "network" && l.value == network) {
                    Labels all;
                    for (const auto& x : series.label) all[x.name] = x.value;
                    gone.push_back(&impl_->errors.Add(all));
                }
    for (auto* c : gone) impl_->errors.Remove(c);
    for (auto it = impl_->rpc_counters.begin(); it != impl_->rpc_counters.end();) {
        if (it->first.compare(0, network.size() + 1, network + '\x1f') == 0) {
            impl_->rpc_requests.Remove(it->second);
            it = impl_->rpc_counters.erase(it);
        } else {
            ++it;
        }
    }
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

void Metrics::unaccounted(const std::string& network, std::size_t count) {
    impl_->unaccounted.Add({{"network", network}}).Increment(static_cast<double>(count));
}

void Metrics::unexplained(const std::string& network, double amount) {
    impl_->unexplained.Add({{"network", network}}).Increment(amount);
}

void Metrics::replacements(const std::string& network, int count) {
    impl_->replacements.Add({{"network", network}}).Increment(count);
}

void Metrics::stale_read(const std::string& network) { impl_->stale_reads.Add({{"network", network}}).Increment(); }

void Metrics::reorged(const std::string& network, int count) { impl_->reorged.Add({{"network", network}}).Increment(count); }

void Metrics::ledger_up(bool up) { impl_->ledger_up_gauge.Set(up ? 1 : 0); }

void Metrics::leader(const std::string& lease, bool leading) {
    impl_->leader.Add({{"lease", lease}}).Set(leading ? 1 : 0);
}

void Metrics::spend_remaining(const std::string& network, double amount) {
    impl_->spend_remaining.Add({{"network", network}}).Set(amount);
}

namespace {

using Series = std::pair<const std::string, Metrics::AccountSeries>;

// The per-account families, in order: name, help, type, label suffix, value, present.
struct Family {
    const char* name;
    const char* help;  // nullptr: continues the previous family (same name)
    const char* type;
    const char* suffix;
    double (*value)(const Metrics::AccountSeries&);
    bool (*present)(const Metrics::AccountSeries&);
};

using S = Metrics::AccountSeries;
const Family kFamilies[] = {
    {"keymaster_account_balance_ether", "Agent account balance, in the network's native unit", "gauge", "",
     [](const S& s) { return s.balance; }, [](const S& s) { return s.has_balance; }},
    {"keymaster_account_threshold_ether", "Top-up threshold of the account", "gauge", "",
     [](const S& s) { return s.threshold; }, [](const S& s) { return s.has_balance; }},
    {"keymaster_account_target_ether", "Balance a top-up brings the account to", "gauge", "",
     [](const S& s) { return s.target; }, [](const S& s) { return s.has_balance; }},
    {"keymaster_topups_total", "Top-up transactions by outcome", "counter", ",result=\"success\"",
     [](const S& s) { return s.successes; }, [](const S&) { return true; }},
    {"keymaster_topups_total", nullptr, "counter", ",result=\"failure\"", [](const S& s) { return s.failures; },
     [](const S&) { return true; }},
    {"keymaster_topup_amount_ether_total", "Amount sent by confirmed top-ups", "counter", "",
     [](const S& s) { return s.amount; }, [](const S&) { return true; }},
    {"keymaster_topup_last_timestamp_seconds", "Unix time of the last confirmed top-up", "gauge", "",
     [](const S& s) { return s.last_topup; }, [](const S& s) { return s.has_last_topup; }},
    {"keymaster_account_spent_ether_total",
     "What the account spent, measured between polls (balance decreases plus our top-ups that arrived)", "counter", "",
     [](const S& s) { return s.spent; }, [](const S&) { return true; }},
    {"keymaster_account_runway_seconds", "How long the balance lasts at the burn rate over runway.window; +Inf: nothing spent",
     "gauge", "", [](const S& s) { return s.runway; }, [](const S& s) { return s.has_balance; }},
    {"keymaster_account_runway_threshold_seconds", "runway.threshold of the account (set only where configured)", "gauge",
     "", [](const S& s) { return s.runway_threshold; }, [](const S& s) { return s.has_runway_threshold; }},
    {"keymaster_account_held_back", "1 while limits.perAccount holds back a top-up the account needs", "gauge", "",
     [](const S& s) { return s.held_back ? 1.0 : 0.0; }, [](const S& s) { return s.has_balance; }},
};
constexpr std::size_t kPiece = 64 * 1024;

void append_header(std::string& out, const Family& f) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    out += f.help;
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += f.type;
    out += '\n';
}

void append_line(std::string& out, const Family& f, const Series& s) {
    out += f.name;
    out += '{';
    out += s.first;
    out += f.suffix;
    out += "} ";
    append_double(out, f.value(s.second));
    out += '\n';
}

}  // namespace

std::function<bool(std::string&)> Metrics::stream() const {
    // The registry's families first (a few series per network), then the accounts' from pointers
    // to their records (nodes of the map stay put when it grows; an erase is detected). A piece
    // ends once `out` holds kPiece bytes: the caller empties it between calls.
    struct State {
        const Impl* impl;
        std::string head;
        std::vector<const Series*> accounts;
        std::uint64_t erasures = 0;
        std::size_t family = 0, next = 0;
        bool head_sent = false;
    };
    auto st = std::make_shared<State>();
    st->impl = impl_.get();
    st->head = prometheus::TextSerializer().Serialize(impl_->registry->Collect());
    {
        std::lock_guard lock(impl_->accounts_mu);
        st->erasures = impl_->erasures;
        st->accounts.reserve(impl_->accounts.size());
        for (const auto& a : impl_->accounts) st->accounts.push_back(&a);
    }
    return [st](std::string& out) {
        if (!st->head_sent) {
            out += st->head;
            st->head.clear();
            st->head.shrink_to_fit();
            st->head_sent = true;
            return !st->accounts.empty();
        }
        std::lock_guard lock(st->impl->accounts_mu);
        if (st->impl->erasures != st->erasures) return false;  // a reload forgot accounts: end here
        while (st->family < std::size(kFamilies) && out.size() < kPiece) {
            const Family& f = kFamilies[st->family];
            if (st->next == 0 && f.help) append_header(out, f);
            for (; st->next < st->accounts.size() && out.size() < kPiece; ++st->next)
                if (f.present(st->accounts[st->next]->second)) append_line(out, f, *st->accounts[st->next]);
            if (st->next == st->accounts.size()) {
                ++st->family;
                st->next = 0;
            }
        }
        return st->family < std::size(kFamilies);
    };
}

std::string Metrics::serialize() const {
    std::string out, piece;
    auto next = stream();
    for (bool more = true; more;) {
        piece.clear();  // each piece is measured from empty
        more = next(piece);
        out += piece;
    }
    return out;
}

}  // namespace keymaster::metrics
