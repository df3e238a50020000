// keymaster keys: list, provision and write IAM policies for an environment's KMS keys.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "run_sync.hpp"
#include "keymaster/aws/keys.hpp"
#include "keymaster/aws/kms_signer.hpp"
#include "keymaster/cli/app.hpp"
#include "keymaster/cli/output.hpp"

namespace keymaster::cli {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;
namespace keys = aws::keys;

struct Context {
    keys::KeySets sets;
    std::vector<std::string> key_names;
    std::vector<std::string> networks;
};

// Key sets (file or the seed's), the environment's key names, and the networks: --networks, else
// the keymaster config's networks when the config file exists, else the key-sets file's.
std::optional<Context> context(const GlobalOptions& g, const KeysOptions& o, bool want_networks = true) {
    Context c;
    if (!o.key_sets.empty()) {
        std::ifstream in(o.key_sets);
        if (!in) {
            std::cerr << "keymaster keys: --key-sets " << o.key_sets << ": cannot read the file\n";
            return std::nullopt;
        }
        std::stringstream ss;
        ss << in.rdbuf();
        try {
            c.sets = keys::parse_key_sets(ss.str(), o.key_sets);
        } catch (const std::exception& e) {
            std::cerr << "keymaster keys: " << e.what() << "\n";
            return std::nullopt;
        }
    } else {
        c.sets = keys::default_key_sets();
    }
    auto it = c.sets.keys.find(o.environment);
    if (it == c.sets.keys.end()) {
        std::string known;
        for (const auto& [env, _] : c.sets.keys) known += (known.empty() ? "" : ", ") + env;
        std::cerr << "keymaster keys: --environment " << o.environment << ": no key set for it (known: " << known
                  << "); describe it in a --key-sets file\n";
        return std::nullopt;
    }
    c.key_names = it->second;
    if (!want_networks) return c;
    if (!o.networks.empty()) {
        c.networks = o.networks;
    } else if (std::filesystem::exists(g.config)) {
        auto cfg = config::load(g.config, config::process_env());
        if (!cfg) {
            for (const auto& line : config::lines(cfg.error())) std::cerr << line << "\n";
            return std::nullopt;
        }
        for (const auto& n : cfg->networks) c.networks.push_back(n.name);
        spdlog::info("networks from {}", g.config);
    } else if (auto n = c.sets.networks.find(o.environment); n != c.sets.networks.end()) {
        c.networks = n->second;
        spdlog::info("networks of {} from the key sets (no config at {})", o.environment, g.config);
    }
    return c;
}

std::shared_ptr<aws::KmsClient> kms_client(const KeysOptions& o) {
    auto env = config::process_env();
    const std::string endpoint = aws::service_endpoint("kms", o.region, o.endpoint, env);
    auto creds = std::make_shared<aws::CredentialProvider>(std::nullopt, o.region, env);
    return std::make_shared<aws::KmsClient>(o.region, endpoint, std::move(creds));
}

// Every alias in the account and region: alias name -> target key id.
net::awaitable<std::map<std::string, std::string>> list_aliases(aws::KmsClient& kms) {
    std::map<std::string, std::string> out;
    std::string marker;
    for (;;) {
        json body = {{"Limit", 100}};
        if (!marker.empty()) body["Marker"] = marker;
        std::string action = "ListAliases";
        json r = co_await kms.call(std::move(action), std::move(body), "aliases");
        if (r.contains("Aliases") && r["Aliases"].is_array())
            for (const auto& a : r["Aliases"])
                if (a.contains("AliasName") && a.contains("TargetKeyId") && a["TargetKeyId"].is_string())
                    out[a["AliasName"].get<std::string>()] = a["TargetKeyId"].get<std::string>();
        if (!r.value("Truncated", false) || !r.contains("NextMarker")) break;
        marker = r["NextMarker"].get<std::string>();
    }
    co_return out;
}

// One row per alias: ARN and state from DescribeKey, the address from GetPublicKey.
net::awaitable<std::vector<keys::KeyRow>> describe(aws::KmsClient& kms, std::vector<keys::WantedKey> wanted,
                                                   std::map<std::string, std::string> aliases) {
    std::vector<keys::KeyRow> rows;
    for (const auto& w : wanted) {
        auto it = aliases.find(w.alias);
        if (it == aliases.end()) continue;
        keys::KeyRow row{w.alias, w.network, w.name, "", "", kms.region()};
        json body = {{"KeyId", it->second}};
        std::string action = "DescribeKey";
        json d = co_await kms.call(std::move(action), std::move(body), w.alias);
        const json meta = d.value("KeyMetadata", json::object());
        row.arn = meta.value("Arn", it->second);
        const std::string state = meta.value("KeyState", "Enabled");
        if (state != "Enabled") {
            row.address = "(key " + state + ")";
        } else {
            std::string unusable;
            try {
                auto pub = co_await aws::get_public_key(kms, it->second);
                row.address = pub.address.checksummed();
            } catch (const aws::AwsError& e) {
                if (e.code() != "UnsupportedKey") throw;
                unusable = e.what();
            }
            if (!unusable.empty()) {
                spdlog::warn("{}: {}", w.alias, unusable);
                row.address = "(not secp256k1)";
            }
        }
        rows.push_back(std::move(row));
    }
    co_return rows;
}

void print_rows(std::ostream& os, const std::vector<keys::KeyRow>& rows) {
    Table t({"ALIAS", "KEY ARN", "ADDRESS", "REGION"});
    for (const auto& r : rows) t.add({r.alias, r.arn, r.address, r.region});
    t.print(os, "");
}

int require_region(const KeysOptions& o, const char* cmd) {
    if (o.region.empty()) {
        std::cerr << "keymaster keys " << cmd << ": --region is required (or set AWS_REGION)\n";
        return kExitUsage;
    }
    return kExitOk;
}

}  // namespace

