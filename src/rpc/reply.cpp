// Interpreting JSON-RPC replies: pure code, kept apart from the coroutines so it can be fuzzed.
#include <algorithm>
#include <cctype>

#include "keymaster/common/text.hpp"
#include "keymaster/rpc/client.hpp"

namespace keymaster::rpc {

using nlohmann::json;

bool is_rate_limit(int code, const std::string& message) {
    const std::string m = to_lower(message);
    return code == -32005 || code == 429 || m.find("rate limit") != std::string::npos ||
           m.find("too many requests") != std::string::npos || m.find("rate-limit") != std::string::npos;
}

ParsedReply parse_reply(const std::string& body, const std::map<std::uint64_t, std::size_t>& by_id) {
    ParsedReply out;
    json reply;
    try {
        reply = json::parse(body);
    } catch (const json::exception&) {
        out.retry_reason = "malformed response (not JSON)";
        return out;
    }
    if (reply.is_object()) reply = json::array({reply});
    if (!reply.is_array()) {
        out.retry_reason = "malformed response";
        return out;
    }
    out.results.reserve(reply.size());
    for (auto& item : reply) {
        if (!item.is_object()) continue;
        const auto idit = item.find("id");
        const auto errit = item.find("error");
        const bool has_error = errit != item.end() && errit->is_object();
        int code = 0;
        std::string message;
        if (has_error) {
            const auto c = errit->find("code");
            const auto m = errit->find("message");
            if (c != errit->end() && c->is_number_integer()) code = c->get<int>();
            if (m != errit->end() && m->is_string()) message = m->get<std::string>();
        }
        if (idit == item.end() || !idit->is_number_unsigned() || !by_id.count(idit->get<std::uint64_t>())) {
            // An error for the whole request (id null): rate limit or otherwise.
            if (has_error && is_rate_limit(code, message)) out.retry_reason = "rate limited: " + message;
            continue;
        }
        const std::size_t i = by_id.at(idit->get<std::uint64_t>());
        if (has_error) {
            if (is_rate_limit(code, message)) {
                out.retry_reason = "rate limited: " + message;
                continue;
            }
            const auto d = errit->find("data");
            out.results.emplace_back(i, CallResult{std::nullopt, RpcError(code, message, d != errit->end() ? *d : json())});
        } else if (auto r = item.find("result"); r != item.end()) {
            out.results.emplace_back(i, CallResult{std::move(*r), std::nullopt});
        }
    }
    return out;
}

}  // namespace keymaster::rpc
