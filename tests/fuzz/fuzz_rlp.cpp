// libFuzzer target: the RLP and transaction decoders. Whatever decodes re-encodes to the same bytes
// (the decoder accepts canonical encodings only).
#include <cstddef>
#include <cstdint>

#include "keymaster/eth/rlp.hpp"
#include "keymaster/eth/transaction.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const keymaster::ByteView in(data, size);
    if (auto item = keymaster::eth::rlp::decode(in)) {
        const auto again = keymaster::eth::rlp::encode(*item);
        if (again.size() != size || !std::equal(again.begin(), again.end(), data)) __builtin_trap();
    }
    if (auto tx = keymaster::eth::decode_signed(in)) (void)keymaster::eth::recover_sender(*tx, true);
    return 0;
}
