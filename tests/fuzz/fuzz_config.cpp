// libFuzzer target: the config parser must reject anything malformed with messages, never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "keymaster/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto r = keymaster::config::parse(text, "fuzz.json", [](const std::string&) { return std::nullopt; });
    if (!r && r.error().message.empty()) __builtin_trap();  // an error always says what is wrong
    return 0;
}
