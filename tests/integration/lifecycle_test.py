"""Worker lifecycle on a real anvil chain that holds its transactions (--no-mining): SIGTERM gives
commits --shutdown-timeout, then cancels them and exits only after every Worker has left; SIGHUP
starts a network's new Worker only after its old one has finished its Round. Nothing is lost or
paid twice either way."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (KEYMASTER, Chain, DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, keymaster, rpc, wait_for,  # noqa: E402
                    write_config)

ENV = {"KM_BANK": DEV_KEY}


def read(path):
    with open(path) as f:
        return f.read()


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.chain = Chain(31337, extra=["--no-mining"])
        self.agents = [fresh_address() for _ in range(3)]
        self.cfg = {"networks": {"alpha": {"endpoint": self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
                                           "replaceAfter": {"blocks": 100, "seconds": 3600},
                                           "agents": {"updater": self.agents[0], "watchers": self.agents[1:],
                                                      "relayer": fresh_address(), "processor": fresh_address()}}}}
        self.path = write_config(self.cfg)
        self.data = tempfile.mkdtemp(prefix="keymaster-life-")

    def tearDown(self):
        self.chain.stop()

    def daemon(self, *extra, interval="300ms"):
        log = tempfile.NamedTemporaryFile(prefix="keymaster-", suffix=".log", delete=False).name
        with open(log, "w") as out:
            d = subprocess.Popen([KEYMASTER, "run", "--config", self.path, "--data-dir", self.data, "--interval", interval,
                                  "--metrics-addr", "127.0.0.1:0", *extra], stdout=out, stderr=out,
                                 env=dict(os.environ, **ENV))
        d.log = log
        return d

    def history(self):
        import json
        r = keymaster("history", "--json", "--data-dir", self.data, "--config", self.path)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def pending_in_pool(self):
        return int(rpc(self.chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]), 16)

    def wait_in_flight(self):
        """Until the top-ups are in the mempool: the commit then waits for receipts the chain holds back."""
        wait_for("top-ups in the mempool", lambda: self.pending_in_pool() == 3)
        time.sleep(0.5)

    def assert_paid_once(self):
        to = [tx["to"].lower() for tx in self.chain.transactions_from(DEV_ADDRESS)]
        for a in self.agents:
            self.assertEqual(to.count(a.lower()), 1, a)
            self.assertEqual(self.chain.balance(a), 2 * ETHER, a)

    # A Round waits for receipts until its next poll is due: a 30 s interval keeps the commit waiting.
    def test_sigterm_cancels_a_commit_after_the_shutdown_timeout_and_loses_nothing(self):
        d = self.daemon("--shutdown-timeout", "1", interval="30s")
        self.wait_in_flight()
        start = time.time()
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait(20), 0)
        took = time.time() - start
        log = read(d.log)
        self.assertIn("cancelled", log, log)
        self.assertGreaterEqual(took, 0.9, "the commit had its --shutdown-timeout")
        states = [e["state"] for e in self.history()]
        self.assertEqual(sorted(states), ["sent"] * 3, states)  # unknown fate stays unresolved, never failed
        # The next run settles them from the chain: each account paid once.
        rpc(self.chain.url, "evm_mine")
        d = self.daemon()
        try:
            wait_for("settled", lambda: sorted(e["state"] for e in self.history()) == ["confirmed"] * 3)
            rpc(self.chain.url, "evm_mine")
            time.sleep(1)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
        self.assert_paid_once()

    def test_sighup_starts_the_new_worker_only_after_the_old_round_ends(self):
        d = self.daemon(interval="30s")
        try:
            self.wait_in_flight()
            d.send_signal(signal.SIGHUP)
            time.sleep(3)
            log = read(d.log)
            self.assertNotIn("config reloaded", log, "the old Worker is still waiting for its receipts")
            self.assertEqual(log.count("funding 1 network(s)"), 1, log)
            rpc(self.chain.url, "evm_mine")  # the old Round's receipts arrive: it ends, the new Worker starts
            wait_for("reloaded", lambda: "config reloaded" in read(d.log), timeout=20)
            self.assertEqual(read(d.log).count("funding 1 network(s)"), 2)
            wait_for("the new Worker's first Round", lambda: read(d.log).count("alpha: chain id") >= 2, timeout=20)
            time.sleep(1.5)
            rpc(self.chain.url, "evm_mine")
            time.sleep(0.5)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
        self.assert_paid_once()
        self.assertEqual(self.pending_in_pool(), 3)  # nothing more was sent


if __name__ == "__main__":
    unittest.main(verbosity=2)
