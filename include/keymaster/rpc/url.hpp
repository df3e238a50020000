#pragma once

#include <optional>
#include <string>

namespace keymaster::rpc {

//! An http(s) URL split for a client connection.
struct Url {
    bool tls = false;
    std::string host;    //!< without brackets for IPv6 literals
    std::string port;    //!< "80"/"443" when absent
    std::string target;  //!< path and query, "/" when absent
    std::string userinfo;  //!< "user:password" if present (sent as Basic auth)
};

//! Parses "http://host[:port][/path][?query]" and https; nullopt for anything else.
std::optional<Url> parse_url(const std::string& text);

//! The Host header for `url`: the port is left out when it is the scheme's default.
std::string host_header(const Url& url);

//! Scheme, host and port only: no path, query or credentials (they may carry API keys). Safe to log.
std::string redact_url(const std::string& text);

}  // namespace keymaster::rpc
