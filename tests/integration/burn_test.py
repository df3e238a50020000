"""Measured burn on a real anvil chain: an agent spends at a known steady rate through the node
(real transactions from its address, sent with anvil_impersonateAccount); keymaster's burn rate and
runway are within 25% of the truth, its threshold and target are sized from them (and it tops the
agent up to that target), `status` beside the running daemon sees the same estimate from the
ledger, and a restart keeps it. Idle accounts show nothing spent (runway +Inf, runwaySeconds null)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from chains import (KEYMASTER, Chain, DEV_KEY, ETHER, fresh_address, metric_values, rpc, start_daemon,  # noqa: E402
                    wait_for, write_config)

ENV = {"KM_BANK": DEV_KEY}
STEP = ETHER // 400  # 0.0025 ether every PERIOD seconds
PERIOD = 0.25
TRUE_PER_DAY = STEP / PERIOD * 86400 / ETHER  # 864 ether a day, fees aside (0.5%)
THRESHOLD_S, TARGET_S = 600, 1200  # runway 10m and 20m: 6 and 12 ether at the true rate


def within(value, truth, tolerance=0.25):
    return abs(value - truth) <= tolerance * truth


class MeasuredBurn(unittest.TestCase):
    def setUp(self):
        self.chain = Chain(31337)
        self.burner = fresh_address()
        self.sink = fresh_address()
        self.idle = fresh_address()
        self.path = write_config({"networks": {"alpha": {
            "endpoint": self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "0.1 ether", "target": "0.2 ether",
            "runway": {"window": "60s"},
            "roles": {"updater": {"runway": {"threshold": "10m", "target": "20m", "max": "100 ether"}}},
            "agents": {"updater": self.burner, "watchers": [self.idle], "relayer": fresh_address(),
                       "processor": fresh_address()}}}})
        self.data = tempfile.mkdtemp(prefix="keymaster-burn-")
        # Funded before keymaster starts, above its amount threshold: only the burn can make it act.
        self.chain.set_balance(self.burner, 5 * ETHER)
        rpc(self.chain.url, "anvil_impersonateAccount", [self.burner])
        self.stop_burning = threading.Event()
        self.sent = []  # (time, value)
        self.burning = threading.Thread(target=self.burn, daemon=True)
        self.burning.start()

    def tearDown(self):
        self.stop_burning.set()
        self.burning.join(5)
        self.chain.stop()

    def burn(self):
        next_at = time.time()
        while not self.stop_burning.is_set():
            try:
                rpc(self.chain.url, "eth_sendTransaction",
                    [{"from": self.burner, "to": self.sink, "value": hex(STEP), "gas": hex(21000)}])
                self.sent.append((time.time(), STEP))
            except (RuntimeError, OSError):
                pass  # the chain stopping at tearDown
            next_at += PERIOD
            time.sleep(max(0.0, next_at - time.time()))

    def daemon(self):
        return start_daemon(self.path, self.data, ENV)

    def stop(self, d):
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait(20), 0)

    def account(self, d, address):
        status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{d.port}/status", timeout=5))
        net = status["networks"][0]
        return next(a for a in net["accounts"] if a["address"] == address), net

    def metric(self, d, name, address):
        text = urllib.request.urlopen(f"http://127.0.0.1:{d.port}/metrics", timeout=5).read().decode()
        for labels, value in metric_values(text, name).items():
            if ("address", address) in labels:
                return value
        return None

    def burn_of(self, d, address):
        try:
            a, _ = self.account(d, address)
        except OSError:
            return None
        return float(a["burnPerDay"]) if a["burnPerDay"] is not None else None

    def test_burn_rate_runway_and_target_from_a_steady_spender(self):
        started = time.time()
        d = self.daemon()
        try:
            # A window of 60 s: after 30 s the rate is measured over half of it.
            time.sleep(30)
            a, net = self.account(d, self.burner)
            rate = float(a["burnPerDay"])
            self.assertTrue(within(rate, TRUE_PER_DAY), f"burn {rate}/day, truth {TRUE_PER_DAY}/day")
            balance = float(a["balance"])
            self.assertIsNotNone(a["runwaySeconds"])
            self.assertTrue(within(a["runwaySeconds"], balance / TRUE_PER_DAY * 86400), a)
            # 5 ether lasted less than 10 minutes: topped up to 20 minutes' worth.
            target = self.metric(d, "keymaster_account_target_ether", self.burner)
            self.assertTrue(within(target, TRUE_PER_DAY * TARGET_S / 86400), f"target {target}")
            threshold = self.metric(d, "keymaster_account_threshold_ether", self.burner)
            self.assertTrue(within(threshold, TRUE_PER_DAY * THRESHOLD_S / 86400), f"threshold {threshold}")
            self.assertGreater(balance, 6, "topped up to the target from burn (12 ether), not the amount (0.2)")
            with open(d.log) as f:  # the log says why it sent more than the amount target
                self.assertRegex(f.read(), r"top up [0-9.]+ \(threshold 10m of [0-9.]+ ETH/day")
            self.assertRegex(a["levelsFrom"], r"^threshold 10m of [0-9.]+ ETH/day, target 20m of [0-9.]+ ETH/day$")
            # What it spent while keymaster watched, counted: within 25% of what the burner sent.
            spent = self.metric(d, "keymaster_account_spent_ether_total", self.burner)
            truth = sum(v for t, v in list(self.sent) if t >= started) / ETHER
            self.assertTrue(within(spent, truth), f"spent {spent}, sent {truth}")
            # Runway of the idle watcher: nothing spent.
            idle, _ = self.account(d, self.idle)
            self.assertIsNone(idle["runwaySeconds"])
            self.assertEqual(float(idle["burnPerDay"]), 0)
            self.assertEqual(self.metric(d, "keymaster_account_runway_seconds", self.idle), float("inf"))
            self.assertEqual(self.metric(d, "keymaster_account_runway_threshold_seconds", self.idle), None)
            self.assertEqual(self.metric(d, "keymaster_account_runway_threshold_seconds", self.burner), THRESHOLD_S)
            # The bank paid the burner's top-up (and fees): a finite runway.
            bank_runway = self.metric(d, "keymaster_bank_runway_seconds", net["bank"]["address"])
            self.assertIsNotNone(bank_runway)
            self.assertLess(bank_runway, float("inf"))
            self.assertIsNotNone(net["bank"]["runwaySeconds"])
            # status, beside the running daemon (no lock), reads the same history from the ledger.
            r = subprocess.run([KEYMASTER, "status", "--json", "--config", self.path, "--data-dir", self.data],
                               capture_output=True, text=True, env=dict(os.environ, **ENV), timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            sa = next(x for x in json.loads(r.stdout)["networks"][0]["accounts"] if x["address"] == self.burner)
            self.assertTrue(within(float(sa["burnPerDay"]), TRUE_PER_DAY), sa)
            self.assertTrue(within(float(sa["target"]), TRUE_PER_DAY * TARGET_S / 86400), sa)
            r = subprocess.run([KEYMASTER, "status", "--config", self.path, "--data-dir", self.data],
                               capture_output=True, text=True, env=dict(os.environ, **ENV), timeout=60)
            self.assertIn("BURN/DAY", r.stdout)
            self.assertIn("RUNWAY", r.stdout)
            self.assertIn("threshold 10m of ", r.stdout)
        finally:
            self.stop(d)
        # A restart keeps the estimate: the first answers already carry it.
        d = self.daemon()
        try:
            wait_for("the first round after the restart", lambda: self.burn_of(d, self.burner) is not None, timeout=30)
            rate = self.burn_of(d, self.burner)
            self.assertTrue(within(rate, TRUE_PER_DAY), f"after the restart: {rate}/day")
        finally:
            self.stop(d)


class RunwayValidation(unittest.TestCase):
    def test_bad_runway_settings_exit_2_naming_the_place(self):
        agents = {"updater": fresh_address(), "watchers": [], "relayer": fresh_address(), "processor": fresh_address()}
        path = write_config({"networks": {"alpha": {
            "endpoint": "http://127.0.0.1:1", "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "runway": {"threshold": "6h", "target": "1h", "window": "soon"}, "agents": agents}}})
        r = subprocess.run([KEYMASTER, "validate", "--config", path], capture_output=True, text=True,
                           env=dict(os.environ, **ENV), timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{path}: networks.alpha.runway.window: expected a duration", r.stderr)
        self.assertIn(f"{path}: networks.alpha.runway.target: runway target 1h is shorter than the runway threshold 6h",
                      r.stderr)
        # Merged over the network's block, a role's max below its amounts is refused at the role's path.
        path = write_config({"networks": {"alpha": {
            "endpoint": "http://127.0.0.1:1", "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "runway": {"threshold": "6h", "target": "1d"},
            "roles": {"updater": {"runway": {"max": "0.5 ether"}}}, "agents": agents}}})
        r = subprocess.run([KEYMASTER, "validate", "--config", path], capture_output=True, text=True,
                           env=dict(os.environ, **ENV), timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{path}: networks.alpha.roles.updater.runway.max: runway.max 0.5 is below the threshold 1 of updater",
                      r.stderr)


if __name__ == "__main__":
    unittest.main()
