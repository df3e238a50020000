#pragma once

namespace keymaster::cli {

//! Exit codes: a contract with the tools that run keymaster.
inline constexpr int kExitOk = 0;       //!< done; every account at or above its threshold
inline constexpr int kExitFailure = 1;  //!< a top-up failed, or a network was unreachable
inline constexpr int kExitUsage = 2;    //!< bad flags, bad config, refused confirmation

//! Runs the command line; returns the process exit code.
int run(int argc, char** argv);

}  // namespace keymaster::cli
