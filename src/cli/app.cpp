#include "keymaster/cli/app.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "keymaster/cli/logging.hpp"

namespace keymaster::cli {

int run(int argc, char** argv) {
    CLI::App app{"keymaster: keeps bridge agent wallets funded", "keymaster"};
    app.set_version_flag("--version", std::string(KEYMASTER_VERSION) + " (" + KEYMASTER_REVISION + ")");
    app.require_subcommand(1);
    app.fallthrough();  // global options may follow the command name

    GlobalOptions g;
    app.add_option("--config", g.config, "config file (Nomad keymaster JSON)")->envname("CONFIG_PATH")->capture_default_str();
    app.add_option("--data-dir", g.data_dir, "state directory")->capture_default_str();
    app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error, off")->capture_default_str();
    app.add_option("--log-format", g.log_format, "text or json")->capture_default_str();

    auto* validate = app.add_subcommand("validate", "check the config; print networks and account counts");

    auto* address = app.add_subcommand("address", "print the EIP-55 address of a private key");
    std::string key_env, key_file;
    auto* ke = address->add_option("--key-env", key_env, "environment variable holding the hex key");
    auto* kf = address->add_option("--key-file", key_file, "file holding the hex key (mode 600)");
    ke->excludes(kf);
    kf->excludes(ke);

    auto* status = app.add_subcommand("status", "show every account and bank");
    bool status_json = false;
    std::vector<std::string> status_networks;
    status->add_flag("--json", status_json, "machine-readable output");
    status->add_option("--networks", status_networks, "only these networks (comma-separated)")->delimiter(',');

    auto* topup = app.add_subcommand("top-up", "fund every account below its threshold, once, with confirmation");
    TopUpOptions t;
    topup->add_option("--networks", t.networks, "only these networks (comma-separated)")->delimiter(',');
    topup->add_flag("--dry-run", t.dry_run, "print the plan and send nothing");
    topup->add_flag("--yes", t.yes, "do not ask for confirmation");
    long timeout_s = 300;
    topup->add_option("--confirm-timeout", timeout_s, "seconds to wait for receipts")->check(CLI::PositiveNumber)->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }
    if (auto err = setup_logging(g.log_level, g.log_format); !err.empty()) {
        std::cerr << "keymaster: " << err << "\n";
        return kExitUsage;
    }
    try {
        if (*validate) return cmd_validate(g);
        if (*address) {
            if (key_env.empty() && key_file.empty()) {
                std::cerr << "keymaster address: give --key-env VAR or --key-file FILE\n";
                return kExitUsage;
            }
            return cmd_address(key_env, key_file);
        }
        if (*status) return cmd_status(g, status_networks, status_json);
        if (*topup) {
            t.confirm_timeout = std::chrono::seconds(timeout_s);
            return cmd_topup(g, t);
        }
    } catch (const std::exception& e) {
        spdlog::critical("unexpected error: {}", e.what());
        return kExitFailure;
    }
    return kExitUsage;
}

}  // namespace keymaster::cli
