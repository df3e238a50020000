#include "loading.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "keymaster/aws/kms_signer.hpp"
#include "keymaster/config/secrets.hpp"
#include "run_sync.hpp"

namespace keymaster::cli {
namespace {

// KMS banks: one client per (region, endpoint, configured credentials), one signer per key, so a
// key shared by many networks costs one GetPublicKey. Runs its own short io_context (run_sync):
// signing later happens on the caller's.
class KmsBanks {
public:
    explicit KmsBanks(config::EnvLookup env) : env_(std::move(env)) {}

    std::variant<std::shared_ptr<signer::Signer>, std::string> open(const config::BankRef& b) {
        const std::string endpoint = aws::service_endpoint("kms", b.kms_region, b.kms_endpoint, env_);
        const std::string client_key = b.kms_region + "|" + endpoint + "|" + b.kms_access_key_id;
        const std::string signer_key = client_key + "|" + b.kms_key_id;
        if (auto it = signers_.find(signer_key); it != signers_.end()) return it->second;
        auto& client = clients_[client_key];
        if (!client) {
            std::optional<aws::StaticCredentials> creds;
            if (!b.kms_access_key_id.empty())
                creds = aws::StaticCredentials{b.kms_access_key_id, b.kms_secret_access_key, b.kms_session_token};
            auto provider = std::make_shared<aws::CredentialProvider>(std::move(creds), b.kms_region, env_);
            client = std::make_shared<aws::KmsClient>(b.kms_region, endpoint, std::move(provider));
        }
        std::shared_ptr<aws::KmsSigner> s;
        std::string error;
        try {
            s = run_sync(aws::KmsSigner::open(client, b.kms_key_id));
        } catch (const std::exception& ex) {
            error = ex.what();
        }
        if (!s) return error;
        spdlog::info("KMS key {} ({}) is {}; credentials from {}", b.kms_key_id, b.kms_region, s->address().checksummed(),
                     client->credentials().source());
        signers_[signer_key] = s;
        return s;
    }

private:
    config::EnvLookup env_;
    std::map<std::string, std::shared_ptr<aws::KmsClient>> clients_;
    std::map<std::string, std::shared_ptr<signer::Signer>> signers_;
};

}  // namespace

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
    KmsBanks kms(env);
    for (const auto* n : l.selected) {
        if (n->bank.kind == config::BankRef::Kind::kKms) {
            auto opened = kms.open(n->bank);
            if (auto* msg = std::get_if<std::string>(&opened)) {
                error(g.config + ": " + n->bank.path + ": " + *msg);
                ok = false;
                continue;
            }
            auto s = std::get<std::shared_ptr<signer::Signer>>(std::move(opened));
            l.banks.emplace(n->name, s->address());
            l.signers.emplace(n->name, std::move(s));
            continue;
        }
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
