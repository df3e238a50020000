#include "loading.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "keymaster/aws/kms_signer.hpp"
#include "keymaster/config/secrets.hpp"

namespace keymaster::cli {
namespace {

namespace net = boost::asio;

// KMS banks: one client per (region, endpoint, configured credentials), one signer per key, so a
// key shared by many networks costs one GetPublicKey.
class KmsBanks {
public:
    explicit KmsBanks(config::EnvLookup env) : env_(std::move(env)) {}

    net::awaitable<Expected<std::shared_ptr<signer::Signer>>> open(const config::BankRef& b) {
        const std::string endpoint = aws::service_endpoint("kms", b.kms_region, b.kms_endpoint, env_);
        const std::string client_key = b.kms_region + "|" + endpoint + "|" + b.kms_access_key_id;
        const std::string signer_key = client_key + "|" + b.kms_key_id;
        if (auto it = signers_.find(signer_key); it != signers_.end()) co_return std::shared_ptr<signer::Signer>(it->second);
        auto& client = clients_[client_key];
        if (!client) {
            std::optional<aws::StaticCredentials> creds;
            if (!b.kms_access_key_id.empty())
                creds = aws::StaticCredentials{b.kms_access_key_id, b.kms_secret_access_key, b.kms_session_token};
            auto provider = std::make_shared<aws::CredentialProvider>(std::move(creds), b.kms_region, env_);
            client = std::make_shared<aws::KmsClient>(b.kms_region, endpoint, std::move(provider));
        }
        std::shared_ptr<aws::KmsSigner> s;
        try {
            s = co_await aws::KmsSigner::open(client, b.kms_key_id);
        } catch (const std::exception& ex) {
            co_return Problem{Fault::kConfig, ex.what()};
        }
        spdlog::info("KMS key {} ({}) is {}; credentials from {}", b.kms_key_id, b.kms_region, s->address().checksummed(),
                     client->credentials().source());
        signers_[signer_key] = s;
        co_return std::shared_ptr<signer::Signer>(s);
    }

private:
    config::EnvLookup env_;
    std::map<std::string, std::shared_ptr<aws::KmsClient>> clients_;
    std::map<std::string, std::shared_ptr<signer::Signer>> signers_;
};

// The bank signer of one network, or why not (kConfig).
net::awaitable<Expected<std::shared_ptr<signer::Signer>>> open_bank(KmsBanks& kms, const config::Network& n,
                                                                    const config::EnvLookup& env) {
    if (n.bank.kind == config::BankRef::Kind::kKms) co_return co_await kms.open(n.bank);
    auto key = config::resolve_bank_key(n.bank, env);
    if (!key) co_return key.error();
    co_return std::shared_ptr<signer::Signer>(std::make_shared<signer::LocalSigner>(std::move(*key)));
}

}  // namespace

net::awaitable<std::optional<Loaded>> load_all(GlobalOptions g, std::vector<std::string> only,
                                               std::function<void(const std::string&)> error) {
    auto env = config::process_env();
    auto cfg = config::load(g.config, env);
    if (!cfg) {
        for (const auto& line : config::lines(cfg.error())) error(line);
        co_return std::nullopt;
    }
    Loaded l;
    l.cfg = std::move(*cfg);
    for (const auto& w : l.cfg.warnings) spdlog::warn("{}", w);
    bool ok = true;
    for (const auto& name : only)
        if (!l.cfg.find(name)) {
            error("--networks: unknown network '" + name + "' (not in " + g.config + ")");
            ok = false;
        }
    if (!ok) co_return std::nullopt;
    for (const auto& n : l.cfg.networks)
        if (only.empty() || std::find(only.begin(), only.end(), n.name) != only.end()) l.selected.push_back(&n);
    KmsBanks kms(env);
    for (const auto* n : l.selected) {
        auto opened = co_await open_bank(kms, *n, env);
        if (!opened) {
            error(g.config + ": " + (n->bank.kind == config::BankRef::Kind::kKms ? n->bank.path + ": " : std::string()) +
                  opened.error().message);
            ok = false;
            continue;
        }
        auto s = std::move(*opened);
        l.banks.emplace(n->name, s->address());
        l.signers.emplace(n->name, std::move(s));
    }
    if (!ok) co_return std::nullopt;
    auto topology = funding::build_topology(l.cfg, l.banks);
    for (const auto& e : topology.errors) error(e);
    if (!topology.errors.empty()) co_return std::nullopt;
    for (const auto& n : topology.notes) spdlog::info("{}", n);
    for (auto& na : topology.networks)
        l.accounts.emplace(na.network, std::make_shared<const std::vector<funding::Account>>(std::move(na.accounts)));
    // The accounts hold every funded address: the config's agent lists are not kept (at 10,000
    // accounts they are megabytes).
    for (auto& n : l.cfg.networks) n.agents = {};
    co_return l;
}

Expected<std::unique_ptr<ledger::Ledger>> open_ledger(const GlobalOptions& g, LedgerUse use) {
    auto where = ledger::parse_location(g.ledger, g.data_dir);
    if (!where) return where.error();
    if (use == LedgerUse::kIfExists && where->kind == ledger::Location::Kind::kSqlite &&
        !std::filesystem::exists(where->target))
        return std::unique_ptr<ledger::Ledger>();
    try {
        return std::make_unique<ledger::Ledger>(*where, use == LedgerUse::kWrite, *g.clock);
    } catch (const std::exception& e) {
        return Problem{fault_of(e, Fault::kLedger), e.what()};
    }
}

std::set<std::string> bank_addresses(const Loaded& l) {
    std::set<std::string> out;
    for (const auto& [name, address] : l.banks) out.insert(address.lower());
    return out;
}

std::optional<std::string> lease_name(const GlobalOptions& g) {
    auto where = ledger::parse_location(g.ledger, g.data_dir);
    if (!where || where->kind != ledger::Location::Kind::kPostgres) return std::nullopt;
    if (!g.lease.empty()) return g.lease;
    const auto stem = std::filesystem::path(g.config).stem().string();
    return stem.empty() ? std::string("keymaster") : stem;
}

}  // namespace keymaster::cli
