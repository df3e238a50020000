// The classifier of send answers is a hint; the verdict comes from the chain (decide_send).
// Every message below is quoted from the client's source (file named per row) or, for anvil,
// hardhat and ganache, captured from the pinned binaries that the integration tests run.
#include <catch2/catch.hpp>

#include "keymaster/chain/send_result.hpp"
#include "keymaster/rpc/client.hpp"

using namespace keymaster;
using chain::SendEvidence;
using chain::SendHint;
using chain::SendVerdict;

namespace {
struct Row {
    const char* client;
    const char* source;
    const char* message;
    SendHint hint;
};
}  // namespace

TEST_CASE("send answers: each client's words, classified as a hint", "[chain][send]") {
    const std::vector<Row> rows = {
        // go-ethereum
        {"geth", "core/txpool/errors.go ErrAlreadyKnown", "already known", SendHint::kAlreadyKnown},
        {"geth", "core/txpool/validation.go (core.ErrNonceTooLow)", "nonce too low: next nonce 5, tx nonce 4", SendHint::kNonceTooLow},
        {"geth", "core/txpool/errors.go ErrReplaceUnderpriced", "replacement transaction underpriced", SendHint::kUnderpriced},
        {"geth", "core/txpool/validation.go (ErrUnderpriced)", "transaction underpriced: tip needed 1, tip permitted 0", SendHint::kUnderpriced},
        {"geth", "core/txpool/validation.go (core.ErrInsufficientFunds)",
         "insufficient funds for gas * price + value: balance 0, tx cost 21000, overshot 21000", SendHint::kRefused},
        {"geth", "core/txpool/validation.go (core.ErrIntrinsicGas)", "intrinsic gas too low: gas 0, minimum needed 21000", SendHint::kRefused},
        {"geth", "core/txpool/errors.go ErrGasLimit", "exceeds block gas limit", SendHint::kRefused},
        {"geth", "core/txpool/errors.go ErrInvalidSender", "invalid sender", SendHint::kRefused},
        {"geth", "internal/ethapi/api.go checkTxFee", "tx fee (1.10 ether) exceeds the configured cap (1.00 ether)", SendHint::kRefused},
        {"geth", "internal/ethapi/api.go SubmitTransaction", "only replay-protected (EIP-155) transactions allowed over RPC", SendHint::kRefused},
        {"geth", "core/error.go ErrTipAboveFeeCap", "max priority fee per gas higher than max fee per gas", SendHint::kRefused},
        {"geth", "core/txpool/errors.go ErrOverdraft", "transaction would cause overdraft", SendHint::kRefused},
        // Erigon: txpoolcfg.DiscardReason text behind the ImportResult name (turbo/jsonrpc/send_transaction.go)
        {"erigon", "erigon-lib/txpool/txpoolcfg/txpoolcfg.go AlreadyKnown", "ALREADY_EXISTS: already known", SendHint::kAlreadyKnown},
        {"erigon", "erigon-lib/txpool/txpoolcfg/txpoolcfg.go", "INTERNAL_ERROR: existing tx with same hash", SendHint::kAlreadyKnown},
        {"erigon", "erigon-lib/txpool/txpoolcfg/txpoolcfg.go NonceTooLow", "INTERNAL_ERROR: nonce too low", SendHint::kNonceTooLow},
        {"erigon", "erigon-lib/txpool/txpoolcfg/txpoolcfg.go FeeTooLow", "FEE_TOO_LOW: fee too low", SendHint::kUnderpriced},
        {"erigon", "erigon-lib/txpool/txpoolcfg/txpoolcfg.go InsufficientFunds", "INTERNAL_ERROR: insufficient funds", SendHint::kRefused},
        // Nethermind: Nethermind.TxPool/AcceptTxResult.cs, current words and the older PascalCase results
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs", "already known", SendHint::kAlreadyKnown},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs", "nonce too low", SendHint::kNonceTooLow},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)", "AlreadyKnown", SendHint::kAlreadyKnown},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)", "OwnNonceAlreadyUsed", SendHint::kAlreadyKnown},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)", "OldNonce, Current nonce: 5, nonce of rejected tx: 4", SendHint::kNonceTooLow},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)",
         "FeeTooLow, MaxFeePerGas too low. MaxFeePerGas: 1, BaseFee: 7, MaxPriorityFeePerGas:1, Block number: 9", SendHint::kUnderpriced},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)", "FeeTooLowToCompete", SendHint::kUnderpriced},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)", "InsufficientFunds, Account balance: 0, cumulative cost: 21000", SendHint::kRefused},
        {"nethermind", "Nethermind.TxPool/AcceptTxResult.cs (older)", "GasLimitExceeded, Gas limit: 30000000, gas limit of rejected tx: 40000000", SendHint::kRefused},
        // Besu: ethereum/api/.../jsonrpc/internal/response/RpcErrorType.java
        {"besu", "RpcErrorType.java ETH_SEND_TX_ALREADY_KNOWN", "Known transaction", SendHint::kAlreadyKnown},
        {"besu", "RpcErrorType.java NONCE_TOO_LOW", "Nonce too low", SendHint::kNonceTooLow},
        {"besu", "RpcErrorType.java ETH_SEND_TX_REPLACEMENT_UNDERPRICED", "Replacement transaction underpriced", SendHint::kUnderpriced},
        {"besu", "RpcErrorType.java GAS_PRICE_TOO_LOW", "Gas price below configured minimum gas price", SendHint::kUnderpriced},
        {"besu", "RpcErrorType.java TRANSACTION_UPFRONT_COST_EXCEEDS_BALANCE", "Upfront cost exceeds account balance", SendHint::kRefused},
        {"besu", "RpcErrorType.java INTRINSIC_GAS_EXCEEDS_LIMIT", "Intrinsic gas exceeds gas limit", SendHint::kRefused},
        {"besu", "RpcErrorType.java INVALID_SIGNATURE", "Invalid signature", SendHint::kRefused},
        {"besu", "RpcErrorType.java TX_FEECAP_EXCEEDED", "Transaction fee cap exceeded", SendHint::kRefused},
        // reth: crates/rpc/rpc-eth-types/src/error/mod.rs, crates/transaction-pool/src/error.rs
        {"reth", "crates/transaction-pool/src/error.rs AlreadyImported", "already known", SendHint::kAlreadyKnown},
        {"reth", "crates/rpc/rpc-eth-types/src/error/mod.rs NonceTooLow", "nonce too low: next nonce 5, tx nonce 4", SendHint::kNonceTooLow},
        {"reth", "crates/transaction-pool/src/error.rs ReplacementUnderpriced", "replacement transaction underpriced", SendHint::kUnderpriced},
        {"reth", "crates/rpc/rpc-eth-types/src/error/mod.rs InsufficientFunds",
         "insufficient funds for gas * price + value: have 0 want 21000", SendHint::kRefused},
        {"reth", "crates/rpc/rpc-eth-types/src/error/mod.rs InvalidChainId", "invalid chain ID", SendHint::kRefused},
        // Frontier (Moonbeam): Substrate's pool words come through (client/transaction-pool/api/src/error.rs)
        {"frontier", "client/rpc/src/eth/submit.rs", "already known", SendHint::kAlreadyKnown},
        {"frontier", "client/rpc/src/eth/submit.rs", "nonce too low", SendHint::kNonceTooLow},
        {"frontier", "substrate client/transaction-pool/api/src/error.rs TemporarilyBanned", "Transaction is temporarily banned", SendHint::kAlreadyKnown},
        {"frontier", "substrate client/transaction-pool/api/src/error.rs TooLowPriority", "Priority is too low: (2000 vs 2000)", SendHint::kUnderpriced},
        {"frontier", "substrate client/transaction-pool/api/src/error.rs AlreadyImported", "submit transaction to pool failed: Pool(AlreadyImported(Any))", SendHint::kAlreadyKnown},
        {"frontier", "substrate primitives/runtime/src/transaction_validity.rs Stale", "submit transaction to pool failed: Pool(InvalidTransaction(InvalidTransaction::Stale))", SendHint::kNonceTooLow},
        {"frontier", "client/rpc/src/eth/submit.rs", "insufficient funds for gas * price + value", SendHint::kRefused},
        // Ethermint (Evmos): cosmos-sdk types/errors/errors.go and ethermint app/ante/eth.go
        {"ethermint", "cosmos-sdk types/errors/errors.go ErrTxInMempoolCache", "tx already in mempool", SendHint::kAlreadyKnown},
        {"ethermint", "app/ante/eth.go (ErrInvalidSequence)", "invalid nonce; got 4, expected 5: invalid sequence", SendHint::kNonceTooLow},
        {"ethermint", "app/ante/fees.go (ErrInsufficientFunds)", "insufficient funds to pay for fees; 0aevmos < 21000aevmos: insufficient funds", SendHint::kRefused},
        // Arbitrum Nitro (its go-ethereum fork, core/state_transition.go) and the classic words
        {"arbitrum", "arb-evm/evm/result.go (classic)", "invalid transaction nonce", SendHint::kNonceTooLow},
        {"arbitrum", "go-ethereum core/state_transition.go", "nonce too low: address 0x1111111111111111111111111111111111111111, tx: 4 state: 5", SendHint::kNonceTooLow},
        {"arbitrum", "go-ethereum core/state_transition.go (ErrFeeCapTooLow)",
         "max fee per gas less than block base fee: address 0x1111111111111111111111111111111111111111, maxFeePerGas: 1 baseFee: 2", SendHint::kUnderpriced},
        {"arbitrum", "nitro execution/gethexec/sequencer.go", "gas price too low", SendHint::kUnderpriced},
        // OP Stack (op-geth: geth's txpool words)
        {"op", "op-geth core/txpool/errors.go", "already known", SendHint::kAlreadyKnown},
        {"op", "op-geth core/txpool/validation.go", "transaction underpriced: gas tip cap 1, minimum needed 2", SendHint::kUnderpriced},
        {"op", "op-geth core/txpool/legacypool/legacypool.go (L1 cost)", "insufficient funds for l1 fee", SendHint::kRefused},
        // Avalanche (coreth)
        {"avalanche", "coreth core/txpool/errors.go", "already known", SendHint::kAlreadyKnown},
        {"avalanche", "coreth core/state_transition.go",
         "nonce too low: address 0x1111111111111111111111111111111111111111 current nonce (5) > tx nonce (4)", SendHint::kNonceTooLow},
        {"avalanche", "coreth core/txpool/validation.go",
         "insufficient funds for gas * price + value: address 0x1111111111111111111111111111111111111111 have (0) want (21000)", SendHint::kRefused},
        // Polygon (bor: geth's txpool words)
        {"polygon", "bor core/txpool/errors.go", "already known", SendHint::kAlreadyKnown},
        {"polygon", "bor core/txpool/errors.go", "transaction underpriced", SendHint::kUnderpriced},
        {"polygon", "bor core/txpool/validation.go", "nonce too low", SendHint::kNonceTooLow},
        // hardhat 3.18 / EDR 0.22 (crates/edr_provider/src/error.rs), captured from the pinned binary
        {"hardhat", "edr_provider/src/error.rs", "Known transaction: 0xf07a9b8d8d3fc29ccd21ccbb7e6e8182932dd993a83bb4b53a3167e1b4dd3da8", SendHint::kAlreadyKnown},
        {"hardhat", "edr_provider/src/error.rs",
         "Nonce too low. Expected nonce to be 2 but got 1. Note that transactions can't be queued when automining.", SendHint::kNonceTooLow},
        {"hardhat", "edr_provider/src/error.rs",
         "Replacement transaction underpriced. A gasPrice/maxFeePerGas of at least 3300000000 is necessary to replace the existing transaction with nonce 0.",
         SendHint::kUnderpriced},
        {"hardhat", "edr_provider/src/error.rs",
         "Sender doesn't have enough funds to send tx. The max upfront cost is: 63000000000001 and the sender's balance is: 0.", SendHint::kRefused},
        // ganache 7.9.2 (src/chains/ethereum/ethereum/src/transaction-pool.ts), captured from the pinned binary
        {"ganache", "transaction-pool.ts", "transaction underpriced", SendHint::kUnderpriced},
        {"ganache", "transaction-pool.ts", "the tx doesn't have the correct nonce. account has nonce of: 8 tx has nonce of: 1", SendHint::kNonceTooLow},
        {"ganache", "transaction-pool.ts", "insufficient funds for gas * price + value", SendHint::kRefused},
        // anvil 1.7.1 (crates/anvil/src/eth/error.rs), captured from the pinned binary
        {"anvil", "crates/anvil/src/eth/error.rs", "transaction already imported", SendHint::kAlreadyKnown},
        {"anvil", "crates/anvil/src/eth/error.rs", "nonce too low", SendHint::kNonceTooLow},
        {"anvil", "crates/anvil/src/eth/error.rs", "replacement transaction underpriced", SendHint::kUnderpriced},
        {"anvil", "crates/anvil/src/eth/error.rs", "Insufficient funds for gas * price + value", SendHint::kRefused},
        // A provider in front, in words of its own
        {"provider", "(none: words no classifier knows)", "request rejected by upstream policy", SendHint::kOther},
    };
    for (const auto& r : rows) {
        INFO(r.client << " (" << r.source << "): " << r.message);
        CHECK(chain::classify_send_error(r.message) == r.hint);
        rpc::CallResult res;
        res.error = rpc::RpcError(-32000, r.message);
        CHECK(chain::classify_send(&res) == r.hint);
    }
    rpc::CallResult ok;
    ok.result = "0x1234";
    CHECK(chain::classify_send(&ok) == SendHint::kHash);
    CHECK(chain::classify_send(nullptr) == SendHint::kNoAnswer);
    const rpc::CallResult empty;  // neither result nor error: a malformed reply
    CHECK(chain::classify_send(&empty) == SendHint::kNoAnswer);
}

