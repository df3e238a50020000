#include "keymaster/common/fault.hpp"

namespace keymaster {
namespace {

class FaultCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "keymaster.round"; }
    std::string message(int ev) const override {
        switch (static_cast<Fault>(ev)) {
            case Fault::kNone: return "ok";
            case Fault::kConfig: return "config error";
            case Fault::kPoll: return "network cannot be read";
            case Fault::kChainId: return "chain id mismatch";
            case Fault::kBalance: return "balance unknown";
            case Fault::kBalanceMismatch: return "balance does not show a confirmed top-up";
            case Fault::kBankLow: return "bank below bankThreshold";
            case Fault::kBank: return "bank cannot cover the top-ups";
            case Fault::kLedger: return "ledger cannot be read or written";
            case Fault::kLimit: return "held back by a spend limit";
            case Fault::kTopUp: return "top-up failed";
            case Fault::kFees: return "no acceptable fees";
            case Fault::kSigning: return "signing failed";
            case Fault::kInternal: return "internal error";
            case Fault::kDeclined: return "confirmation declined";
            case Fault::kSender: return "another process sends from this bank on this chain";
        }
        return "unknown fault";
    }
};

}  // namespace

const boost::system::error_category& fault_category() noexcept {
    static const FaultCategory kCategory;
    return kCategory;
}

std::string_view fault_scope(Fault f) noexcept {
    switch (f) {
        case Fault::kNone: return "";
        case Fault::kConfig: return "config";
        case Fault::kPoll: return "poll";
        case Fault::kChainId: return "chain_id";
        case Fault::kBalance: return "balance";
        case Fault::kBalanceMismatch: return "balance_mismatch";
        case Fault::kBankLow: return "bank_low";
        case Fault::kBank: return "bank";
        case Fault::kLedger: return "ledger";
        case Fault::kLimit: return "limit";
        case Fault::kTopUp:
        case Fault::kFees:
        case Fault::kSigning: return "topup";
        case Fault::kInternal: return "internal";
        case Fault::kDeclined: return "declined";
        case Fault::kSender: return "sender";
    }
    return "internal";
}

const std::vector<std::string_view>& network_scopes() {
    static const std::vector<std::string_view> kScopes = {"poll",  "chain_id", "balance", "balance_mismatch", "bank_low",
                                                          "bank",  "ledger",   "limit",   "topup", "sender"};
    return kScopes;
}

int fault_exit_code(Fault f) noexcept {
    if (f == Fault::kNone) return 0;
    return f == Fault::kConfig || f == Fault::kSender ? 2 : 1;
}

Fault worse(Fault a, Fault b) noexcept { return fault_exit_code(b) > fault_exit_code(a) ? b : a; }

}  // namespace keymaster
