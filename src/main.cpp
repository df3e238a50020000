#include "keymaster/cli/app.hpp"
#include "keymaster/common/clock.hpp"

int main(int argc, char** argv) { return keymaster::cli::run(argc, argv, keymaster::system_clock()); }
