#include "keymaster/cli/app.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>

#include "commands.hpp"
#include "keymaster/cli/logging.hpp"

namespace keymaster::cli {
namespace {

// The command line: every command's flags, then the dispatch.
struct CommandLine {
    CLI::App app{"keymaster: keeps bridge agent wallets funded", "keymaster"};
    GlobalOptions g;
    CLI::Option* data_dir = nullptr;
    CLI::App *validate = nullptr, *address = nullptr, *status = nullptr, *topup = nullptr, *history = nullptr,
             *run_cmd = nullptr, *keys_list = nullptr, *keys_provision = nullptr, *keys_policy = nullptr;
    std::string key_env, key_file;
    bool status_json = false;
    std::vector<std::string> status_networks;
    TopUpOptions t;
    long timeout_s = 300;
    HistoryOptions ho;
    RunOptions ro;
    std::string interval = "60s";
    std::string lease_renew = "2s", lease_duration = "15s";
    CLI::Option* maddr = nullptr;
    long shutdown_s = 30;
    KeysOptions ko;

    CommandLine() {
        app.set_version_flag("--version", std::string(KEYMASTER_VERSION) + " (" + KEYMASTER_REVISION + ")");
        app.require_subcommand(1);
        app.fallthrough();  // global options may follow the command name
        app.add_option("--config", g.config, "config file (Nomad keymaster JSON)")->envname("CONFIG_PATH")->capture_default_str();
        data_dir = app.add_option("--data-dir", g.data_dir, "state directory (run: $STATE_DIRECTORY, else /var/lib/keymaster)")
                       ->capture_default_str();
        app.add_option("--ledger", g.ledger,
                       "the ledger: sqlite:PATH or postgresql://user@host:port/db (default <data-dir>/ledger.sqlite)")
            ->envname("KEYMASTER_LEDGER");
        app.add_option("--lease", g.lease, "the leader lease's name on a Postgres ledger (default: the config file's name)")
            ->envname("KEYMASTER_LEASE");
        app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error, off")->capture_default_str();
        app.add_option("--log-format", g.log_format, "text or json")->capture_default_str();
        validate = app.add_subcommand("validate", "check the config; print networks and account counts");
        add_address();
        add_status_and_topup();
        add_history();
        add_run();
        add_keys();
    }

    void add_address() {
        address = app.add_subcommand("address", "print the EIP-55 address of a private key");
        auto* ke = address->add_option("--key-env", key_env, "environment variable holding the hex key");
        auto* kf = address->add_option("--key-file", key_file, "file holding the hex key (mode 600)");
        ke->excludes(kf);
        kf->excludes(ke);
    }

    void add_status_and_topup() {
        status = app.add_subcommand("status", "show every account and bank");
        status->add_flag("--json", status_json, "machine-readable output");
        status->add_option("--networks", status_networks, "only these networks (comma-separated)")->delimiter(',');
        topup = app.add_subcommand("top-up", "fund every account below its threshold, once, with confirmation");
        topup->add_option("--networks", t.networks, "only these networks (comma-separated)")->delimiter(',');
        topup->add_flag("--dry-run", t.dry_run, "print the plan and send nothing");
        topup->add_flag("--yes", t.yes, "do not ask for confirmation");
        topup->add_option("--confirm-timeout", timeout_s, "seconds to wait for receipts")
            ->check(CLI::PositiveNumber)->capture_default_str();
    }

    void add_history() {
        history = app.add_subcommand("history", "every top-up in the ledger, newest first");
        history->add_option("--network", ho.network, "only this network");
        history->add_option("--address", ho.address, "only top-ups to this address");
        history->add_option("--since", ho.since, "only the last 30m, 24h, 7d, ...");
        history->add_flag("--json", ho.json, "one JSON object per line");
    }

