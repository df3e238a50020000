#include "keymaster/cli/app.hpp"

int main(int argc, char** argv) { return keymaster::cli::run(argc, argv); }
