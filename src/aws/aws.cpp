#include "keymaster/aws/aws.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <fstream>
#include <map>
#include <sstream>

#include "keymaster/common/clock.hpp"
#include "keymaster/common/text.hpp"
#include "keymaster/rpc/http_transport.hpp"
#include "keymaster/rpc/url.hpp"

namespace keymaster::aws {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;
namespace sigv4 = signer::sigv4;
using signer::sigv4::Credentials;

constexpr auto kRefreshBefore = std::chrono::minutes(5);

// Now on the wall clock, as credentials' expiry times are.
std::chrono::system_clock::time_point wall_now() {
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(keymaster::system_clock().wall())));
}

std::string url_encode(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// The text of the first <tag>...</tag> in `xml`, XML entities decoded; nullopt if absent.
std::optional<std::string> xml_tag(const std::string& xml, const std::string& tag) {
    const auto open = xml.find("<" + tag + ">");
    if (open == std::string::npos) return std::nullopt;
    const auto start = open + tag.size() + 2;
    const auto close = xml.find("</" + tag + ">", start);
    if (close == std::string::npos) return std::nullopt;
    std::string v = xml.substr(start, close - start);
    static const std::pair<const char*, const char*> kEntities[] = {
        {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
    for (const auto& [from, to] : kEntities)
        for (auto p = v.find(from); p != std::string::npos; p = v.find(from, p + 1)) v.replace(p, std::strlen(from), to);
    return v;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw AwsError("CredentialsNotFound", "cannot read the web identity token file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

// One HTTP exchange on a fresh connection (credential endpoints are called rarely).
net::awaitable<rpc::HttpResponse> fetch(const std::string& url_text, rpc::HttpRequest req, std::chrono::milliseconds timeout,
                                        const std::string& what) {
    auto url = rpc::parse_url(url_text);
    if (!url) throw AwsError("BadEndpoint", what + ": not an http(s) URL: " + rpc::redact_url(url_text));
    req.target = url->target == "/" ? req.target : url->target + (req.target == "/" ? "" : req.target);
    auto ex = co_await net::this_coro::executor;
    rpc::HttpTransport t(ex, *url);
    try {
        co_return co_await t.request(std::move(req), timeout);
    } catch (const boost::system::system_error& e) {
        throw AwsError("ConnectionFailed", what + " (" + rpc::redact_url(url_text) + "): " + e.code().message(), true);
    }
}

TemporaryCredentials parse_credentials_json(const std::string& body, const std::string& what) {
    json j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("AccessKeyId") || !j.contains("SecretAccessKey") ||
        !j["AccessKeyId"].is_string() || !j["SecretAccessKey"].is_string())
        throw AwsError("BadReply", what + ": the reply carries no credentials");
    TemporaryCredentials t;
    t.creds.access_key_id = j["AccessKeyId"].get<std::string>();
    t.creds.secret_access_key = Secret(j["SecretAccessKey"].get<std::string>());
    if (j.contains("Token") && j["Token"].is_string()) t.creds.session_token = j["Token"].get<std::string>();
    t.expiration = wall_now() + std::chrono::hours(1);
    if (j.contains("Expiration") && j["Expiration"].is_string())
        if (auto e = parse_iso8601(j["Expiration"].get<std::string>())) t.expiration = *e;
    return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string base64_encode(ByteView data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<Bytes> base64_decode(const std::string& text) {
    if (text.size() % 4 != 0) return std::nullopt;
    Bytes out(text.size() / 4 * 3);
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    std::size_t len = static_cast<std::size_t>(n);
    if (!text.empty() && text.back() == '=') --len;
    if (text.size() > 1 && text[text.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(const std::string& text) {
    std::tm tm{};
    std::istringstream in(text);
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
    if (in.fail()) return std::nullopt;
    std::string rest;
    in >> rest;
    if (!rest.empty() && rest[0] == '.') {
        auto z = rest.find_first_not_of("0123456789", 1);
        rest = z == std::string::npos ? "" : rest.substr(z);
    }
    if (rest != "Z" && rest != "+00:00") return std::nullopt;
    // The clock counts nanoseconds in 64 bits (1677 to 2262): a time outside would wrap around, so
    // it is not one this clock can hold.
    const std::time_t t = timegm(&tm);
    constexpr auto kMaxSeconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max()).count();
    if (t < -kMaxSeconds || t > kMaxSeconds) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

TemporaryCredentials parse_sts_reply(const std::string& xml) {
    if (xml.find("<ErrorResponse") != std::string::npos || xml.find("<Error>") != std::string::npos) {
        const auto code = xml_tag(xml, "Code").value_or("UnknownError");
        throw AwsError(code, "STS AssumeRoleWithWebIdentity: " + code + ": " + xml_tag(xml, "Message").value_or(""),
                       code == "Throttling" || code == "IDPCommunicationError");
    }
    auto ak = xml_tag(xml, "AccessKeyId");
    auto sk = xml_tag(xml, "SecretAccessKey");
    auto tok = xml_tag(xml, "SessionToken");
    auto exp = xml_tag(xml, "Expiration");
    if (!ak || !sk || !tok || !exp) throw AwsError("BadReply", "STS AssumeRoleWithWebIdentity: the reply carries no credentials");
    auto when = parse_iso8601(*exp);
    if (!when) throw AwsError("BadReply", "STS AssumeRoleWithWebIdentity: malformed Expiration");
    TemporaryCredentials t;
    t.creds.access_key_id = *ak;
    t.creds.secret_access_key = Secret(*sk);
    t.creds.session_token = *tok;
    t.expiration = *when;
    return t;
}

std::pair<std::string, std::string> parse_error_reply(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    std::string code, message;
    if (j.is_object()) {
        for (const char* k : {"__type", "code", "Code"})
            if (j.contains(k) && j[k].is_string()) {
                code = j[k].get<std::string>();
                break;
            }
        for (const char* k : {"message", "Message"})
            if (j.contains(k) && j[k].is_string()) {
                message = j[k].get<std::string>();
                break;
            }
    }
    if (auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
    if (auto colon = code.find(':'); colon != std::string::npos) code = code.substr(0, colon);
    return {code, message};
}

std::string service_endpoint(const std::string& service, const std::string& region, const std::string& configured,
                             const EnvLookup& env) {
    if (!configured.empty()) return configured;
    std::string upper = service;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (auto v = env("AWS_ENDPOINT_URL_" + upper); v && !v->empty()) return *v;
    if (auto v = env("AWS_ENDPOINT_URL"); v && !v->empty()) return *v;
    return "https://" + service + "." + region + ".amazonaws.com";
}

// ---------------------------------------------------------------------------------------------

struct CredentialProvider::State {
    std::optional<StaticCredentials> configured;
    std::string region;
    EnvLookup env;
    std::string source;
    std::optional<TemporaryCredentials> cached;
};

CredentialProvider::CredentialProvider(std::optional<StaticCredentials> configured, std::string region, EnvLookup env)
    : state_(std::make_shared<State>()) {
    state_->configured = std::move(configured);
    state_->region = std::move(region);
    state_->env = std::move(env);
}

std::string CredentialProvider::source() const { return state_->source; }

void CredentialProvider::invalidate() { state_->cached.reset(); }

namespace {

std::string env_value(const EnvLookup& env, const char* key) { return env(key).value_or(""); }

//! Every source the chain tries, for the error when none has credentials; instance metadata last,
//! followed by how it ended ("failed: ..." or "is disabled").
constexpr const char* kNoCredentials =
    "no AWS credentials: none in the config, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set, no web identity "
    "(AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), no container credentials, and instance metadata ";

//! Temporary credentials and where they came from.
struct Fetched {
    TemporaryCredentials creds;
    std::string source;
};

//! Web identity (EKS pods): STS AssumeRoleWithWebIdentity with the token file's contents; nullopt
//! when AWS_WEB_IDENTITY_TOKEN_FILE or AWS_ROLE_ARN is not set.
net::awaitable<std::optional<Fetched>> from_web_identity(const EnvLookup& env, const std::string& region) {
    const std::string token_file = env_value(env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const std::string role_arn = env_value(env, "AWS_ROLE_ARN");
    if (token_file.empty() || role_arn.empty()) co_return std::nullopt;
    std::string session = env_value(env, "AWS_ROLE_SESSION_NAME");
    if (session.empty()) session = "keymaster-" + std::to_string(static_cast<long long>(keymaster::system_clock().wall()));
    rpc::HttpRequest req;
    req.method = "POST";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    req.body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + url_encode(role_arn) +
               "&RoleSessionName=" + url_encode(session) + "&WebIdentityToken=" + url_encode(read_file(token_file));
    const std::string endpoint = service_endpoint("sts", region, "", env);
    auto res = co_await fetch(endpoint, std::move(req), std::chrono::seconds(10), "STS AssumeRoleWithWebIdentity");
    auto t = parse_sts_reply(res.body);  // an error reply throws with STS's code and message
    if (res.status != 200) throw AwsError("BadReply", "STS AssumeRoleWithWebIdentity: HTTP " + std::to_string(res.status));
    spdlog::info("AWS credentials from web identity for {}; valid until {}", role_arn,
                 std::chrono::duration_cast<std::chrono::seconds>(t.expiration.time_since_epoch()).count());
    co_return Fetched{std::move(t), "web identity (" + role_arn + ")"};
}

//! The ECS task role's endpoint; nullopt when neither container credentials URI is set.
net::awaitable<std::optional<Fetched>> from_container(const EnvLookup& env) {
    const std::string rel = env_value(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const std::string full = env_value(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rel.empty() && full.empty()) co_return std::nullopt;
    rpc::HttpRequest req;
    req.method = "GET";
    if (auto tok = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN"); !tok.empty())
        req.headers.emplace_back("Authorization", tok);
    const std::string url = !rel.empty() ? "http://169.254.170.2" + rel : full;
    auto res = co_await fetch(url, std::move(req), std::chrono::seconds(2), "ECS container credentials");
    if (res.status != 200)
        throw AwsError("CredentialsNotFound", "ECS container credentials: HTTP " + std::to_string(res.status));
    co_return Fetched{parse_credentials_json(res.body, "ECS container credentials"), "container"};
}

//! The IMDSv2 session token; a failure means there is no instance metadata here, so the error
//! names every source that was tried.
net::awaitable<std::string> instance_metadata_token(const std::string& base, std::chrono::seconds timeout,
                                                    const std::string& what) {
    try {
        rpc::HttpRequest put;
        put.method = "PUT";
        put.target = "/latest/api/token";
        put.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
        auto r = co_await fetch(base, std::move(put), timeout, what);
        if (r.status != 200) throw AwsError("CredentialsNotFound", what + ": token request: HTTP " + std::to_string(r.status));
        co_return r.body;
    } catch (const AwsError& e) {
        throw AwsError("CredentialsNotFound", std::string(kNoCredentials) + "failed: " + e.what());
    }
}

//! EC2 instance metadata (IMDSv2: a session token, the attached role's name, its credentials);
//! nullopt when AWS_EC2_METADATA_DISABLED is true.
net::awaitable<std::optional<Fetched>> from_instance_metadata(const EnvLookup& env) {
    if (to_lower(env_value(env, "AWS_EC2_METADATA_DISABLED")) == "true") co_return std::nullopt;
    std::string base = env_value(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base.empty()) base = "http://169.254.169.254";
    while (!base.empty() && base.back() == '/') base.pop_back();
    const auto t = std::chrono::seconds(2);
    const std::string what = "EC2 instance metadata";
    const std::string token = co_await instance_metadata_token(base, t, what);
    rpc::HttpRequest list;
    list.method = "GET";
    list.target = "/latest/meta-data/iam/security-credentials/";
    list.headers = {{"X-aws-ec2-metadata-token", token}};
    auto r = co_await fetch(base, list, t, what);
    std::string role = r.body.substr(0, r.body.find('\n'));
    if (r.status != 200 || role.empty())
        throw AwsError("CredentialsNotFound", what + ": no IAM role is attached to this instance");
    rpc::HttpRequest get = list;
    get.target += role;
    r = co_await fetch(base, std::move(get), t, what);
    if (r.status != 200) throw AwsError("CredentialsNotFound", what + ": role " + role + ": HTTP " + std::to_string(r.status));
    co_return Fetched{parse_credentials_json(r.body, what), "instance metadata (" + role + ")"};
}

}  // namespace

net::awaitable<Credentials> CredentialProvider::get() {
    auto s = state_;
    if (s->configured && !s->configured->access_key_id.empty()) {
        s->source = "config";
        co_return Credentials{s->configured->access_key_id, s->configured->secret_access_key, s->configured->session_token};
    }
    const std::string key_id = env_value(s->env, "AWS_ACCESS_KEY_ID");
    const std::string secret = env_value(s->env, "AWS_SECRET_ACCESS_KEY");
    if (!key_id.empty() || !secret.empty()) {
        if (key_id.empty() || secret.empty())
            throw AwsError("CredentialsNotFound", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
        s->source = "environment";
        co_return Credentials{key_id, Secret(secret), env_value(s->env, "AWS_SESSION_TOKEN")};
    }
    // Temporary credentials: cached until five minutes before expiry.
    if (s->cached && wall_now() + kRefreshBefore < s->cached->expiration) co_return s->cached->creds;

    std::optional<Fetched> got = co_await from_web_identity(s->env, s->region);
    if (!got) got = co_await from_container(s->env);
    if (!got) got = co_await from_instance_metadata(s->env);
    if (!got)
        throw AwsError("CredentialsNotFound", std::string(kNoCredentials) + "is disabled");
    s->source = std::move(got->source);
    s->cached = std::move(got->creds);
    co_return s->cached->creds;
}

// ---------------------------------------------------------------------------------------------

namespace {

// Idle keep-alive connections per endpoint, owned by the io_context they were made on: the
// service is shut down (and the connections closed) before the context goes away.
class ConnectionPool : public net::execution_context::service {
public:
    using key_type = ConnectionPool;
    static inline net::execution_context::id id;
    explicit ConnectionPool(net::execution_context& ctx) : service(ctx) {}

    std::unique_ptr<rpc::HttpTransport> take(const std::string& endpoint) {
        std::lock_guard lock(mu_);
        auto& v = idle_[endpoint];
        if (v.empty()) return nullptr;
        auto t = std::move(v.back());
        v.pop_back();
        return t;
    }
    void give(const std::string& endpoint, std::unique_ptr<rpc::HttpTransport> t) {
        std::lock_guard lock(mu_);
        idle_[endpoint].push_back(std::move(t));
    }

private:
    void shutdown() override {
        std::lock_guard lock(mu_);
        idle_.clear();
    }
    std::mutex mu_;
    std::map<std::string, std::vector<std::unique_ptr<rpc::HttpTransport>>> idle_;
};

// A KMS JSON request signed with SigV4 for `region`.
rpc::HttpRequest signed_kms_request(const rpc::Url& url, const std::string& region, const std::string& action,
                                    const std::string& payload, const Credentials& creds) {
    sigv4::Request req;
    req.method = "POST";
    req.target = url.target;
    const std::string amz_date = sigv4::amz_date_now();
    req.headers = {{"Host", rpc::host_header(url)},
                   {"Content-Type", "application/x-amz-json-1.1"},
                   {"X-Amz-Target", "TrentService." + action},
                   {"X-Amz-Date", amz_date}};
    if (!creds.session_token.empty()) req.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
    req.body = payload;
    const auto signed_req = sigv4::sign(req, creds, {region, "kms", amz_date});
    rpc::HttpRequest http;
    http.method = "POST";
    http.target = req.target;
    http.headers = req.headers;
    http.headers.emplace_back("Authorization", signed_req.authorization);
    http.body = payload;
    return http;
}

// Worth another attempt: the service's own trouble or throttling, not a refusal of the request.
bool retryable_kms_error(unsigned status, const std::string& code) {
    return status >= 500 || status == 429 || code == "ThrottlingException" || code == "KMSInternalException" ||
           code == "DependencyTimeoutException" || code == "ServiceUnavailableException";
}

}  // namespace

KmsClient::KmsClient(std::string region, std::string endpoint, std::shared_ptr<CredentialProvider> creds)
    : region_(std::move(region)), endpoint_(std::move(endpoint)), creds_(std::move(creds)) {}

KmsClient::~KmsClient() = default;

net::awaitable<json> KmsClient::call(std::string action, json body, std::string subject) {
    const std::string where = "KMS " + action + " for " + subject + " (" + region_ + ")";
    auto url = rpc::parse_url(endpoint_);
    if (!url) throw AwsError("BadEndpoint", where + ": the endpoint is not an http(s) URL: " + rpc::redact_url(endpoint_));
    auto ex = co_await net::this_coro::executor;
    const std::string payload = body.dump();
    auto backoff = first_backoff;
    bool refreshed = false;
    for (int attempt = 1;; ++attempt) {
        auto& pool = net::use_service<ConnectionPool>(net::query(ex, net::execution::context));
        std::unique_ptr<rpc::HttpTransport> t = pool.take(endpoint_);
        if (!t) t = std::make_unique<rpc::HttpTransport>(ex, *url);

        std::string code, message;
        bool retryable = false;
        try {
            auto creds = co_await creds_->get();
            auto res = co_await t->request(signed_kms_request(*url, region_, action, payload, creds), timeout);
            if (res.status == 200) {
                pool.give(endpoint_, std::move(t));
                json j = json::parse(res.body, nullptr, false);
                if (j.is_discarded()) throw AwsError("BadReply", where + ": the reply is not JSON");
                co_return j;
            }
            std::tie(code, message) = parse_error_reply(res.body);
            if (code.empty()) code = "HTTP" + std::to_string(res.status);
            retryable = retryable_kms_error(res.status, code);
            if (code == "ExpiredTokenException" && !refreshed) {
                creds_->invalidate();
                refreshed = true;
                retryable = true;
            }
            pool.give(endpoint_, std::move(t));
        } catch (const AwsError& e) {
            // A credential source failed: its message already says which and why.
            if (!e.retryable() || attempt >= attempts) throw AwsError(e.code(), where + ": " + e.what(), e.retryable());
            code = e.code();
            message = e.what();
            retryable = true;
        } catch (const boost::system::system_error& e) {
            code = e.code() == net::error::timed_out ? "Timeout" : "ConnectionFailed";
            message = e.code().message() + " (" + rpc::redact_url(endpoint_) + ")";
            retryable = true;
        }
        std::string text = where + ": " + code + (message.empty() ? "" : ": " + message);
        if (code == "UnrecognizedClientException" || code == "InvalidSignatureException" ||
            code == "IncompleteSignatureException")
            text += " (check the AWS credentials from " + creds_->source() + ")";
        if (!retryable || attempt >= attempts) {
            if (retryable) text += " (gave up after " + std::to_string(attempt) + " attempts)";
            throw AwsError(code, text, retryable);
        }
        spdlog::warn("{}; retrying in {} ms", text, backoff.count());
        net::steady_timer timer(ex);
        timer.expires_after(backoff);
        co_await timer.async_wait(net::use_awaitable);
        backoff *= 2;
    }
}

}  // namespace keymaster::aws
