#include "keymaster/chain/topup.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keymaster/common/hex.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::chain {
namespace {

using nlohmann::json;
namespace net = boost::asio;

std::string gwei(const Wei& w) { return format_units(w, 9) + " gwei"; }

bool already_known(const std::string& msg) {
    const auto m = to_lower(msg);
    return m.find("already known") != std::string::npos || m.find("known transaction") != std::string::npos ||
           m.find("already imported") != std::string::npos || m.find("already exists") != std::string::npos;
}

Wei bump(const Wei& x) { return (x * 9 + 7) / 8; }  // +12.5%, rounded up

Fees fees_of(const ledger::Entry& e) {
    Fees f;
    f.type = static_cast<eth::TxType>(e.tx_type);
    f.gas_price = e.gas_price;
    f.max_fee = e.max_fee;
    f.priority_fee = e.priority_fee;
    return f;
}

bool is_stuck(const ledger::Entry& e, const config::Network& net, std::uint64_t block) {
    return unix_now() - e.created >= static_cast<double>(net.replace_after.seconds) ||
           (e.sent_block > 0 && block >= e.sent_block + net.replace_after.blocks);
}

// Re-signs a stuck top-up with the same nonce and higher fees; journals it before broadcasting.
// On success the stuck entry is marked replaced. Returns the new entry, or why not.
net::awaitable<std::variant<ledger::Entry, std::string>> replace_stuck(rpc::RpcClient& client, signer::Signer& signer,
                                                                      ledger::Ledger& ledger, const config::Network& net,
                                                                      const ledger::Entry& stuck, std::uint64_t block) {
    auto fees = bumped_fees(fees_of(stuck), net.max_fee_per_gas);
    if (!fees) co_return std::string("cannot raise fees: maxFeePerGas reached");
    auto to = eth::Address::parse(stuck.recipient);
    if (!to) co_return std::string("bad recipient in the ledger");
    eth::Transaction tx;
    tx.type = fees->type;
    tx.chain_id = stuck.chain_id;
    tx.nonce = stuck.nonce;
    tx.gas_price = fees->gas_price;
    tx.max_fee_per_gas = fees->max_fee;
    tx.max_priority_fee_per_gas = fees->priority_fee;
    tx.gas_limit = stuck.gas_limit;
    tx.to = *to;
    tx.value = stuck.amount;
    auto sig = co_await signer.sign(eth::signing_hash(tx));
    if (!sig) co_return "signing failed: " + sig.error();
    const Bytes raw = eth::encode_signed(tx, *sig);
    ledger::Entry e = stuck;
    e.max_fee = fees->max_fee;
    e.priority_fee = fees->priority_fee;
    e.gas_price = fees->gas_price;
    e.raw = to_hex(raw);
    e.tx_hash = to_hex(eth::transaction_hash(raw));
    e.sent_block = block;
    e.state = ledger::State::kIntent;
    e.error.clear();
    e.replaced_by.clear();
    try {
        e.id = ledger.record_intent(e);
        e.created = unix_now();
    } catch (const std::exception& ex) {
        co_return std::string("ledger cannot be written: ") + ex.what();
    }
    std::string why;
    bool accepted = false;
    try {
        std::string method = "eth_sendRawTransaction";
        json params = json::array();
        params.push_back(e.raw);
        co_await client.call(std::move(method), std::move(params));
        accepted = true;
    } catch (const rpc::RpcError& ex) {
        why = ex.message();
        accepted = already_known(why);
    } catch (const std::exception& ex) {
        why = ex.what();
    }
    try {
        if (!accepted) {
            ledger.mark(e.id, ledger::State::kFailed, "replacement refused: " + why);
            co_return "replacement refused: " + why;
        }
        ledger.mark(e.id, ledger::State::kSent, "replaces " + stuck.tx_hash);
        ledger.replaced(stuck.id, e.tx_hash);
    } catch (const std::exception& ex) {
        co_return std::string("ledger cannot be written: ") + ex.what();
    }
    e.state = ledger::State::kSent;
    spdlog::warn("{}: tx {} (nonce {}) stuck; replaced by {} with fees raised to {} gwei", net.name, stuck.tx_hash,
                 stuck.nonce, e.tx_hash, format_units(fees->per_gas_cap(), 9));
    co_return e;
}

}  // namespace

