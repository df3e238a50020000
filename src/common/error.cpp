#include "keymaster/common/error.hpp"

#include <string>

namespace keymaster {
namespace {

class Category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "keymaster"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
            case Errc::kOk: return "ok";
            case Errc::kBadHex: return "not a hex string";
            case Errc::kOddHexLength: return "hex string has an odd number of digits";
            case Errc::kEmptyAmount: return "empty amount";
            case Errc::kNegativeAmount: return "negative amounts are not allowed";
            case Errc::kFractionalWei: return "amount has a fraction of a wei";
            case Errc::kAmountOverflow: return "amount does not fit in 256 bits";
            case Errc::kBadAmount:
                return "not an amount: expected a wei integer or '<number> ether|gwei|wei'";
            case Errc::kUnknownUnit: return "unknown unit: use wei, kwei, mwei, gwei, szabo, finney or ether";
            case Errc::kBadAddressLength: return "an address is 0x followed by 40 hex digits";
            case Errc::kBadChecksum: return "bad EIP-55 checksum";
            case Errc::kRlpTruncated: return "RLP: input too short";
            case Errc::kRlpNonCanonical: return "RLP: non-canonical encoding";
            case Errc::kRlpTrailingBytes: return "RLP: trailing bytes";
            case Errc::kRlpUnexpectedList: return "RLP: list where a string was expected";
            case Errc::kRlpUnexpectedString: return "RLP: string where a list was expected";
            case Errc::kRlpTooLarge: return "RLP: integer too large";
            case Errc::kTxBadFieldCount: return "transaction: wrong number of fields";
            case Errc::kTxUnsupportedType: return "transaction: unsupported type";
            case Errc::kTxBadSignature: return "transaction: invalid signature values";
            case Errc::kTxBadV: return "transaction: invalid v value";
            case Errc::kBadPrivateKey: return "not a valid secp256k1 private key";
            case Errc::kBadPublicKey: return "not a secp256k1 public key (SubjectPublicKeyInfo, uncompressed point)";
            case Errc::kSigningFailed: return "signing failed";
            case Errc::kRecoveryFailed: return "public key recovery failed";
            case Errc::kAbiMismatch: return "ABI: the arguments do not match the function's signature";
        }
        return "unknown keymaster error";
    }
};

}  // namespace

const boost::system::error_category& keymaster_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace keymaster
