"""Finality and reorgs (issue 26, item 2): a top-up is `confirmed` at its receipt but not final
until its block is; a reorg that takes its block away must neither pay the account again nor leave
the ledger booking a transaction the chain no longer holds.

`keymaster run` (1 s interval) funds five agents on a chain whose network has `"finality": 20`
(so nothing becomes final during a test); once first funding is confirmed, the blocks holding the
top-ups are taken away:

- anvil, `anvil_reorg(depth, [])`: anvil forgets the transactions (not in its pool; the accounts
  and the bank's nonce are back where they were): keymaster must send the same bytes again;
- anvil, `anvil_reorg(depth, [[raw, offset], ...])`: the same bytes re-included in another block;
- anvil, `anvil_reorg(depth, [])` with mining paused and the same bytes put back in the pool by
  the test (what geth does with the transactions of a reorged block; anvil does not do it itself),
  the daemon polling while they wait there, then mining resumed;
- hardhat 3 (EDR) and ganache 7.9.2: `evm_snapshot` before first funding, `evm_revert` after it
  (both forget the transactions), then empty blocks mined past the old head (the new fork is the
  longer one); once with nothing more, once with the test sending the same bytes again (captured
  by a proxy in front of the node, since neither node serves raw transactions) a block later.

Each case ends with the exact checks: every agent at exactly its target and paid by exactly one
transaction; the bank's nonce moved by exactly the number of top-ups; the transactions on chain
are the very bytes first sent (same hashes); `history --json` shows each top-up once, confirmed,
with the hash and block the chain now holds (and the block hash, where history shows one); the
ledger's fees are what the bank paid on chain beyond the amounts; `limits.daily` spent once per
top-up (`keymaster_spend_remaining_ether`); `keymaster_reorged_topups_total{network}` counts every
reorged top-up; the bank audit counts nothing (a nonce the chain gave back is not unaccounted).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, keymaster, metric_values, scrape,  # noqa: E402
                    start_daemon, wait_for, write_config)
from nodes import NODES  # noqa: E402
from proxy import FaultProxy  # noqa: E402

ENV = {"KM_BANK": DEV_KEY}
NET = "alpha"
AGENTS = 5          # updater and four watchers, each paid 2 ether from 0
TARGET = 2 * ETHER
DAILY = 100         # ether; loose enough that a second payment is not held back, so it shows
FINALITY = 20       # blocks; every test chain stays far below FINALITY blocks past its top-ups
SETTLE = 20         # seconds for the daemon to settle a reorg


def net_metric(text, name):
    return metric_values(text, name).get(frozenset({("network", NET)}))


class Reorg:
    """The scenario and its checks; the node-specific classes below say how the reorg is made."""
    kind = None

    def setUp(self):
        self.node = None
        self.daemon = None
        self.proxy = None
        self.data = tempfile.mkdtemp(prefix=f"keymaster-reorg-{self.kind}-")
        self.agents = [fresh_address() for _ in range(AGENTS)]
        self.idle = [fresh_address(), fresh_address()]
        self.node = NODES[self.kind](31337)
        self.addCleanup(self.node.stop)
        # The bank sends one transaction of its own first, so no top-up has nonce 0 (ganache executes
        # re-sent bytes of nonce 0 a second time: README "Never pay twice"; a re-broadcast racing the
        # test's own must not pay twice through that bug).
        self.node.rpc("eth_sendTransaction", [{"from": DEV_ADDRESS, "to": DEV_ADDRESS, "value": "0x0"}])
        wait_for("the bank's own transaction mined", lambda: self.node.nonce(DEV_ADDRESS) == 1, timeout=10)
        self.bank_nonce = self.node.nonce(DEV_ADDRESS)
        self.bank_balance = self.node.balance(DEV_ADDRESS)
        self.first_block = self.node.block_number()

    # --- the daemon --------------------------------------------------------------------------------

    def start(self, endpoint=None):
        config = write_config({"networks": {NET: {
            "endpoint": endpoint or self.node.url, "bank": {"keyEnv": "KM_BANK"},
            "threshold": "1 ether", "target": "2 ether", "finality": FINALITY,
            "limits": {"daily": f"{DAILY} ether"},
            # A home's relayer and processor are funded on its replicas, not here.
            "agents": {"updater": self.agents[0], "watchers": self.agents[1:],
                       "relayer": self.idle[0], "processor": self.idle[1]}}}}, self.data)
        self.daemon = start_daemon(config, self.data, ENV, interval="1s")
        self.addCleanup(self.stop)
        wait_for("the first poll", lambda: self.stamp() is not None, timeout=30)

    def stop(self):
        d = self.daemon
        if d and d.poll() is None:
            d.send_signal(signal.SIGTERM)
            try:
                return d.wait(60)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        return d.returncode if d else None

    def stamp(self):
        return net_metric(scrape(self.daemon.port), "keymaster_poll_last_success_timestamp_seconds")

    def rounds(self, k):
        """Until the daemon has finished `k` more polls of the network."""
        for _ in range(k):
            before = self.stamp()
            wait_for("a poll", lambda: self.daemon.poll() is None and (self.stamp() or 0) > (before or 0), timeout=20)

    def history(self):
        r = keymaster("history", "--json", "--network", NET, "--data-dir", self.data)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    # --- the chain ---------------------------------------------------------------------------------

    def chain_topups(self):
        """The bank's mined transactions since the test began: [{hash, block, blockHash, to, nonce}]."""
        out = []
        for n in range(self.first_block + 1, self.node.block_number() + 1):
            block = self.node.rpc("eth_getBlockByNumber", [hex(n), True])
            out += [{"hash": tx["hash"].lower(), "block": n, "blockHash": block["hash"].lower(), "to": tx["to"].lower(),
                     "nonce": int(tx["nonce"], 16)}
                    for tx in block["transactions"] if tx["from"].lower() == DEV_ADDRESS.lower()]
        return out

    def funded(self):
        return all(self.node.balance(a) == TARGET for a in self.agents)

    def ledger_matches_chain(self):
        entries = self.history()
        booked = sorted((e["txHash"].lower(), e.get("block")) for e in entries)
        held = sorted((t["hash"], t["block"]) for t in self.chain_topups())
        return all(e["state"] == "confirmed" for e in entries) and booked == held

    def first_funding(self):
        """Starts the daemon; returns the bank's top-ups once all are confirmed on chain and in the ledger."""
        wait_for("first funding confirmed", lambda: self.funded() and len(self.history()) == AGENTS
                 and self.ledger_matches_chain(), timeout=40, step=0.3)
        before = self.chain_topups()
        self.assertEqual(len(before), AGENTS)
        return before

    def settle(self):
        """Waits (bounded) for the daemon to make the ledger match the chain again, then lets it run
        three more Rounds: whatever it would still pay, it pays now. The exact checks follow."""
        try:
            wait_for("the reorg settled", lambda: self.funded() and self.ledger_matches_chain(),
                     timeout=SETTLE, step=0.3)
        except AssertionError:
            pass  # the exact checks below say what is wrong
        self.rounds(3)

    # --- the checks --------------------------------------------------------------------------------

    def assert_exact(self, before, reorged=AGENTS):
        text = scrape(self.daemon.port)
        with self.subTest(check="the daemon exits 0 on SIGTERM"):
            self.assertEqual(self.stop(), 0)
        node = self.node
        after = self.chain_topups()
        entries = self.history()
        confirmed = [e for e in entries if e["state"] == "confirmed"]
        with self.subTest(check="every agent at exactly its target"):
            self.assertEqual({a: node.balance(a) for a in self.agents}, {a: TARGET for a in self.agents})
        with self.subTest(check="the bank's nonce moved by exactly the top-ups"):
            self.assertEqual(node.nonce(DEV_ADDRESS) - self.bank_nonce, AGENTS)
        with self.subTest(check="one transaction per agent on chain, no second payment"):
            self.assertEqual(sorted(t["to"] for t in after), sorted(a.lower() for a in self.agents))
        with self.subTest(check="the chain holds the very bytes first sent"):
            self.assertEqual(sorted(t["hash"] for t in after), sorted(t["hash"] for t in before))
        with self.subTest(check="history: each top-up once, confirmed"):
            self.assertEqual([e["state"] for e in entries], ["confirmed"] * AGENTS,
                             [(e["state"], e["txHash"], e.get("block")) for e in entries])
        with self.subTest(check="history: the hash and block the chain holds"):
            self.assertEqual(sorted((e["txHash"].lower(), e.get("block")) for e in confirmed),
                             sorted((t["hash"], t["block"]) for t in after))
        if any("blockHash" in e for e in entries):
            with self.subTest(check="history: the block hash the chain holds"):
                self.assertEqual(sorted((e["txHash"].lower(), (e.get("blockHash") or "").lower()) for e in confirmed),
                                 sorted((t["hash"], t["blockHash"]) for t in after))
        with self.subTest(check="the ledger's fees are what the bank paid on chain"):
            paid = self.bank_balance - node.balance(DEV_ADDRESS)
            amounts = sum(int(e["amountWei"]) for e in confirmed)
            fees = sum(int(e.get("feePaidWei", 0)) for e in confirmed)
            self.assertEqual(amounts, AGENTS * TARGET)
            self.assertEqual(paid - amounts, fees)
        with self.subTest(check="limits.daily spent once per top-up"):
            self.assertAlmostEqual(net_metric(text, "keymaster_spend_remaining_ether"), DAILY - AGENTS * 2, places=9)
        with self.subTest(check="keymaster_reorged_topups_total counts every reorged top-up"):
            self.assertEqual(net_metric(text, "keymaster_reorged_topups_total"), float(reorged))
        with self.subTest(check="the bank audit counts nothing"):
            self.assertEqual(net_metric(text, "keymaster_bank_unaccounted_transactions_total"), 0.0)
            self.assertEqual(net_metric(text, "keymaster_bank_unaccounted_ether_total"), 0.0)


