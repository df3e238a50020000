"""keymaster run on two real anvil chains, scraped by a real Prometheus server."""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from chains import (KEYMASTER, Chain, DEV_ADDRESS, DEV_KEY, ETHER, error_count, fresh_address, free_port,  # noqa: E402
                    metric_values, write_config)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INTERVAL = 1.0


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what, predicate, timeout=30.0, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    def __init__(self, config_path, env, args=(), port=None, data_dir=None):
        self.port = port or free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="keymaster-data-")
        self.log = tempfile.NamedTemporaryFile(prefix="keymaster-daemon-", suffix=".log", delete=False)
        full_env = dict(os.environ, **env)
        cmd = [KEYMASTER, "run", "--config", config_path, "--data-dir", self.data_dir, *args]
        if not any(a.startswith("--metrics-addr") for a in args) and "METRICS_PORT" not in env:
            cmd += ["--metrics-addr", f"127.0.0.1:{self.port}"]
        if "PERIOD" not in env:
            cmd += ["--interval", f"{int(INTERVAL * 1000)}ms"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=full_env)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for("daemon health", lambda: self.alive() and self.get("/healthz")[0] == 200)

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
        return True

    def get(self, path):
        try:
            return http_get(self.base + path)
        except OSError:
            return (0, "")

    def metrics(self):
        return self.get("/metrics")[1]

    def output(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class DaemonOnAnvil(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.alpha = Chain(31337)
        cls.beta = Chain(31338)
        cls.chains = {"alpha": cls.alpha, "beta": cls.beta}
        cls.a = {k: fresh_address() for k in ("updater", "watcher", "relayer", "processor")}
        cls.b = {k: fresh_address() for k in ("updater", "watcher", "relayer", "processor")}
        cls.config = {"networks": {
            "alpha": {"endpoint": cls.alpha.url, "replicas": ["beta"], "bank": {"keyEnv": "KM_BANK"},
                      "threshold": "1 ether", "bankThreshold": "100000 ether",
                      "agents": {"updater": cls.a["updater"], "watchers": [cls.a["watcher"]],
                                 "relayer": cls.a["relayer"], "processor": cls.a["processor"]}},
            "beta": {"endpoint": cls.beta.url, "replicas": ["alpha"], "bank": {"keyEnv": "KM_BANK"},
                     "threshold": "0.5 ether",
                     "agents": {"updater": cls.b["updater"], "watchers": [cls.b["watcher"]],
                                "relayer": cls.b["relayer"], "processor": cls.b["processor"]}}}}
        cls.dir = tempfile.mkdtemp(prefix="keymaster-daemon-")
        cls.path = write_config(cls.config, cls.dir)
        # (network, address) -> target
        cls.targets = {("alpha", cls.a["updater"]): 2 * ETHER, ("alpha", cls.a["watcher"]): 2 * ETHER,
                       ("alpha", cls.b["relayer"]): 2 * ETHER, ("alpha", cls.b["processor"]): 2 * ETHER,
                       ("alpha", cls.b["watcher"]): 2 * ETHER,
                       ("beta", cls.b["updater"]): ETHER, ("beta", cls.b["watcher"]): ETHER,
                       ("beta", cls.a["relayer"]): ETHER, ("beta", cls.a["processor"]): ETHER,
                       ("beta", cls.a["watcher"]): ETHER}
        cls.daemon = Daemon(cls.path, {"KM_BANK": DEV_KEY})

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        for c in cls.chains.values():
            c.stop()

    def all_funded(self):
        return all(self.chains[n].balance(a) == t for (n, a), t in self.targets.items())

    def test_1_funds_every_account_and_metrics_match_the_chain(self):
        wait_for("every account at its target", self.all_funded)
        wait_for("readiness", lambda: self.daemon.get("/readyz")[0] == 200)

        def matching():  # gauges show the last poll: wait for one after the top-ups
            text = self.daemon.metrics()
            values = metric_values(text, "keymaster_account_balance_ether")
            ok = len(values) == len(self.targets) and all(
                v * ETHER == self.chains[dict(k)["network"]].balance(dict(k)["address"]) for k, v in values.items())
            return text if ok else None
        text = wait_for("metrics to match the chain", matching)
        balances = metric_values(text, "keymaster_account_balance_ether")
        self.assertEqual(len(balances), len(self.targets))
        for labels, value in balances.items():
            d = dict(labels)
            self.assertEqual(value, self.chains[d["network"]].balance(d["address"]) / ETHER, d)
            self.assertIn(d["role"], ("updater", "watcher", "relayer", "processor", "kathy"))
        banks = metric_values(text, "keymaster_bank_balance_ether")
        for labels, value in banks.items():
            d = dict(labels)
            self.assertEqual(d["address"], DEV_ADDRESS)
            self.assertAlmostEqual(value, self.chains[d["network"]].balance(DEV_ADDRESS) / ETHER, places=6)
        topups = metric_values(text, "keymaster_topups_total")
        self.assertEqual(sum(v for k, v in topups.items() if ("result", "success") in k), len(self.targets))
        self.assertGreaterEqual(metric_values(text, "keymaster_block_number")[frozenset({("network", "alpha")})],
                                int(self.alpha.transactions_from(DEV_ADDRESS)[-1]["blockNumber"], 16))
        self.assertIn('keymaster_build_info{', text)
        self.assertGreater(error_count(text, "alpha", "bank_low"), 0)
        self.assertIn('keymaster_rpc_request_duration_seconds_bucket{', text)
        self.assertIn('keymaster_poll_last_success_timestamp_seconds{network="beta"}', text)
        self.assertNotIn("127.0.0.1", text)  # no endpoint URL in any label
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_2_status_endpoint(self):
        wait_for("every account at its target", self.all_funded)

        def polled_after_funding():
            code, body = self.daemon.get("/status")
            doc = json.loads(body)
            done = all(a["balance"] is not None and float(a["balance"]) > 0 for n in doc["networks"] for a in n["accounts"])
            return (code, body, doc) if done else None
        code, body, doc = wait_for("a poll after funding", polled_after_funding)
        self.assertEqual(code, 200)
        accounts = [(n["name"], a) for n in doc["networks"] for a in n["accounts"]]
        self.assertEqual(len(accounts), len(self.targets))
        for network, a in accounts:
            self.assertEqual(float(a["balance"]) * ETHER, self.chains[network].balance(a["address"]))
            self.assertEqual(a["lastTopUp"]["result"], "success")
            self.assertTrue(a["lastTopUp"]["tx"].startswith("0x"))
        self.assertNotIn("127.0.0.1", body)
        self.assertNotIn(DEV_KEY[2:], body)
        self.assertEqual(self.daemon.get("/nope")[0], 404)

    def test_3_drained_agent_is_refunded_within_three_intervals(self):
        wait_for("every account at its target", self.all_funded)
        victim = self.a["watcher"]
        self.beta.set_balance(victim, 0)
        start = time.time()
        wait_for("re-funding", lambda: self.beta.balance(victim) == ETHER, timeout=30, step=0.1)
        self.assertLess(time.time() - start, 3 * INTERVAL * 1.1 + 1.0)

    def test_4_prometheus_scrapes_and_accepts_every_expression(self):
        wait_for("every account at its target", self.all_funded)
        prom_dir = tempfile.mkdtemp(prefix="keymaster-prom-")
        shutil.copy(os.path.join(ROOT, "etc/prometheus/keymaster-rules.yml"), prom_dir)
        with open(os.path.join(prom_dir, "prometheus.yml"), "w") as f:
            f.write(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files: [keymaster-rules.yml]\n"
                    f"scrape_configs:\n  - job_name: keymaster\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{self.daemon.port}']\n")
        port = free_port()
        prom = subprocess.Popen(["prometheus", f"--config.file={prom_dir}/prometheus.yml",
                                 f"--storage.tsdb.path={prom_dir}/data", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"

        def query(expr):
            code, body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            return code, json.loads(body) if body.startswith("{") else {}

        try:
            def counted():
                try:
                    code, doc = query("count(keymaster_account_balance_ether)")
                except OSError:
                    return None
                res = doc.get("data", {}).get("result", [])
                return res and int(float(res[0]["value"][1])) == len(self.targets)
            wait_for("Prometheus to scrape keymaster", counted, timeout=60, step=0.5)
            exprs = []
            with open(os.path.join(ROOT, "etc/grafana/keymaster.json")) as f:
                for panel in json.load(f)["panels"]:
                    exprs += [t["expr"].replace("$network", ".*") for t in panel["targets"]]
            with open(os.path.join(ROOT, "etc/prometheus/keymaster-rules.yml")) as f:
                rules_text = f.read()
            self.assertGreater(len(exprs), 10)
            for expr in exprs:
                code, doc = query(expr)
                self.assertEqual((code, doc.get("status")), (200, "success"), expr)

            def rules_healthy():
                code, body = http_get(f"{base}/api/v1/rules")
                groups = json.loads(body)["data"]["groups"]
                rules = [r for g in groups for r in g["rules"]]
                return len(rules) == rules_text.count("- alert:") and all(r.get("health") == "ok" for r in rules)
            wait_for("alert rules evaluated", rules_healthy, timeout=30, step=0.5)
        finally:
            prom.terminate()
            prom.wait(10)

    def test_5_reload_on_sighup(self):
        wait_for("every account at its target", self.all_funded)
        newcomer = fresh_address()
        cfg = json.loads(json.dumps(self.config))
        cfg["networks"]["alpha"]["agents"]["watchers"].append(newcomer)
        write_config(cfg, self.dir)
        self.daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the new watcher funded", lambda: self.alpha.balance(newcomer) == 2 * ETHER)
        wait_for("its metric", lambda: newcomer in self.daemon.metrics())
        self.targets[("alpha", newcomer)] = 2 * ETHER
        self.targets[("beta", newcomer)] = ETHER
        wait_for("and on beta, as alpha's remote watcher", lambda: self.beta.balance(newcomer) == ETHER)
        # An invalid config is logged and counted; the old one keeps running.
        with open(self.path, "w") as f:
            f.write("{ not json")
        self.daemon.proc.send_signal(signal.SIGHUP)
        # (The series exists at 0 from the start: wait for the count itself.)
        wait_for("the config error counted", lambda: error_count(self.daemon.metrics(), "", "config") >= 1)
        self.assertIn("config reload failed; keeping the running config", self.daemon.output())
        victim = self.b["updater"]
        self.beta.set_balance(victim, 0)
        wait_for("funding still running", lambda: self.beta.balance(victim) == ETHER)
        self.assertTrue(self.daemon.alive())
        write_config(cfg, self.dir)

    def test_6_sigterm_exits_zero_quickly(self):
        d = Daemon(self.path, {"KM_BANK": DEV_KEY}, args=["--dry-run"])
        start = time.time()
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.time() - start, 10)

    def test_6b_one_daemon_per_data_dir(self):
        r = subprocess.run([KEYMASTER, "run", "--config", self.path, "--data-dir", self.daemon.data_dir,
                            "--metrics-addr", "127.0.0.1:0"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, KM_BANK=DEV_KEY))
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"another keymaster (pid {self.daemon.proc.pid}) is using {self.daemon.data_dir}", r.stderr)

    def test_7_readyz_names_networks_not_yet_polled(self):
        cfg = json.loads(json.dumps(self.config))
        cfg["networks"]["beta"]["endpoint"] = "http://127.0.0.1:1/SECRET-KEY"
        d = Daemon(write_config(cfg), {"KM_BANK": DEV_KEY}, args=["--dry-run"])
        try:
            code, body = d.get("/readyz")
            self.assertEqual(code, 503)
            self.assertIn("beta", json.loads(body)["notReady"])
            wait_for("alpha polled", lambda: 'keymaster_poll_last_success_timestamp_seconds{network="alpha"}' in d.metrics())
            code, body = d.get("/readyz")
            self.assertEqual((code, json.loads(body)["notReady"]), (503, ["beta"]))
            self.assertEqual(d.get("/healthz")[0], 200)
            wait_for("poll errors counted", lambda: error_count(d.metrics(), "beta", "poll") > 0)
            self.assertNotIn("SECRET-KEY", d.output() + d.get("/status")[1] + d.metrics())
        finally:
            self.assertEqual(d.stop(), 0)

    def test_7b_a_dead_network_recovers_by_itself(self):
        port = free_port()
        cfg = json.loads(json.dumps(self.config))
        cfg["networks"]["beta"]["endpoint"] = f"http://127.0.0.1:{port}"
        newcomer = fresh_address()
        cfg["networks"]["beta"]["agents"]["watchers"] = [newcomer]
        d = Daemon(write_config(cfg), {"KM_BANK": DEV_KEY, "DRY_RUN": "false"})
        late = None
        try:
            wait_for("beta failing", lambda: error_count(d.metrics(), "beta", "poll") > 0)
            self.assertEqual(d.get("/readyz")[0], 503)
            late = Chain(31338, port=port)  # the node comes (back) up on the same port
            wait_for("beta recovered and funded", lambda: late.balance(newcomer) == ETHER, timeout=30)
            wait_for("ready", lambda: d.get("/readyz")[0] == 200)
        finally:
            self.assertEqual(d.stop(), 0)
            if late:
                late.stop()

    def test_7c_dry_run_from_the_environment_sends_nothing(self):
        cfg = json.loads(json.dumps(self.config))
        newcomer = fresh_address()
        cfg["networks"]["alpha"]["agents"]["watchers"] = [newcomer]
        before = self.alpha.nonce(DEV_ADDRESS)
        d = Daemon(write_config(cfg), {"KM_BANK": DEV_KEY, "DRY_RUN": "true", "NETWORK_ENABLED": "alpha"})
        try:
            wait_for("a decision logged", lambda: "dry run: not sent" in d.output())
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertEqual(self.alpha.balance(newcomer), 0)
        self.assertEqual(self.alpha.nonce(DEV_ADDRESS), before)

    def test_8_empty_bank_keeps_running_with_errors_counted(self):
        # A fresh, empty bank; Nomad's environment variables instead of flags.
        empty_key = "0x" + secrets.token_hex(32)
        port = free_port()
        cfg = json.loads(json.dumps(self.config))
        del cfg["networks"]["beta"]
        cfg["networks"]["alpha"]["replicas"] = []
        cfg["networks"]["alpha"]["agents"]["watchers"] = [fresh_address()]
        d = Daemon(write_config(cfg), {"KM_BANK": empty_key, "PERIOD": "1", "METRICS_PORT": str(port),
                                       "NETWORK_ENABLED": "alpha"}, port=port)
        try:
            wait_for("failed top-ups counted",
                     lambda: error_count(d.metrics(), "alpha", "topup") > 0)
            self.assertIn('result="failure"', d.metrics())
            time.sleep(2 * INTERVAL)
            self.assertTrue(d.alive())
            self.assertEqual(d.get("/healthz")[0], 200)
            self.assertIn("bank balance too low", d.output())
        finally:
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
