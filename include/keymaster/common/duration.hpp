#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace keymaster {

//! A duration as operators write it (`--interval`, `--since`, `runway.*`): "500ms", "30s", "5m",
//! "6h", "7d", or plain seconds ("60"). Zero, negative, over nine digits or another unit: nullopt.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

//! The shortest of those spellings that is exact: 21600 s -> "6h", 90 s -> "90s", 1.5 s -> "1500ms".
std::string format_duration(double seconds);

}  // namespace keymaster