int cmd_keys_list(const GlobalOptions& g, const KeysOptions& o) {
    boost::asio::io_context io;  // the command's one event loop
    if (int rc = require_region(o, "list")) return rc;
    auto c = context(g, o);
    if (!c) return kExitUsage;
    auto kms = kms_client(o);
    try {
        auto aliases = run_on(io, list_aliases(*kms));
        // Every alias of the environment (also ones no key set names), limited to the networks
        // when --networks is given; per-environment keys always show.
        std::vector<keys::WantedKey> found;
        for (const auto& [alias, _] : aliases) {
            auto w = keys::parse_alias(alias, o.environment, c->key_names);
            if (!w) continue;
            if (!o.networks.empty() && !w->network.empty() &&
                std::find(o.networks.begin(), o.networks.end(), w->network) == o.networks.end())
                continue;
            found.push_back(*w);
        }
        auto rows = run_on(io, describe(*kms, found, aliases));
        if (o.json) {
            json out = json::array();
            for (const auto& r : rows)
                out.push_back({{"alias", r.alias}, {"network", r.network}, {"key", r.name}, {"arn", r.arn},
                               {"address", r.address}, {"region", r.region}});
            std::cout << out.dump(2) << "\n";
        } else {
            print_rows(std::cout, rows);
        }
        return kExitOk;
    } catch (const aws::AwsError& e) {
        std::cerr << "keymaster keys list: " << e.what() << "\n";
        return kExitFailure;
    }
}

