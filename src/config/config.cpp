#include "keymaster/config/config.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "keymaster/common/duration.hpp"

namespace keymaster::config {
namespace {

using nlohmann::json;

class Parser {
public:
    Parser(std::string file, const EnvLookup& env) : file_(std::move(file)), env_(env) {}

    void error(const std::string& path, const std::string& msg) { errors_.push_back(file_ + ": " + path + ": " + msg); }
    void warn(const std::string& path, const std::string& msg) { warnings_.push_back(file_ + ": " + path + ": " + msg); }

    std::optional<Wei> amount(const json& v, const std::string& path) {
        if (v.is_number_unsigned()) return Wei(v.get<std::uint64_t>());
        if (v.is_number_integer()) {
            error(path, "negative amounts are not allowed");
            return std::nullopt;
        }
        if (v.is_number_float()) {
            error(path, "a JSON number amount must be a whole number of wei below 2^64; write others as strings, "
                        "e.g. \"0.5 ether\"");
            return std::nullopt;
        }
        if (!v.is_string()) {
            error(path, "expected an amount (wei integer, or a string such as \"0.5 ether\")");
            return std::nullopt;
        }
        auto r = parse_amount(v.get<std::string>());
        if (!r) {
            error(path, r.error().message());
            return std::nullopt;
        }
        if (*r > max_sane_amount()) {
            error(path, "amount above 2^128 wei: far beyond any real supply (a typo?)");
            return std::nullopt;
        }
        return *r;
    }

    // roles: {"<role>": {"threshold", "target", "runway"}}, each over the network's settings.
    void roles_block(const json& r, const std::string& path, Network& net) {
        if (!r.is_object()) {
            error(path, "expected an object keyed by role");
            return;
        }
        for (const auto& [k, rv] : r.items()) {
            const std::string p = path + "." + k;
            auto role = parse_role(k);
            if (!role) {
                error(p, "unknown role; expected updater, watcher, relayer, processor or kathy");
                continue;
            }
            if (!rv.is_object()) {
                error(p, "expected {\"threshold\", \"target\", \"runway\"}");
                continue;
            }
            RoleSettings s;
            if (rv.contains("threshold")) s.threshold = amount(rv["threshold"], p + ".threshold");
            if (rv.contains("target")) s.target = amount(rv["target"], p + ".target");
            if (rv.contains("runway")) {
                s.runway = runway(rv["runway"], p + ".runway");
                check_runway(merged(s.runway, net.runway), p + ".runway");
            }
            for (const auto& [rk, _] : rv.items())
                if (rk != "threshold" && rk != "target" && rk != "runway") warn(p + "." + rk, "unknown key, ignored");
            const Wei th = s.threshold.value_or(net.threshold);
            if (s.target && *s.target < th)
                error(p + ".target", "target " + format_units(*s.target) + " is below threshold " + format_units(th));
            net.roles[*role] = s;
        }
    }

    // runway: {"threshold", "target", "window": durations; "max": amount}.
    Runway runway(const json& v, const std::string& path) {
        Runway r;
        if (!v.is_object()) {
            error(path, "expected {\"threshold\", \"target\", \"window\", \"max\"}");
            return r;
        }
        for (const auto& [k, rv] : v.items()) {
            std::optional<double>* slot = k == "threshold" ? &r.threshold : k == "target" ? &r.target
                                          : k == "window" ? &r.window : nullptr;
            if (k == "max") {
                r.max = amount(rv, path + ".max");
                r.max_path = path + ".max";
                if (r.max && *r.max == 0) error(path + ".max", "must be above zero");
            } else if (!slot) {
                error(path + "." + k, "expected threshold, target, window or max");
            } else if (auto d = rv.is_string() ? parse_duration(rv.get<std::string>()) : std::nullopt) {
                *slot = std::chrono::duration<double>(*d).count();
            } else {
                error(path + "." + k, "expected a duration such as \"30s\", \"5m\", \"6h\" or \"7d\"");
            }
        }
        return r;
    }

