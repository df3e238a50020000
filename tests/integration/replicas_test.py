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


def set_up_fleet(cls, block_time):
    """A Postgres, an anvil chain with `block_time` s blocks, a config of one network whose updater
    and watcher are funded on it (cls.funded), and the replicas' environment (1 s interval)."""
    cls.pg = Postgres()
    cls.url = cls.pg.create_database("keymaster")
    cls.chain = Chain(31337, block_time=block_time)
    cls.agents = [fresh_address() for _ in range(4)]
    cls.config = write_config({"networks": {"alpha": {
        "endpoint": cls.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
        "agents": {"updater": cls.agents[0], "watchers": [cls.agents[1]], "relayer": cls.agents[2],
                   "processor": cls.agents[3]}}}})
    cls.env = {"KM_BANK": DEV_KEY, "KEYMASTER_LEDGER": cls.url, "PERIOD": "1"}
    cls.funded = cls.agents[:2]  # updater and watcher, on their home chain (relayer, processor: replicas only)


class ReplicasOnPostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        set_up_fleet(cls, block_time=1)

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


class FailoverWhileTopUpsAreInTheMempool(unittest.TestCase):
    """Blocks every 3 s, so the leader's top-ups sit in the mempool when it dies."""

    @classmethod
    def setUpClass(cls):
        set_up_fleet(cls, block_time=3)

    @classmethod
    def tearDownClass(cls):
        cls.chain.stop()
        cls.pg.stop()

    def leading(self, replicas):
        live = [d for d in replicas if d.proc.poll() is None and leader(d) == 1.0]
        return live[0] if len(live) == 1 else None

    def confirmed(self):
        return int(self.pg.query("keymaster", "SELECT count(*) FROM topups WHERE state='confirmed'"))

    def test_sigkill_the_leader_three_times_every_account_paid_once(self):
        start_nonce = self.chain.nonce(DEV_ADDRESS)
        start_confirmed = self.confirmed()  # (the class's other tests share the ledger)
        replicas = [Daemon(self.config, self.env, LEASE_ARGS), Daemon(self.config, self.env, LEASE_ARGS)]
        payments = 0
        in_flight = 0  # kills with top-ups of the dead leader still unmined
        try:
            for kill in range(3):
                current = None

                def one_leads():
                    nonlocal current
                    current = self.leading(replicas)
                    return current
                wait_for("one leader", one_leads, timeout=20)
                # Drain both funded agents: the leader pays them; its transactions wait for a block.
                for a in self.funded:
                    self.chain.set_balance(a, 0)
                payments += len(self.funded)
                wait_for("the top-ups journaled and sent (in the mempool: blocks every 3 s)",
                         lambda: int(self.pg.query("keymaster", "SELECT count(*) FROM topups WHERE state IN "
                                                   "('intent','sent','confirmed')")) >= start_confirmed + payments,
                         timeout=20)
                pending = int(self.pg.query("keymaster", "SELECT count(*) FROM topups WHERE state IN ('intent','sent')"))
                in_flight += pending > 0
                current.proc.send_signal(signal.SIGKILL)
                current.proc.wait()
                killed = time.time()
                others = [d for d in replicas if d is not current]
                wait_for("the standby leads", lambda: self.leading(others), timeout=15)
                self.assertLess(time.time() - killed, 3 + 1 + 2, "within the lease's duration, one interval and a claim")
                wait_for("both agents at their target",
                         lambda: all(self.chain.balance(a) == 2 * ETHER for a in self.funded), timeout=40)
                replicas = others + [Daemon(self.config, self.env, LEASE_ARGS)]  # a new standby
            self.assertGreaterEqual(in_flight, 1, "no kill caught a top-up in the mempool")
            time.sleep(4)  # more Rounds and a block: nothing paid again
            for a in self.funded:
                self.assertEqual(self.chain.balance(a), 2 * ETHER)
            # Three rounds of two top-ups (the first is the first funding: new agents hold nothing):
            # exactly one transaction per top-up, whichever replica sent it.
            self.assertEqual(self.chain.nonce(DEV_ADDRESS), start_nonce + payments)
            self.assertEqual(self.confirmed() - start_confirmed, payments)
        finally:
            for d in replicas:
                d.stop()

    def test_the_zombie_wakes_broadcasts_nothing_and_steps_down(self):
        a = Daemon(self.config, self.env, LEASE_ARGS)
        wait_for("a leads", lambda: leader(a) == 1.0, timeout=20)
        wait_for("funded", lambda: all(self.chain.balance(x) == 2 * ETHER for x in self.funded), timeout=40)
        b = Daemon(self.config, self.env, LEASE_ARGS)
        try:
            wait_for("b stands by", lambda: leader(b) == 0.0, timeout=20)
            a.proc.send_signal(signal.SIGSTOP)  # frozen past its lease: a zombie
            wait_for("b takes over", lambda: leader(b) == 1.0, timeout=15)
            before = self.chain.nonce(DEV_ADDRESS)
            self.chain.set_balance(self.funded[0], 0)
            wait_for("b pays", lambda: self.chain.balance(self.funded[0]) == 2 * ETHER, timeout=40)
            paid = self.chain.nonce(DEV_ADDRESS)
            self.assertEqual(paid, before + 1)
            self.chain.set_balance(self.funded[1], 0)  # work the zombie would see on waking
            a.proc.send_signal(signal.SIGCONT)
            wait_for("a steps down", lambda: leader(a) == 0.0, timeout=15)
            wait_for("b pays the second", lambda: self.chain.balance(self.funded[1]) == 2 * ETHER, timeout=40)
            time.sleep(4)
            # By nonce: only b's one new transaction after the zombie woke; nothing of a's.
            self.assertEqual(self.chain.nonce(DEV_ADDRESS), paid + 1)
            self.assertIn("standing by", a.output())
        finally:
            a.proc.send_signal(signal.SIGCONT)
            a.stop()
            b.stop()

    def test_postgres_restarted_mid_round_fails_closed_and_recovers(self):
        d = Daemon(self.config, self.env, LEASE_ARGS)
        try:
            wait_for("it leads", lambda: leader(d) == 1.0, timeout=20)
            wait_for("funded", lambda: all(self.chain.balance(x) == 2 * ETHER for x in self.funded), timeout=40)
            before = self.chain.nonce(DEV_ADDRESS)
            for a in self.funded:
                self.chain.set_balance(a, 0)
            wait_for("the top-ups sent (in the mempool)",
                     lambda: int(self.pg.query("keymaster", "SELECT count(*) FROM topups WHERE state='sent'")) >= 1,
                     timeout=20)
            self.pg.stop_server()  # every connection dies mid-Round
            time.sleep(3)
            self.pg.start()

            def ledger_errors():
                values = metric_values(d.metrics(), "keymaster_errors_total")
                return sum(v for k, v in values.items() if ("scope", "ledger") in k)
            wait_for("ledger errors counted", lambda: ledger_errors() > 0, timeout=20)
            wait_for("it leads again", lambda: leader(d) == 1.0, timeout=20)
            wait_for("both agents at their target", lambda: all(self.chain.balance(a) == 2 * ETHER for a in self.funded),
                     timeout=40)
            time.sleep(4)
            self.assertEqual(self.chain.nonce(DEV_ADDRESS), before + 2, "nothing lost, nothing paid twice")
            wait_for("the ledger settles both",
                     lambda: self.pg.query("keymaster", "SELECT count(*) FROM topups WHERE state IN ('intent','sent')") == "0",
                     timeout=20)
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
