#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
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
    kDeclined,         //!< the operator answered no to top-up's confirmation: nothing was sent
    kSender,           //!< another process sends from this bank on this chain (its sender lease): nothing sent
};

//! The category of `Fault`.
const boost::system::error_category& fault_category() noexcept;

inline boost::system::error_code make_error_code(Fault f) noexcept { return {static_cast<int>(f), fault_category()}; }

//! The `scope` label of keymaster_errors_total for a fault ("" for kNone).
[[nodiscard]] std::string_view fault_scope(Fault f) noexcept;
//! Every scope a network can report (for zero-initialised series), in a stable order.
[[nodiscard]] const std::vector<std::string_view>& network_scopes();

//! The process exit code a command returns when this fault decided its result: 2 for config and
//! for another process sending from the bank (kSender: refused, as a held lease is), 1
//! for the rest (a declined confirmation included: nothing was sent and the accounts are still
//! low; kLedger: the ledger failed during a Round), 0 for kNone (kExit* of cli/app.hpp). A ledger
//! that cannot be opened at all is refused by the command itself, before any Round: kExitUsage.
[[nodiscard]] int fault_exit_code(Fault f) noexcept;
//! Of two faults, the one whose exit code is higher (the first on a tie).
[[nodiscard]] Fault worse(Fault a, Fault b) noexcept;

//! The one error of the code above the pure core: what kind of trouble (the metric scope and the
//! exit code come from it) and an operator-readable sentence (naming no secret).
struct Problem {
    Fault fault = Fault::kInternal;
    std::string message;
    friend bool operator==(const Problem&, const Problem&) = default;
};

//! A value or the Problem that prevented it.
template <typename T>
using Expected = boost::system::result<T, Problem>;

//! A Problem as an exception: carries its Fault. Thrown by `Expected<T>::value()` on a Problem
//! (below; code above the core tests the Expected instead); where a step turns an exception back
//! into a Problem, `fault_of` keeps this Fault (`problem()` gives the whole Problem back).
class RoundError : public std::runtime_error {
public:
    RoundError(Fault f, const std::string& what) : std::runtime_error(what), fault_(f) {}
    explicit RoundError(const Problem& p) : RoundError(p.fault, p.message) {}
    [[nodiscard]] Fault fault() const noexcept { return fault_; }
    [[nodiscard]] Problem problem() const { return {fault_, what()}; }

private:
    Fault fault_;
};

//! The Fault of an exception a step turns back into a Problem: a RoundError's own, else
//! `otherwise` (the caller's: what the step was doing, e.g. kLedger around a ledger write).
[[nodiscard]] inline Fault fault_of(const std::exception& e, Fault otherwise) noexcept {
    const auto* round = dynamic_cast<const RoundError*>(&e);
    return round ? round->fault() : otherwise;
}

//! An exception a step caught, as its Problem: "<doing>: <what>", of the exception's own Fault when
//! it carries one (fault_of), else `otherwise` (e.g. kLedger around a ledger call).
[[nodiscard]] inline Problem problem_of(const std::exception& e, Fault otherwise, std::string_view doing) {
    return Problem{fault_of(e, otherwise), std::string(doing) + ": " + e.what()};
}

//! `Expected<T>::value()` on a Problem throws it as a RoundError (found by argument-dependent lookup).
[[noreturn]] inline void throw_exception_from_error(const Problem& p, const boost::source_location&) { throw RoundError(p); }

}  // namespace keymaster

namespace boost::system {
template <>
struct is_error_code_enum<keymaster::Fault> : std::true_type {};
}  // namespace boost::system