    // A runway target shorter than its threshold would top up to below the threshold.
    void check_runway(const Runway& r, const std::string& path) {
        if (r.threshold && r.target && *r.target < *r.threshold)
            error(path + ".target", "runway target " + format_duration(*r.target) + " is shorter than the runway threshold " +
                                        format_duration(*r.threshold));
    }

    // limits.perAccount: {"daily": amount, "topUps": count}.
    void per_account(const json& v, const std::string& path, PerAccountLimits& out) {
        if (!v.is_object()) {
            error(path, "expected {\"daily\": amount, \"topUps\": count}");
            return;
        }
        for (const auto& [k, pv] : v.items()) {
            if (k == "daily") {
                out.daily = amount(pv, path + ".daily");
                if (out.daily && *out.daily == 0) error(path + ".daily", "must be above zero");
            } else if (k == "topUps") {
                out.top_ups = uint(pv, path + ".topUps", 1, 1'000'000);
            } else {
                error(path + "." + k, "expected daily or topUps");
            }
        }
    }

    std::optional<std::uint64_t> uint(const json& v, const std::string& path, std::uint64_t min, std::uint64_t max) {
        if (v.is_number_unsigned() && v.get<std::uint64_t>() >= min && v.get<std::uint64_t>() <= max)
            return v.get<std::uint64_t>();
        error(path, "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
        return std::nullopt;
    }

    std::optional<eth::Address> address(const json& v, const std::string& path) {
        if (!v.is_string()) {
            error(path, "expected an address string");
            return std::nullopt;
        }
        auto a = eth::Address::parse(v.get<std::string>());
        if (!a) {
            error(path, a.error().message());
            return std::nullopt;
        }
        return *a;
    }

    std::optional<AgentRef> agent(const json& v, const std::string& path) {
        if (v.is_object()) {
            if (!v.contains("address")) {
                error(path, "missing \"address\"");
                return std::nullopt;
            }
            for (const auto& [k, _] : v.items())
                if (k != "address" && k != "threshold") warn(path + "." + k, "unknown key, ignored");
            auto a = address(v["address"], path + ".address");
            std::optional<Wei> t;
            if (v.contains("threshold")) {
                t = amount(v["threshold"], path + ".threshold");
                if (!t) return std::nullopt;
            }
            if (!a) return std::nullopt;
            return AgentRef{*a, t, path};
        }
        auto a = address(v, path);
        if (!a) return std::nullopt;
        return AgentRef{*a, std::nullopt, path};
    }

    std::set<Role> roles(const json& v, const std::string& path) {
        std::set<Role> out;
        if (!v.is_array()) {
            error(path, "expected a list of roles");
            return out;
        }
        for (std::size_t i = 0; i < v.size(); ++i) {
            const std::string p = path + "[" + std::to_string(i) + "]";
            auto r = v[i].is_string() ? parse_role(v[i].get<std::string>()) : std::nullopt;
            if (!r) error(p, "unknown role; expected updater, watcher, relayer, processor or kathy");
            else out.insert(*r);
        }
        return out;
    }

    void endpoint(const json& v, const std::string& path, Network& net) {
        if (!v.is_string()) {
            error(path, "expected a URL string");
            return;
        }
        const std::string url = v.get<std::string>();
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
            // The URL itself is not repeated: it may carry an API key.
            error(path, "endpoint must be an http:// or https:// URL");
            return;
        }
        for (const auto& e : net.endpoints)
            if (e.reveal() == url) return;
        net.endpoints.emplace_back(url);
    }