    void add_run() {
        run_cmd = app.add_subcommand("run", "the daemon: keep every account funded, export metrics");
        run_cmd->add_option("--interval", interval, "time between polls of a network: 500ms, 30s, 5m or seconds")
            ->envname("PERIOD")->capture_default_str();
        maddr = run_cmd->add_option("--metrics-addr", ro.metrics_addr,
                                    "listen address for /metrics, /healthz, /readyz, /status (port 0: any free port)")
                    ->capture_default_str();
        run_cmd->add_option("--networks", ro.networks, "only these networks (comma-separated)")->delimiter(',')->envname("NETWORK_ENABLED");
        run_cmd->add_flag("--dry-run", ro.dry_run, "decide and log, send nothing")->envname("DRY_RUN");
        run_cmd->add_option("--shutdown-timeout", shutdown_s, "seconds to wait for in-flight top-ups on SIGTERM")
            ->check(CLI::PositiveNumber)->capture_default_str();
        run_cmd->add_option("--lease-renew", lease_renew, "Postgres ledger: claim the leader lease this often (2s)")
            ->capture_default_str();
        run_cmd->add_option("--lease-duration", lease_duration, "Postgres ledger: each claim holds the lease this long (15s)")
            ->capture_default_str();
    }

    void add_keys() {
        auto* keys_cmd = app.add_subcommand("keys", "list, provision and write IAM policies for an environment's KMS keys");
        keys_cmd->require_subcommand(1);
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
        keys_list = keys_cmd->add_subcommand("list", "one row per key: alias, key ARN, Ethereum address, region");
        common_keys(keys_list, true);
        keys_list->add_flag("--json", ko.json, "machine-readable output");
        keys_provision = keys_cmd->add_subcommand("provision", "create the keys the environment lacks; never touches existing ones");
        common_keys(keys_provision, true);
        keys_provision->add_flag("--yes", ko.yes, "do not ask for confirmation");
        keys_provision->add_flag("--emit-config", ko.emit_config, "print the agents blocks (JSON) for the keymaster config on stdout");
        keys_policy = keys_cmd->add_subcommand("policy", "print the least-privilege IAM policy for a role's signer");
        common_keys(keys_policy, false);
        keys_policy->add_option("--role", ko.role, "agent role: updater, watcher, relayer, processor, kathy")->required();
        keys_policy->add_option("--account-id", ko.account_id, "AWS account id of the keys (default: any)");
        keys_policy->add_option("--region", ko.region, "limit to this region (default: any)");
    }

    int run_daemon() {
        auto d = parse_duration(interval);
        if (!d) {
            std::cerr << "--interval: expected 500ms, 30s, 5m, 1h or plain seconds, got '" << interval << "'\n";
            return kExitUsage;
        }
        ro.interval = *d;
        const auto renew = parse_duration(lease_renew);
        const auto hold = parse_duration(lease_duration);
        if (!renew || !hold || renew->count() <= 0 || *hold < *renew * 3) {
            std::cerr << "--lease-renew " << lease_renew << ", --lease-duration " << lease_duration
                      << ": expected durations such as 2s and 15s, the duration at least three renewals\n";
            return kExitUsage;
        }
        ro.lease_renew = *renew;
        ro.lease_duration = *hold;
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

    int dispatch() {
        if (*validate) return cmd_validate(g);
        if (*address) {
            if (key_env.empty() && key_file.empty()) {
                std::cerr << "keymaster address: give --key-env VAR or --key-file FILE\n";
                return kExitUsage;
            }
            return cmd_address(key_env, key_file);
        }
        if (*run_cmd) return run_daemon();
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
        return kExitUsage;
    }
};

}  // namespace

int run(int argc, char** argv, const Clock& clock) {
    CommandLine cl;
    cl.g.clock = &clock;
    try {
        cl.app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return cl.app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        cl.app.exit(e);
        return kExitUsage;
    }
    if (auto err = setup_logging(cl.g.log_level, cl.g.log_format); !err.empty()) {
        std::cerr << "keymaster: " << err << "\n";
        return kExitUsage;
    }
    try {
        return cl.dispatch();
    } catch (const std::exception& e) {
        spdlog::critical("unexpected error: {}", e.what());
        return kExitFailure;
    }
}

}  // namespace keymaster::cli
