"""Fault tests: a faulty endpoint, a dead first endpoint, and a lying endpoint held in check by
spend limits across a restart."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (KEYMASTER, Chain, DEV_ADDRESS, DEV_KEY, ETHER, error_count, fresh_address, free_port,  # noqa: E402
                    scrape, write_config)
from proxy import FaultProxy  # noqa: E402

ENV = {"KM_BANK": DEV_KEY}


def wait_for(what, predicate, timeout=90.0, step=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    def __init__(self, config, data_dir, interval="300ms"):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="keymaster-", suffix=".log", delete=False).name
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([KEYMASTER, "run", "--config", write_config(config), "--data-dir", data_dir,
                                          "--interval", interval, "--metrics-addr", f"127.0.0.1:{self.port}"],
                                         stdout=out, stderr=out, env=dict(os.environ, **ENV))

    def metrics(self):
        return scrape(self.port)

    def output(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


class Faults(unittest.TestCase):
    def setUp(self):
        self.chain = Chain(31337, block_time=1)
        self.data = tempfile.mkdtemp(prefix="keymaster-faults-")

    def tearDown(self):
        self.chain.stop()

    def network(self, endpoint, agents, **extra):
        return {"networks": {"alpha": {
            "endpoint": endpoint, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "agents": {"updater": agents[0], "watchers": agents[1:], "relayer": fresh_address(),
                       "processor": fresh_address()}, **extra}}}

    def sent_to(self, address):
        return [int(tx["value"], 16) for tx in self.chain.transactions_from(DEV_ADDRESS)
                if tx["to"].lower() == address.lower()]

    def test_faulty_endpoint_still_funds_everyone_exactly_once(self):
        proxy = FaultProxy(self.chain.url, rates={"drop": 0.06, "delay": 0.06, "status500": 0.06, "status429": 0.03,
                                                  "truncate": 0.06, "rpc_error": 0.06}, seed=7)
        agents = [fresh_address() for _ in range(6)]
        d = Daemon(self.network(proxy.url, agents), self.data)
        try:
            wait_for("every account at its target", lambda: all(self.chain.balance(a) == 2 * ETHER for a in agents))
            time.sleep(3)
        finally:
            self.assertEqual(d.stop(), 0)
            proxy.stop()
        for a in agents:
            self.assertEqual(self.sent_to(a), [2 * ETHER], a)
        self.assertGreaterEqual(len(proxy.counts), 4, proxy.counts)  # the faults really happened

    def test_dead_first_endpoint_fails_over_without_losing_a_round(self):
        agents = [fresh_address() for _ in range(2)]
        cfg = self.network(f"http://127.0.0.1:{free_port()}/dead", agents, endpoints=[self.chain.url])
        d = Daemon(cfg, self.data, interval="60s")  # one round only in the time allowed
        try:
            wait_for("funded in the first round", lambda: all(self.chain.balance(a) == 2 * ETHER for a in agents),
                     timeout=30)
            self.assertIn("failed over to endpoint 2", d.output())
        finally:
            self.assertEqual(d.stop(), 0)

    def test_lying_endpoint_is_held_by_the_limits_across_a_restart(self):
        liars = [fresh_address(), fresh_address()]
        honest = fresh_address()
        self.chain.set_balance(honest, 2 * ETHER)  # not a candidate: the budget goes to the liars only
        proxy = FaultProxy(self.chain.url, lie_empty=liars)
        cfg = self.network(proxy.url, [honest, *liars], limits={"maxTopUp": "1 ether", "daily": "3 ether"})
        try:
            d = Daemon(cfg, self.data)
            wait_for("the budget spent", lambda: 'keymaster_spend_remaining_ether{network="alpha"} 0' in d.metrics())
            wait_for("held back and counted", lambda: error_count(d.metrics(), "alpha", "limit") > 0)
            self.assertGreater(error_count(d.metrics(), "alpha", "balance_mismatch"), 0)
            time.sleep(2)
            self.assertEqual(d.stop(), 0)
            d = Daemon(cfg, self.data)  # a restart does not reset the budget: it is in the ledger
            time.sleep(4)
            self.assertIn("held back", d.output())
            self.assertEqual(d.stop(), 0)
        finally:
            proxy.stop()
        sent = [v for a in liars for v in self.sent_to(a)]
        self.assertLessEqual(sum(sent), 3 * ETHER)
        self.assertTrue(all(v <= ETHER for v in sent), sent)
        self.assertEqual(sum(sent), 3 * ETHER)  # the budget, all of it, and not a wei more
        self.assertEqual(self.sent_to(honest), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
