"""One sender per bank and chain (issue 26, item 3): two `keymaster run` daemons on ONE Postgres
ledger (Debian's postgresql-15, started here), the same bank key and the same anvil chain
(`--block-time 1`), but config files of different names and different `--lease` names, so each
leads its own lease group. What must never be shared is the bank's nonces on that chain: only one
of them may send. Agents are drained several times (anvil_setBalance 0); every drain is paid
exactly once: the bank's nonce moves by exactly the top-ups needed, every account ends at its
target, and the ledger's confirmed top-ups are exactly the bank's transactions on chain. A
`keymaster top-up --yes` with a third config name, while the daemons run, exits 2 naming the
holder of the sender lease and sends nothing. Once with both configs naming the network "alpha",
once with one naming it "alpha" and the other "mainnet" (same chain, same bank). Each daemon talks
to the chain through its own proxy that answers after 250 ms, as a hosted provider does: without
that latency the two daemons' Rounds rarely overlap on loopback and the race hides."""
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (DEV_ADDRESS, DEV_KEY, ETHER, Chain, fresh_address, keymaster, metric_values, rpc,  # noqa: E402
                    wait_for)
from daemon_test import Daemon  # noqa: E402
from postgres import Postgres  # noqa: E402
from proxy import FaultProxy  # noqa: E402

LEASE_ARGS = ["--lease-renew", "500ms", "--lease-duration", "3s"]
CHAIN_ID = 31337
TARGET = 2 * ETHER
SENDER_LEASE = f"sender:{CHAIN_ID}:{DEV_ADDRESS.lower()}"


class Distant(FaultProxy):
    """A provider some way off: every request answered after `seconds` (hosted providers take
    100-300 ms). It widens each Round's read-to-journal window as a real provider does, so the
    two daemons' Rounds overlap as they would in production."""

    def __init__(self, upstream, seconds=0.25):
        super().__init__(upstream)
        self.seconds = seconds

    def forward(self, body):
        time.sleep(self.seconds)
        return super().forward(body)


def leads(d, lease):
    if d.proc.poll() is not None:
        return False
    return metric_values(d.metrics(), "keymaster_leader").get(frozenset({("lease", lease)})) == 1.0


