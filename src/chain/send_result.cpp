#include "keymaster/chain/send_result.hpp"

#include "keymaster/common/text.hpp"
#include "keymaster/rpc/client.hpp"

namespace keymaster::chain {

SendVerdict classify_send_error(std::string_view message) {
    const auto m = to_lower(message);
    auto has = [&](std::string_view s) { return m.find(s) != std::string::npos; };
    if (has("already known") || has("known transaction") || has("already imported") || has("already exists") ||
        has("already in the mempool"))
        return SendVerdict::kAlreadyKnown;
    if (has("nonce too low") || has("nonce is too low") || has("old nonce")) return SendVerdict::kNonceTooLow;
    if (has("underpriced") || has("fee too low") || has("gas price too low") || has("max fee per gas less than"))
        return SendVerdict::kUnderpriced;
    return SendVerdict::kRefused;
}

SendVerdict classify_send(const rpc::CallResult* result) {
    if (!result) return SendVerdict::kUnknown;
    if (result->ok()) return SendVerdict::kAccepted;
    if (!result->error) return SendVerdict::kUnknown;
    return classify_send_error(result->error->message());
}

}  // namespace keymaster::chain
