"""Two `keymaster run` replicas on one Postgres ledger (Debian's postgresql-15, started here) and an
anvil chain: one leads (keymaster_leader 1, /status says who), the other stands by and exports
balances but never signs; the leader SIGKILLed, the standby takes over within the lease's duration
and funds what the old leader would have, once; `top-up` is refused while a replica leads; a
replica stopped with SIGTERM releases the lease at once."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (DEV_ADDRESS, DEV_KEY, ETHER, Chain, fresh_address, keymaster, metric_values, wait_for,  # noqa: E402
                    write_config)
from daemon_test import Daemon  # noqa: E402
from postgres import Postgres  # noqa: E402

LEASE_ARGS = ["--lease-renew", "500ms", "--lease-duration", "3s"]


def leader(d):
    if d.proc.poll() is not None:
        return None
    return metric_values(d.metrics(), "keymaster_leader").get(frozenset({("lease", "keymaster")}))


class ReplicasOnPostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()
        cls.url = cls.pg.create_database("keymaster")
        cls.chain = Chain(31337, block_time=1)
        cls.agents = [fresh_address() for _ in range(4)]
        cls.config = write_config({"networks": {"alpha": {
            "endpoint": cls.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
            "agents": {"updater": cls.agents[0], "watchers": [cls.agents[1]], "relayer": cls.agents[2],
                       "processor": cls.agents[3]}}}})
        cls.env = {"KM_BANK": DEV_KEY, "KEYMASTER_LEDGER": cls.url, "PERIOD": "1"}
        cls.funded = cls.agents[:2]  # updater and watcher, on their home chain

    @classmethod
    def tearDownClass(cls):
        cls.chain.stop()
        cls.pg.stop()

    def test_one_leads_the_other_takes_over_nothing_paid_twice(self):
        start_nonce = self.chain.nonce(DEV_ADDRESS)
        a = Daemon(self.config, self.env, LEASE_ARGS)
        b = Daemon(self.config, self.env, LEASE_ARGS)
        try:
            # 1. One leads, one stands by; both export the accounts' balances.
            wait_for("one leader", lambda: sorted([leader(a), leader(b)]) == [0.0, 1.0], timeout=20)
            first, second = (a, b) if leader(a) == 1.0 else (b, a)
            wait_for("both funded accounts at their target",
                     lambda: all(self.chain.balance(x) == 2 * ETHER for x in self.funded), timeout=30)
            for d in (a, b):
                wait_for("balances exported", lambda d=d: metric_values(d.metrics(), "keymaster_account_balance_ether"))
            code, body = second.get("/status")
            self.assertEqual(code, 200)
            self.assertIn('"leading": false', body)
            self.assertIn('"leader":', body)
            # A top-up while a replica leads is refused, and sends nothing.
            before = self.chain.nonce(DEV_ADDRESS)
            self.chain.set_balance(self.funded[0], 0)
            r = keymaster("top-up", "--yes", "--config", self.config, env=self.env)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("lease keymaster is held by", r.stderr)

            # 2. The leader pays the drained agent, once.
            wait_for("the drained agent refunded", lambda: self.chain.balance(self.funded[0]) == 2 * ETHER, timeout=30)
            self.assertEqual(self.chain.nonce(DEV_ADDRESS), before + 1)

            # 3. SIGKILL the leader; the standby leads within the lease's 3 s (+ a claim) and pays.
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            killed = time.time()
            wait_for("the standby leads", lambda: leader(second) == 1.0, timeout=10)
            self.assertLess(time.time() - killed, 3 + 2, "taken over within the lease's duration and a renewal")
            before = self.chain.nonce(DEV_ADDRESS)
            self.chain.set_balance(self.funded[1], 0)
            wait_for("the new leader refunds", lambda: self.chain.balance(self.funded[1]) == 2 * ETHER, timeout=30)
            time.sleep(3)  # a few more Rounds: nothing paid again
            self.assertEqual(self.chain.nonce(DEV_ADDRESS), before + 1)
            self.assertEqual(self.chain.balance(self.funded[1]), 2 * ETHER)

            # 4. SIGTERM releases the lease at once: a top-up right after may lead (nothing to do).
            second.stop()
            self.assertIn("leading", second.output())
            r = keymaster("top-up", "--yes", "--config", self.config, env=self.env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # Every top-up exactly once: 2 first fundings and 2 refunds.
            self.assertEqual(self.chain.nonce(DEV_ADDRESS), start_nonce + 4)
            rows = self.pg.query("keymaster", "SELECT count(*) FROM topups WHERE state='confirmed'")
            self.assertEqual(rows, "4")
        finally:
            for d in (a, b):
                d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
