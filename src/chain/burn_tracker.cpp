#include "burn_tracker.hpp"

#include <algorithm>

namespace keymaster::chain::detail {

namespace {
const char* const kBankKey = "bank";  // the bank's row in burn_state: its first observation
}

BurnTracker::BurnTracker(std::string network, const std::vector<funding::Account>& accounts, double bank_window)
    : network_(std::move(network)), accounts_(accounts), history_(accounts.size()), bank_window_(bank_window) {
    index_.reserve(accounts.size());
    for (std::size_t i = 0; i < accounts.size(); ++i) {
        index_.emplace_back(accounts[i].address, i);
        retention_ = std::max(retention_, accounts[i].window());
    }
    std::sort(index_.begin(), index_.end());
}

std::optional<std::size_t> BurnTracker::find(const std::string& address) const {
    const auto a = eth::Address::parse(address);
    if (!a) return std::nullopt;
    const auto it = std::lower_bound(index_.begin(), index_.end(), std::make_pair(*a, std::size_t{0}));
    if (it == index_.end() || it->first != *a) return std::nullopt;
    return it->second;
}

void BurnTracker::load(const ledger::BurnHistory& ledger, double now) {
    if (loaded_) return;
    std::vector<funding::BurnHistory> h(accounts_.size());
    funding::BurnHistory bank;
    auto history_of = [&](const std::string& address) -> funding::BurnHistory* {
        if (address == kBankKey) return &bank;
        const auto i = find(address);
        return i ? &h[*i] : nullptr;
    };
    for (const auto& s : ledger.burn_states(network_))
        if (auto* x = history_of(s.address)) {
            x->since = s.since;
            x->time = s.time;
            x->balance = s.balance;
        }
    for (const auto& r : ledger.burn_rows(network_, now - retention_))
        if (auto* x = history_of(r.address); x && x != &bank) x->buckets.push_back({r.start, r.stop, r.spent});
    history_ = std::move(h);
    bank_ = bank;
    loaded_ = true;
}

// What our confirmed top-ups brought each account since its last measurement.
std::map<std::size_t, Wei> BurnTracker::arrivals(const ledger::BurnHistory& ledger, const std::string& bank, double now) const {
    double from = now;
    for (const auto& h : history_)
        if (h.observed()) from = std::min(from, h.time);
    std::map<std::size_t, Wei> out;
    for (const auto& a : ledger.confirmed_since(network_, bank, from))
        if (const auto i = find(a.recipient); i && a.time > history_[*i].time) out[*i] += a.amount;
    return out;
}

std::vector<std::pair<std::size_t, Wei>> BurnTracker::measure(const ledger::BurnHistory* reader, ledger::BurnHistory* writer,
                                                              const funding::NetworkSnapshot& snap,
                                                              const std::set<eth::Address>& busy, double now) {
    std::vector<std::pair<std::size_t, Wei>> spent;
    if (reader) load(*reader, now);
    try {
        const auto arrived = reader ? arrivals(*reader, snap.bank.checksummed(), now) : std::map<std::size_t, Wei>{};
        std::vector<ledger::BurnHistory::BurnState> states;
        std::vector<ledger::BurnHistory::BurnRow> rows;
        for (std::size_t i = 0; i < snap.accounts.size() && i < history_.size(); ++i) {
            const auto& s = snap.accounts[i];
            if (!s.balance || busy.count(s.account.address)) continue;  // unknown, or money on the way
            auto& h = history_[i];
            const auto it = arrived.find(i);
            const auto m = funding::observe(h, now, *s.balance, it == arrived.end() ? Wei(0) : it->second,
                                            funding::bucket_length(s.account.window()));
            if (m.spent > 0) spent.emplace_back(i, m.spent);
            if (!m.state_changed) continue;
            const auto address = s.account.address.checksummed();
            states.push_back({address, h.since, h.time, h.balance});
            if (m.bucket) rows.push_back({address, m.bucket->start, m.bucket->end, m.bucket->spent});
        }
        if (!bank_.observed()) {
            bank_.since = bank_.time = now;
            states.push_back({kBankKey, now, now, 0});
        }
        if (writer) writer->save_burn(network_, states, rows);
        prune(writer, now);
    } catch (...) {
        loaded_ = false;  // memory may be ahead of the ledger: start again from what it holds
        throw;
    }
    return spent;
}

void BurnTracker::prune(ledger::BurnHistory* writer, double now) {
    if (now - last_prune_ < 3600) return;
    last_prune_ = now;
    for (auto& h : history_) funding::prune(h, now - retention_);
    if (writer) writer->prune_burn(network_, now - retention_);
}

std::vector<funding::BurnRate> BurnTracker::rates(double now) const {
    std::vector<funding::BurnRate> out;
    out.reserve(history_.size());
    for (std::size_t i = 0; i < history_.size(); ++i)
        out.push_back(funding::burn_rate(history_[i], now, accounts_[i].window()));
    return out;
}

funding::BurnRate BurnTracker::bank_rate(const ledger::BurnHistory& ledger, const std::string& bank, double now) {
    if (!bank_.observed()) return {};
    const double from = std::max(now - bank_window_, bank_.since);
    if (!paid_at_ || now - *paid_at_ >= 60 || now < *paid_at_) {
        paid_ = ledger.paid_since(network_, bank, from);
        paid_at_ = now;
    }
    return funding::rate_of(paid_, now - from);
}

}  // namespace keymaster::chain::detail