class AnvilReorg(Reorg, unittest.TestCase):
    kind = "anvil"

    def reorg_away(self, before, txs=lambda raws, depth: []):
        """anvil_reorg over the blocks holding the top-ups and one empty block after them (so the
        height stays and every block number of a re-included top-up can change)."""
        in_order = sorted(before, key=lambda t: t["nonce"])
        raws = [self.node.rpc("eth_getRawTransactionByHash", [t["hash"]]) for t in in_order]
        self.node.rpc("evm_mine")
        depth = self.node.block_number() - min(t["block"] for t in before) + 1
        self.node.rpc("anvil_reorg", [depth, txs(raws, depth)])
        return raws

    def test_reorged_away_and_forgotten_by_the_node(self):
        self.start()
        before = self.first_funding()
        self.reorg_away(before)
        # anvil forgot them: the accounts are empty again and the bank's nonce is back.
        self.assertEqual(self.node.nonce(DEV_ADDRESS), self.bank_nonce)
        self.assertEqual([self.node.balance(a) for a in self.agents], [0] * AGENTS)
        self.assertEqual(self.node.rpc("eth_getTransactionByHash", [before[0]["hash"]]), None)
        self.settle()
        self.assert_exact(before)

    def test_reorged_and_re_included_in_another_block(self):
        self.start()
        before = self.first_funding()
        # The same bytes, in nonce order, all in the last block of the new branch.
        self.reorg_away(before, lambda raws, depth: [[raw, depth - 1] for raw in raws])
        now = {t["hash"]: t["block"] for t in self.chain_topups()}
        self.assertEqual(sorted(now), sorted(t["hash"] for t in before))
        self.assertTrue(all(now[t["hash"]] != t["block"] for t in before), "every top-up moved to another block")
        self.settle()
        self.assert_exact(before)

    def test_reorged_and_back_in_the_pool(self):
        self.start()
        before = self.first_funding()
        self.node.rpc("evm_setAutomine", [False])  # the next block only when the test says
        raws = self.reorg_away(before)
        for raw in raws:  # back in the pool, as geth does with a reorged block's transactions
            try:
                self.node.rpc("eth_sendRawTransaction", [raw])
            except RuntimeError:  # the daemon was first: the node must hold it now
                pass
        pending = int(self.node.rpc("eth_getTransactionCount", [DEV_ADDRESS, "pending"]), 16)
        self.assertEqual(pending - self.bank_nonce, AGENTS, "the reorged top-ups wait in the pool")
        self.assertEqual([self.node.balance(a) for a in self.agents], [0] * AGENTS)
        self.rounds(3)  # the daemon sees the accounts empty while their top-ups wait
        self.node.rpc("evm_setAutomine", [True])  # mines the pool
        self.settle()
        self.assert_exact(before)


