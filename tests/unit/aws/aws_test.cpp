#include <catch2/catch.hpp>

#include "keymaster/aws/aws.hpp"
#include "keymaster/aws/keys.hpp"
#include "fake_http_server.hpp"
#include "task_runner.hpp"

using namespace keymaster;
using nlohmann::json;

namespace {

aws::EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars](const std::string& k) -> std::optional<std::string> {
        auto it = vars.find(k);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

std::string b64(const std::string& s) {
    return aws::base64_encode(ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

}  // namespace

TEST_CASE("aws: base64 (RFC 4648 section 10 vectors)", "[aws]") {
    const std::pair<const char*, const char*> v[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                     {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                     {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, enc] : v) {
        CHECK(b64(plain) == enc);
        auto d = aws::base64_decode(enc);
        REQUIRE(d);
        CHECK(std::string(d->begin(), d->end()) == plain);
    }
    CHECK_FALSE(aws::base64_decode("Zm9"));
    CHECK_FALSE(aws::base64_decode("Zm9v!!!!"));
}

TEST_CASE("aws: STS AssumeRoleWithWebIdentity replies", "[aws]") {
    // The shape of the example in the STS API reference.
    const std::string ok = R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>
    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <SourceIdentity>SourceIdentityValue</SourceIdentity>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>)";
    auto t = aws::parse_sts_reply(ok);
    CHECK(t.creds.access_key_id == "ASgeIAIOSFODNN7EXAMPLE");
    CHECK(t.creds.secret_access_key.reveal() == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    CHECK(t.creds.session_token == "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
    CHECK(std::chrono::system_clock::to_time_t(t.expiration) == 1414191623);

    const std::string err = R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token &amp; audience mismatch</Message></Error>
  <RequestId>x</RequestId></ErrorResponse>)";
    try {
        aws::parse_sts_reply(err);
        FAIL("no exception");
    } catch (const aws::AwsError& e) {
        CHECK(e.code() == "InvalidIdentityToken");
        CHECK(std::string(e.what()) == "STS AssumeRoleWithWebIdentity: InvalidIdentityToken: Token & audience mismatch");
        CHECK_FALSE(e.retryable());
    }
    CHECK_THROWS_AS(aws::parse_sts_reply("<html>proxy error</html>"), aws::AwsError);
}

TEST_CASE("aws: timestamps and error replies", "[aws]") {
    CHECK(std::chrono::system_clock::to_time_t(*aws::parse_iso8601("2026-11-28T10:00:00Z")) == 1795860000);
    CHECK(std::chrono::system_clock::to_time_t(*aws::parse_iso8601("2026-11-28T10:00:00.123Z")) == 1795860000);
    CHECK_FALSE(aws::parse_iso8601("2026-11-28 10:00"));
    CHECK_FALSE(aws::parse_iso8601("2026-11-28T10:00:00+02:00"));
    CHECK_FALSE(aws::parse_iso8601("2999-01-01T00:00:00Z"));  // beyond the clock: would wrap to the past

    using P = std::pair<std::string, std::string>;
    CHECK(aws::parse_error_reply(R"({"__type":"AccessDeniedException","message":"no"})") == P{"AccessDeniedException", "no"});
    CHECK(aws::parse_error_reply(R"({"__type":"com.amazonaws.kms#NotFoundException","Message":"gone"})") ==
          P{"NotFoundException", "gone"});
    CHECK(aws::parse_error_reply("<html/>") == P{"", ""});
}

TEST_CASE("aws: endpoint overrides: config, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL", "[aws]") {
    auto all = env_of({{"AWS_ENDPOINT_URL_KMS", "http://kms.local"}, {"AWS_ENDPOINT_URL", "http://all.local"}});
    CHECK(aws::service_endpoint("kms", "eu-west-1", "http://cfg.local", all) == "http://cfg.local");
    CHECK(aws::service_endpoint("kms", "eu-west-1", "", all) == "http://kms.local");
    CHECK(aws::service_endpoint("sts", "eu-west-1", "", all) == "http://all.local");
    CHECK(aws::service_endpoint("kms", "eu-west-1", "", env_of({})) == "https://kms.eu-west-1.amazonaws.com");
}

TEST_CASE("aws: the credential chain's order", "[aws]") {
    boost::asio::io_context io;
    auto env = env_of({{"AWS_ACCESS_KEY_ID", "ENVKEY"}, {"AWS_SECRET_ACCESS_KEY", "envsecret"},
                       {"AWS_SESSION_TOKEN", "envtoken"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent"},
                       {"AWS_ROLE_ARN", "arn:aws:iam::1:role/x"}});
    // The config's fields first.
    aws::CredentialProvider configured(aws::StaticCredentials{"CFGKEY", Secret("cfgsecret"), ""}, "us-east-1", env);
    auto c = test::run(io, configured.get());
    CHECK(c.access_key_id == "CFGKEY");
    CHECK(c.session_token.empty());
    CHECK(configured.source() == "config");
    // Then the environment (before web identity, whose token file does not even exist).
    aws::CredentialProvider from_env(std::nullopt, "us-east-1", env);
    c = test::run(io, from_env.get());
    CHECK(c.access_key_id == "ENVKEY");
    CHECK(c.secret_access_key.reveal() == "envsecret");
    CHECK(c.session_token == "envtoken");
    CHECK(from_env.source() == "environment");
    // Half a pair is an error, not a fall-through to another identity.
    aws::CredentialProvider half(std::nullopt, "us-east-1", env_of({{"AWS_ACCESS_KEY_ID", "ENVKEY"}}));
    CHECK_THROWS_WITH(test::run(io, half.get()), "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
    // Web identity: the token file is read (and its absence reported by name).
    aws::CredentialProvider web(std::nullopt, "us-east-1",
                                env_of({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"}, {"AWS_ROLE_ARN", "arn"}}));
    CHECK_THROWS_WITH(test::run(io, web.get()), "cannot read the web identity token file /nonexistent/token");
    // Nothing at all.
    aws::CredentialProvider none(std::nullopt, "us-east-1", env_of({{"AWS_EC2_METADATA_DISABLED", "true"}}));
    CHECK_THROWS_WITH(test::run(io, none.get()), Catch::StartsWith("no AWS credentials"));
}

TEST_CASE("aws: container and instance-metadata credentials, cached until near expiry", "[aws]") {
    using test::Action;
    boost::asio::io_context io;
    test::FakeRpcServer server(io, [](const std::string&, const json&) -> json { throw std::runtime_error("unscripted"); });
    const std::string creds_json =
        R"({"AccessKeyId":"ASIAC","SecretAccessKey":"csecret","Token":"ctoken","Expiration":"2200-01-01T00:00:00Z"})";

    // ECS: AWS_CONTAINER_CREDENTIALS_FULL_URI; fetched once, then served from the cache.
    aws::CredentialProvider container(std::nullopt, "us-east-1",
                                      env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/creds"},
                                              {"AWS_EC2_METADATA_DISABLED", "true"}}));
    server.script({Action(Action::Kind::kStatus, 200, creds_json)});
    auto c = test::run(io, container.get());
    CHECK(c.access_key_id == "ASIAC");
    CHECK(c.secret_access_key.reveal() == "csecret");
    CHECK(c.session_token == "ctoken");
    CHECK(container.source() == "container");
    c = test::run(io, container.get());
    CHECK(c.access_key_id == "ASIAC");
    CHECK(server.requests() == 1);
    // A refusal is an error naming the source; invalidate() makes the next get() ask again.
    container.invalidate();
    server.script({Action(Action::Kind::kStatus, 403, "{}")});
    CHECK_THROWS_WITH(test::run(io, container.get()), "ECS container credentials: HTTP 403");
    CHECK(server.requests() == 2);

    // IMDSv2: a session token, the role's name, then its credentials (expired ones are fetched again).
    const std::string expired =
        R"({"AccessKeyId":"ASIAI","SecretAccessKey":"isecret","Token":"itoken","Expiration":"2000-01-01T00:00:00Z"})";
    aws::CredentialProvider imds(std::nullopt, "us-east-1", env_of({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url() + "/"}}));
    server.script({Action(Action::Kind::kStatus, 200, "session-token"), Action(Action::Kind::kStatus, 200, "node-role\n"),
                   Action(Action::Kind::kStatus, 200, expired)});
    c = test::run(io, imds.get());
    CHECK(c.access_key_id == "ASIAI");
    CHECK(imds.source() == "instance metadata (node-role)");
    CHECK(server.requests() == 5);
    server.script({Action(Action::Kind::kStatus, 200, "session-token"), Action(Action::Kind::kStatus, 200, "node-role"),
                   Action(Action::Kind::kStatus, 200, creds_json)});
    c = test::run(io, imds.get());
    CHECK(c.access_key_id == "ASIAC");
    CHECK(server.requests() == 8);
    // No role attached; and no metadata service at all (the error names every source tried).
    imds.invalidate();
    server.script({Action(Action::Kind::kStatus, 200, "session-token"), Action(Action::Kind::kStatus, 404, "")});
    CHECK_THROWS_WITH(test::run(io, imds.get()), "EC2 instance metadata: no IAM role is attached to this instance");
    imds.invalidate();
    server.script({Action(Action::Kind::kStatus, 403, "")});
    CHECK_THROWS_WITH(test::run(io, imds.get()),
                      Catch::StartsWith("no AWS credentials") && Catch::Contains("instance metadata failed"));
}

TEST_CASE("keys: the seed's key sets and aliases", "[aws][keys]") {
    const auto sets = aws::keys::default_key_sets();
    CHECK(sets.keys.at("production") == std::vector<std::string>{"watcher-signer", "watcher-attestation", "updater-signer",
                                                                 "updater-attestation", "processor-signer", "relayer-signer"});
    CHECK(sets.keys.at("staging").size() == 7);
    CHECK(sets.keys.at("staging").back() == "kathy-signer");
    CHECK(sets.networks.at("production") == std::vector<std::string>{"ethereum", "moonbeam", "evmos"});

    auto wanted = aws::keys::wanted_keys(sets.keys.at("production"), "production", {"ethereum", "evmos"});
    std::vector<std::string> aliases;
    for (const auto& w : wanted) aliases.push_back(w.alias);
    CHECK(aliases == std::vector<std::string>{
                         "alias/production-watcher-attestation", "alias/production-updater-attestation",
                         "alias/production-ethereum-watcher-signer", "alias/production-ethereum-updater-signer",
                         "alias/production-ethereum-processor-signer", "alias/production-ethereum-relayer-signer",
                         "alias/production-evmos-watcher-signer", "alias/production-evmos-updater-signer",
                         "alias/production-evmos-processor-signer", "alias/production-evmos-relayer-signer"});

    const auto& names = sets.keys.at("staging");
    auto p = aws::keys::parse_alias("alias/staging-moonbase-alpha-relayer-signer", "staging", names);
    REQUIRE(p);
    CHECK(p->network == "moonbase-alpha");
    CHECK(p->name == "relayer-signer");
    p = aws::keys::parse_alias("alias/staging-updater-attestation", "staging", names);
    REQUIRE(p);
    CHECK(p->network.empty());
    CHECK(p->name == "updater-attestation");
    CHECK_FALSE(aws::keys::parse_alias("alias/production-updater-attestation", "staging", names));
    CHECK_FALSE(aws::keys::parse_alias("alias/stagingx-updater-attestation", "staging", names));
}

TEST_CASE("keys: key-sets files", "[aws][keys]") {
    auto k = aws::keys::parse_key_sets(R"({"agentKeys": {"lab": ["relayer-signer"]}, "networks": {"lab": ["a", "b"]}})", "sets.json");
    CHECK(k.keys.at("lab") == std::vector<std::string>{"relayer-signer"});
    CHECK(k.networks.at("lab") == std::vector<std::string>{"a", "b"});
    CHECK_THROWS_WITH(aws::keys::parse_key_sets("{", "sets.json"), "sets.json: not valid JSON");
    CHECK_THROWS_WITH(aws::keys::parse_key_sets(R"({"networks": {}})", "sets.json"), "sets.json: agentKeys: missing");
    CHECK_THROWS_WITH(aws::keys::parse_key_sets(R"({"agentKeys": {"lab": ["ok", "bad name"]}})", "sets.json"),
                      "sets.json: agentKeys.lab[1]: expected a name of letters, digits, '-' and '_'");
    CHECK_THROWS_WITH(aws::keys::parse_key_sets(R"({"agentKeys": {"lab": ["a", "a"]}})", "sets.json"),
                      "sets.json: agentKeys.lab[1]: 'a' is listed twice");
}

TEST_CASE("keys: the IAM policy follows the seed's, limited to the role's aliases", "[aws][keys]") {
    const auto names = aws::keys::default_key_sets().keys.at("staging");
    auto p = aws::keys::iam_policy("staging", "processor", names, {}, "11111111111", "*");
    // The seed's staging-processor-signer policy, with the alias pattern of our naming.
    const json seed = json::parse(R"({
      "Version": "2012-10-17",
      "Statement": [{
          "Sid": "KeymasterStagingProcessorSigner",
          "Effect": "Allow",
          "Action": ["kms:GetPublicKey", "kms:Sign"],
          "Resource": "arn:aws:kms:*:11111111111:key/*",
          "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/staging-*-processor-signer"}}
      }]})");
    CHECK(p == seed);
    p = aws::keys::iam_policy("staging", "watcher", names, {"kovan"}, "*", "us-east-1");
    CHECK(p["Statement"][0]["Resource"] == "arn:aws:kms:us-east-1:*:key/*");
    CHECK(p["Statement"][0]["Condition"]["ForAnyValue:StringLike"]["kms:ResourceAliases"] ==
          json({"alias/staging-kovan-watcher-signer", "alias/staging-watcher-attestation"}));
    CHECK_THROWS_WITH(aws::keys::iam_policy("production", "kathy", aws::keys::default_key_sets().keys.at("production"), {},
                                            "*", "*"),
                      "environment production has no keys for role 'kathy'");
}

TEST_CASE("keys: agents blocks from signer keys", "[aws][keys]") {
    std::vector<aws::keys::KeyRow> rows = {
        {"alias/s-updater-attestation", "", "updater-attestation", "arn1", "0x01", "r"},
        {"alias/s-a-updater-signer", "a", "updater-signer", "arn2", "0x02", "r"},
        {"alias/s-a-watcher-signer", "a", "watcher-signer", "arn3", "0x03", "r"},
        {"alias/s-b-relayer-signer", "b", "relayer-signer", "arn4", "0x04", "r"},
    };
    CHECK(aws::keys::agents_config(rows) ==
          json::parse(R"({"a": {"agents": {"updater": "0x02", "watchers": ["0x03"]}}, "b": {"agents": {"relayer": "0x04"}}})"));
}
