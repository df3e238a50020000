#include "keymaster/common/duration.hpp"

#include <cctype>
#include <cmath>

namespace keymaster {

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == 0 || i > 9) return std::nullopt;
    const long v = std::stol(text.substr(0, i));
    const std::string unit = text.substr(i);
    long ms;
    if (unit.empty() || unit == "s") ms = v * 1000;
    else if (unit == "d") ms = v * 86'400'000;
    else if (unit == "ms") ms = v;
    else if (unit == "m") ms = v * 60'000;
    else if (unit == "h") ms = v * 3'600'000;
    else return std::nullopt;
    if (ms <= 0) return std::nullopt;
    return std::chrono::milliseconds(ms);
}

std::string format_duration(double seconds) {
    const auto ms = static_cast<long long>(std::llround(seconds * 1000));
    if (ms % 1000) return std::to_string(ms) + "ms";
    const long long s = ms / 1000;
    if (s && s % 86400 == 0) return std::to_string(s / 86400) + "d";
    if (s && s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s && s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

}  // namespace keymaster