    // Nomad's KMS object: {"keyId", "region"} plus optional credentials, and our "endpoint".
    void kms_bank(const json& v, const std::string& path, BankRef& b) {
        static const std::set<std::string> kKnown = {"keyId", "region", "accessKeyId", "secretAccessKey", "sessionToken",
                                                     "endpoint"};
        for (const auto& [k, _] : v.items())
            if (!kKnown.count(k)) warn(path + "." + k, "unknown key, ignored");
        auto text = [&](const char* key, std::string& out) {
            if (!v.contains(key)) return;
            if (!v[key].is_string() || v[key].get<std::string>().empty()) error(path + "." + key, "expected a non-empty string");
            else out = v[key].get<std::string>();
        };
        text("keyId", b.kms_key_id);
        text("region", b.kms_region);
        text("accessKeyId", b.kms_access_key_id);
        std::string secret;
        text("secretAccessKey", secret);
        b.kms_secret_access_key = Secret(std::move(secret));
        text("sessionToken", b.kms_session_token);
        text("endpoint", b.kms_endpoint);
        if (b.kms_region.empty())
            for (const char* var : {"AWS_REGION", "AWS_DEFAULT_REGION"})
                if (auto r = env_(var); r && !r->empty()) {
                    b.kms_region = *r;
                    break;
                }
        if (b.kms_region.empty() && !v.contains("region"))
            error(path + ".region", "missing (or set AWS_REGION)");
        if (!b.kms_access_key_id.empty() != !b.kms_secret_access_key.empty())
            error(path, "accessKeyId and secretAccessKey go together");
        else if (!b.kms_access_key_id.empty())
            warn(path + ".secretAccessKey",
                 "an AWS secret key is written in the config file; prefer the AWS credential chain (environment, web identity, instance role)");
        if (!b.kms_endpoint.empty() && b.kms_endpoint.rfind("http://", 0) != 0 && b.kms_endpoint.rfind("https://", 0) != 0)
            error(path + ".endpoint", "expected an http:// or https:// URL");
    }

    void bank(const json& v, const std::string& path, BankRef& b) {
        b.path = path;
        if (v.is_string()) {
            b.kind = BankRef::Kind::kInline;
            b.inline_key = Secret(v.get<std::string>());
            warn(path, "the bank key is written in the config file; prefer {\"keyEnv\": ...} or {\"keyFile\": ...}");
            return;
        }
        if (!v.is_object()) {
            error(path, "expected a private key, {\"keyEnv\": \"VAR\"}, {\"keyFile\": \"path\"} or a KMS key");
            return;
        }
        if (v.contains("keyEnv")) {
            b.kind = BankRef::Kind::kEnv;
            if (!v["keyEnv"].is_string() || v["keyEnv"].get<std::string>().empty()) error(path + ".keyEnv", "expected a variable name");
            else b.env_var = v["keyEnv"].get<std::string>();
        } else if (v.contains("keyFile")) {
            b.kind = BankRef::Kind::kFile;
            if (!v["keyFile"].is_string() || v["keyFile"].get<std::string>().empty()) error(path + ".keyFile", "expected a file path");
            else b.file = v["keyFile"].get<std::string>();
        } else if (v.contains("keyId")) {
            b.kind = BankRef::Kind::kKms;
            kms_bank(v, path, b);
        } else {
            error(path, "expected a private key, {\"keyEnv\": \"VAR\"}, {\"keyFile\": \"path\"} or a KMS key");
        }
    }

    // endpoint / endpoints, or $KEYMASTER_RPC_<NAME> over the config's.
    void endpoints(const json& v, const std::string& name, const std::string& path, Network& net) {
        if (auto env_url = env_(rpc_env_var(name)); env_url && !env_url->empty()) {
            endpoint(json(*env_url), "$" + rpc_env_var(name), net);
            net.endpoint_from_env = true;
        } else if (v.contains("endpoint")) {
            endpoint(v["endpoint"], path + ".endpoint", net);
        }
        if (v.contains("endpoints")) {
            if (!v["endpoints"].is_array()) error(path + ".endpoints", "expected a list of URLs");
            else
                for (std::size_t i = 0; i < v["endpoints"].size(); ++i)
                    endpoint(v["endpoints"][i], path + ".endpoints[" + std::to_string(i) + "]", net);
        }
    }

    void replicas(const json& v, const std::string& path, Network& net) {
        if (v.contains("replicas")) {
            const auto& r = v["replicas"];
            if (!r.is_array()) error(path + ".replicas", "expected a list of network names");
            else
                for (std::size_t i = 0; i < r.size(); ++i) {
                    if (!r[i].is_string()) error(path + ".replicas[" + std::to_string(i) + "]", "expected a network name");
                    else net.replicas.push_back(r[i].get<std::string>());
                }
        }
    }

