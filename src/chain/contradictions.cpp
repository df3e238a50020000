// Step 3b of prepare: accounts a confirmed top-up of ours reached whose balance the endpoint
// contradicts (held: no second top-up while it lasts).
#include <spdlog/spdlog.h>

#include <utility>

#include "batch.hpp"
#include "keymaster/rpc/client.hpp"
#include "prepare_steps.hpp"

namespace keymaster::chain::detail {

namespace net = boost::asio;
using nlohmann::json;

namespace {
// The check of one account (its index in the poll): its balance and nonce at the block before
// our top-up, and its nonce now.
struct Check {
    std::size_t account;
    Answer<Wei> balance_before;
    Answer<std::uint64_t> nonce_before, nonce_now;
};
}  // namespace

void Contradictions::settled(const std::vector<ledger::Entry>& entries) {
    for (const auto& e : entries)
        if (e.state == ledger::State::kConfirmed && e.role != "nonce-filler")
            if (auto a = eth::Address::parse(e.recipient)) since_poll_[*a] = {e.block, e.amount};
}

net::awaitable<Contradicted> Contradictions::check(rpc::RpcClient& client, const std::string& network,
                                                   Mode mode, const funding::NetworkSnapshot& snap) {
    const auto recent = std::exchange(since_poll_, {});  // checked now; kept by keep()
    Contradicted out;
    if (sends(mode) && snap.reachable) out = co_await ask(client, network, snap, recent);
    keep(snap, out.mismatches, recent);  // (an unverified one: this poll only; a pruned node never answers)
    co_return out;
}

// Accounts still below their threshold (a balance that would have them paid again), where the
// endpoint contradicts itself: the account sent nothing since the block before the top-up, yet
// holds less than it held there plus what we sent. One batch, only for those few accounts, at the
// endpoint's own state. A query that fails proves nothing either way: the account is held all the
// same this poll (unverified), not longer (a pruned node never answers for an old block). (A reorg
// is the poll's block check's to find; a backend behind, the stale view's.)
net::awaitable<Contradicted> Contradictions::ask(rpc::RpcClient& client, const std::string& network,
                                                 const funding::NetworkSnapshot& snap, const Recent& recent) {
    Contradicted out;
    Calls calls;
    std::vector<Check> checks;
    for (std::size_t i = 0; i < snap.accounts.size() && !recent.empty(); ++i) {
        const auto& s = snap.accounts[i];
        if (!s.balance || *s.balance >= s.account.threshold) continue;
        const auto it = recent.find(s.account.address);
        if (it == recent.end()) continue;
        const auto addr = s.account.address.lower();
        const auto tag = to_quantity(Wei(it->second.block - 1));
        Check c{i, {}, {}, {}};
        c.balance_before = calls.add<Wei>({"eth_getBalance", json::array({addr, tag})});
        c.nonce_before = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({addr, tag})});
        c.nonce_now = calls.add<std::uint64_t>({"eth_getTransactionCount", json::array({addr, "latest"})});
        checks.push_back(c);
    }
    if (checks.empty()) co_return out;
    Answers answers;
    try {
        answers = Answers(co_await client.batch(calls.take()));
    } catch (const std::exception& e) {
        spdlog::info("{}: cannot check the balances of accounts just topped up ({}): held this poll", network,
                     e.what());
        for (const auto& c : checks) out.unverified.push_back(c.account);
        co_return out;
    }
    for (const auto& c : checks) {
        const auto before = answers.get(c.balance_before);
        const auto nonce_before = answers.get(c.nonce_before), nonce_now = answers.get(c.nonce_now);
        const auto& s = snap.accounts[c.account];
        if (!before || !nonce_before || !nonce_now)
            out.unverified.push_back(c.account);
        else if (funding::balance_contradicts(*before, recent.at(s.account.address).amount, *s.balance,
                                              *nonce_before, *nonce_now))
            out.mismatches.push_back(c.account);
    }
    co_return out;
}

// A top-up the endpoint still contradicts itself about is checked again at the next poll (its
// account held while it lasts: a backend whose balances lag behind its block number), for at
// most kPolls polls; then the limits alone stand between a lie and the bank.
void Contradictions::keep(const funding::NetworkSnapshot& snap, const std::vector<std::size_t>& held,
                          const Recent& recent) {
    std::map<eth::Address, int> still;
    for (auto i : held) {
        const auto& a = snap.accounts[i].account.address;
        const int n = polls_.count(a) ? polls_.at(a) + 1 : 1;
        if (n >= kPolls || !recent.count(a)) continue;
        still[a] = n;
        since_poll_.emplace(a, recent.at(a));
    }
    polls_ = std::move(still);
}

}  // namespace keymaster::chain::detail