class TwoSendersOneBank(unittest.TestCase):
    databases = 0

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        self.chain = Chain(CHAIN_ID, block_time=1)
        TwoSendersOneBank.databases += 1
        self.db = f"senders_{TwoSendersOneBank.databases}"
        self.ledger = self.pg.create_database(self.db)
        self.dir = tempfile.mkdtemp(prefix="keymaster-senders-")
        self.updater = fresh_address()
        self.watchers = [fresh_address() for _ in range(6)]
        self.funded = [self.updater, *self.watchers]  # on their home chain; relayer and processor: replicas only
        self.agents = {"updater": self.updater, "watchers": self.watchers, "relayer": fresh_address(),
                       "processor": fresh_address()}
        self.env = {"KM_BANK": DEV_KEY, "KEYMASTER_LEDGER": self.ledger, "PERIOD": "1"}
        self.daemons = []
        self.proxies = []

    def tearDown(self):
        for d in self.daemons:
            d.stop()
        for p in self.proxies:
            p.stop()
        self.chain.stop()

    def write(self, file_name, network, agents=None, endpoint=None):
        path = os.path.join(self.dir, file_name)
        with open(path, "w") as f:
            json.dump({"networks": {network: {
                "endpoint": endpoint or self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
                "agents": agents or self.agents}}}, f, indent=2)
        return path

    def q(self, sql):
        return self.pg.query(self.db, sql)

    def unresolved(self):
        return int(self.q("SELECT count(*) FROM topups WHERE state IN ('intent','sent')"))

    def pending_nonce(self):
        return int(rpc(self.chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]), 16)

    def settled(self):
        """Every funded agent at or above its target, nothing of the bank's in the pool, nothing
        unresolved in the ledger."""
        return (all(self.chain.balance(a) >= TARGET for a in self.funded)
                and self.pending_nonce() == self.chain.nonce(DEV_ADDRESS) and self.unresolved() == 0)

    def settle(self):
        wait_for("every drained agent paid, the pool empty, the ledger settled", self.settled, timeout=40, step=0.25)
        # A few more Rounds of both daemons (1 s interval, blocks every second): a second payment
        # would be in the pool or mined by now, and the next settled() shows it.
        time.sleep(3)
        wait_for("settled again", self.settled, timeout=20, step=0.25)

    def run_two_senders(self, first, second):
        """first, second: (config file name, network name, lease name)."""
        start = self.chain.nonce(DEV_ADDRESS)
        self.proxies = [Distant(self.chain.url), Distant(self.chain.url)]  # one provider each
        paths = [self.write(f, n, endpoint=p.url) for (f, n, _), p in zip((first, second), self.proxies)]
        for path, (_, _, lease) in zip(paths, (first, second)):
            self.daemons.append(Daemon(path, self.env, LEASE_ARGS + ["--lease", lease]))
        a, b = self.daemons
        # The case itself: each daemon leads its own lease group (different names), so the old
        # lease alone would let both send from the bank.
        wait_for(f"{first[2]} and {second[2]} each lead their group",
                 lambda: leads(a, first[2]) and leads(b, second[2]), timeout=20)

        # Round 0 is the first funding (fresh agents hold nothing), then three drains.
        drains = [[], self.funded, self.funded[::2], [self.watchers[3]]]
        needed = []
        for k, drained in enumerate(drains):
            for x in drained:
                self.chain.set_balance(x, 0)
            needed.append(len(self.funded) if k == 0 else len(drained))
            self.settle()
        moved = self.chain.nonce(DEV_ADDRESS) - start

        # Exact checks (each reported on its own, so one run shows every one that fails).
        with self.subTest(check="every agent at exactly its target"):
            balances = {x: self.chain.balance(x) for x in self.funded}
            self.assertEqual(balances, {x: TARGET for x in self.funded})
        with self.subTest(check="the bank's nonce moved by exactly the top-ups needed"):
            self.assertEqual(moved, sum(needed), f"top-ups needed per round: {needed}")
        mined = {t["hash"].lower(): t for t in self.chain.transactions_from(DEV_ADDRESS)}
        with self.subTest(check="one payment per agent per drain"):
            paid = {x: sum((t["to"] or "").lower() == x.lower() for t in mined.values()) for x in self.funded}
            self.assertEqual(paid, {x: 1 + sum(x in d for d in drains[1:]) for x in self.funded})
        with self.subTest(check="the ledger's confirmed top-ups are exactly the bank's transactions on chain"):
            confirmed = [h.lower() for h in self.q("SELECT tx_hash FROM topups WHERE state='confirmed'").split()]
            self.assertEqual(len(confirmed), len(set(confirmed)),
                             f"{len(confirmed) - len(set(confirmed))} transactions journaled (and booked) twice")
            self.assertEqual(sorted(confirmed), sorted(mined))
        with self.subTest(check="nothing replaced, dropped or failed: no two senders raced for a nonce"):
            self.assertEqual(self.q("SELECT state, count(*) FROM topups WHERE state<>'confirmed' GROUP BY state"), "")

        # The sender lease: one row for the bank on this chain, held by one of the two daemons.
        holder = self.q(f"SELECT holder FROM lease WHERE name='{SENDER_LEASE}'")
        with self.subTest(check=f"a lease {SENDER_LEASE} held by one of the daemons"):
            self.assertTrue(holder, f"leases: {self.q('SELECT name, holder FROM lease')!r}")
            self.assertTrue(any(f"/{d.proc.pid}/" in holder for d in (a, b)), holder)

        # A top-up under a third config name (its own lease group, free) while the daemons run:
        # refused, exit 2, naming the holder; it sends nothing, not even to an agent only it knows.
        newcomer = fresh_address()
        third = dict(self.agents, watchers=self.watchers + [newcomer])
        path = self.write("operator-third.json", first[1], third)
        before = self.chain.nonce(DEV_ADDRESS)
        rows = self.q("SELECT count(*) FROM topups")
        r = keymaster("top-up", "--yes", "--config", path, "--confirm-timeout", "20", env=self.env)
        with self.subTest(check="top-up under a third config name: exit 2, naming the holder"):
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertTrue(holder and holder in r.stdout + r.stderr,
                            f"holder {holder!r} not named in: {r.stdout + r.stderr}")
        with self.subTest(check="the refused top-up sent and journaled nothing"):
            self.assertEqual(self.pending_nonce(), before)
            self.assertEqual(self.chain.balance(newcomer), 0)
            self.assertEqual(self.q("SELECT count(*) FROM topups"), rows)
        for d in (a, b):
            self.assertIsNone(d.proc.poll(), "both daemons still running")

    def test_two_daemons_one_bank_different_config_and_lease_names_pay_each_drain_once(self):
        self.run_two_senders(("fleet-east.json", "alpha", "east"), ("fleet-west.json", "alpha", "west"))

    def test_same_chain_and_bank_under_two_network_names_pay_each_drain_once(self):
        self.run_two_senders(("fleet-east.json", "alpha", "east"), ("fleet-west.json", "mainnet", "west"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
