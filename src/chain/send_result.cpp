#include "keymaster/chain/send_result.hpp"

#include <array>

#include "keymaster/common/text.hpp"
#include "keymaster/rpc/client.hpp"

namespace keymaster::chain {

namespace {

// Lower-case fragments of each client's words (the table test quotes the clients' sources).
// Nethermind's results (AlreadyKnown, OldNonce, FeeTooLow, InsufficientFunds) lower-case without spaces.
constexpr std::array kKnown = {"already known",      "known transaction",   "already imported", "alreadyimported",
                               "already exists",     "already in mempool",  "already in the mempool",
                               "alreadyknown",       "ownnoncealreadyused", "existing tx with same hash",
                               "temporarily banned"};
constexpr std::array kNonce = {"nonce too low",       "nonce is too low",  "oldnonce", "old nonce",
                               "correct nonce",       "invalid transaction nonce", "invalid nonce",
                               "invalid sequence",    "stale", "outdated"};
// Words that prove the node cannot hold the transaction: it could never be valid as it is.
constexpr std::array kRefused = {"insufficient funds",  "insufficientfunds", "insufficient balance", "enough funds",        "upfront cost exceeds",  "intrinsic gas",   "exceeds block gas limit",
                                 "gas limit exceeds",   "gaslimitexceeded",      "invalid sender",  "invalid signature",
                                 "invalid chain id",    "replay-protected",      "exceeds the configured cap",
                                 "fee cap exceeded",    "higher than max fee per gas", "negative value", "oversized data",
                                 "would cause overdraft"};
constexpr std::array kPrice = {"underpriced",         "fee too low",   "feetoolow",      "gas price too low",
                               "price too low",       "less than block base fee", "below configured minimum",
                               "priority is too low", "too low for the next block", "is too low"};

template <std::size_t N>
bool any_of(const std::string& m, const std::array<const char*, N>& words) {
    for (const char* w : words)
        if (m.find(w) != std::string::npos) return true;
    return false;
}

}  // namespace

SendHint classify_send_error(std::string_view message) {
    const auto m = to_lower(message);
    if (any_of(m, kKnown)) return SendHint::kAlreadyKnown;
    if (any_of(m, kNonce)) return SendHint::kNonceTooLow;
    if (any_of(m, kRefused)) return SendHint::kRefused;
    if (any_of(m, kPrice)) return SendHint::kUnderpriced;
    return SendHint::kOther;
}

SendHint classify_send(const rpc::CallResult* result) {
    if (!result) return SendHint::kNoAnswer;
    if (result->ok()) return SendHint::kHash;
    if (!result->error) return SendHint::kNoAnswer;
    return classify_send_error(result->error->message());
}

SendVerdict decide_send(SendHint hint, const SendEvidence& ev) {
    if (hint == SendHint::kHash) return SendVerdict::kHeld;
    if (!ev.answered) return SendVerdict::kUnknown;
    if (ev.held || ev.mined) return SendVerdict::kHeld;
    if (hint == SendHint::kRefused) return SendVerdict::kFailed;
    return SendVerdict::kUnknown;
}

std::string describe_evidence(const SendEvidence& ev, std::uint64_t nonce) {
    if (!ev.answered) return "the chain could not be asked";
    if (ev.mined) return "mined";
    if (ev.held) return "held by the node";
    if (ev.latest_nonce && *ev.latest_nonce > nonce)
        return "not held; nonce " + std::to_string(nonce) + " is taken (the bank's latest nonce is " +
               std::to_string(*ev.latest_nonce) + ")";
    return "not held by the node";
}

std::string_view hint_name(SendHint hint) {
    switch (hint) {
        case SendHint::kHash: return "accepted";
        case SendHint::kAlreadyKnown: return "already known";
        case SendHint::kNonceTooLow: return "nonce too low";
        case SendHint::kUnderpriced: return "underpriced";
        case SendHint::kRefused: return "refused";
        case SendHint::kOther: return "unrecognised words";
        case SendHint::kNoAnswer: return "no answer";
    }
    return "?";
}

}  // namespace keymaster::chain