class Revert:
    """hardhat and ganache: evm_snapshot before first funding, evm_revert after (the transactions
    are forgotten), then empty blocks past the old head."""

    def revert(self, snapshot):
        head = self.node.block_number()
        self.assertTrue(self.node.rpc("evm_revert", [snapshot]))
        self.assertEqual(self.node.nonce(DEV_ADDRESS), self.bank_nonce, "the revert gave the bank's nonce back")
        self.assertEqual([self.node.balance(a) for a in self.agents], [0] * AGENTS)
        return head

    def mine_past(self, head):
        while self.node.block_number() <= head:
            self.node.rpc("evm_mine")

    def test_reverted_and_forgotten_by_the_node(self):
        snapshot = self.node.rpc("evm_snapshot")
        self.start()
        before = self.first_funding()
        self.mine_past(self.revert(snapshot))
        self.settle()
        self.assert_exact(before)

    def test_reverted_and_re_included_in_other_blocks(self):
        raws = {}

        def capture(requests, answers):
            by_id = {a.get("id"): a for a in answers}
            for r in requests:
                answer = by_id.get(r.get("id"), {}).get("result")
                if r.get("method") == "eth_sendRawTransaction" and isinstance(answer, str):
                    raws[answer.lower()] = r["params"][0]

        self.proxy = FaultProxy(self.node.url, rewrite=capture)
        self.addCleanup(self.proxy.stop)
        snapshot = self.node.rpc("evm_snapshot")
        self.start(self.proxy.url)
        before = self.first_funding()
        self.assertEqual(sorted(raws), sorted(t["hash"] for t in before), "the proxy saw every top-up's bytes")
        head = self.revert(snapshot)
        self.node.rpc("evm_mine")  # one block later than before: every top-up lands in another block
        for t in sorted(before, key=lambda t: t["nonce"]):
            try:
                self.node.rpc("eth_sendRawTransaction", [raws[t["hash"]]])
            except RuntimeError:  # the daemon was first: the node must hold it now
                self.assertIsNotNone(self.node.rpc("eth_getTransactionByHash", [t["hash"]]))
        self.mine_past(head)
        self.settle()
        self.assert_exact(before)


class HardhatRevert(Revert, Reorg, unittest.TestCase):
    kind = "hardhat"


class GanacheRevert(Revert, Reorg, unittest.TestCase):
    kind = "ganache"


if __name__ == "__main__":
    unittest.main(verbosity=2)