    // threshold (or Nomad's "treshold"), watcherThreshold, target, runway, roles.
    void levels(const json& v, const std::string& path, Network& net) {
        const char* tkey = v.contains("threshold") ? "threshold" : (v.contains("treshold") ? "treshold" : nullptr);
        if (tkey == nullptr) {
            error(path, "missing \"threshold\"");
        } else {
            if (std::string(tkey) == "treshold") warn(path + ".treshold", "read as \"threshold\" (Nomad's spelling)");
            if (auto t = amount(v[tkey], path + "." + tkey)) net.threshold = *t;
        }
        if (v.contains("watcherThreshold")) net.watcher_threshold = amount(v["watcherThreshold"], path + ".watcherThreshold");
        if (v.contains("target")) {
            net.target = amount(v["target"], path + ".target");
            if (net.target && *net.target < net.threshold)
                error(path + ".target", "target " + format_units(*net.target) + " is below threshold " +
                                            format_units(net.threshold));
        }
        if (v.contains("runway")) {
            net.runway = runway(v["runway"], path + ".runway");
            check_runway(net.runway, path + ".runway");
        }
        if (v.contains("roles")) roles_block(v["roles"], path + ".roles", net);
    }

    // agents: updater, relayer, processor (required), kathy, watchers.
    void agents(const json& v, const std::string& path, Network& net) {
        if (!v.contains("agents")) {
            error(path, "missing \"agents\"");
        } else if (!v["agents"].is_object()) {
            error(path + ".agents", "expected an object");
        } else {
            const auto& a = v["agents"];
            const std::string ap = path + ".agents";
            for (const auto& [k, _] : a.items())
                if (k != "updater" && k != "relayer" && k != "processor" && k != "kathy" && k != "watchers")
                    warn(ap + "." + k, "unknown agent, ignored");
            auto one = [&](const char* key, std::optional<AgentRef>& out, bool required) {
                if (a.contains(key) && !a[key].is_null()) out = agent(a[key], ap + "." + key);
                else if (required) error(ap, std::string("missing \"") + key + "\"");
            };
            one("updater", net.agents.updater, true);
            one("relayer", net.agents.relayer, true);
            one("processor", net.agents.processor, true);
            one("kathy", net.agents.kathy, false);
            if (a.contains("watchers")) {
                if (!a["watchers"].is_array()) error(ap + ".watchers", "expected a list");
                else
                    for (std::size_t i = 0; i < a["watchers"].size(); ++i)
                        if (auto w = agent(a["watchers"][i], ap + ".watchers[" + std::to_string(i) + "]"))
                            net.agents.watchers.push_back(*w);
            }
        }
    }

    void ignore(const json& v, const std::string& path, Network& net) {
        if (v.contains("ignore")) {
            const auto& ig = v["ignore"];
            if (!ig.is_object()) error(path + ".ignore", "expected {\"all\", \"local\", \"remote\"}");
            else
                for (const auto& [k, rv] : ig.items()) {
                    if (k == "all") net.ignore.all = roles(rv, path + ".ignore.all");
                    else if (k == "local") net.ignore.local = roles(rv, path + ".ignore.local");
                    else if (k == "remote") net.ignore.remote = roles(rv, path + ".ignore.remote");
                    else error(path + ".ignore." + k, "expected all, local or remote");
                }
        }
    }

