#pragma once

#include <string_view>

namespace keymaster::rpc {
struct CallResult;
}

namespace keymaster::chain {

//! What a node's answer to eth_sendRawTransaction says about the transaction.
enum class SendVerdict {
    kAccepted,      //!< a hash came back
    kAlreadyKnown,  //!< the node has these very bytes already (a retried request, a re-broadcast)
    kNonceTooLow,   //!< the nonce is used: by this very transaction (look its hash up) or another
    kUnderpriced,   //!< refused for its fees (a replacement, or a nonce the node holds another transaction for)
    kRefused,       //!< refused for another reason: it will not be mined
    kUnknown,       //!< no answer (transport error, lost reply): it may or may not have reached the node
};

//! The one classifier of send results: `result` null means no answer. Pure.
[[nodiscard]] SendVerdict classify_send(const rpc::CallResult* result);
//! The same, for a node's error message alone.
[[nodiscard]] SendVerdict classify_send_error(std::string_view message);
//! Accepted or already known: the node holds the transaction.
[[nodiscard]] inline bool held_by_node(SendVerdict v) {
    return v == SendVerdict::kAccepted || v == SendVerdict::kAlreadyKnown;
}

}  // namespace keymaster::chain
