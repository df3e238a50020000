#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keymaster::rpc {
struct CallResult;
}

namespace keymaster::chain {

//! What a node's answer to eth_sendRawTransaction *says*: a hint for the log line and for what to
//! try next (an underpriced replacement gets bumped fees), never the verdict on its own. Every
//! node and provider words its answers differently; the verdict comes from the chain (SendEvidence).
enum class SendHint {
    kHash,          //!< a hash came back
    kAlreadyKnown,  //!< words for "these very bytes are here already"
    kNonceTooLow,   //!< words for "the nonce is used" (by this very transaction, or another)
    kUnderpriced,   //!< words for "fees too low" (a replacement, a re-broadcast, the pool's floor)
    kRefused,       //!< words that prove it cannot be pending: funds, intrinsic gas, gas limit,
                    //!< signature, chain id, fee cap
    kOther,         //!< an error in words no classifier knows
    kNoAnswer,      //!< transport error, lost reply, malformed answer
};

//! What the chain shows about one transaction after an answer other than a hash: its own hash
//! looked up, its receipt, and the bank's latest and pending nonce (one batch per network).
struct SendEvidence {
    bool answered = false;  //!< the lookup got an answer for this transaction (else nothing is known)
    bool held = false;      //!< eth_getTransactionByHash found it
    bool mined = false;     //!< a receipt
    std::optional<std::uint64_t> latest_nonce;   //!< the bank's
    std::optional<std::uint64_t> pending_nonce;  //!< the bank's
};

//! The verdict on one broadcast transaction.
enum class SendVerdict {
    kHeld,     //!< the node holds it or mined it: sent
    kFailed,   //!< refused in words that prove it cannot be pending, and the node does not hold it
    kUnknown,  //!< anything else: stays `sent` for reconcile, exactly as a lost answer
};

//! The classifier of a node's words: `result` null means no answer. Pure.
[[nodiscard]] SendHint classify_send(const rpc::CallResult* result);
//! The same, for a node's error message alone.
[[nodiscard]] SendHint classify_send_error(std::string_view message);
//! The verdict: from the answer alone for a hash; else from the evidence, the words only ever
//! turning a transaction the node does not hold into a failure. Pure.
[[nodiscard]] SendVerdict decide_send(SendHint hint, const SendEvidence& evidence);
//! One line on the evidence, for the log ("held by the node", "nonce 4 taken by another
//! transaction", ...). `nonce` is the transaction's.
[[nodiscard]] std::string describe_evidence(const SendEvidence& evidence, std::uint64_t nonce);
[[nodiscard]] std::string_view hint_name(SendHint hint);

//! Sent, or mined: the node holds the transaction.
[[nodiscard]] inline bool held_by_node(SendVerdict v) { return v == SendVerdict::kHeld; }

}  // namespace keymaster::chain
