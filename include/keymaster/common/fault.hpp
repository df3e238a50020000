#pragma once

#include <boost/system/error_code.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace keymaster {

//! What went wrong in a Round, by kind. The metric scope (`keymaster_errors_total{scope}`) and the
//! exit code of a command come from this type, never from the text of a message.
enum class Fault {
    kNone = 0,
    kConfig,           //!< the config (or a key it names) cannot be loaded
    kPoll,             //!< the network could not be read
    kChainId,          //!< the endpoint serves another chain than the one pinned or configured
    kBalance,          //!< one account's balance could not be read
    kBalanceMismatch,  //!< a confirmed top-up that the balance does not show (lagging or lying endpoint)
    kBankLow,          //!< the bank is below bankThreshold
    kBank,             //!< the bank cannot cover this round's top-ups
    kLedger,           //!< the ledger cannot be read or written: nothing is sent
    kLimit,            //!< a spend limit held a top-up back
    kTopUp,            //!< a top-up failed (refused, reverted, not built)
    kFees,             //!< no acceptable fee: above maxFeePerGas, or the node's fee data unusable
    kSigning,          //!< the bank's signer refused or failed
    kInternal,         //!< a bug: an exception nobody expected
};

//! The category of `Fault`.
const boost::system::error_category& fault_category() noexcept;

inline boost::system::error_code make_error_code(Fault f) noexcept { return {static_cast<int>(f), fault_category()}; }

//! The `scope` label of keymaster_errors_total for a fault ("" for kNone).
[[nodiscard]] std::string_view fault_scope(Fault f) noexcept;
//! Every scope a network can report (for zero-initialised series), in a stable order.
[[nodiscard]] const std::vector<std::string_view>& network_scopes();

//! The process exit code a command returns when this fault decided its result: 2 for config, 1
//! for the rest, 0 for kNone (kExit* of cli/app.hpp).
[[nodiscard]] int fault_exit_code(Fault f) noexcept;

//! An I/O step of a Round that failed in a known way: carries its Fault.
class RoundError : public std::runtime_error {
public:
    RoundError(Fault f, const std::string& what) : std::runtime_error(what), fault_(f) {}
    [[nodiscard]] Fault fault() const noexcept { return fault_; }

private:
    Fault fault_;
};

}  // namespace keymaster

namespace boost::system {
template <>
struct is_error_code_enum<keymaster::Fault> : std::true_type {};
}  // namespace boost::system
