#pragma once

#include <string>
#include <utility>
#include <vector>

#include "keymaster/common/secret.hpp"

//! AWS Signature Version 4 (docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-signing.html),
//! with OpenSSL's SHA-256 and HMAC. Tested against the official SigV4 test suite.
namespace keymaster::signer::sigv4 {

//! An HTTP request to sign. `target` is the path and query as sent (raw or percent-encoded).
struct Request {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;  //!< as sent, in order; duplicates allowed
    std::string body;
};

//! AWS credentials; the secret is never printed.
struct Credentials {
    std::string access_key_id;
    Secret secret_access_key;
    std::string session_token;  //!< temporary credentials: sent and signed as X-Amz-Security-Token
};

struct Scope {
    std::string region;
    std::string service;
    std::string amz_date;  //!< "20150830T123600Z"; also sent as X-Amz-Date
};

//! The steps, for tests and for error reports (none holds a secret).
struct Signed {
    std::string canonical_request;
    std::string string_to_sign;
    std::string authorization;  //!< the Authorization header value
};

//! Signs `req` (every header it carries is signed). Does not modify the request: the caller sends
//! X-Amz-Date (and X-Amz-Security-Token, when given) with the values signed here; `sign` adds them
//! to the signed set when the request lacks them.
Signed sign(const Request& req, const Credentials& creds, const Scope& scope);

//! The current time as "YYYYMMDDTHHMMSSZ".
std::string amz_date_now();

//! Lower-case hex SHA-256.
std::string sha256_hex(const std::string& data);

}  // namespace keymaster::signer::sigv4