namespace {

// Asks before creating keys (unless --yes); 0 to go on, else the exit code.
int confirm_creation(const KeysOptions& o, std::size_t missing) {
    if (missing == 0 || o.yes) return 0;
    if (!::isatty(STDIN_FILENO)) {
        std::cerr << "keymaster keys provision: refusing to create keys without confirmation: no terminal; pass --yes\n";
        return kExitUsage;
    }
    std::cerr << "Create " << missing << " KMS key(s)? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer == "y" || answer == "Y" || answer == "yes") return 0;
    std::cerr << "Aborted: nothing created\n";
    return kExitFailure;
}

// Creates one key and its alias; its key id, or nothing after an error on stderr.
std::optional<std::string> create_key(boost::asio::io_context& io, aws::KmsClient& kms, const KeysOptions& o,
                                      const keys::WantedKey& w) {
    json tags = json::array({json{{"TagKey", "environment"}, {"TagValue", o.environment}},
                             json{{"TagKey", "key"}, {"TagValue", w.name}}, json{{"TagKey", "created-by"}, {"TagValue", "keymaster"}}});
    if (!w.network.empty()) tags.push_back({{"TagKey", "network"}, {"TagValue", w.network}});
    json body = {{"KeySpec", "ECC_SECG_P256K1"},
                 {"KeyUsage", "SIGN_VERIFY"},
                 {"Description", "Nomad agent key " + w.alias.substr(6) + " (keymaster)"},
                 {"Tags", tags}};
    json created = run_on(io, kms.call("CreateKey", std::move(body), w.alias));
    const std::string key_id = created.value("KeyMetadata", json::object()).value("KeyId", "");
    if (key_id.empty()) {
        std::cerr << "keymaster keys provision: CreateKey for " << w.alias << " returned no key id\n";
        return std::nullopt;
    }
    try {
        json alias = {{"AliasName", w.alias}, {"TargetKeyId", key_id}};
        run_on(io, kms.call("CreateAlias", std::move(alias), w.alias));
    } catch (const aws::AwsError& e) {
        std::cerr << "keymaster keys provision: key " << key_id << " was created but has no alias: " << e.what()
                  << "\n  alias it by hand (aws kms create-alias --alias-name " << w.alias << " --target-key-id "
                  << key_id << ") or schedule its deletion\n";
        return std::nullopt;
    }
    spdlog::info("created {} ({})", w.alias, key_id);
    return key_id;
}

}  // namespace

int cmd_keys_provision(const GlobalOptions& g, const KeysOptions& o) {
    boost::asio::io_context io;  // the command's one event loop
    if (int rc = require_region(o, "provision")) return rc;
    auto c = context(g, o);
    if (!c) return kExitUsage;
    if (c->networks.empty()) {
        std::cerr << "keymaster keys provision: no networks: give --networks, a --config, or networks in --key-sets\n";
        return kExitUsage;
    }
    const auto wanted = keys::wanted_keys(c->key_names, o.environment, c->networks);
    auto kms = kms_client(o);
    std::ostream& table_out = o.emit_config ? std::cerr : std::cout;
    try {
        auto aliases = run_on(io, list_aliases(*kms));
        std::vector<keys::WantedKey> missing;
        for (const auto& w : wanted)
            if (!aliases.count(w.alias)) missing.push_back(w);
        table_out << wanted.size() - missing.size() << " of " << wanted.size() << " keys of " << o.environment
                  << " exist in " << o.region << "; " << missing.size() << " to create\n";
        for (const auto& w : missing) table_out << "  create " << w.alias << "\n";
        if (int rc = confirm_creation(o, missing.size())) return rc;
        for (const auto& w : missing) {
            const auto key_id = create_key(io, *kms, o, w);
            if (!key_id) return kExitFailure;
            aliases[w.alias] = *key_id;
        }
        auto rows = run_on(io, describe(*kms, wanted, aliases));
        print_rows(table_out, rows);
        if (o.emit_config) std::cout << keys::agents_config(rows).dump(2) << "\n";
        return kExitOk;
    } catch (const aws::AwsError& e) {
        std::cerr << "keymaster keys provision: " << e.what() << "\n";
        return kExitFailure;
    }
}

int cmd_keys_policy(const GlobalOptions& g, const KeysOptions& o) {
    auto c = context(g, o, false);
    if (!c) return kExitUsage;
    try {
        const std::string region = o.region.empty() ? "*" : o.region;
        const std::string account = o.account_id.empty() ? "*" : o.account_id;
        if (o.account_id.empty()) std::cerr << "note: no --account-id: the policy matches keys of any account\n";
        std::cout << keys::iam_policy(o.environment, o.role, c->key_names, o.networks, account, region).dump(2) << "\n";
        return kExitOk;
    } catch (const std::exception& e) {
        std::cerr << "keymaster keys policy: --role " << o.role << ": " << e.what() << "\n";
        return kExitUsage;
    }
}

}  // namespace keymaster::cli