std::optional<Fees> bumped_fees(const Fees& old, const std::optional<Wei>& cap) {
    Fees f = old;
    if (f.type == eth::TxType::kLegacy) {
        f.gas_price = bump(old.gas_price);
        if (cap && f.gas_price > *cap) return std::nullopt;
        return f;
    }
    f.max_fee = bump(old.max_fee);
    f.priority_fee = bump(old.priority_fee);
    if (cap && f.max_fee > *cap) return std::nullopt;
    f.priority_fee = std::min(f.priority_fee, f.max_fee);
    return f;
}

std::variant<Fees, std::string> choose_fees(const NetworkSnapshot& snap, const config::Network& net) {
    Fees f;
    const bool london = snap.base_fee.has_value();
    switch (net.tx_type) {
        case config::TxTypeSetting::kAuto: f.type = london ? eth::TxType::kDynamicFee : eth::TxType::kLegacy; break;
        case config::TxTypeSetting::kLegacy: f.type = eth::TxType::kLegacy; break;
        case config::TxTypeSetting::kEip1559:
            if (!london) return std::string("txType is eip1559 but the latest block has no base fee");
            f.type = eth::TxType::kDynamicFee;
            break;
    }
    const auto& cap = net.max_fee_per_gas;
    if (f.type == eth::TxType::kLegacy) {
        if (!snap.gas_price) return std::string("eth_gasPrice gave no answer");
        f.gas_price = *snap.gas_price;
        if (cap && f.gas_price > *cap)
            return "gas price " + gwei(f.gas_price) + " is above maxFeePerGas " + gwei(*cap) + "; not sending";
        return f;
    }
    const Wei base = *snap.base_fee;
    Wei tip;
    if (snap.priority_fee) tip = *snap.priority_fee;
    else if (snap.gas_price && *snap.gas_price > base) tip = *snap.gas_price - base;
    else tip = Wei(1'000'000'000);
    f.max_fee = base * 2 + tip;
    if (cap) {
        if (base >= *cap) return "base fee " + gwei(base) + " is at or above maxFeePerGas " + gwei(*cap) + "; not sending";
        f.max_fee = std::min(f.max_fee, *cap);
    }
    f.priority_fee = std::min(tip, f.max_fee - base);
    return f;
}

NetworkPlan make_plan(NetworkSnapshot snap, const config::Network& net, const std::set<eth::Address>& busy) {
    NetworkPlan plan;
    plan.snapshot = std::move(snap);
    if (!plan.snapshot.reachable) return plan;
    for (const auto& s : plan.snapshot.accounts) {
        const auto d = funding::decide(s.account, s.balance);
        if (d.action == funding::Action::kUnknown) plan.unknown.push_back(s);
        else if (d.action == funding::Action::kTopUp && busy.count(s.account.address)) plan.waiting.push_back(s);
        else if (d.action == funding::Action::kTopUp) {
            plan.topups.push_back(TopUp{s.account, *s.balance, d.amount, net.gas_limit.value_or(21000)});
            plan.total += d.amount;
        }
    }
    if (!plan.topups.empty()) {
        auto fees = choose_fees(plan.snapshot, net);
        if (auto* e = std::get_if<std::string>(&fees)) plan.fee_error = *e;
        else plan.fees = std::get<Fees>(fees);
    }
    plan.max_fee_cost = 0;
    if (plan.fees)
        for (const auto& t : plan.topups) plan.max_fee_cost += Wei(t.gas_limit) * plan.fees->per_gas_cap();
    plan.covered = plan.snapshot.bank_balance && *plan.snapshot.bank_balance >= plan.total + plan.max_fee_cost;
    return plan;
}

std::optional<Wei> apply_limits(NetworkPlan& plan, const config::Limits& limits, const Wei& spent_24h) {
    std::optional<Wei> remaining;
    if (limits.daily) remaining = spent_24h >= *limits.daily ? Wei(0) : *limits.daily - spent_24h;
    const Wei per_gas = plan.fees ? plan.fees->per_gas_cap() : Wei(0);
    const Wei balance = plan.snapshot.bank_balance.value_or(0);
    std::vector<TopUp> kept;
    Wei total = 0, fees = 0;
    auto amount_str = [](const Wei& w) { return format_units(w); };
    for (auto t : plan.topups) {
        if (limits.max_top_up && t.amount > *limits.max_top_up) t.amount = *limits.max_top_up;
        if (remaining && t.amount > *remaining) {
            plan.blocked.emplace_back(t, "daily limit: " + amount_str(*remaining) + " of " + amount_str(*limits.daily) +
                                             " left for the next 24 hours");
            continue;
        }
        const Wei fee = Wei(t.gas_limit) * per_gas;
        if (limits.reserve && (balance < *limits.reserve || balance - *limits.reserve < total + fees + t.amount + fee)) {
            plan.blocked.emplace_back(t, "reserve: the bank must keep " + amount_str(*limits.reserve));
            continue;
        }
        if (remaining) *remaining -= t.amount;
        total += t.amount;
        fees += fee;
        kept.push_back(t);
    }
    plan.topups = std::move(kept);
    plan.total = total;
    plan.max_fee_cost = fees;
    plan.covered = plan.snapshot.bank_balance && *plan.snapshot.bank_balance >= plan.total + plan.max_fee_cost;
    return remaining;
}

net::awaitable<void> estimate_gas(rpc::RpcClient& client, const config::Network& net, NetworkPlan& plan) {
    if (plan.topups.empty() || net.gas_limit) co_return;
    std::vector<rpc::Call> calls;
    for (const auto& t : plan.topups)
        calls.push_back({"eth_estimateGas", json::array({json{{"from", plan.snapshot.bank.lower()},
                                                                {"to", t.account.address.lower()},
                                                                {"value", to_quantity(t.amount)}}})});
    std::vector<rpc::CallResult> r;
    try {
        r = co_await client.batch(std::move(calls));
    } catch (const std::exception& e) {
        plan.fee_error = std::string("gas estimation failed: ") + e.what();
        co_return;
    }
    plan.max_fee_cost = 0;
    for (std::size_t i = 0; i < plan.topups.size(); ++i) {
        auto g = r[i].ok() ? rpc::as_u64(*r[i].result) : std::nullopt;
        plan.topups[i].gas_limit = g.value_or(0);
        if (plan.fees) plan.max_fee_cost += Wei(plan.topups[i].gas_limit) * plan.fees->per_gas_cap();
    }
    plan.covered = plan.snapshot.bank_balance && *plan.snapshot.bank_balance >= plan.total + plan.max_fee_cost;
}

net::awaitable<std::vector<Outcome>> execute(rpc::RpcClient& client, signer::Signer& signer, ledger::Ledger& ledger,
                                             const config::Network& net, const NetworkPlan& plan, std::uint64_t first_nonce,
                                             ExecuteOptions opt) {
    std::vector<Outcome> out;
    for (const auto& t : plan.topups) {
        Outcome o;
        o.topup = t;
        out.push_back(std::move(o));
    }
    // Per outcome: every ledger entry sent for its nonce, newest last (replacements join it).
    std::vector<std::vector<ledger::Entry>> sent(out.size());
    auto fail_rest = [&](std::size_t from, const std::string& why) {
        for (std::size_t i = from; i < out.size(); ++i)
            if (out[i].state == Outcome::State::kNotSent) {
                out[i].state = Outcome::State::kFailed;
                out[i].error = why;
            }
    };
    auto say = [&](const std::string& line) {
        if (opt.progress) opt.progress(line);
    };
    if (out.empty()) co_return out;
    if (!plan.fees) {
        fail_rest(0, plan.fee_error.empty() ? "no fee information" : plan.fee_error);
        co_return out;
    }
    if (!plan.snapshot.bank_nonce || !plan.snapshot.bank_balance) {
        fail_rest(0, "bank nonce or balance unknown");
        co_return out;
    }

    // 1. Sign every top-up in order with consecutive nonces; stop at the first that cannot be
    // signed (a later nonce would leave a gap).
    std::uint64_t nonce = first_nonce;
    Wei available = *plan.snapshot.bank_balance;
    const Fees& fees = *plan.fees;
    std::vector<std::size_t> order;  // outcomes with a signed transaction, by nonce
    std::vector<ledger::Entry> entries;
    auto make_tx = [&](const eth::Address& to, const Wei& value, std::uint64_t gas, std::uint64_t n) {
        eth::Transaction tx;
        tx.type = fees.type;
        tx.chain_id = plan.snapshot.chain_id;
        tx.nonce = n;
        tx.gas_price = fees.gas_price;
        tx.max_fee_per_gas = fees.max_fee;
        tx.max_priority_fee_per_gas = fees.priority_fee;
        tx.gas_limit = gas;
        tx.to = to;
        tx.value = value;
        return tx;
    };
    auto entry_of = [&](const eth::Transaction& tx, const Bytes& raw, const eth::Address& to, const std::string& home,
                        const std::string& role) {
        ledger::Entry e;
        e.network = net.name;
        e.chain_id = *tx.chain_id;
        e.bank = signer.address().checksummed();
        e.recipient = to.checksummed();
        e.home = home;
        e.role = role;
        e.amount = tx.value;
        e.nonce = tx.nonce;
        e.tx_type = static_cast<int>(tx.type);
        e.max_fee = tx.max_fee_per_gas;
        e.priority_fee = tx.max_priority_fee_per_gas;
        e.gas_price = tx.gas_price;
        e.gas_limit = tx.gas_limit;
        e.raw = to_hex(raw);
        e.tx_hash = to_hex(eth::transaction_hash(raw));
        e.sent_block = plan.snapshot.block;
        return e;
    };
    // Which top-ups get a transaction (and which nonce) is decided first; then they are signed,
    // up to kSigners at a time (a KMS Sign is a network round trip; a local key signs at once).
    std::vector<std::size_t> chosen;
    std::vector<eth::Transaction> txs;
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto& o = out[i];
        const auto& t = o.topup;
        if (t.gas_limit == 0) {
            o.state = Outcome::State::kFailed;
            o.error = "gas estimation failed for this recipient";
            continue;
        }
        const Wei cost = t.amount + Wei(t.gas_limit) * fees.per_gas_cap();
        if (cost > available) {
            o.state = Outcome::State::kFailed;
            o.error = "bank balance too low (" + format_units(available, net.decimals) + " " + net.symbol + " left)";
            continue;
        }
        chosen.push_back(i);
        txs.push_back(make_tx(t.account.address, t.amount, t.gas_limit, nonce++));
        available -= cost;
    }
    std::vector<std::optional<signer::SignResult>> sigs(txs.size());
    {
        constexpr std::size_t kSigners = 4;
        auto ex = co_await net::this_coro::executor;
        std::size_t next = 0, running = std::min(kSigners, txs.size());
        bool stop = false;
        net::steady_timer all_done(ex, net::steady_timer::time_point::max());
        for (std::size_t k = 0, n = running; k < n; ++k)
            net::co_spawn(ex, [&]() -> net::awaitable<void> {
                while (!stop && next < txs.size()) {
                    const std::size_t j = next++;
                    try {
                        sigs[j] = co_await signer.sign(eth::signing_hash(txs[j]));
                    } catch (const std::exception& e) {
                        sigs[j] = signer::SignResult::failure(e.what());
                    }
                    if (!*sigs[j]) stop = true;  // nothing after a failure is sent: stop signing
                }
                if (--running == 0) all_done.cancel();
            }, net::detached);
        if (running > 0) {
            boost::system::error_code ignored;
            co_await all_done.async_wait(net::redirect_error(net::use_awaitable, ignored));
        }
    }
    // In nonce order up to the first signature that failed (or was never made): a later nonce
    // without it would be a gap.
    for (std::size_t j = 0; j < chosen.size(); ++j) {
        const std::size_t i = chosen[j];
        auto& o = out[i];
        const auto& t = o.topup;
        if (!sigs[j] || !*sigs[j]) {
            o.state = Outcome::State::kFailed;
            o.error = "signing failed: " + (sigs[j] ? sigs[j]->error() : std::string("not signed after an earlier failure"));
            spdlog::error("{}: {}", net.name, o.error);
            fail_rest(i + 1, "not sent: signing failed for an earlier top-up");
            break;
        }
        const Bytes raw = eth::encode_signed(txs[j], **sigs[j]);
        entries.push_back(entry_of(txs[j], raw, t.account.address, t.account.home, std::string(config::role_name(t.account.role))));
        o.tx_hash = entries.back().tx_hash;
        o.nonce = txs[j].nonce;
        order.push_back(i);
    }
    if (order.empty()) co_return out;

    // 2. Durable before broadcast: every entry in one ledger transaction (one sync). A crash from
    // here on finds them and reconciles them.
    try {
        ledger.atomically([&] {
            for (auto& e : entries) {
                e.id = ledger.record_intent(e);
                e.created = unix_now();
            }
        });
    } catch (const std::exception& ex) {
        const std::string why = std::string("ledger cannot be written, not sent: ") + ex.what();
        spdlog::error("{}: {}", net.name, why);
        for (auto i : order) {
            out[i].state = Outcome::State::kFailed;
            out[i].error = why;
            out[i].tx_hash.clear();
        }
        co_return out;
    }
    for (std::size_t k = 0; k < order.size(); ++k) out[order[k]].ledger_id = entries[k].id;

    // 3. One batch of eth_sendRawTransaction (split into batchSize requests by the client).
    auto broadcast = [&](const std::vector<std::string>& raws) -> net::awaitable<std::optional<std::vector<rpc::CallResult>>> {
        std::vector<rpc::Call> calls;
        for (const auto& raw : raws) {
            json params = json::array();
            params.push_back(raw);
            calls.push_back({"eth_sendRawTransaction", std::move(params)});
        }
        std::optional<std::vector<rpc::CallResult>> r;
        try {
            r = co_await client.batch(std::move(calls));
        } catch (const std::exception& e) {
            spdlog::warn("{}: broadcast failed: {}", net.name, e.what());
        }
        co_return r;
    };
    std::vector<std::string> raws;
    for (const auto& e : entries) raws.push_back(e.raw);
    auto results = co_await broadcast(raws);

    // Classify: accepted (or already known), refused, or unknown. "nonce too low" may be our own
    // earlier attempt (a retried request) that landed: look the hash up.
    enum class Verdict { kAccepted, kRefused, kUnknown };
    std::vector<Verdict> verdict(order.size(), Verdict::kUnknown);
    std::vector<std::string> reason(order.size());
    std::vector<std::size_t> check_hash;
    if (results) {
        for (std::size_t k = 0; k < order.size(); ++k) {
            const auto& r = (*results)[k];
            if (r.ok()) {
                verdict[k] = Verdict::kAccepted;
                continue;
            }
            reason[k] = r.error ? r.error->message() : "no answer";
            if (already_known(reason[k])) {
                verdict[k] = Verdict::kAccepted;
            } else if (to_lower(reason[k]).find("nonce too low") != std::string::npos) {
                check_hash.push_back(k);
                verdict[k] = Verdict::kRefused;
            } else {
                verdict[k] = Verdict::kRefused;
            }
        }
        if (!check_hash.empty()) {
            std::vector<rpc::Call> calls;
            for (auto k : check_hash) {
                json params = json::array();
                params.push_back(entries[k].tx_hash);
                calls.push_back({"eth_getTransactionByHash", std::move(params)});
            }
            try {
                auto found = co_await client.batch(std::move(calls));
                for (std::size_t c = 0; c < check_hash.size(); ++c)
                    if (found[c].ok() && !found[c].result->is_null()) verdict[check_hash[c]] = Verdict::kAccepted;
            } catch (const std::exception&) {
            }
        }
    }

    // A refused nonce with accepted ones after it would hold them back forever: fill it with a
    // zero-value transfer from the bank to itself (journaled like a top-up, role "nonce-filler").
    std::optional<std::size_t> first_refused;
    for (std::size_t k = 0; k < order.size() && !first_refused; ++k)
        if (verdict[k] == Verdict::kRefused) first_refused = k;
    std::vector<std::uint64_t> filler_nonces;
    if (first_refused) {
        for (std::size_t k = *first_refused; k < order.size(); ++k) {
            if (verdict[k] != Verdict::kRefused) continue;
            bool later_accepted = false;
            for (std::size_t j = k + 1; j < order.size(); ++j) later_accepted |= verdict[j] != Verdict::kRefused;
            if (later_accepted) filler_nonces.push_back(entries[k].nonce);
        }
    }

    try {
        ledger.atomically([&] {
            for (std::size_t k = 0; k < order.size(); ++k) {
                auto& o = out[order[k]];
                const auto& t = o.topup;
                switch (verdict[k]) {
                    case Verdict::kAccepted:
                        ledger.mark(entries[k].id, ledger::State::kSent, {});
                        o.state = Outcome::State::kSent;
                        spdlog::info("{}: sent {} {} to {} {} (home {}), nonce {}, tx {}", net.name,
                                     format_units(t.amount, net.decimals), net.symbol, config::role_name(t.account.role),
                                     t.account.address.checksummed(), t.account.home, o.nonce, o.tx_hash);
                        break;
                    case Verdict::kUnknown:
                        // It may or may not have reached the node: watched like a sent one, and
                        // reconcile sends the same bytes again next round.
                        ledger.mark(entries[k].id, ledger::State::kSent, "send result unknown");
                        o.state = Outcome::State::kSent;
                        o.error = "send result unknown";
                        spdlog::warn("{}: top-up to {} {}: send result unknown, tx {}", net.name,
                                     config::role_name(t.account.role), t.account.address.checksummed(), o.tx_hash);
                        break;
                    case Verdict::kRefused:
                        ledger.mark(entries[k].id, ledger::State::kFailed, "refused: " + reason[k]);
                        o.state = Outcome::State::kFailed;
                        o.error = "node refused the transaction: " + reason[k];
                        spdlog::error("{}: top-up to {} {} refused: {}", net.name, config::role_name(t.account.role),
                                      t.account.address.checksummed(), reason[k]);
                        break;
                }
            }
        });
    } catch (const std::exception& ex) {
        // The transactions are out; their entries stay `intent` and reconcile settles them.
        spdlog::error("{}: ledger cannot be written after the broadcast ({}); reconcile will settle it", net.name, ex.what());
        for (auto i : order) out[i].unrecorded = true;
    }

    for (auto n : filler_nonces) {
        const auto tx = make_tx(signer.address(), Wei(0), 21000, n);
        auto sig = co_await signer.sign(eth::signing_hash(tx));
        if (!sig) {
            spdlog::error("{}: cannot sign the filler for nonce {}: {}; later top-ups wait", net.name, n, sig.error());
            continue;
        }
        const Bytes raw = eth::encode_signed(tx, *sig);
        auto e = entry_of(tx, raw, signer.address(), net.name, "nonce-filler");
        try {
            e.id = ledger.record_intent(e);
        } catch (const std::exception& ex) {
            spdlog::error("{}: ledger cannot be written ({}); nonce {} stays a gap", net.name, ex.what(), n);
            continue;
        }
        std::vector<std::string> one{e.raw};
        auto r = co_await broadcast(one);
        const bool ok = r && ((*r)[0].ok() || ((*r)[0].error && already_known((*r)[0].error->message())));
        try {
            ledger.mark(e.id, ok ? ledger::State::kSent : ledger::State::kFailed,
                        ok ? "fills nonce " + std::to_string(n) : "filler refused");
        } catch (const std::exception&) {
        }
        if (ok) spdlog::warn("{}: nonce {} was refused; filled with a zero-value transfer to the bank, tx {}", net.name, n, e.tx_hash);
        else spdlog::error("{}: the filler for nonce {} was refused too; later top-ups wait", net.name, n);
    }
    for (std::size_t k = 0; k < order.size(); ++k)
        if (verdict[k] != Verdict::kRefused) sent[order[k]].push_back(entries[k]);

    // Wait for receipts: one batch per poll, fast at first, then slower. A transaction unmined for
    // replaceAfter is replaced with higher fees; any of a nonce's transactions may be the one mined.
    auto waiting = [&] {
        std::vector<std::size_t> w;
        for (std::size_t i = 0; i < out.size(); ++i)
            if (out[i].state == Outcome::State::kSent && !sent[i].empty()) w.push_back(i);
        return w;
    };
    const auto deadline = std::chrono::steady_clock::now() + opt.confirm_timeout;
    std::size_t total_sent = waiting().size(), last_reported = SIZE_MAX;
    net::steady_timer timer(co_await net::this_coro::executor);
    auto last_rebroadcast = std::chrono::steady_clock::now();
    // Receipts are fetched (one batch) 100 ms after sending, then whenever a new block appears:
    // between fetches only eth_blockNumber is asked, every tick (first_receipt_poll). Receipts are
    // fetched at least every max_receipt_poll even without a new block (a node that lags or lies).
    std::optional<std::uint64_t> receipts_block;  // the block at the last receipt fetch
    auto last_fetch = std::chrono::steady_clock::now();
    bool first = true;
    while (!waiting().empty() && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(opt.first_receipt_poll);
        co_await timer.async_wait(net::use_awaitable);
        if (!first && receipts_block && std::chrono::steady_clock::now() - last_fetch < opt.max_receipt_poll) {
            std::optional<std::uint64_t> now_block;
            try {
                std::string m = "eth_blockNumber";
                now_block = rpc::as_u64(co_await client.call(std::move(m), json::array()));
            } catch (const std::exception&) {
            }
            if (now_block && *now_block <= *receipts_block) continue;
        }
        first = false;
        last_fetch = std::chrono::steady_clock::now();
        auto w = waiting();
        std::vector<rpc::Call> calls;
        calls.push_back({"eth_blockNumber", json::array()});
        std::vector<std::pair<std::size_t, std::size_t>> which;  // call -> (outcome, entry)
        for (auto i : w)
            for (std::size_t k = 0; k < sent[i].size(); ++k) {
                json p = json::array();
                p.push_back(sent[i][k].tx_hash);
                calls.push_back({"eth_getTransactionReceipt", std::move(p)});
                which.emplace_back(i, k);
            }
        std::vector<rpc::CallResult> r;
        try {
            r = co_await client.batch(std::move(calls));
        } catch (const std::exception& e) {
            spdlog::warn("{}: receipt poll failed: {}", net.name, e.what());
            continue;
        }
        const auto block = r[0].ok() ? rpc::as_u64(*r[0].result) : std::nullopt;
        if (block) receipts_block = block;
        std::set<std::size_t> mined;
        struct Mined {
            std::size_t outcome;
            const ledger::Entry* entry;
            rpc::ReceiptInfo receipt;
        };
        std::vector<Mined> receipts;  // recorded below in one ledger transaction (one sync per poll)
        for (std::size_t c = 0; c < which.size(); ++c) {
            const auto& res = r[c + 1];
            if (!res.ok() || res.result->is_null()) continue;
            auto rec = rpc::as_receipt(*res.result);
            if (!rec) continue;
            const auto [i, k] = which[c];
            auto& o = out[i];
            const auto& e = sent[i][k];
            mined.insert(i);
            o.tx_hash = e.tx_hash;
            o.ledger_id = e.id;
            o.block = rec->block;
            o.fee_paid = Wei(rec->gas_used) * rec->effective_gas_price.value_or(0);
            receipts.push_back({i, &e, *rec});
            if (rec->success) {
                o.state = Outcome::State::kConfirmed;
                o.error.clear();
                spdlog::info("{}: confirmed tx {} in block {}", net.name, o.tx_hash, o.block);
            } else {
                o.state = Outcome::State::kFailed;
                o.error = "transaction reverted in block " + std::to_string(o.block);
                spdlog::error("{}: tx {} reverted in block {}", net.name, o.tx_hash, o.block);
            }
        }
        if (!receipts.empty()) {
            try {
                ledger.atomically([&] {
                    for (const auto& m : receipts) {
                        ledger.confirmed(m.entry->id, m.receipt.success, m.receipt.block, m.receipt.gas_used,
                                         out[m.outcome].fee_paid);
                        for (const auto& other : sent[m.outcome])
                            if (other.id != m.entry->id) ledger.replaced(other.id, m.entry->tx_hash);
                    }
                });
            } catch (const std::exception& ex) {
                spdlog::error("{}: ledger cannot be written: {} receipt(s) not recorded ({})", net.name, receipts.size(),
                              ex.what());
                for (const auto& m : receipts) out[m.outcome].unrecorded = true;
            }
        }
        // A node may lose a pending transaction (eviction, restart): send the same bytes again now
        // and then, so its nonce never stays a gap. "already known" is the usual answer.
        if (std::chrono::steady_clock::now() - last_rebroadcast >= std::chrono::seconds(3)) {
            last_rebroadcast = std::chrono::steady_clock::now();
            std::vector<rpc::Call> again;
            for (auto i : w) {
                if (mined.count(i)) continue;
                json p = json::array();
                p.push_back(sent[i].back().raw);
                again.push_back({"eth_sendRawTransaction", std::move(p)});
            }
            if (!again.empty()) {
                try {
                    co_await client.batch(std::move(again));
                } catch (const std::exception& e) {
                    spdlog::warn("{}: re-broadcast failed: {}", net.name, e.what());
                }
            }
        }
        for (auto i : w) {
            if (mined.count(i) || !block || !is_stuck(sent[i].back(), net, *block)) continue;
            auto rep = co_await replace_stuck(client, signer, ledger, net, sent[i].back(), *block);
            if (auto* e = std::get_if<ledger::Entry>(&rep)) {
                out[i].tx_hash = e->tx_hash;
                out[i].ledger_id = e->id;
                ++out[i].replacements;
                sent[i].push_back(std::move(*e));
            } else {
                spdlog::error("{}: tx {} is stuck: {}", net.name, sent[i].back().tx_hash, std::get<std::string>(rep));
                sent[i].back().created = unix_now();  // try again after another replaceAfter
                if (block) sent[i].back().sent_block = *block;
            }
        }
        const std::size_t done = total_sent - waiting().size();
        if (done != last_reported) {
            say(net.name + ": " + std::to_string(done) + "/" + std::to_string(total_sent) + " confirmed");
            last_reported = done;
        }
    }
    for (auto i : waiting()) {
        out[i].state = Outcome::State::kFailed;
        out[i].error = "not confirmed within " + std::to_string(opt.confirm_timeout.count() / 1000) +
                       " s (tx " + out[i].tx_hash + "); the ledger keeps it and the next run reconciles it, "
                       "never paying the account twice";
    }
    co_return out;
}