    // chainId, gasLimit, txType, fees, decimals, symbol, bankThreshold, batchSize, replacement.
    void transactions(const json& v, const std::string& path, Network& net) {
        if (v.contains("chainId")) net.chain_id = uint(v["chainId"], path + ".chainId", 1, (1ull << 53));
        if (v.contains("gasLimit")) net.gas_limit = uint(v["gasLimit"], path + ".gasLimit", 21000, 30000000);
        if (v.contains("txType")) {
            const std::string t = v["txType"].is_string() ? v["txType"].get<std::string>() : "";
            if (t == "auto") net.tx_type = TxTypeSetting::kAuto;
            else if (t == "legacy") net.tx_type = TxTypeSetting::kLegacy;
            else if (t == "eip1559") net.tx_type = TxTypeSetting::kEip1559;
            else error(path + ".txType", "expected \"auto\", \"legacy\" or \"eip1559\"");
        }
        if (v.contains("maxFeePerGas")) {
            net.max_fee_per_gas = amount(v["maxFeePerGas"], path + ".maxFeePerGas");
            if (net.max_fee_per_gas && *net.max_fee_per_gas == 0) error(path + ".maxFeePerGas", "must be above zero");
        }
        if (v.contains("decimals")) net.decimals = static_cast<unsigned>(uint(v["decimals"], path + ".decimals", 0, 36).value_or(18));
        if (v.contains("symbol")) {
            if (!v["symbol"].is_string()) error(path + ".symbol", "expected a string");
            else net.symbol = v["symbol"].get<std::string>();
        }
        if (v.contains("bankThreshold")) net.bank_threshold = amount(v["bankThreshold"], path + ".bankThreshold");
        if (v.contains("batchSize")) net.batch_size = uint(v["batchSize"], path + ".batchSize", 1, 1000).value_or(100);
        if (v.contains("finality")) net.finality = uint(v["finality"], path + ".finality", 1, 100'000);
        if (v.contains("replaceAfter")) {
            const auto& ra = v["replaceAfter"];
            const std::string rp = path + ".replaceAfter";
            if (!ra.is_object()) error(rp, "expected {\"blocks\": N, \"seconds\": S}");
            else
                for (const auto& [k, rv] : ra.items()) {
                    if (k == "blocks") net.replace_after.blocks = uint(rv, rp + ".blocks", 1, 100000).value_or(3);
                    else if (k == "seconds") net.replace_after.seconds = uint(rv, rp + ".seconds", 1, 86400).value_or(60);
                    else error(rp + "." + k, "expected blocks or seconds");
                }
        }
        if (v.contains("replaceFeeCeiling"))
            net.replace_fee_ceiling = uint(v["replaceFeeCeiling"], path + ".replaceFeeCeiling", 1, 1000).value_or(10);
        l2(v, path, net);
    }

    // l2, l1FeeMargin, gasMargin: how an L2's fees are budgeted.
    void l2(const json& v, const std::string& path, Network& net) {
        if (v.contains("l2")) {
            const std::string t = v["l2"].is_string() ? v["l2"].get<std::string>() : "";
            if (t == "op") net.l2 = L2Setting::kOp;
            else if (t == "arbitrum") net.l2 = L2Setting::kArbitrum;
            else if (t == "none") net.l2 = L2Setting::kNone;
            else error(path + ".l2", "expected \"op\", \"arbitrum\" or \"none\" (absent: detected from the chain)");
        }
        if (v.contains("l1FeeMargin"))
            net.l1_fee_margin_permille = multiplier(v["l1FeeMargin"], path + ".l1FeeMargin").value_or(net.l1_fee_margin_permille);
        if (v.contains("gasMargin"))
            net.gas_margin_permille = multiplier(v["gasMargin"], path + ".gasMargin").value_or(net.gas_margin_permille);
    }

    // A factor from 1 to 10 (e.g. 1.5), in thousandths.
    std::optional<std::uint64_t> multiplier(const json& v, const std::string& path) {
        if (!v.is_number() || v.get<double>() < 1.0 || v.get<double>() > 10.0) {
            error(path, "expected a number from 1 to 10 (e.g. 1.5)");
            return std::nullopt;
        }
        return static_cast<std::uint64_t>(v.get<double>() * 1000.0 + 0.5);
    }

    // limits: maxTopUp, daily, reserve, perAccount.
    void limits(const json& v, const std::string& path, Network& net) {
        if (v.contains("limits")) {
            const auto& l = v["limits"];
            const std::string lp = path + ".limits";
            if (!l.is_object()) {
                error(lp, "expected {\"maxTopUp\", \"daily\", \"reserve\", \"perAccount\"}");
            } else {
                for (const auto& [k, lv] : l.items()) {
                    if (k == "perAccount") {
                        per_account(lv, lp + ".perAccount", net.limits.per_account);
                        continue;
                    }
                    std::optional<Wei>* slot = k == "maxTopUp" ? &net.limits.max_top_up
                                               : k == "daily"  ? &net.limits.daily
                                               : k == "reserve" ? &net.limits.reserve : nullptr;
                    if (!slot) {
                        error(lp + "." + k, "expected maxTopUp, daily, reserve or perAccount");
                        continue;
                    }
                    *slot = amount(lv, lp + "." + k);
                    if (*slot && **slot == 0 && k != "reserve") error(lp + "." + k, "must be above zero");
                }
            }
        }
    }

    std::optional<Network> network(const json& v, const std::string& name, const std::string& path) {
        if (!v.is_object()) {
            error(path, "expected an object");
            return std::nullopt;
        }
        static const std::set<std::string> kKnown = {
            "name", "endpoint", "endpoints", "replicas", "bank", "threshold", "treshold", "watcherThreshold",
            "target", "roles", "agents", "ignore", "chainId", "gasLimit", "txType", "maxFeePerGas", "decimals",
            "symbol", "bankThreshold", "batchSize", "limits", "replaceAfter", "replaceFeeCeiling", "domain", "runway", "l2", "l1FeeMargin", "gasMargin", "finality"};
        for (const auto& [k, _] : v.items())
            if (!kKnown.count(k)) warn(path + "." + k, "unknown key, ignored");

        Network net;
        net.name = name;
        const std::size_t before = errors_.size();

        endpoints(v, name, path, net);
        if (net.endpoints.empty() && errors_.size() == before) error(path, "missing \"endpoint\"");
        replicas(v, path, net);
        if (v.contains("bank")) bank(v["bank"], path + ".bank", net.bank);
        else error(path, "missing \"bank\"");
        levels(v, path, net);
        agents(v, path, net);
        ignore(v, path, net);
        transactions(v, path, net);
        limits(v, path, net);
        if (errors_.size() != before) return std::nullopt;
        return net;
    }

    // The file's JSON, with every duplicate key an error; nullopt (and the error) when it is not JSON.
    std::optional<json> read_json(const std::string& text) {
        // Duplicate keys are silently merged by JSON parsers; an operator who pasted a network
        // twice must hear about it. Track the keys of every open object.
        std::vector<std::pair<std::string, std::set<std::string>>> stack;
        std::string last_key;
        auto callback = [&](int, json::parse_event_t event, json& parsed) {
            switch (event) {
                case json::parse_event_t::object_start: stack.push_back({stack.empty() ? std::string() : (stack.back().first.empty() ? last_key : stack.back().first + "." + last_key), {}}); break;
                case json::parse_event_t::object_end: if (!stack.empty()) stack.pop_back(); break;
                case json::parse_event_t::key:
                    last_key = parsed.get<std::string>();
                    if (!stack.empty() && !stack.back().second.insert(last_key).second)
                        error(stack.back().first.empty() ? last_key : stack.back().first + "." + last_key, "duplicate key");
                    break;
                default: break;
            }
            return true;
        };
        try {
            return json::parse(text, callback);
        } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 4e55001
            std::string what = e.what();
            if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
            errors_.push_back(file_ + ": not valid JSON: " + what);
            return std::nullopt;
        }
    }

