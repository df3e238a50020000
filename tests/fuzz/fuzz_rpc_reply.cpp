// libFuzzer target: interpreting a node's JSON-RPC reply, and the typed views of results.
#include <cstddef>
#include <cstdint>
#include <string>

#include "keymaster/rpc/client.hpp"
#include "keymaster/rpc/eth_api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    const std::map<std::uint64_t, std::size_t> ids = {{1, 0}, {2, 1}, {3, 2}};
    auto parsed = keymaster::rpc::parse_reply(body, ids);
    for (const auto& [i, r] : parsed.results) {
        if (i > 2) __builtin_trap();
        if (r.ok()) {
            (void)keymaster::rpc::as_quantity(*r.result);
            (void)keymaster::rpc::as_block(*r.result);
            (void)keymaster::rpc::as_receipt(*r.result);
        }
    }
    return 0;
}
