#include "keymaster/cli/app.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
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
    auto* data_dir = app.add_option("--data-dir", g.data_dir,
                                    "state directory (run: $STATE_DIRECTORY, else /var/lib/keymaster)")->capture_default_str();
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

    auto* history = app.add_subcommand("history", "every top-up in the ledger, newest first");
    HistoryOptions ho;
    history->add_option("--network", ho.network, "only this network");
    history->add_option("--address", ho.address, "only top-ups to this address");
    history->add_option("--since", ho.since, "only the last 30m, 24h, 7d, ...");
    history->add_flag("--json", ho.json, "one JSON object per line");

    auto* run_cmd = app.add_subcommand("run", "the daemon: keep every account funded, export metrics");
    RunOptions ro;
    std::string interval = "60s", metrics_port;
    run_cmd->add_option("--interval", interval, "time between polls of a network: 500ms, 30s, 5m or seconds")
        ->envname("PERIOD")->capture_default_str();
    auto* maddr = run_cmd->add_option("--metrics-addr", ro.metrics_addr, "listen address for /metrics, /healthz, /readyz, /status (port 0: any free port)")
        ->capture_default_str();
    run_cmd->add_option("--networks", ro.networks, "only these networks (comma-separated)")->delimiter(',')->envname("NETWORK_ENABLED");
    run_cmd->add_flag("--dry-run", ro.dry_run, "decide and log, send nothing")->envname("DRY_RUN");
    long shutdown_s = 30;
    run_cmd->add_option("--shutdown-timeout", shutdown_s, "seconds to wait for in-flight top-ups on SIGTERM")
        ->check(CLI::PositiveNumber)->capture_default_str();

    auto* keys_cmd = app.add_subcommand("keys", "list, provision and write IAM policies for an environment's KMS keys");
    keys_cmd->require_subcommand(1);
    KeysOptions ko;
    if (const char* r = std::getenv("AWS_REGION"); r && *r) ko.region = r;
    else if (const char* d = std::getenv("AWS_DEFAULT_REGION"); d && *d) ko.region = d;
    auto common_keys = [&](CLI::App* sub, bool aws_call) {
        sub->add_option("--environment", ko.environment, "environment: production, staging, or one in --key-sets")->required();
        sub->add_option("--key-sets", ko.key_sets, "JSON file of key names (and networks) per environment");
        sub->add_option("--networks", ko.networks, "only these networks (comma-separated)")->delimiter(',');
        if (aws_call) {
            sub->add_option("--region", ko.region, "AWS region (default: $AWS_REGION)");
            sub->add_option("--endpoint", ko.endpoint, "KMS endpoint (default: $AWS_ENDPOINT_URL_KMS, $AWS_ENDPOINT_URL, the region's)");
        }
    };
    auto* keys_list = keys_cmd->add_subcommand("list", "one row per key: alias, key ARN, Ethereum address, region");
    common_keys(keys_list, true);
    keys_list->add_flag("--json", ko.json, "machine-readable output");
    auto* keys_provision = keys_cmd->add_subcommand("provision", "create the keys the environment lacks; never touches existing ones");
    common_keys(keys_provision, true);
    keys_provision->add_flag("--yes", ko.yes, "do not ask for confirmation");
    keys_provision->add_flag("--emit-config", ko.emit_config, "print the agents blocks (JSON) for the keymaster config on stdout");
    auto* keys_policy = keys_cmd->add_subcommand("policy", "print the least-privilege IAM policy for a role's signer");
    common_keys(keys_policy, false);
    keys_policy->add_option("--role", ko.role, "agent role: updater, watcher, relayer, processor, kathy")->required();
    keys_policy->add_option("--account-id", ko.account_id, "AWS account id of the keys (default: any)");
    keys_policy->add_option("--region", ko.region, "limit to this region (default: any)");

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
        if (*run_cmd) {
            auto d = parse_duration(interval);
            if (!d) {
                std::cerr << "--interval: expected 500ms, 30s, 5m, 1h or plain seconds, got '" << interval << "'\n";
                return kExitUsage;
            }
            ro.interval = *d;
            if (data_dir->count() == 0) {
                const char* sd = std::getenv("STATE_DIRECTORY");  // systemd's StateDirectory=
                g.data_dir = sd && *sd ? sd : "/var/lib/keymaster";
            }
            ro.shutdown_timeout = std::chrono::seconds(shutdown_s);
            // Nomad's METRICS_PORT, when --metrics-addr is not given.
            if (maddr->count() == 0)
                if (const char* p = std::getenv("METRICS_PORT"); p && *p) ro.metrics_addr = std::string("0.0.0.0:") + p;
            return cmd_run(g, ro);
        }
        if (*history) return cmd_history(g, ho);
        if (*keys_list) return cmd_keys_list(g, ko);
        if (*keys_provision) return cmd_keys_provision(g, ko);
        if (*keys_policy) {
            if (keys_policy->get_option("--region")->count() == 0) ko.region.clear();
            return cmd_keys_policy(g, ko);
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
