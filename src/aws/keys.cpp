#include "keymaster/aws/keys.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace keymaster::aws::keys {

using json = nlohmann::json;

KeySets default_key_sets() {
    KeySets k;
    k.keys["production"] = {"watcher-signer",   "watcher-attestation", "updater-signer",
                            "updater-attestation", "processor-signer",    "relayer-signer"};
    k.keys["staging"] = k.keys["production"];
    k.keys["staging"].push_back("kathy-signer");
    k.networks["production"] = {"ethereum", "moonbeam", "evmos"};
    k.networks["staging"] = {"moonbasealpha", "kovan"};
    return k;
}

namespace {

bool valid_name(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_';
    });
}

std::map<std::string, std::vector<std::string>> string_lists(const json& v, const std::string& where) {
    if (!v.is_object()) throw std::runtime_error(where + ": expected an object of environment -> list of names");
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [env, list] : v.items()) {
        if (!valid_name(env)) throw std::runtime_error(where + "." + env + ": not a valid environment name");
        if (!list.is_array()) throw std::runtime_error(where + "." + env + ": expected a list of names");
        auto& names = out[env];
        for (std::size_t i = 0; i < list.size(); ++i) {
            const std::string here = where + "." + env + "[" + std::to_string(i) + "]";
            if (!list[i].is_string() || !valid_name(list[i].get<std::string>()))
                throw std::runtime_error(here + ": expected a name of letters, digits, '-' and '_'");
            if (std::find(names.begin(), names.end(), list[i].get<std::string>()) != names.end())
                throw std::runtime_error(here + ": '" + list[i].get<std::string>() + "' is listed twice");
            names.push_back(list[i].get<std::string>());
        }
    }
    return out;
}

}  // namespace

KeySets parse_key_sets(const std::string& text, const std::string& file) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) throw std::runtime_error(file + ": not valid JSON");
    if (!j.is_object()) throw std::runtime_error(file + ": expected an object with \"agentKeys\"");
    KeySets k;
    for (const auto& [key, _] : j.items())
        if (key != "agentKeys" && key != "networks") throw std::runtime_error(file + ": " + key + ": unknown key");
    if (!j.contains("agentKeys")) throw std::runtime_error(file + ": agentKeys: missing");
    k.keys = string_lists(j["agentKeys"], file + ": agentKeys");
    if (j.contains("networks")) k.networks = string_lists(j["networks"], file + ": networks");
    return k;
}

bool per_network(const std::string& key_name) {
    const std::string suffix = "-signer";
    return key_name.size() > suffix.size() && key_name.compare(key_name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<WantedKey> wanted_keys(const std::vector<std::string>& key_names, const std::string& env,
                                   const std::vector<std::string>& networks) {
    std::vector<WantedKey> out;
    for (const auto& name : key_names)
        if (!per_network(name)) out.push_back({"alias/" + env + "-" + name, "", name});
    for (const auto& net : networks)
        for (const auto& name : key_names)
            if (per_network(name)) out.push_back({"alias/" + env + "-" + net + "-" + name, net, name});
    return out;
}

std::optional<WantedKey> parse_alias(const std::string& alias, const std::string& env,
                                     const std::vector<std::string>& key_names) {
    const std::string prefix = "alias/" + env + "-";
    if (alias.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    const std::string rest = alias.substr(prefix.size());
    if (rest.empty()) return std::nullopt;
    // Longest known key name first ("watcher-signer" before "signer").
    std::vector<std::string> names = key_names;
    std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& name : names) {
        if (rest == name) return WantedKey{alias, "", name};
        if (rest.size() > name.size() + 1 && rest.compare(rest.size() - name.size(), name.size(), name) == 0 &&
            rest[rest.size() - name.size() - 1] == '-')
            return WantedKey{alias, rest.substr(0, rest.size() - name.size() - 1), name};
    }
    return WantedKey{alias, "", rest};  // an alias of this environment that no key set names
}

std::optional<std::string> signer_role(const std::string& key_name) {
    if (!per_network(key_name)) return std::nullopt;
    return key_name.substr(0, key_name.size() - std::string("-signer").size());
}

json iam_policy(const std::string& env, const std::string& role, const std::vector<std::string>& key_names,
                const std::vector<std::string>& networks, const std::string& account, const std::string& region) {
    std::vector<std::string> patterns;
    for (const auto& name : key_names) {
        const bool mine = name.compare(0, role.size() + 1, role + "-") == 0;
        if (!mine) continue;
        if (!per_network(name)) {
            patterns.push_back("alias/" + env + "-" + name);
        } else if (networks.empty()) {
            patterns.push_back("alias/" + env + "-*-" + name);
        } else {
            for (const auto& n : networks) patterns.push_back("alias/" + env + "-" + n + "-" + name);
        }
    }
    if (patterns.empty())
        throw std::runtime_error("environment " + env + " has no keys for role '" + role + "'");
    std::string sid = "Keymaster";
    for (const auto* part : {&env, &role}) {
        bool up = true;
        for (char c : *part) {
            if (!std::isalnum(static_cast<unsigned char>(c))) {
                up = true;
                continue;
            }
            sid += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
            up = false;
        }
    }
    sid += "Signer";
    json condition_value = patterns.size() == 1 ? json(patterns[0]) : json(patterns);
    return json{{"Version", "2012-10-17"},
                {"Statement",
                 json::array({json{{"Sid", sid},
                                   {"Effect", "Allow"},
                                   {"Action", json::array({"kms:GetPublicKey", "kms:Sign"})},
                                   {"Resource", "arn:aws:kms:" + region + ":" + account + ":key/*"},
                                   {"Condition", {{"ForAnyValue:StringLike", {{"kms:ResourceAliases", condition_value}}}}}}})}};
}

json agents_config(const std::vector<KeyRow>& rows) {
    json out = json::object();
    for (const auto& r : rows) {
        auto role = signer_role(r.name);
        if (!role || r.network.empty() || r.address.empty()) continue;
        json& agents = out[r.network]["agents"];
        if (*role == "watcher") {
            agents["watchers"].push_back(r.address);
        } else {
            agents[*role] = r.address;
        }
    }
    return out;
}

}  // namespace keymaster::aws::keys