    //! One network's name, JSON path and value.
    struct Entry {
        std::string name, path;
        const json* value;
    };

    // "networks": an object keyed by name (Nomad's form) or a list of objects with a "name".
    std::vector<Entry> network_entries(const json& root) {
        std::vector<Entry> out;
        if (!root.contains("networks")) {
            error("networks", "missing");
        } else if (root["networks"].is_object()) {
            for (const auto& [k, v] : root["networks"].items()) {
                out.push_back({k, "networks." + k, &v});
            }
        } else if (root["networks"].is_array()) {
            const auto& arr = root["networks"];
            for (std::size_t i = 0; i < arr.size(); ++i) {
                const std::string p = "networks[" + std::to_string(i) + "]";
                if (!arr[i].is_object() || !arr[i].contains("name") || !arr[i]["name"].is_string() ||
                    arr[i]["name"].get<std::string>().empty()) {
                    error(p, "expected an object with a \"name\"");
                    continue;
                }
                out.push_back({arr[i]["name"].get<std::string>(), p, &arr[i]});
            }
        } else {
            error("networks", "expected an object keyed by network name, or a list");
        }
        if (root.contains("networks") && out.empty() && errors_.empty()) error("networks", "no networks defined");
        return out;
    }

    // Every replica names another network of this file.
    void check_replicas(const std::vector<Entry>& entries, const std::set<std::string>& names) {
        for (const auto& [name, path, value] : entries) {
            const auto& v = *value;
            if (!v.is_object() || !v.contains("replicas") || !v["replicas"].is_array()) continue;
            for (std::size_t r = 0; r < v["replicas"].size(); ++r) {
                const auto& rep = v["replicas"][r];
                if (!rep.is_string()) continue;
                const std::string rp = path + ".replicas[" + std::to_string(r) + "]";
                if (!names.count(rep.get<std::string>())) error(rp, "unknown network '" + rep.get<std::string>() + "'");
                else if (rep.get<std::string>() == name) error(rp, "a network cannot be its own replica");
            }
        }
    }

