#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <type_traits>

namespace keymaster {

//! Project error codes for the pure modules (parsing, encoding, crypto).
enum class Errc {
    kOk = 0,
    kBadHex,
    kOddHexLength,
    kEmptyAmount,
    kNegativeAmount,
    kFractionalWei,
    kAmountOverflow,
    kBadAmount,
    kUnknownUnit,
    kBadAddressLength,
    kBadChecksum,
    kRlpTruncated,
    kRlpNonCanonical,
    kRlpTrailingBytes,
    kRlpUnexpectedList,
    kRlpUnexpectedString,
    kRlpTooLarge,
    kTxBadFieldCount,
    kTxUnsupportedType,
    kTxBadSignature,
    kTxBadV,
    kBadPrivateKey,
    kBadPublicKey,
    kSigningFailed,
    kRecoveryFailed,
    kAbiMismatch,
};

//! The category of `Errc`; message() gives an operator-readable sentence.
const boost::system::error_category& keymaster_category() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), keymaster_category()};
}

//! Value or error, for pure code.
template <typename T>
using Result = boost::system::result<T>;

}  // namespace keymaster

namespace boost::system {
template <>
struct is_error_code_enum<keymaster::Errc> : std::true_type {};
}  // namespace boost::system
