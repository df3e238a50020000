#pragma once

#include <nlohmann/json.hpp>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "keymaster/common/bytes.hpp"
#include "keymaster/signer/sigv4.hpp"

//! AWS as keymaster uses it: credentials from the standard chain, and the KMS JSON API signed
//! with Signature Version 4. Nothing here logs or returns a secret.
namespace keymaster::aws {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

//! An AWS failure: `code` is the AWS error code ("AccessDeniedException", "NotFoundException",
//! "ThrottlingException", ...) or a transport code ("Timeout", "ConnectionFailed", "BadReply");
//! what() is the full operator-readable sentence.
class AwsError : public std::runtime_error {
public:
    AwsError(std::string code, const std::string& what, bool retryable = false)
        : std::runtime_error(what), code_(std::move(code)), retryable_(retryable) {}
    const std::string& code() const { return code_; }
    bool retryable() const { return retryable_; }

private:
    std::string code_;
    bool retryable_;
};

//! Credentials the config carries (Nomad's `accessKeyId`, `secretAccessKey`, `sessionToken`).
struct StaticCredentials {
    std::string access_key_id;
    Secret secret_access_key;
    std::string session_token;
};

//! The AWS credential chain, in order: the config's fields; AWS_ACCESS_KEY_ID /
//! AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; web identity (AWS_WEB_IDENTITY_TOKEN_FILE and
//! AWS_ROLE_ARN, through STS AssumeRoleWithWebIdentity: EKS pods); the ECS container endpoint
//! (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI); EC2 instance metadata (IMDSv2).
//! Temporary credentials are refreshed five minutes before they expire. Safe to share between
//! coroutines of one thread.
class CredentialProvider {
public:
    CredentialProvider(std::optional<StaticCredentials> configured, std::string region, EnvLookup env);

    //! Current credentials; throws AwsError when no source has any.
    boost::asio::awaitable<signer::sigv4::Credentials> get();
    //! Forgets cached temporary credentials (after the service said they expired).
    void invalidate();
    //! Where the credentials come from ("config", "environment", "web identity", ...); empty before get().
    std::string source() const;

private:
    struct State;
    std::shared_ptr<State> state_;
};

//! Where a service's API lives: the override (config `endpoint`, then AWS_ENDPOINT_URL_<SERVICE>,
//! then AWS_ENDPOINT_URL), else https://<service>.<region>.amazonaws.com.
std::string service_endpoint(const std::string& service, const std::string& region, const std::string& configured,
                             const EnvLookup& env);

//! Parses an STS AssumeRoleWithWebIdentity reply (XML); throws AwsError on an error reply.
struct TemporaryCredentials {
    signer::sigv4::Credentials creds;
    std::chrono::system_clock::time_point expiration;
};
TemporaryCredentials parse_sts_reply(const std::string& xml);

//! "2026-11-28T10:00:00Z" (also with fractional seconds) to a time point; nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(const std::string& text);

//! A KMS error reply ({"__type": "...#Code", "message": "..."}) as (code, message).
std::pair<std::string, std::string> parse_error_reply(const std::string& body);

std::string base64_encode(ByteView data);
std::optional<Bytes> base64_decode(const std::string& text);

//! The KMS JSON API (TrentService) for one region and endpoint. Retries throttling, 5xx and
//! transport failures with backoff (up to `attempts`); every request is signed with SigV4.
//! Connections are kept alive in a pool owned by the calling io_context, so a client may be used
//! from several io_contexts one after another.
class KmsClient {
public:
    KmsClient(std::string region, std::string endpoint, std::shared_ptr<CredentialProvider> creds);
    ~KmsClient();

    //! Calls `action` ("Sign", "GetPublicKey", ...). `subject` (usually the key id) goes into error
    //! messages: "KMS <action> for <subject> (region): <code>: <message>".
    boost::asio::awaitable<nlohmann::json> call(std::string action, nlohmann::json body, std::string subject);

    const std::string& region() const { return region_; }
    const std::string& endpoint() const { return endpoint_; }
    CredentialProvider& credentials() { return *creds_; }

    int attempts = 4;
    std::chrono::milliseconds first_backoff{200};
    std::chrono::milliseconds timeout{10000};

private:
    std::string region_;
    std::string endpoint_;
    std::shared_ptr<CredentialProvider> creds_;
};

}  // namespace keymaster::aws