    Expected<Config> parse(const std::string& text) {
        const std::optional<json> root = read_json(text);
        if (!root) return problem();
        if (!root->is_object()) {
            errors_.push_back(file_ + ": expected a JSON object with \"networks\"");
            return problem();
        }
        Config cfg;
        cfg.file = file_;
        const std::vector<Entry> entries = network_entries(*root);
        std::set<std::string> seen;
        for (const auto& [name, path, value] : entries) {
            if (!seen.insert(name).second) {
                error(path + ".name", "duplicate network name '" + name + "'");
                continue;
            }
            if (auto net = network(*value, name, path)) cfg.networks.push_back(std::move(*net));
        }
        check_replicas(entries, seen);
        if (!errors_.empty()) return problem();
        cfg.warnings = warnings_;
        return cfg;
    }

private:
    // Every problem found, one line each.
    Problem problem() const {
        std::string message;
        for (const auto& line : errors_) message += (message.empty() ? "" : "\n") + line;
        return Problem{Fault::kConfig, std::move(message)};
    }

    std::string file_;
    const EnvLookup& env_;
    std::vector<std::string> errors_, warnings_;
};

}  // namespace

Runway merged(const Runway& over, const Runway& base) {
    Runway r = base;
    if (over.threshold) r.threshold = over.threshold;
    if (over.target) r.target = over.target;
    if (over.window) r.window = over.window;
    if (over.max) {
        r.max = over.max;
        r.max_path = over.max_path;
    }
    return r;
}

std::string_view role_name(Role role) {
    switch (role) {
        case Role::kUpdater: return "updater";
        case Role::kWatcher: return "watcher";
        case Role::kRelayer: return "relayer";
        case Role::kProcessor: return "processor";
        case Role::kKathy: return "kathy";
    }
    return "?";
}

std::optional<Role> parse_role(std::string_view name) {
    for (Role r : kAllRoles)
        if (role_name(r) == name) return r;
    if (name == "watchers") return Role::kWatcher;
    return std::nullopt;
}

const Network* Config::find(std::string_view name) const {
    for (const auto& n : networks)
        if (n.name == name) return &n;
    return nullptr;
}

EnvLookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (v == nullptr) return std::nullopt;
        return std::string(v);
    };
}

std::string rpc_env_var(std::string_view network) {
    std::string out;
    for (char c : network) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out + "_RPC";
}

Expected<Config> parse(const std::string& text, const std::string& file, const EnvLookup& env) {
    return Parser(file, env).parse(text);
}

Expected<Config> load(const std::string& file, const EnvLookup& env) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return Problem{Fault::kConfig, file + ": cannot read: " + std::strerror(errno)};
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), file, env);
}

std::vector<std::string> lines(const Problem& p) {
    std::vector<std::string> out;
    std::string::size_type start = 0;
    for (auto end = p.message.find('\n'); end != std::string::npos; end = p.message.find('\n', start)) {
        out.push_back(p.message.substr(start, end - start));
        start = end + 1;
    }
    out.push_back(p.message.substr(start));
    return out;
}

}  // namespace keymaster::config
