#pragma once

namespace keymaster::cli {

//! Exit codes: a contract with the tools that run keymaster (README "Exit codes", checked by
//! tests/integration/exit_codes_test.py).
inline constexpr int kExitOk = 0;  //!< done; every account at or above its threshold
//! The command ran and part of it did not work: a top-up failed or is pending, a network or a
//! balance could not be read, an AWS call failed, the operator answered no to a confirmation.
inline constexpr int kExitFailure = 1;
//! Refused before doing anything: bad flags, bad config, no terminal to ask a confirmation on, a
//! ledger that cannot be opened or read or that another process holds (lock, lease).
inline constexpr int kExitUsage = 2;

//! Runs the command line; returns the process exit code.
int run(int argc, char** argv);

}  // namespace keymaster::cli