TEST_CASE("send verdicts: words never turn a transaction the node holds into a failure", "[chain][send]") {
    SendEvidence none;  // the chain could not be asked
    SendEvidence held{true, true, false, 5, 6};
    SendEvidence mined{true, true, true, 6, 6};
    SendEvidence absent{true, false, false, 5, 5};
    SendEvidence taken{true, false, false, 9, 9};  // our nonce used by another transaction
    const std::vector<SendHint> words = {SendHint::kAlreadyKnown, SendHint::kNonceTooLow, SendHint::kUnderpriced,
                                         SendHint::kRefused,      SendHint::kOther,       SendHint::kNoAnswer};
    for (auto h : words) {
        INFO(chain::hint_name(h));
        CHECK(chain::decide_send(h, held) == SendVerdict::kHeld);
        CHECK(chain::decide_send(h, mined) == SendVerdict::kHeld);
        CHECK(chain::decide_send(h, none) == SendVerdict::kUnknown);
        // Only a positive refusal of a transaction the node does not hold is a failure.
        const auto want = h == SendHint::kRefused ? SendVerdict::kFailed : SendVerdict::kUnknown;
        CHECK(chain::decide_send(h, absent) == want);
        CHECK(chain::decide_send(h, taken) == want);
    }
    CHECK(chain::decide_send(SendHint::kHash, none) == SendVerdict::kHeld);
    CHECK(chain::describe_evidence(taken, 4) == "not held; nonce 4 is taken (the bank's latest nonce is 9)");
    CHECK(chain::describe_evidence(held, 5) == "held by the node");
    CHECK(chain::describe_evidence(none, 5) == "the chain could not be asked");
}
