#include "keymaster/signer/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <stdexcept>

#include "keymaster/common/clock.hpp"
#include "keymaster/common/hex.hpp"
#include "keymaster/common/text.hpp"

namespace keymaster::signer::sigv4 {
namespace {

std::string hmac(const std::string& key, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out, &len))
        throw std::runtime_error("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<char*>(out), len);
}

bool unreserved(unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~'; }

std::string encode(const std::string& s, bool keep_slash) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (unreserved(c) || (keep_slash && c == '/')) out += static_cast<char>(c);
        else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        }
    }
    return out;
}

std::string decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) && std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// RFC 3986 remove_dot_segments, and empty segments collapsed (as AWS does for services other than S3).
std::string normalize_path(const std::string& path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i <= path.size()) {
        const auto j = path.find('/', i);
        const std::string seg = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
        if (seg == "..") {
            if (!out.empty()) out.pop_back();
        } else if (!seg.empty() && seg != ".") {
            out.push_back(seg);
        }
        if (j == std::string::npos) break;
        i = j + 1;
    }
    std::string result = "/";
    for (std::size_t k = 0; k < out.size(); ++k) result += out[k] + (k + 1 < out.size() ? "/" : "");
    const bool trailing = path.size() > 1 && (path.back() == '/' || path.ends_with("/.") || path.ends_with("/.."));
    if (trailing && result.back() != '/') result += '/';
    return result;
}

std::string trim_collapse(const std::string& v) {
    std::string out;
    bool space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = !out.empty();
        } else {
            if (space) out += ' ';
            out += c;
            space = false;
        }
    }
    return out;
}

}  // namespace

std::string sha256_hex(const std::string& data) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
    return to_hex(ByteView(d, sizeof d), false);
}

std::string amz_date_now() {
    const auto t = static_cast<std::time_t>(keymaster::system_clock().wall());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[17];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

Signed sign(const Request& req, const Credentials& creds, const Scope& scope) {
    const auto q = req.target.find('?');
    const std::string path = req.target.substr(0, q);
    const std::string query = q == std::string::npos ? "" : req.target.substr(q + 1);

    // Canonical query: decoded, re-encoded, sorted by key then value.
    std::vector<std::pair<std::string, std::string>> params;
    std::size_t i = 0;
    while (!query.empty() && i <= query.size()) {
        const auto amp = query.find('&', i);
        const std::string part = query.substr(i, amp == std::string::npos ? std::string::npos : amp - i);
        if (!part.empty()) {
            const auto eq = part.find('=');
            params.emplace_back(encode(decode(part.substr(0, eq)), false),
                                eq == std::string::npos ? "" : encode(decode(part.substr(eq + 1)), false));
        }
        if (amp == std::string::npos) break;
        i = amp + 1;
    }
    std::sort(params.begin(), params.end());
    std::string cquery;
    for (const auto& [k, v] : params) cquery += (cquery.empty() ? "" : "&") + k + "=" + v;

    // Canonical headers: lower-case names, trimmed values, duplicates joined with commas in order.
    std::map<std::string, std::string> headers;
    for (const auto& [name, value] : req.headers) {
        const std::string n = to_lower(name);
        auto& slot = headers[n];
        slot += (slot.empty() ? "" : ",") + trim_collapse(value);
    }
    if (!headers.count("x-amz-date")) headers["x-amz-date"] = scope.amz_date;
    if (!creds.session_token.empty() && !headers.count("x-amz-security-token"))
        headers["x-amz-security-token"] = creds.session_token;
    std::string cheaders, signed_headers;
    for (const auto& [n, v] : headers) {
        cheaders += n + ":" + v + "\n";
        signed_headers += (signed_headers.empty() ? "" : ";") + n;
    }

    Signed out;
    out.canonical_request = req.method + "\n" + encode(normalize_path(path), true) + "\n" + cquery + "\n" + cheaders + "\n" +
                            signed_headers + "\n" + sha256_hex(req.body);
    const std::string date = scope.amz_date.substr(0, 8);
    const std::string cscope = date + "/" + scope.region + "/" + scope.service + "/aws4_request";
    out.string_to_sign = "AWS4-HMAC-SHA256\n" + scope.amz_date + "\n" + cscope + "\n" + sha256_hex(out.canonical_request);
    std::string key = hmac("AWS4" + creds.secret_access_key.reveal(), date);
    key = hmac(key, scope.region);
    key = hmac(key, scope.service);
    key = hmac(key, "aws4_request");
    const std::string sig = hmac(key, out.string_to_sign);
    std::fill(key.begin(), key.end(), '\0');
    out.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" + cscope +
                        ", SignedHeaders=" + signed_headers + ", Signature=" +
                        to_hex(ByteView(reinterpret_cast<const std::uint8_t*>(sig.data()), sig.size()), false);
    return out;
}

}  // namespace keymaster::signer::sigv4
