#pragma once

#include <string>

namespace keymaster::cli {

//! Logs go to stderr: "text" (human) or "json" (one object per line, for Kubernetes).
//! Returns an error message for an unknown level or format, else empty.
std::string setup_logging(const std::string& level, const std::string& format);

}  // namespace keymaster::cli
