#include "keymaster/funding/topology.hpp"

#include "keymaster/funding/burn.hpp"

#include <algorithm>

namespace keymaster::funding {
namespace {

using config::Network;
using config::Role;

// One account listed twice: the longer of each horizon, the larger max.
config::Runway longer(config::Runway a, const config::Runway& b) {
    auto longest = [](std::optional<double>& x, const std::optional<double>& y) {
        if (y && (!x || *y > *x)) x = y;
    };
    longest(a.threshold, b.threshold);
    longest(a.target, b.target);
    longest(a.window, b.window);
    if (b.max && (!a.max || *b.max > *a.max)) {
        a.max = b.max;
        a.max_path = b.max_path;
    }
    return a;
}

struct Builder {
    const config::Config& cfg;
    const std::map<std::string, eth::Address>& banks;
    Topology out;
    std::map<std::pair<std::string, Role>, std::shared_ptr<const config::Runway>> runways;  // one per network and role

    // N's runway with the role's over it, shared by every account of that role on N; null without any.
    std::shared_ptr<const config::Runway> runway_of(const Network& n, Role role) {
        auto& r = runways[{n.name, role}];
        if (r) return r;
        const auto rs = n.roles.find(role);
        const auto merged = rs != n.roles.end() ? config::merged(rs->second.runway, n.runway) : n.runway;
        const bool any = merged.threshold || merged.target || merged.window || merged.max;
        if (any) r = std::make_shared<const config::Runway>(merged);
        return r;
    }

    bool ignored(const Network& n, Role role, bool local) const {
        return n.ignore.all.count(role) || (local ? n.ignore.local.count(role) : n.ignore.remote.count(role));
    }

    void add(const Network& n, NetworkAccounts& list, const std::string& home, Role role, const config::AgentRef& agent) {
        // Threshold: the agent's own, else N's roles entry, else N's watcherThreshold for watchers, else N's threshold.
        Wei threshold = n.threshold;
        const auto rs = n.roles.find(role);
        if (agent.threshold) threshold = *agent.threshold;
        else if (rs != n.roles.end() && rs->second.threshold) threshold = *rs->second.threshold;
        else if (role == Role::kWatcher && n.watcher_threshold) threshold = *n.watcher_threshold;
        std::optional<Wei> target;
        if (rs != n.roles.end() && rs->second.target) target = rs->second.target;
        else if (n.target) target = n.target;
        if (target && *target < threshold) {
            out.errors.push_back(cfg.file + ": " + agent.path + ": threshold " + format_units(threshold) +
                                 " is above the target " + format_units(*target) + " on " + n.name);
            return;
        }
        const Wei tgt = target.value_or(threshold * 2);
        const auto runway = runway_of(n, role);
        if (runway && runway->max && (*runway->max < threshold || *runway->max < tgt)) {
            out.errors.push_back(cfg.file + ": " + runway->max_path + ": runway.max " + format_units(*runway->max) +
                                 " is below the " + (*runway->max < threshold ? "threshold " : "target ") +
                                 format_units(*runway->max < threshold ? threshold : tgt) + " of " +
                                 std::string(config::role_name(role)) + " " + agent.address.checksummed() + " (" +
                                 agent.path + ")");
            return;
        }

        if (auto b = banks.find(n.name); b != banks.end() && b->second == agent.address) {
            out.notes.push_back(n.name + ": " + agent.address.checksummed() + " (" + std::string(config::role_name(role)) +
                                " of " + home + ") is the bank itself; not funded");
            return;
        }
        for (auto& existing : list.accounts) {
            if (existing.address != agent.address) continue;
            existing.threshold = std::max(existing.threshold, threshold);
            existing.target = std::max(existing.target, tgt);
            if (runway) existing.runway = existing.runway ? std::make_shared<const config::Runway>(longer(*existing.runway, *runway)) : runway;
            out.notes.push_back(n.name + ": " + agent.address.checksummed() + " is listed more than once (" +
                                std::string(config::role_name(existing.role)) + " of " + existing.home + ", " +
                                std::string(config::role_name(role)) + " of " + home + "); funded once");
            return;
        }
        list.accounts.push_back(Account{n.name, home, role, agent.address, threshold, tgt, runway});
    }

    void run() {
        for (const auto& n : cfg.networks) {
            NetworkAccounts list{n.name, {}};
            // Local agents of N.
            if (n.agents.updater && !ignored(n, Role::kUpdater, true)) add(n, list, n.name, Role::kUpdater, *n.agents.updater);
            if (!ignored(n, Role::kWatcher, true))
                for (const auto& w : n.agents.watchers) add(n, list, n.name, Role::kWatcher, w);
            if (n.agents.kathy && !ignored(n, Role::kKathy, true)) add(n, list, n.name, Role::kKathy, *n.agents.kathy);
            // Remote agents: every home H that lists N as a replica.
            for (const auto& h : cfg.networks) {
                if (std::find(h.replicas.begin(), h.replicas.end(), n.name) == h.replicas.end()) continue;
                if (h.agents.relayer && !ignored(n, Role::kRelayer, false)) add(n, list, h.name, Role::kRelayer, *h.agents.relayer);
                if (h.agents.processor && !ignored(n, Role::kProcessor, false))
                    add(n, list, h.name, Role::kProcessor, *h.agents.processor);
                if (!ignored(n, Role::kWatcher, false))
                    for (const auto& w : h.agents.watchers) add(n, list, h.name, Role::kWatcher, w);
            }
            out.networks.push_back(std::move(list));
        }
    }
};

}  // namespace

const NetworkAccounts* Topology::find(std::string_view network) const {
    for (const auto& n : networks)
        if (n.network == network) return &n;
    return nullptr;
}

Topology build_topology(const config::Config& cfg, const std::map<std::string, eth::Address>& banks) {
    Builder b{cfg, banks, {}, {}};
    b.run();
    for (auto& n : b.out.networks) n.accounts.shrink_to_fit();  // kept for the process's lifetime
    return std::move(b.out);
}

Decision decide(const Account& account, const std::optional<Wei>& balance) {
    return decide(Levels{account.threshold, account.target}, balance);
}

Decision decide(const Levels& levels, const std::optional<Wei>& balance) {
    if (!balance) return {Action::kUnknown, 0};
    if (*balance >= levels.threshold) return {Action::kNone, 0};
    return {Action::kTopUp, levels.target - *balance};
}

}  // namespace keymaster::funding
