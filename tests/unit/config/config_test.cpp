#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "keymaster/config/config.hpp"
#include "keymaster/config/secrets.hpp"
#include "vectors.hpp"

using namespace keymaster;
using nlohmann::json;

namespace {

// anvil's first two dev accounts and a third well-known address.
const char* kA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const char* kKey = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

json base() {
    return json::parse(R"({
      "networks": {
        "alpha": {"endpoint": "http://127.0.0.1:8545", "replicas": ["beta"], "bank": {"keyEnv": "ALPHA_BANK"},
                  "threshold": "0.5 ether",
                  "agents": {"updater": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "watchers": [],
                             "relayer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                             "processor": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}},
        "beta":  {"endpoint": "https://rpc.example/v1/SECRETKEY", "replicas": ["alpha"], "bank": {"keyEnv": "BETA_BANK"},
                  "threshold": 100000000000000000,
                  "agents": {"updater": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "watchers": [],
                             "relayer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                             "processor": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}}
      }})");
}

config::EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars](const std::string& k) -> std::optional<std::string> {
        auto it = vars.find(k);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

std::vector<std::string> errors_of(const json& j, const config::EnvLookup& env = env_of({})) {
    auto r = config::parse(j.dump(), "keymaster.json", env);
    if (!r) return config::lines(r.error());
    return {};
}

std::string only_error(const json& j) {
    auto e = errors_of(j);
    REQUIRE(e.size() == 1);
    return e[0];
}

}  // namespace

TEST_CASE("config: the Nomad object form loads", "[config]") {
    auto r = config::parse(base().dump(), "keymaster.json", env_of({}));
    REQUIRE(r.has_value());
    const auto& cfg = r.value();
    REQUIRE(cfg.networks.size() == 2);
    const auto* alpha = cfg.find("alpha");
    REQUIRE(alpha);
    CHECK(alpha->threshold == Wei("500000000000000000"));
    CHECK(cfg.find("beta")->threshold == Wei("100000000000000000"));
    CHECK(alpha->replicas == std::vector<std::string>{"beta"});
    CHECK(alpha->agents.updater->address.checksummed() == kA);
    CHECK(alpha->bank.kind == config::BankRef::Kind::kEnv);
    CHECK(alpha->batch_size == 100);
    CHECK(alpha->tx_type == config::TxTypeSetting::kAuto);
    CHECK(cfg.warnings.empty());
}

TEST_CASE("config: the array form, extensions and agent objects", "[config]") {
    json j = json::parse(R"({"networks": [
      {"name": "gamma", "endpoint": "http://127.0.0.1:1", "endpoints": ["http://127.0.0.1:2", "http://127.0.0.1:1"],
       "bank": {"keyFile": "/nonexistent"}, "threshold": "1 ether", "watcherThreshold": "0.2 ether",
       "target": "3 ether", "roles": {"relayer": {"threshold": "2 ether", "target": "5 ether"}},
       "agents": {"updater": {"address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "threshold": "0.7 ether"},
                  "watchers": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"], "relayer": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                  "processor": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "kathy": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"},
       "ignore": {"all": ["kathy"], "local": [], "remote": ["processor"]},
       "chainId": 31337, "gasLimit": 21000, "txType": "legacy", "maxFeePerGas": "100 gwei", "decimals": 18,
       "symbol": "GLMR", "bankThreshold": "10 ether", "batchSize": 50}]})");
    auto r = config::parse(j.dump(), "k.json", env_of({}));
    REQUIRE(r.has_value());
    const auto& n = r.value().networks.at(0);
    CHECK(n.endpoints.size() == 2);
    CHECK(n.endpoints[0].reveal() == "http://127.0.0.1:1");
    CHECK(n.endpoints[1].reveal() == "http://127.0.0.1:2");
    CHECK(*n.agents.updater->threshold == Wei("700000000000000000"));
    CHECK(*n.watcher_threshold == Wei("200000000000000000"));
    CHECK(*n.roles.at(config::Role::kRelayer).target == Wei("5000000000000000000"));
    CHECK(n.ignore.all.count(config::Role::kKathy));
    CHECK(n.ignore.remote.count(config::Role::kProcessor));
    CHECK(*n.chain_id == 31337);
    CHECK(*n.gas_limit == 21000);
    CHECK(n.tx_type == config::TxTypeSetting::kLegacy);
    CHECK(*n.max_fee_per_gas == Wei("100000000000"));
    CHECK(n.symbol == "GLMR");
    CHECK(n.batch_size == 50);
    CHECK(n.bank.file == "/nonexistent");
}

TEST_CASE("config: <NAME>_RPC overrides the endpoint", "[config]") {
    json j = base();
    j["networks"]["my-net"] = j["networks"]["beta"];
    j["networks"]["my-net"]["replicas"] = json::array();
    auto r = config::parse(j.dump(), "k.json", env_of({{"MY_NET_RPC", "http://127.0.0.1:9999"}}));
    REQUIRE(r.has_value());
    const auto* n = r.value().find("my-net");
    CHECK(n->endpoints.at(0).reveal() == "http://127.0.0.1:9999");
    CHECK(n->endpoint_from_env);
    CHECK(config::rpc_env_var("my-net") == "MY_NET_RPC");
}

TEST_CASE("config: every validation error names the file and the place", "[config]") {
    SECTION("unreadable file") {
        auto r = config::load("/nonexistent/keymaster.json", env_of({}));
        REQUIRE(!r);
        CHECK(r.error().fault == Fault::kConfig);
        const auto e = config::lines(r.error());
        CHECK(e.at(0) == "/nonexistent/keymaster.json: cannot read: No such file or directory");
    }
    SECTION("malformed JSON") {
        auto r = config::parse("{\"networks\": {", "keymaster.json", env_of({}));
        REQUIRE(!r);
        CHECK(r.error().fault == Fault::kConfig);
        const auto e = config::lines(r.error());
        CHECK_THAT(e.at(0), Catch::StartsWith("keymaster.json: not valid JSON: parse error at line 1"));
    }
    SECTION("a JSON number out of range (found by fuzzing)") {
        auto r = config::parse(R"({"networks": {"a": {"threshold": 4e55001}}})", "keymaster.json", env_of({}));
        REQUIRE(!r);
        CHECK(r.error().fault == Fault::kConfig);
        const auto e = config::lines(r.error());
        CHECK_THAT(e.at(0), Catch::StartsWith("keymaster.json: not valid JSON: number overflow"));
    }
    SECTION("no networks") {
        CHECK(only_error(json::parse(R"({"networks": {}})")) == "keymaster.json: networks: no networks defined");
        CHECK(only_error(json::parse(R"({"foo": 1})")) == "keymaster.json: networks: missing");
    }
    SECTION("duplicate names") {
        auto e = errors_of(json::parse(R"({"networks": [{"name": "a"}, {"name": "a"}]})"));
        CHECK(std::find(e.begin(), e.end(), "keymaster.json: networks[1].name: duplicate network name 'a'") != e.end());
        auto r = config::parse(R"({"networks": {"a": {}, "a": {}}})", "keymaster.json", env_of({}));
        REQUIRE(!r);
        CHECK(r.error().fault == Fault::kConfig);
        const auto le = config::lines(r.error());
        CHECK(le.at(0) == "keymaster.json: networks.a: duplicate key");
    }
    SECTION("unknown replica") {
        json j = base();
        j["networks"]["alpha"]["replicas"] = {"beta", "gamma"};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.replicas[1]: unknown network 'gamma'");
    }
    SECTION("invalid address") {
        json j = base();
        j["networks"]["beta"]["agents"]["relayer"] = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8";
        CHECK(only_error(j) == "keymaster.json: networks.beta.agents.relayer: bad EIP-55 checksum");
        j = base();
        j["networks"]["beta"]["agents"]["watchers"] = {"0x1234"};
        CHECK(only_error(j) == "keymaster.json: networks.beta.agents.watchers[0]: an address is 0x followed by 40 hex digits");
    }
    SECTION("bad amounts") {
        json j = base();
        j["networks"]["alpha"]["threshold"] = "-1 ether";
        CHECK(only_error(j) == "keymaster.json: networks.alpha.threshold: negative amounts are not allowed");
        j["networks"]["alpha"]["threshold"] = "0.5";
        CHECK(only_error(j) == "keymaster.json: networks.alpha.threshold: amount has a fraction of a wei");
        j["networks"]["alpha"]["threshold"] = -5;
        CHECK(only_error(j) == "keymaster.json: networks.alpha.threshold: negative amounts are not allowed");
        j["networks"]["alpha"]["threshold"] = 0.5;
        CHECK_THAT(only_error(j), Catch::StartsWith("keymaster.json: networks.alpha.threshold: a JSON number amount"));
        j["networks"]["alpha"]["threshold"] = "lots";
        CHECK_THAT(only_error(j), Catch::StartsWith("keymaster.json: networks.alpha.threshold: not an amount"));
        j["networks"]["alpha"]["threshold"] = "1e999 wei";
        CHECK_THAT(only_error(j), Catch::StartsWith("keymaster.json: networks.alpha.threshold: not an amount"));
        j["networks"]["alpha"]["threshold"] = "200000000000000000000000000000000000000000000000000000000000000000000000000000 wei";
        CHECK(only_error(j) == "keymaster.json: networks.alpha.threshold: amount does not fit in 256 bits");
    }
    SECTION("target below threshold") {
        json j = base();
        j["networks"]["alpha"]["target"] = "0.1 ether";
        CHECK(only_error(j) == "keymaster.json: networks.alpha.target: target 0.1 is below threshold 0.5");
        j = base();
        j["networks"]["alpha"]["roles"] = {{"watcher", {{"threshold", "1 ether"}, {"target", "0.5 ether"}}}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.roles.watcher.target: target 0.5 is below threshold 1");
    }
    SECTION("runway") {
        json j = base();
        j["networks"]["alpha"]["runway"] = {{"threshold", "6 hours"}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.runway.threshold: expected a duration such as \"30s\", \"5m\", \"6h\" or \"7d\"");
        j["networks"]["alpha"]["runway"] = {{"window", 3600}};
        CHECK_THAT(only_error(j), Catch::StartsWith("keymaster.json: networks.alpha.runway.window: expected a duration"));
        j["networks"]["alpha"]["runway"] = {{"threshold", "6h"}, {"target", "2h"}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.runway.target: runway target 2h is shorter than the runway threshold 6h");
        j["networks"]["alpha"]["runway"] = {{"threshold", "6h"}};
        j["networks"]["alpha"]["roles"] = {{"relayer", {{"runway", {{"target", "1h"}}}}}};  // merged with the network's 6h
        CHECK(only_error(j) == "keymaster.json: networks.alpha.roles.relayer.runway.target: runway target 1h is shorter than the runway threshold 6h");
        j = base();
        j["networks"]["alpha"]["runway"] = {{"max", "0 ether"}, {"horizon", "1d"}};
        auto e = errors_of(j);
        CHECK(std::find(e.begin(), e.end(), "keymaster.json: networks.alpha.runway.max: must be above zero") != e.end());
        CHECK(std::find(e.begin(), e.end(), "keymaster.json: networks.alpha.runway.horizon: expected threshold, target, window or max") != e.end());
        j = base();
        j["networks"]["alpha"]["runway"] = {{"threshold", "6h"}, {"target", "1d"}, {"window", "7d"}, {"max", "5 ether"}};
        j["networks"]["alpha"]["roles"] = {{"relayer", {{"runway", {{"target", "2d"}, {"window", "1h"}}}}}};
        auto r = config::parse(j.dump(), "keymaster.json", env_of({}));
        REQUIRE(r.has_value());
        const auto& n = r.value().networks.at(0);
        CHECK(*n.runway.threshold == 6 * 3600);
        CHECK(*n.runway.target == 86400);
        CHECK(n.runway.window_seconds() == 7 * 86400);
        const auto m = config::merged(n.roles.at(config::Role::kRelayer).runway, n.runway);
        CHECK(*m.threshold == 6 * 3600);
        CHECK(*m.target == 2 * 86400);
        CHECK(m.window_seconds() == 3600);
        CHECK(m.max_path == "networks.alpha.runway.max");
        CHECK(config::Runway{}.window_seconds() == 86400);
    }
    SECTION("missing or bad bank") {
        json j = base();
        j["networks"]["alpha"].erase("bank");
        CHECK(only_error(j) == "keymaster.json: networks.alpha: missing \"bank\"");
        j["networks"]["alpha"]["bank"] = 42;
        CHECK_THAT(only_error(j), Catch::StartsWith("keymaster.json: networks.alpha.bank: expected a private key"));
        j["networks"]["alpha"]["bank"] = {{"keyId", "alias/bank"}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.bank.region: missing (or set AWS_REGION)");
        j["networks"]["alpha"]["bank"] = {{"keyId", ""}, {"region", "us-east-1"}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.bank.keyId: expected a non-empty string");
        j["networks"]["alpha"]["bank"] = {{"keyId", "alias/bank"}, {"region", "us-east-1"}, {"accessKeyId", "AKID"}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.bank: accessKeyId and secretAccessKey go together");
        j["networks"]["alpha"]["bank"] = {{"keyId", "alias/bank"}, {"region", "us-east-1"}, {"endpoint", "kms.local"}};
        CHECK(only_error(j) == "keymaster.json: networks.alpha.bank.endpoint: expected an http:// or https:// URL");
    }
    SECTION("endpoint not http(s), and the URL is not repeated") {
        json j = base();
        j["networks"]["beta"]["endpoint"] = "ws://rpc.example/SECRETKEY";
        const auto e = only_error(j);
        CHECK(e == "keymaster.json: networks.beta.endpoint: endpoint must be an http:// or https:// URL");
        CHECK(e.find("SECRETKEY") == std::string::npos);
        j["networks"]["beta"].erase("endpoint");
        CHECK(only_error(j) == "keymaster.json: networks.beta: missing \"endpoint\"");
    }
    SECTION("other fields") {
        json j = base();
        j["networks"]["alpha"]["txType"] = "eip4844";
        j["networks"]["alpha"]["batchSize"] = 0;
        j["networks"]["alpha"]["ignore"] = {{"local", {"janitor"}}};
        auto e = errors_of(j);
        CHECK(e.size() == 3);
        CHECK(std::find(e.begin(), e.end(), "keymaster.json: networks.alpha.ignore.local[0]: unknown role; expected updater, watcher, relayer, processor or kathy") != e.end());
    }
}

TEST_CASE("config: a KMS bank (Nomad's object, plus endpoint)", "[config][kms]") {
    json j = base();
    j["networks"]["alpha"]["bank"] = {{"keyId", "alias/production-bank"}, {"region", "eu-west-1"},
                                      {"accessKeyId", "AKIDEXAMPLE"}, {"secretAccessKey", "TOPSECRET"},
                                      {"sessionToken", "TOKEN"}, {"endpoint", "http://127.0.0.1:4566"}};
    j["networks"]["beta"]["bank"] = {{"keyId", "arn:aws:kms:us-east-1:111122223333:key/abc"}};
    auto r = config::parse(j.dump(), "keymaster.json", env_of({{"AWS_REGION", "us-east-2"}}));
    REQUIRE(r.has_value());
    const auto& cfg = r.value();
    const auto& a = cfg.find("alpha")->bank;
    CHECK(a.kind == config::BankRef::Kind::kKms);
    CHECK(a.kms_key_id == "alias/production-bank");
    CHECK(a.kms_region == "eu-west-1");
    CHECK(a.kms_access_key_id == "AKIDEXAMPLE");
    CHECK(a.kms_secret_access_key.reveal() == "TOPSECRET");
    CHECK(a.kms_session_token == "TOKEN");
    CHECK(a.kms_endpoint == "http://127.0.0.1:4566");
    // The region falls back to AWS_REGION; a secret in the file is warned about, without the secret.
    CHECK(cfg.find("beta")->bank.kms_region == "us-east-2");
    bool warned = false;
    for (const auto& w : cfg.warnings) {
        CHECK(w.find("TOPSECRET") == std::string::npos);
        warned = warned || w.find("networks.alpha.bank.secretAccessKey") != std::string::npos;
    }
    CHECK(warned);
    // There is no key to read for a KMS bank.
    auto key = config::resolve_bank_key(a, env_of({}));
    REQUIRE(key.has_error());
    CHECK(key.error().message == "networks.alpha.bank: a KMS key signs in KMS: there is no key to read");
}

TEST_CASE("config: spend limits", "[config]") {
    json j = base();
    j["networks"]["alpha"]["limits"] = {{"maxTopUp", "1 ether"}, {"daily", "5 ether"}, {"reserve", "10 ether"}};
    auto r = config::parse(j.dump(), "keymaster.json", env_of({}));
    REQUIRE(r.has_value());
    const auto& l = r.value().find("alpha")->limits;
    CHECK(*l.max_top_up == Wei("1000000000000000000"));
    CHECK(*l.daily == Wei("5000000000000000000"));
    CHECK(*l.reserve == Wei("10000000000000000000"));
    j["networks"]["alpha"]["limits"] = {{"weekly", "1 ether"}};
    CHECK(only_error(j) == "keymaster.json: networks.alpha.limits.weekly: expected maxTopUp, daily, reserve or perAccount");
    j["networks"]["alpha"]["limits"] = {{"daily", "-1 ether"}};
    CHECK(only_error(j) == "keymaster.json: networks.alpha.limits.daily: negative amounts are not allowed");
    j["networks"]["alpha"]["limits"] = {{"maxTopUp", 0}};
    CHECK(only_error(j) == "keymaster.json: networks.alpha.limits.maxTopUp: must be above zero");
}

TEST_CASE("config: Nomad's 'treshold' spelling and unknown keys are warnings", "[config]") {
    json j = base();
    j["networks"]["alpha"]["treshold"] = j["networks"]["alpha"]["threshold"];
    j["networks"]["alpha"].erase("threshold");
    j["networks"]["alpha"]["colour"] = "blue";
    auto r = config::parse(j.dump(), "keymaster.json", env_of({}));
    REQUIRE(r.has_value());
    const auto& cfg = r.value();
    CHECK(cfg.find("alpha")->threshold == Wei("500000000000000000"));
    CHECK(cfg.warnings.size() == 2);
}

TEST_CASE("config: bank keys from env, file and inline; secrets never in messages", "[config][secrets]") {
    config::BankRef b;
    b.path = "networks.alpha.bank";
    b.kind = config::BankRef::Kind::kEnv;
    b.env_var = "ALPHA_BANK";
    auto missing = config::resolve_bank_key(b, env_of({}));
    CHECK(missing.error().message == "networks.alpha.bank: environment variable ALPHA_BANK is not set");
    CHECK(missing.error().fault == Fault::kConfig);  // exit 2, from the type
    auto ok = config::resolve_bank_key(b, env_of({{"ALPHA_BANK", kKey}}));
    REQUIRE(ok.has_value());
    CHECK(eth::Address::from_public_key(ok->public_key()).checksummed() == kA);
    const std::string bad_secret = "0xdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
    auto bad = config::resolve_bank_key(b, env_of({{"ALPHA_BANK", bad_secret}}));
    CHECK(bad.error().message.find("not a valid secp256k1 private key") != std::string::npos);
    CHECK(bad.error().message.find("deadbeef") == std::string::npos);

    const auto dir = std::filesystem::temp_directory_path() / ("km-key-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = (dir / "bank.key").string();
    { std::ofstream(file) << kKey << "\n"; }
    ::chmod(file.c_str(), 0644);
    b.kind = config::BankRef::Kind::kFile;
    b.file = file;
    auto open = config::resolve_bank_key(b, env_of({}));
    CHECK(open.error().message == "networks.alpha.bank: key file " + file + ": readable by group or others (chmod 600 it)");
    ::chmod(file.c_str(), 0640);
    REQUIRE(::chown(file.c_str(), ::geteuid(), ::getegid() + 4242) == 0);  // another group may read it
    CHECK(config::resolve_bank_key(b, env_of({})).error().message.find("readable by group or others") !=
          std::string::npos);
    REQUIRE(::chown(file.c_str(), ::geteuid(), ::getegid()) == 0);  // only our own group (Kubernetes fsGroup)
    CHECK(config::resolve_bank_key(b, env_of({})).has_value());
    ::chmod(file.c_str(), 0600);
    auto fine = config::resolve_bank_key(b, env_of({}));
    CHECK(fine.has_value());
    std::filesystem::remove_all(dir);

    b.kind = config::BankRef::Kind::kInline;
    b.inline_key = Secret(bad_secret);
    auto inl = config::resolve_bank_key(b, env_of({}));
    CHECK(inl.error().message.find("deadbeef") == std::string::npos);

    json j = base();
    j["networks"]["alpha"]["bank"] = kKey;
    auto r = config::parse(j.dump(), "keymaster.json", env_of({}));
    const auto& cfg = r.value();
    REQUIRE(cfg.warnings.size() == 1);
    CHECK(cfg.warnings[0].find("ac0974") == std::string::npos);
    std::ostringstream os;
    os << cfg.find("alpha")->bank.inline_key;
    CHECK(os.str() == "***");
}


TEST_CASE("config: etc/keymaster.example.json is valid and uses every key", "[config]") {
    const std::string file = std::string(KEYMASTER_SOURCE_DIR) + "/etc/keymaster.example.json";
    auto r = config::load(file, env_of({}));
    if (!r) FAIL(r.error().message);
    const auto& cfg = r.value();
    CHECK(cfg.networks.size() == 3);
    CHECK(cfg.warnings.empty());  // no unknown keys
    const auto text = test::read_text(file);
    for (const char* key : {"endpoint", "endpoints", "chainId", "replicas", "bank", "keyFile", "keyEnv", "threshold",
                            "watcherThreshold", "target", "roles", "agents", "updater", "watchers", "relayer",
                            "processor", "kathy", "ignore", "all", "local", "remote", "gasLimit", "txType",
                            "maxFeePerGas", "decimals", "symbol", "bankThreshold", "batchSize", "limits", "maxTopUp", "daily",
                            "reserve", "replaceAfter", "blocks", "seconds", "perAccount", "topUps", "runway", "window", "max"})
        CHECK(text.find(std::string("\"") + key + "\"") != std::string::npos);
}

TEST_CASE("config: the environment examples are valid", "[config]") {
    for (const char* env : {"development", "staging", "production"}) {
        const std::string file = std::string(KEYMASTER_SOURCE_DIR) + "/etc/environments/" + env + ".json";
        auto r = config::load(file, env_of({}));
        if (!r) FAIL(r.error().message);
        const auto& cfg = r.value();
        CHECK(cfg.warnings.empty());
        for (const auto& n : cfg.networks) {
            CHECK(n.chain_id.has_value());
            // Development keeps key files; staging and production sign with KMS keys named per network.
            if (std::string(env) == "development") {
                CHECK(n.bank.kind == config::BankRef::Kind::kFile);
            } else {
                CHECK(n.bank.kind == config::BankRef::Kind::kKms);
                CHECK(n.bank.kms_key_id == "alias/" + std::string(env) + "-" + n.name + "-bank");
                CHECK(n.bank.kms_region == "us-east-1");
            }
        }
    }
}

TEST_CASE("config: an amount near 2^256 is refused where it is written (checked arithmetic)", "[config]") {
    const std::string near_max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";  // 2^256-1
    for (const auto* key : {"threshold", "target", "bankThreshold", "maxFeePerGas"}) {
        json j = base();
        j["networks"]["alpha"][key] = near_max;
        INFO(key);
        CHECK(only_error(j) == std::string("keymaster.json: networks.alpha.") + key +
                                   ": amount above 2^128 wei: far beyond any real supply (a typo?)");
    }
    json j = base();
    j["networks"]["alpha"]["limits"] = {{"daily", "340282366920938463463374607431768211456"}};  // 2^128
    CHECK_THAT(only_error(j), Catch::Contains("networks.alpha.limits.daily: amount above 2^128 wei"));
    j["networks"]["alpha"]["limits"] = {{"daily", "340282366920938463463374607431768211455"}};  // 2^128 - 1
    CHECK(errors_of(j).empty());
}

TEST_CASE("config: replaceFeeCeiling, a multiple of a nonce's first fees", "[config]") {
    json j = base();
    auto r = config::parse(j.dump(), "keymaster.json", env_of({}));
    CHECK(r.value().networks[0].replace_fee_ceiling == 10);
    j["networks"]["alpha"]["replaceFeeCeiling"] = 3;
    r = config::parse(j.dump(), "keymaster.json", env_of({}));
    CHECK(r.value().find("alpha")->replace_fee_ceiling == 3);
    j["networks"]["alpha"]["replaceFeeCeiling"] = 0;
    CHECK(only_error(j) == "keymaster.json: networks.alpha.replaceFeeCeiling: expected a whole number from 1 to 1000");
}

TEST_CASE("config: l2, l1FeeMargin and gasMargin", "[config][l2]") {
    json j = base();
    auto net = [&]() { return *config::parse(j.dump(), "keymaster.json", env_of({})).value().find("alpha"); };
    CHECK(net().l2 == config::L2Setting::kDetect);
    CHECK(net().l1_fee_margin_permille == 1500);
    CHECK(net().gas_margin_permille == 1200);
    for (const auto& [text, want] : std::vector<std::pair<std::string, config::L2Setting>>{
             {"op", config::L2Setting::kOp}, {"arbitrum", config::L2Setting::kArbitrum}, {"none", config::L2Setting::kNone}}) {
        j["networks"]["alpha"]["l2"] = text;
        CHECK(net().l2 == want);
    }
    j["networks"]["alpha"]["l1FeeMargin"] = 2;
    j["networks"]["alpha"]["gasMargin"] = 1.25;
    CHECK(net().l1_fee_margin_permille == 2000);
    CHECK(net().gas_margin_permille == 1250);
    j["networks"]["alpha"]["l2"] = "optimism";
    CHECK(only_error(j) == "keymaster.json: networks.alpha.l2: expected \"op\", \"arbitrum\" or \"none\" (absent: detected from the chain)");
    j["networks"]["alpha"].erase("l2");
    for (const json& bad : {json(0.5), json(11), json("1.5")}) {
        j["networks"]["alpha"]["l1FeeMargin"] = bad;
        CHECK(only_error(j) == "keymaster.json: networks.alpha.l1FeeMargin: expected a number from 1 to 10 (e.g. 1.5)");
    }
}

TEST_CASE("config: limits.perAccount", "[config]") {
    json j = base();
    j["networks"]["alpha"]["limits"] = {{"perAccount", {{"daily", "2 ether"}, {"topUps", 6}}}};
    auto r = config::parse(j.dump(), "keymaster.json", env_of({}));
    const auto& pa = r.value().find("alpha")->limits.per_account;
    CHECK(pa.daily == Wei("2000000000000000000"));
    CHECK(pa.top_ups == 6u);
    j["networks"]["alpha"]["limits"] = {{"perAccount", {{"weekly", "1 ether"}}}};
    CHECK(only_error(j) == "keymaster.json: networks.alpha.limits.perAccount.weekly: expected daily or topUps");
    j["networks"]["alpha"]["limits"] = {{"perAccount", {{"topUps", 0}}}};
    CHECK(only_error(j) == "keymaster.json: networks.alpha.limits.perAccount.topUps: expected a whole number from 1 to 1000000");
    j["networks"]["alpha"]["limits"] = {{"perAccount", {{"daily", "0"}}}};
    CHECK(only_error(j) == "keymaster.json: networks.alpha.limits.perAccount.daily: must be above zero");
    j["networks"]["alpha"]["limits"] = {{"perAccount", "2 ether"}};
    CHECK_THAT(only_error(j), Catch::Contains("networks.alpha.limits.perAccount: expected {"));
}
