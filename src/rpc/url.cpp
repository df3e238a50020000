#include "keymaster/rpc/url.hpp"

#include "keymaster/common/text.hpp"

#include <algorithm>
#include <cctype>

namespace keymaster::rpc {

std::optional<Url> parse_url(const std::string& text) {
    Url url;
    std::string rest;
    const std::string lower = to_lower(std::string_view(text).substr(0, 8));
    if (lower.rfind("http://", 0) == 0) {
        rest = text.substr(7);
    } else if (lower.rfind("https://", 0) == 0) {
        url.tls = true;
        rest = text.substr(8);
    } else {
        return std::nullopt;
    }
    const auto auth_end = rest.find_first_of("/?#");
    std::string authority = rest.substr(0, auth_end);
    url.target = auth_end == std::string::npos ? "/" : rest.substr(auth_end);
    if (auto h = url.target.find('#'); h != std::string::npos) url.target.erase(h);
    if (!url.target.empty() && url.target[0] == '?') url.target.insert(0, "/");
    if (url.target.empty()) url.target = "/";
    if (auto at = authority.rfind('@'); at != std::string::npos) {
        url.userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
    }
    if (!authority.empty() && authority[0] == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) return std::nullopt;
        url.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return std::nullopt;
            url.port = authority.substr(close + 2);
        }
    } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
        url.host = authority.substr(0, colon);
        url.port = authority.substr(colon + 1);
    } else {
        url.host = authority;
    }
    if (url.host.empty()) return std::nullopt;
    if (url.port.empty()) url.port = url.tls ? "443" : "80";
    if (!std::all_of(url.port.begin(), url.port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        url.port.size() > 5 || std::stoul(url.port) > 65535)
        return std::nullopt;
    return url;
}

std::string host_header(const Url& url) {
    const bool v6 = url.host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + url.host + "]" : url.host;
    const bool default_port = url.port == (url.tls ? "443" : "80");
    return default_port ? host : host + ":" + url.port;
}

std::string redact_url(const std::string& text) {
    auto url = parse_url(text);
    if (!url) return "<invalid url>";
    const bool v6 = url->host.find(':') != std::string::npos;
    return std::string(url->tls ? "https://" : "http://") + (v6 ? "[" + url->host + "]" : url->host) + ":" + url->port;
}

}  // namespace keymaster::rpc
