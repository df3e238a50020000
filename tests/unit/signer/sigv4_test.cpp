#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>

#include "keymaster/signer/sigv4.hpp"
#include "vectors.hpp"

using namespace keymaster;
namespace sigv4 = keymaster::signer::sigv4;

namespace {

// A .req file: request line, headers (indented lines continue the previous one), blank line, body.
sigv4::Request parse_req(const std::string& text) {
    sigv4::Request r;
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    const auto sp = line.find(' ');
    const auto http = line.rfind(" HTTP/");
    r.method = line.substr(0, sp);
    r.target = line.substr(sp + 1, http - sp - 1);
    while (std::getline(in, line)) {
        if (line.empty()) break;
        if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
            r.headers.back().second += "\n" + line;
            continue;
        }
        const auto colon = line.find(':');
        r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    }
    std::stringstream body;
    body << in.rdbuf();
    r.body = body.str();
    return r;
}

}  // namespace

TEST_CASE("sigv4: every case of the AWS Signature Version 4 test suite", "[sigv4]") {
    namespace fs = std::filesystem;
    const auto root = test::vectors_dir() / "aws-sigv4-test-suite/aws4_testsuite";
    sigv4::Credentials creds{"AKIDEXAMPLE", Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), ""};
    const sigv4::Scope scope{"us-east-1", "service", "20150830T123600Z"};
    int cases = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (entry.path().extension() != ".req") continue;
        const auto base = entry.path().parent_path() / entry.path().stem();
        INFO(base.filename().string());
        const auto req = parse_req(test::read_text(entry.path()));
        // This case signs with temporary credentials: the token is not in the .req; the signer adds and
        // signs it (its value is in the .sreq).
        auto c = creds;
        if (base.filename() == "get-vanilla-with-session-token") {
            const auto sreq = parse_req(test::read_text(base.string() + ".sreq"));
            for (const auto& [name, value] : sreq.headers)
                if (name == "X-Amz-Security-Token") c.session_token = value;
            REQUIRE_FALSE(c.session_token.empty());
        }
        const auto s = sigv4::sign(req, c, scope);
        CHECK(s.canonical_request == test::read_text(base.string() + ".creq"));
        CHECK(s.string_to_sign == test::read_text(base.string() + ".sts"));
        CHECK(s.authorization == test::read_text(base.string() + ".authz"));
        ++cases;
    }
    CHECK(cases == 34);
}

TEST_CASE("sigv4: a session token and X-Amz-Date are signed when the request lacks them", "[sigv4]") {
    sigv4::Request req{"POST", "/", {{"Host", "kms.us-east-1.amazonaws.com"}}, "{}"};
    sigv4::Credentials creds{"AKID", Secret("secret"), "TOKEN"};
    const auto s = sigv4::sign(req, creds, {"us-east-1", "kms", "20260101T000000Z"});
    CHECK(s.canonical_request.find("x-amz-date:20260101T000000Z\n") != std::string::npos);
    CHECK(s.canonical_request.find("x-amz-security-token:TOKEN\n") != std::string::npos);
    CHECK(s.authorization.find("SignedHeaders=host;x-amz-date;x-amz-security-token,") != std::string::npos);
    CHECK(s.authorization.find("secret") == std::string::npos);
    CHECK(sigv4::amz_date_now().size() == 16);
}
