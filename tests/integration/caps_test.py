"""limits.perAccount on a real anvil chain: an agent that spends everything it receives at once
(its balance is emptied as soon as a top-up lands) never receives more than `daily` in 24 hours,
nor more than `topUps` transfers, however often it runs dry; the others are still funded; the cap
survives a restart (it is counted from the ledger)."""
import os
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (Chain, DEV_ADDRESS, DEV_KEY, ETHER, checksum, error_count, fresh_address,  # noqa: E402
                    metric_values, start_daemon, wait_for, write_config)

ENV = {"KM_BANK": DEV_KEY}


class PerAccountCaps(unittest.TestCase):
    def setUp(self):
        self.chain = Chain(31337)
        self.spender, *self.others = [fresh_address() for _ in range(3)]
        self.path = write_config({"networks": {"alpha": {
            "endpoint": self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "limits": {"perAccount": {"daily": "3 ether", "topUps": 3}},
            "agents": {"updater": self.spender, "watchers": self.others, "relayer": fresh_address(),
                       "processor": fresh_address()}}}})
        self.data = tempfile.mkdtemp(prefix="keymaster-caps-")
        self.stop_spending = threading.Event()

    def tearDown(self):
        self.stop_spending.set()
        self.chain.stop()

    def spend_everything(self):
        """The agent sends away all it receives, in its own transactions (its nonce moves: a real
        spend, which the endpoint's self-contradiction check must not hold)."""
        while not self.stop_spending.is_set():
            try:
                if self.chain.balance(self.spender) > 0:
                    self.chain.spend_all(self.spender)
            except (RuntimeError, OSError):
                pass  # the chain stopping at tearDown
            time.sleep(0.05)

    def daemon(self):
        return start_daemon(self.path, self.data, ENV)

    def received(self):
        txs = [tx for tx in self.chain.transactions_from(DEV_ADDRESS) if tx["to"].lower() == self.spender.lower()]
        return [int(tx["value"], 16) for tx in txs]

    def test_an_agent_that_burns_everything_is_capped_and_the_others_are_funded(self):
        import urllib.request
        threading.Thread(target=self.spend_everything, daemon=True).start()
        d = self.daemon()
        try:
            wait_for("the cap reached", lambda: sum(self.received()) >= 3 * ETHER, timeout=30)
            time.sleep(3)  # ten more rounds with the spender empty
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{d.port}/metrics", timeout=5).read().decode()
            self.assertGreater(error_count(metrics, "alpha", "limit"), 0)
            # keymaster_account_held_back (KeymasterAccountHeldBack) names the capped account, only it.
            held = {dict(k)["address"]: v for k, v in metric_values(metrics, "keymaster_account_held_back").items()}
            self.assertEqual(held.pop(checksum(self.spender)), 1.0)
            self.assertTrue(held and all(v == 0.0 for v in held.values()), held)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(20), 0)
        got = self.received()
        self.assertEqual(sum(got), 3 * ETHER, got)  # 2 ether, then the 1 ether left of the daily cap
        self.assertLessEqual(len(got), 3, got)
        self.assertEqual(got, [2 * ETHER, ETHER], "the second top-up is the part the cap allows")
        for a in self.others:
            self.assertEqual(self.chain.balance(a), 2 * ETHER, a)
        with open(d.log) as f:
            log = f.read()
        self.assertEqual(log.count("held back"), 1, "logged once per account per hour")
        self.assertIn("perAccount", log)
        # A restart does not reset it: the ledger has the last 24 hours.
        d = self.daemon()
        try:
            time.sleep(3)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(20), 0)
        self.assertEqual(sum(self.received()), 3 * ETHER)

    def test_the_count_cap(self):
        self.path = write_config({"networks": {"alpha": {
            "endpoint": self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "limits": {"perAccount": {"topUps": 2}},
            "agents": {"updater": self.spender, "watchers": self.others, "relayer": fresh_address(),
                       "processor": fresh_address()}}}})
        threading.Thread(target=self.spend_everything, daemon=True).start()
        d = self.daemon()
        try:
            wait_for("two top-ups", lambda: len(self.received()) >= 2, timeout=30)
            time.sleep(3)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(20), 0)
        self.assertEqual(self.received(), [2 * ETHER, 2 * ETHER])


if __name__ == "__main__":
    unittest.main(verbosity=2)
