#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <string>
#include <string_view>

namespace keymaster {

//! ASCII lower case.
inline std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

//! Wall-clock time as Unix seconds.
inline double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace keymaster
