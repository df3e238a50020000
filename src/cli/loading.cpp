#include "loading.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "keymaster/config/secrets.hpp"

namespace keymaster::cli {

std::optional<Loaded> load_all(const GlobalOptions& g, const std::vector<std::string>& only,
                               const std::function<void(const std::string&)>& error) {
    auto env = config::process_env();
    auto r = config::load(g.config, env);
    if (auto* e = std::get_if<config::LoadError>(&r)) {
        for (const auto& line : e->lines) error(line);
        return std::nullopt;
    }
    Loaded l;
    l.cfg = std::move(std::get<config::Config>(r));
    for (const auto& w : l.cfg.warnings) spdlog::warn("{}", w);
    bool ok = true;
    for (const auto& name : only)
        if (!l.cfg.find(name)) {
            error("--networks: unknown network '" + name + "' (not in " + g.config + ")");
            ok = false;
        }
    if (!ok) return std::nullopt;
    for (const auto& n : l.cfg.networks)
        if (only.empty() || std::find(only.begin(), only.end(), n.name) != only.end()) l.selected.push_back(&n);
    for (const auto* n : l.selected) {
        auto key = config::resolve_bank_key(n->bank, env);
        if (auto* msg = std::get_if<std::string>(&key)) {
            error(g.config + ": " + *msg);
            ok = false;
            continue;
        }
        auto s = std::make_shared<signer::LocalSigner>(std::move(std::get<crypto::PrivateKey>(key)));
        l.banks.emplace(n->name, s->address());
        l.signers.emplace(n->name, std::move(s));
    }
    if (!ok) return std::nullopt;
    l.topology = funding::build_topology(l.cfg, l.banks);
    for (const auto& e : l.topology.errors) error(e);
    if (!l.topology.errors.empty()) return std::nullopt;
    for (const auto& n : l.topology.notes) spdlog::info("{}", n);
    return l;
}

rpc::RpcOptions rpc_options(const config::Network& n) {
    rpc::RpcOptions o;
    o.batch_size = n.batch_size;
    return o;
}

}  // namespace keymaster::cli
