#pragma once

#include <optional>
#include <vector>

#include "keymaster/common/amount.hpp"
#include "keymaster/crypto/secp256k1.hpp"
#include "keymaster/eth/address.hpp"

namespace keymaster::eth {

//! EIP-2718 transaction types that keymaster understands.
enum class TxType : std::uint8_t {
    kLegacy = 0,      //!< pre-typed; EIP-155 replay protection when chain_id is set
    kAccessList = 1,  //!< EIP-2930 (decoded, never sent)
    kDynamicFee = 2,  //!< EIP-1559
};

//! EIP-2930 access list entry.
struct AccessListEntry {
    Address address;
    std::vector<Hash32> storage_keys;
    friend bool operator==(const AccessListEntry&, const AccessListEntry&) = default;
};

//! An unsigned transaction. Fee fields unused by `type` are ignored.
struct Transaction {
    TxType type = TxType::kDynamicFee;
    std::optional<std::uint64_t> chain_id;  //!< empty only for pre-EIP-155 legacy transactions
    std::uint64_t nonce = 0;
    Wei gas_price = 0;                 //!< legacy and EIP-2930
    Wei max_priority_fee_per_gas = 0;  //!< EIP-1559
    Wei max_fee_per_gas = 0;           //!< EIP-1559
    std::uint64_t gas_limit = 0;
    std::optional<Address> to;  //!< empty for contract creation
    Wei value = 0;
    Bytes data;
    std::vector<AccessListEntry> access_list;
    friend bool operator==(const Transaction&, const Transaction&) = default;
};

//! A decoded signed transaction.
struct SignedTransaction {
    Transaction tx;
    Hash32 r{};
    Hash32 s{};
    std::uint8_t y_parity = 0;
};

//! The bytes whose Keccak-256 is signed: EIP-155 for legacy with a chain id, EIP-2718 typed payloads otherwise.
Bytes signing_payload(const Transaction& tx);
//! keccak256(signing_payload(tx)).
Hash32 signing_hash(const Transaction& tx);
//! The raw signed transaction as sent with eth_sendRawTransaction.
Bytes encode_signed(const Transaction& tx, const crypto::RecoverableSignature& sig);
//! Transaction hash: keccak256 of the raw signed transaction.
Hash32 transaction_hash(ByteView raw);

//! Decodes a raw signed transaction (legacy RLP list, or type byte || RLP payload for types 1 and 2).
[[nodiscard]] Result<SignedTransaction> decode_signed(ByteView raw);
//! The sender's address. High s values are refused (EIP-2) unless `allow_high_s` (Frontier rules).
[[nodiscard]] Result<Address> recover_sender(const SignedTransaction& stx, bool allow_high_s = false);

}  // namespace keymaster::eth
