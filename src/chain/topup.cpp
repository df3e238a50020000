#include "keymaster/chain/topup.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keymaster/common/hex.hpp"
#include "keymaster/ledger/ledger.hpp"
#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"
#include "keymaster/signer/signer.hpp"

namespace keymaster::chain {
namespace {

using nlohmann::json;
namespace net = boost::asio;

std::string gwei(const Wei& w) { return format_units(w, 9) + " gwei"; }

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool already_known(const std::string& msg) {
    const auto m = lower(msg);
    return m.find("already known") != std::string::npos || m.find("known transaction") != std::string::npos ||
           m.find("already imported") != std::string::npos || m.find("already exists") != std::string::npos;
}

}  // namespace

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

    // Send in order, consecutive nonces; a refused send stops the rest, so no nonce gap is left.
    std::uint64_t nonce = first_nonce;
    Wei available = *plan.snapshot.bank_balance;
    const Fees& fees = *plan.fees;
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
        eth::Transaction tx;
        tx.type = fees.type;
        tx.chain_id = plan.snapshot.chain_id;
        tx.nonce = nonce;
        tx.gas_price = fees.gas_price;
        tx.max_fee_per_gas = fees.max_fee;
        tx.max_priority_fee_per_gas = fees.priority_fee;
        tx.gas_limit = t.gas_limit;
        tx.to = t.account.address;
        tx.value = t.amount;
        auto sig = co_await signer.sign(eth::signing_hash(tx));
        if (!sig) {
            o.state = Outcome::State::kFailed;
            o.error = "signing failed: " + sig.error().message();
            fail_rest(i + 1, "not sent: signing failed for an earlier top-up");
            break;
        }
        const Bytes raw = eth::encode_signed(tx, *sig);
        o.tx_hash = to_hex(eth::transaction_hash(raw));
        o.nonce = nonce;
        // Durable before broadcast: a crash from here on finds the entry and reconciles it.
        try {
            ledger::Entry e;
            e.network = net.name;
            e.chain_id = *tx.chain_id;
            e.bank = signer.address().checksummed();
            e.recipient = t.account.address.checksummed();
            e.home = t.account.home;
            e.role = std::string(config::role_name(t.account.role));
            e.amount = t.amount;
            e.nonce = nonce;
            e.tx_type = static_cast<int>(tx.type);
            e.max_fee = tx.max_fee_per_gas;
            e.priority_fee = tx.max_priority_fee_per_gas;
            e.gas_price = tx.gas_price;
            e.gas_limit = tx.gas_limit;
            e.raw = to_hex(raw);
            e.tx_hash = o.tx_hash;
            o.ledger_id = ledger.record_intent(std::move(e));
        } catch (const std::exception& ex) {
            o.state = Outcome::State::kFailed;
            o.error = std::string("ledger cannot be written, not sent: ") + ex.what();
            o.tx_hash.clear();
            spdlog::error("{}: {}", net.name, o.error);
            fail_rest(i + 1, "not sent: the ledger cannot be written");
            break;
        }
        bool accepted = false;
        bool nonce_too_low = false;
        std::optional<std::string> unavailable;
        std::string why;
        try {
            // (Arguments are built before co_await: GCC 12 cannot keep an initializer_list across a suspension.)
            std::string method = "eth_sendRawTransaction";
            json params = json::array();
            params.push_back(to_hex(raw));
            co_await client.call(std::move(method), std::move(params));
            accepted = true;
        } catch (const rpc::RpcError& e) {
            why = e.message();
            accepted = already_known(why);
            nonce_too_low = lower(why).find("nonce too low") != std::string::npos;
        } catch (const rpc::RpcUnavailable& e) {
            unavailable = e.what();
        }
        if (nonce_too_low) {
            // Our own earlier attempt (a retried request) may have landed: look for it.
            try {
                std::string method = "eth_getTransactionByHash";
                json params = json::array();
                params.push_back(o.tx_hash);
                auto found = co_await client.call(std::move(method), std::move(params));
                accepted = !found.is_null();
            } catch (const std::exception&) {
            }
        }
        auto journal = [&](ledger::State st, const std::string& why2) {
            try {
                ledger.mark(o.ledger_id, st, why2);
                return true;
            } catch (const std::exception& ex) {
                spdlog::error("{}: ledger cannot be written ({}); sending nothing more", net.name, ex.what());
                return false;
            }
        };
        if (unavailable) {
            // The request may or may not have reached the node: watch for the hash, send nothing more.
            journal(ledger::State::kSent, "send result unknown");
            o.state = Outcome::State::kSent;
            o.error = "send result unknown: " + *unavailable;
            spdlog::warn("{}: top-up {} {} to {} {}: send result unknown, tx {}", net.name, format_units(t.amount, net.decimals),
                         net.symbol, config::role_name(t.account.role), t.account.address.checksummed(), o.tx_hash);
            fail_rest(i + 1, "not sent: an earlier send had an unknown result");
            break;
        }
        if (!accepted) {
            journal(ledger::State::kFailed, "refused: " + why);
            o.state = Outcome::State::kFailed;
            o.error = "node refused the transaction: " + why;
            spdlog::error("{}: top-up to {} {} refused: {}", net.name, config::role_name(t.account.role),
                          t.account.address.checksummed(), why);
            fail_rest(i + 1, "not sent: an earlier transaction was refused (" + why + ")");
            break;
        }
        o.state = Outcome::State::kSent;
        available -= cost;
        ++nonce;
        if (!journal(ledger::State::kSent, {})) {
            fail_rest(i + 1, "not sent: the ledger cannot be written");
            break;
        }
        spdlog::info("{}: sent {} {} to {} {} (home {}), nonce {}, tx {}", net.name, format_units(t.amount, net.decimals),
                     net.symbol, config::role_name(t.account.role), t.account.address.checksummed(), t.account.home,
                     o.nonce, o.tx_hash);
    }

    // Wait for receipts: one batch per poll, fast at first, then slower.
    auto waiting = [&] {
        std::vector<std::size_t> w;
        for (std::size_t i = 0; i < out.size(); ++i)
            if (out[i].state == Outcome::State::kSent) w.push_back(i);
        return w;
    };
    const auto deadline = std::chrono::steady_clock::now() + opt.confirm_timeout;
    auto interval = opt.first_receipt_poll;
    std::size_t total_sent = waiting().size(), last_reported = SIZE_MAX;
    net::steady_timer timer(co_await net::this_coro::executor);
    while (!waiting().empty() && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(interval);
        co_await timer.async_wait(net::use_awaitable);
        interval = std::min(opt.max_receipt_poll, interval * 3 / 2);
        auto w = waiting();
        std::vector<rpc::Call> calls;
        for (auto i : w) calls.push_back({"eth_getTransactionReceipt", json::array({out[i].tx_hash})});
        std::vector<rpc::CallResult> r;
        try {
            r = co_await client.batch(std::move(calls));
        } catch (const std::exception& e) {
            spdlog::warn("{}: receipt poll failed: {}", net.name, e.what());
            continue;
        }
        for (std::size_t k = 0; k < w.size(); ++k) {
            if (!r[k].ok() || r[k].result->is_null()) continue;
            auto rec = rpc::as_receipt(*r[k].result);
            if (!rec) continue;
            auto& o = out[w[k]];
            o.block = rec->block;
            o.fee_paid = Wei(rec->gas_used) * rec->effective_gas_price.value_or(0);
            try {
                ledger.confirmed(o.ledger_id, rec->success, rec->block, rec->gas_used, o.fee_paid);
            } catch (const std::exception& ex) {
                spdlog::error("{}: ledger cannot record receipt of {}: {}", net.name, o.tx_hash, ex.what());
            }
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

net::awaitable<Reconciled> reconcile(rpc::RpcClient& client, ledger::Ledger& ledger, const config::Network& net,
                                     const eth::Address& bank) {
    Reconciled out;
    auto pending = ledger.pending(net.name, bank.checksummed());
    if (pending.empty()) co_return out;
    std::vector<rpc::Call> calls;
    {
        json p = json::array();
        p.push_back(bank.lower());
        p.push_back("latest");
        calls.push_back({"eth_getTransactionCount", std::move(p)});
    }
    for (const auto& e : pending) {
        json p = json::array();
        p.push_back(e.tx_hash);
        calls.push_back({"eth_getTransactionReceipt", std::move(p)});
    }
    auto r = co_await client.batch(std::move(calls));
    const auto latest = r[0].ok() ? rpc::as_u64(*r[0].result) : std::nullopt;
    if (!latest) throw std::runtime_error("reconcile: eth_getTransactionCount failed");

    std::map<std::uint64_t, std::string> confirmed_by_nonce;  // nonce -> hash of ours that was mined
    std::vector<std::optional<rpc::ReceiptInfo>> receipts;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        const auto& res = r[i + 1];
        if (!res.ok()) throw std::runtime_error("reconcile: receipt query failed: " + res.error->message());
        receipts.push_back(res.result->is_null() ? std::nullopt : rpc::as_receipt(*res.result));
        if (receipts.back()) confirmed_by_nonce[pending[i].nonce] = pending[i].tx_hash;
    }
    std::vector<std::size_t> resend;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        const auto& e = pending[i];
        if (const auto& rec = receipts[i]) {
            const Wei fee = Wei(rec->gas_used) * rec->effective_gas_price.value_or(0);
            ledger.confirmed(e.id, rec->success, rec->block, rec->gas_used, fee);
            out.log.push_back(e.tx_hash + (rec->success ? " confirmed" : " reverted") + " in block " + std::to_string(rec->block));
        } else if (auto sib = confirmed_by_nonce.find(e.nonce); sib != confirmed_by_nonce.end()) {
            ledger.replaced(e.id, sib->second);
            out.log.push_back(e.tx_hash + " replaced by " + sib->second);
        } else if (*latest > e.nonce) {
            ledger.mark(e.id, ledger::State::kDropped, "nonce " + std::to_string(e.nonce) + " used by another transaction");
            out.log.push_back(e.tx_hash + " dropped: nonce " + std::to_string(e.nonce) +
                              " used by another transaction; the account is decided afresh");
        } else {
            resend.push_back(i);
        }
    }
    // Still unmined with a free nonce: broadcast the very same bytes again (a node that knows them
    // says "already known"; one that lost them, after a restart or an eviction, takes them back).
    if (!resend.empty()) {
        std::vector<rpc::Call> sends;
        for (auto i : resend) {
            json p = json::array();
            p.push_back(pending[i].raw);
            sends.push_back({"eth_sendRawTransaction", std::move(p)});
        }
        auto sr = co_await client.batch(std::move(sends));
        for (std::size_t k = 0; k < resend.size(); ++k) {
            const auto& e = pending[resend[k]];
            if (e.state == ledger::State::kIntent) ledger.mark(e.id, ledger::State::kSent, "broadcast on reconcile");
            out.busy.insert(eth::Address::parse(e.recipient).value());
            out.next_nonce = std::max(out.next_nonce.value_or(0), e.nonce + 1);
            const bool fine = sr[k].ok() || already_known(sr[k].error->message());
            out.log.push_back(e.tx_hash + " (nonce " + std::to_string(e.nonce) + ") not mined yet: broadcast again" +
                              (fine ? "" : " (" + sr[k].error->message() + ")"));
        }
    }
    co_return out;
}

}  // namespace keymaster::chain
