#include <catch2/catch.hpp>

#include "keymaster/chain/send_result.hpp"
#include "keymaster/rpc/client.hpp"

using namespace keymaster;
using chain::SendVerdict;

TEST_CASE("send results: one classifier for every node's words", "[chain][send]") {
    const std::vector<std::pair<const char*, SendVerdict>> rows = {
        {"already known", SendVerdict::kAlreadyKnown},                        // geth
        {"known transaction: 0xabc", SendVerdict::kAlreadyKnown},              // older geth
        {"Transaction with the same hash was already imported.", SendVerdict::kAlreadyKnown},  // OpenEthereum
        {"transaction already exists in the pool", SendVerdict::kAlreadyKnown},
        {"nonce too low", SendVerdict::kNonceTooLow},
        {"nonce too low: next nonce 5, tx nonce 4", SendVerdict::kNonceTooLow},
        {"Nonce is too low", SendVerdict::kNonceTooLow},
        {"replacement transaction underpriced", SendVerdict::kUnderpriced},
        {"transaction underpriced", SendVerdict::kUnderpriced},
        {"max fee per gas less than block base fee", SendVerdict::kUnderpriced},
        {"insufficient funds for gas * price + value", SendVerdict::kRefused},
        {"intrinsic gas too low", SendVerdict::kRefused},
    };
    for (const auto& [msg, want] : rows) {
        INFO(msg);
        CHECK(chain::classify_send_error(msg) == want);
        rpc::CallResult r;
        r.error = rpc::RpcError(-32000, msg);
        CHECK(chain::classify_send(&r) == want);
    }
    rpc::CallResult ok;
    ok.result = "0x1234";
    CHECK(chain::classify_send(&ok) == SendVerdict::kAccepted);
    CHECK(chain::classify_send(nullptr) == SendVerdict::kUnknown);
    const rpc::CallResult empty;  // neither result nor error: a malformed reply
    CHECK(chain::classify_send(&empty) == SendVerdict::kUnknown);
    CHECK(chain::held_by_node(SendVerdict::kAlreadyKnown));
    CHECK_FALSE(chain::held_by_node(SendVerdict::kUnknown));
}