net::awaitable<Reconciled> reconcile(rpc::RpcClient& client, signer::Signer& signer, ledger::Ledger& ledger,
                                     const config::Network& net) {
    Reconciled out;
    const eth::Address bank = signer.address();
    auto pending = ledger.pending(net.name, bank.checksummed());
    if (pending.empty()) co_return out;
    std::vector<rpc::Call> calls;
    {
        json p = json::array();
        p.push_back(bank.lower());
        p.push_back("latest");
        calls.push_back({"eth_getTransactionCount", std::move(p)});
        calls.push_back({"eth_blockNumber", json::array()});
    }
    for (const auto& e : pending) {
        json p = json::array();
        p.push_back(e.tx_hash);
        calls.push_back({"eth_getTransactionReceipt", std::move(p)});
    }
    auto r = co_await client.batch(std::move(calls));
    const auto latest = r[0].ok() ? rpc::as_u64(*r[0].result) : std::nullopt;
    const auto block = r[1].ok() ? rpc::as_u64(*r[1].result) : std::nullopt;
    if (!latest || !block) throw std::runtime_error("reconcile: eth_getTransactionCount or eth_blockNumber failed");

    // Entries sharing a nonce are one payment (replacements): settle them together.
    std::map<std::uint64_t, std::vector<std::size_t>> groups;
    std::vector<std::optional<rpc::ReceiptInfo>> receipts;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        const auto& res = r[i + 2];
        if (!res.ok()) throw std::runtime_error("reconcile: receipt query failed: " + res.error->message());
        receipts.push_back(res.result->is_null() ? std::nullopt : rpc::as_receipt(*res.result));
        groups[pending[i].nonce].push_back(i);
    }
    for (const auto& [nonce, members] : groups) {
        std::optional<std::size_t> mined;
        for (auto i : members)
            if (receipts[i]) mined = i;
        if (mined) {
            const auto& e = pending[*mined];
            const auto& rec = *receipts[*mined];
            ledger.confirmed(e.id, rec.success, rec.block, rec.gas_used, Wei(rec.gas_used) * rec.effective_gas_price.value_or(0));
            for (auto i : members)
                if (i != *mined) ledger.replaced(pending[i].id, e.tx_hash);
            auto done = e;
            done.state = rec.success ? ledger::State::kConfirmed : ledger::State::kFailed;
            done.block = rec.block;
            done.fee_paid = Wei(rec.gas_used) * rec.effective_gas_price.value_or(0);
            out.resolved.push_back(done);
            out.log.push_back(e.tx_hash + (rec.success ? " confirmed" : " reverted") + " in block " + std::to_string(rec.block));
            continue;
        }
        if (*latest > nonce) {
            for (auto i : members) {
                ledger.mark(pending[i].id, ledger::State::kDropped, "nonce " + std::to_string(nonce) + " used by another transaction");
                auto done = pending[i];
                done.state = ledger::State::kDropped;
                out.resolved.push_back(done);
            }
            out.log.push_back(pending[members.back()].tx_hash + " dropped: nonce " + std::to_string(nonce) +
                              " used by another transaction; the account is decided afresh");
            continue;
        }
        // Unmined, nonce still free: replace it if stuck, else broadcast the very same bytes again (a
        // node that knows them says "already known"; one that lost them takes them back: gaps fill).
        const auto& newest = pending[members.back()];
        out.busy.insert(eth::Address::parse(newest.recipient).value());
        out.next_nonce = std::max(out.next_nonce.value_or(0), nonce + 1);
        if (is_stuck(newest, net, *block)) {
            auto rep = co_await replace_stuck(client, signer, ledger, net, newest, *block);
            if (std::holds_alternative<ledger::Entry>(rep)) {
                ++out.replacements;
                out.log.push_back(newest.tx_hash + " (nonce " + std::to_string(nonce) + ") stuck: replaced by " +
                                  std::get<ledger::Entry>(rep).tx_hash);
                continue;
            }
            out.log.push_back(newest.tx_hash + " (nonce " + std::to_string(nonce) + ") stuck, not replaced: " +
                              std::get<std::string>(rep));
        }
        std::string why;
        try {
            std::string method = "eth_sendRawTransaction";
            json p = json::array();
            p.push_back(newest.raw);
            co_await client.call(std::move(method), std::move(p));
        } catch (const rpc::RpcError& e) {
            if (!already_known(e.message())) why = e.message();
        }
        if (newest.state == ledger::State::kIntent && why.empty()) ledger.mark(newest.id, ledger::State::kSent, "broadcast on reconcile");
        for (auto i : members)
            if (pending[i].id != newest.id && pending[i].state != ledger::State::kReplaced && why.empty())
                ledger.replaced(pending[i].id, newest.tx_hash);
        out.log.push_back(newest.tx_hash + " (nonce " + std::to_string(nonce) + ") not mined yet: broadcast again" +
                          (why.empty() ? "" : " (" + why + ")"));
    }
    co_return out;
}

}  // namespace keymaster::chain
