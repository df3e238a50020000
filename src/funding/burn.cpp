#include "keymaster/funding/burn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "keymaster/common/duration.hpp"

namespace keymaster::funding {

namespace {
constexpr double kDay = 86400;

// Milliseconds as a whole number, for exact proportions of amounts.
Wei millis(double seconds) { return Wei(static_cast<std::uint64_t>(std::llround(std::max(0.0, seconds) * 1000))); }
}  // namespace

Wei spent_between(const Wei& before, const Wei& after, const Wei& arrived) {
    const Wei had = before + arrived;
    return had > after ? had - after : Wei(0);
}

double bucket_length(double window) { return std::clamp(window / 24, 1.0, 3600.0); }

Measured observe(BurnHistory& h, double now, const Wei& balance, const Wei& arrived, double bucket_len) {
    Measured m;
    if (!h.observed()) {
        h.since = h.time = now;
        h.balance = balance;
        m.state_changed = true;
        return m;
    }
    if (now < h.time) return m;  // a clock step back: measure from the later time
    if (balance == h.balance && arrived == 0) {  // most accounts, most rounds
        m.state_changed = now - h.time >= kBurnRefreshSeconds;
        if (m.state_changed) h.time = now;
        return m;
    }
    m.spent = spent_between(h.balance, balance, arrived);
    m.state_changed = m.spent > 0 || balance != h.balance || now - h.time >= kBurnRefreshSeconds;
    if (m.spent > 0) {
        if (!h.buckets.empty() && now < h.buckets.back().start + bucket_len) {
            h.buckets.back().end = now;
            h.buckets.back().spent += m.spent;
        } else {
            h.buckets.push_back({h.time, now, m.spent});
        }
        m.bucket = h.buckets.back();
    }
    if (m.state_changed) {
        h.time = now;
        h.balance = balance;
    }
    return m;
}

void prune(BurnHistory& h, double before) {
    const auto keep = std::find_if(h.buckets.begin(), h.buckets.end(), [&](const BurnBucket& b) { return b.end >= before; });
    h.buckets.erase(h.buckets.begin(), keep);
}

BurnRate rate_of(const Wei& spent, double covered) {
    BurnRate r;
    r.covered = covered;
    if (spent == 0) return r;  // most accounts, most rounds: no 256-bit division
    const Wei ms = millis(covered);
    if (ms == 0) return r;
    r.per_day = spent * millis(kDay) / ms;
    return r;
}

BurnRate burn_rate(const BurnHistory& h, double now, double window) {
    if (!h.observed()) return {};
    const double start = now - window;
    Wei spent = 0;
    for (const auto& b : h.buckets) {
        if (b.end <= start) continue;
        if (b.start >= start || b.end <= b.start) spent += b.spent;
        else spent += b.spent * millis(b.end - start) / millis(b.end - b.start);  // in proportion
    }
    return rate_of(spent, now - std::max(start, h.since));
}

bool enough_history(const BurnRate& r, double window) { return r.covered >= std::min(window / 10, 300.0); }

std::optional<double> runway_seconds(const Wei& balance, const Wei& per_day) {
    if (per_day == 0) return std::nullopt;
    // Milliseconds, exact in integers, then seconds (a double is plenty for a duration).
    const Wei ms = balance * millis(kDay) / per_day;
    return static_cast<double>(ms) / 1000;
}

Wei burn_for(const Wei& per_day, double seconds) { return per_day * millis(seconds) / millis(kDay); }

Levels levels(const Account& a, const BurnRate& r) {
    Levels l{a.threshold, a.target};
    if (!a.runway || !a.runway->sized() || !enough_history(r, a.runway->window_seconds())) return l;
    const auto& rw = *a.runway;
    l.per_day = r.per_day;
    if (rw.target) {
        Wei t = burn_for(r.per_day, *rw.target);
        if (rw.max && t > *rw.max) {
            t = *rw.max;
            l.capped = true;
        }
        if (t > l.target) {
            l.target = t;
            l.target_from_burn = true;
        }
    }
    if (rw.threshold) {
        const Wei t = std::min(burn_for(r.per_day, *rw.threshold), rw.max.value_or(l.target));
        if (t > l.threshold) {
            l.threshold = std::min(t, l.target);
            l.threshold_from_burn = true;
        }
    }
    return l;
}

std::string burn_reason(double seconds, const Wei& per_day, unsigned decimals, const std::string& symbol) {
    // Three significant digits are what a person reads ("0.812", "869"); exact amounts are in the JSON.
    const double v = to_double(per_day, decimals);
    char buf[32];
    std::snprintf(buf, sizeof buf, v >= 1000 ? "%.0f" : "%.3g", v);
    return format_duration(seconds) + " of " + buf + " " + symbol + "/day";
}

}  // namespace keymaster::funding

namespace keymaster::funding {

std::string describe_levels(const Account& a, const Levels& l, unsigned decimals, const std::string& symbol) {
    std::string out;
    if (!a.runway) return out;
    const auto& rw = *a.runway;
    if (l.threshold_from_burn && rw.threshold) out = "threshold " + burn_reason(*rw.threshold, l.per_day, decimals, symbol);
    if (l.target_from_burn && rw.target)
        out += (out.empty() ? "target " : ", target ") + burn_reason(*rw.target, l.per_day, decimals, symbol);
    if (l.capped && rw.max) out += (out.empty() ? "" : ", ") + std::string("capped at runway.max ") + format_units(*rw.max, decimals);
    return out;
}

}  // namespace keymaster::funding
