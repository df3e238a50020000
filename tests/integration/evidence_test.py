"""Never pay twice, part two (issue 26): a provider whose nodes stand at different heights, or serve
no receipts, in front of one anvil mining a block every second (lagging.py's LaggingProxy).

- a balancer over the head and a node 3 blocks behind, answering at random: the daemon pays every
  drain of a 13-account fleet exactly once and counts the stale reads; `top-up --yes` run again
  and again through it pays each low account once;
- receipts and balances 4 blocks behind the head (nonces at the head): every drain paid once,
  nothing booked `dropped`;
- no receipts at all (no transaction index), an agent drained every second and `limits.daily`:
  what the bank sends stays within the limit, nothing is `dropped`, the mined top-ups are
  confirmed with an estimated fee;
- geth's "transaction indexing is in progress" on one top-up's receipt: the other entries of the
  network settle while it waits, and it settles once the error stops.

Each case ends with exact checks read from anvil directly: every account at its target, the bank's
nonce moved by exactly the top-ups needed, the ledger's confirmed top-ups equal to what the chain
holds (and its fees to what the bank lost), spend within limits."""
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (Chain, DEV_ADDRESS, DEV_KEY, ETHER, error_count, fresh_address, keymaster,  # noqa: E402
                    metric_values, rpc, wait_for, write_config)
from daemon_test import Daemon as _Daemon  # noqa: E402
from lagging import LaggingProxy  # noqa: E402

ENV = {"KM_BANK": DEV_KEY}
DAILY = 3 * ETHER // 2  # limits.daily of the no-receipts cases
FLEET = 13  # updater + 12 watchers: a home's relayer and processor are not funded on the home


def Daemon(config_path, data_dir):
    """`keymaster run` every second (daemon_test's Daemon: /healthz answered before it returns)."""
    return _Daemon(config_path, dict(ENV, PERIOD="1"), ["--shutdown-timeout", "3"], data_dir=data_dir)


class Evidence(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.chain = Chain(31337, block_time=1)
        self.data = tempfile.mkdtemp(prefix="keymaster-evidence-")
        self.cfg_dir = tempfile.mkdtemp(prefix="keymaster-evidence-cfg-")
        self.bank_nonce = self.chain.nonce(DEV_ADDRESS)
        self.bank_balance = self.chain.balance(DEV_ADDRESS)
        self.first_block = self.block()
        self.idle = [fresh_address(), fresh_address()]
        self.daemon = self.proxy = None
        self.cfg_path = None
        self._nonce_seen = (None, 0)

    def tearDown(self):
        if self.daemon:
            self.daemon.stop()
        if self.proxy:
            self.proxy.stop()
        self.chain.stop()

    # -- helpers ---------------------------------------------------------------------------------

    def block(self):
        return int(rpc(self.chain.url, "eth_blockNumber"), 16)

    def config(self, endpoint, agents, **extra):
        net = {"endpoint": endpoint, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
               "agents": {"updater": agents[0], "watchers": agents[1:], "relayer": self.idle[0],
                          "processor": self.idle[1]}}
        net.update(extra)
        self.cfg_path = write_config({"networks": {"alpha": net}}, self.cfg_dir)
        return self.cfg_path

    def history(self):
        r = keymaster("history", "--json", "--network", "alpha", "--config", self.cfg_path, "--data-dir", self.data)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def mined(self):
        """The bank's transactions on chain since the test began."""
        out = []
        for n in range(self.first_block, self.block() + 1):
            blk = rpc(self.chain.url, "eth_getBlockByNumber", [hex(n), True])
            out += [tx for tx in blk["transactions"] if tx["from"].lower() == DEV_ADDRESS.lower()]
        return out

    def pending_nonce(self):
        return int(rpc(self.chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]), 16)

    def at_least_target(self, agents, target=2 * ETHER):
        return all(self.chain.balance(a) >= target for a in agents)

    def drain(self, agents):
        for a in agents:
            self.chain.set_balance(a, 0)

    def quiet(self, lag, ledger_settled=True):
        """Nothing of the bank's in the mempool, `lag` + 2 blocks mined since its nonce last moved
        (so every view, even one `lag` blocks behind, shows every top-up), and, with
        `ledger_settled`, no unresolved entry left in the ledger."""
        nonce, head = self.chain.nonce(DEV_ADDRESS), self.block()
        if nonce != self._nonce_seen[0]:
            self._nonce_seen = (nonce, head)
            return False
        if self.pending_nonce() != nonce or head < self._nonce_seen[1] + lag + 2:
            return False
        return not ledger_settled or not [e for e in self.history() if e["state"] in ("intent", "sent")]

    def run_top_up(self, cfg, *extra):
        return keymaster("top-up", "--yes", "--config", cfg, "--data-dir", self.data, *extra, env=ENV,
                         timeout=120)

    def assert_exact(self, agents, topups, per_account=None, fees_exact=True):
        """The house's exact checks, each its own subTest so that every broken one is reported."""
        mined = self.mined()
        entries = self.history()
        to_agents = [tx for tx in mined if tx["to"] and tx["to"].lower() in {a.lower() for a in agents}]
        with self.subTest("every account at exactly its target"):
            off = {a: b / ETHER for a in agents if (b := self.chain.balance(a)) != 2 * ETHER}
            self.assertEqual(off, {}, f"{len(off)} of {len(agents)} accounts not at their target (ether shown)")
        with self.subTest("the bank's nonce moved by exactly the top-ups needed"):
            self.assertEqual(self.chain.nonce(DEV_ADDRESS) - self.bank_nonce, topups,
                             f"{len(to_agents)} transfers to agents for {topups} top-ups needed")
        with self.subTest("one transfer per top-up, to an agent, none to anyone else"):
            self.assertEqual((len(mined), len(to_agents)), (topups, topups))
        if per_account:
            with self.subTest("each account paid exactly once per time it was low"):
                got = {a: sum(1 for tx in mined if (tx["to"] or "").lower() == a.lower()) for a in agents}
                off = {a: f"paid {got[a]} times for {per_account[a]}" for a in agents if got[a] != per_account[a]}
                self.assertEqual(off, {}, f"{len(off)} of {len(agents)} accounts paid a wrong number of times")
        with self.subTest("no ledger entry dropped"):
            dropped = [f"nonce {e['nonce']}: {e.get('error')}" for e in entries if e["state"] == "dropped"]
            self.assertEqual(len(dropped), 0, f"{len(dropped)} of {len(entries)} entries dropped, e.g. {dropped[:2]}")
        confirmed = [e for e in entries if e["state"] == "confirmed"]
        with self.subTest("the ledger's confirmed top-ups are what the chain holds"):
            booked, held = {e["txHash"].lower() for e in confirmed}, {tx["hash"].lower() for tx in mined}
            self.assertEqual((len(booked - held), len(held - booked)), (0, 0),
                             f"{len(confirmed)} confirmed in the ledger, {len(mined)} mined: (confirmed but not on "
                             f"chain, on chain but not confirmed)")
            states = sorted(e["state"] for e in entries if e["state"] != "replaced")
            self.assertEqual(states, ["confirmed"] * len(states))
        if fees_exact:
            with self.subTest("the ledger's fees are what the bank lost beyond the amounts"):
                paid = self.bank_balance - self.chain.balance(DEV_ADDRESS)
                amounts = sum(int(e["amountWei"]) for e in confirmed)
                fees = sum(int(e.get("feePaidWei", 0)) for e in confirmed)
                self.assertEqual(paid - amounts, fees)

    def assert_no_false_reorg(self, text):
        """A node behind answers null for a block above its head, and no receipt: that is no reorg."""
        with self.subTest("no reorg counted (none happened)"):
            reorged = metric_values(text, "keymaster_reorged_topups_total").get(frozenset({("network", "alpha")}))
            self.assertIn(reorged, (None, 0.0))  # (None: not exported, before issue 26)

    def polled_funded(self, agents, target=2.0):
        gauges = {dict(k).get("address", "").lower(): v
                  for k, v in metric_values(self.daemon.metrics(), "keymaster_account_balance_ether").items()}
        return all(gauges.get(a.lower(), 0) >= target for a in agents)

    def drain_cycles(self, agents, cycles):
        """Drains every agent `cycles` times, each time once all are funded again (an account paid
        twice is >= its target too: the exact checks at the end tell). Returns the drains."""
        drains = {a: 0 for a in agents}
        for _ in range(cycles):
            # Drained once a poll has shown them funded: else the drain, no transaction of the agent's,
            # would be the endpoint contradicting itself (README "Lying or lagging endpoints").
            wait_for("a poll showing every account funded", lambda: self.polled_funded(agents), timeout=30, step=0.25)
            self.drain(agents)
            for a in agents:
                drains[a] += 1
            wait_for("every drained account funded again", lambda: self.at_least_target(agents), timeout=40, step=0.25)
        return drains

    # -- the cases -------------------------------------------------------------------------------

    def test_1_balancer_daemon_pays_every_drain_exactly_once(self):
        """Nodes 0 and 3 blocks behind, at random per request: a receipt from the head, then a poll
        from the node behind that still shows the account low, must not pay it again."""
        self.proxy = LaggingProxy(self.chain.url, "balancer", k=3, seed=26)
        agents = [fresh_address() for _ in range(FLEET)]
        self.daemon = Daemon(self.config(self.proxy.url, agents), self.data)
        wait_for("first funding", lambda: self.at_least_target(agents), timeout=40, step=0.25)
        drains = self.drain_cycles(agents, 3)
        wait_for("quiet: nothing in flight, every view past the last top-up", lambda: self.quiet(3), timeout=40,
                 step=0.5)
        text = self.daemon.metrics()
        self.assertEqual(self.daemon.stop(), 0)
        with self.subTest("the node behind really answered"):
            self.assertGreater(self.proxy.stats["behind"], 10, self.proxy.stats)
        self.assert_exact(agents, FLEET + sum(drains.values()), per_account={a: 1 + drains[a] for a in agents})
        self.assert_no_false_reorg(text)
        with self.subTest("stale reads counted"):
            stale = metric_values(text, "keymaster_stale_reads_total").get(frozenset({("network", "alpha")}))
            self.assertIsNotNone(stale, "keymaster_stale_reads_total{network=\"alpha\"} is not exported")
            self.assertGreater(stale, 0)

    def test_2_balancer_top_up_pays_each_low_account_once(self):
        """`top-up --yes` through the balancer, run again right after each run (so some of them
        read the node behind within 3 blocks of the top-ups): each low account is paid once."""
        self.proxy = LaggingProxy(self.chain.url, "balancer", k=3, seed=7)
        agents = [fresh_address() for _ in range(FLEET)]
        cfg = self.config(self.proxy.url, agents)
        runs = []

        def until_funded_then_again(again=3):
            for _ in range(8):
                runs.append(self.run_top_up(cfg, "--confirm-timeout", "30"))
                if self.at_least_target(agents):
                    break
            for _ in range(again):
                runs.append(self.run_top_up(cfg, "--confirm-timeout", "30"))

        until_funded_then_again()
        self.drain(agents)
        until_funded_then_again()
        wait_for("quiet", lambda: self.quiet(3), timeout=30, step=0.5)
        for r in runs:
            self.assertIn(r.returncode, (0, 1), r.stdout + r.stderr)  # no usage or config error, no crash
        with self.subTest("the node behind really answered"):
            self.assertGreater(self.proxy.stats["behind"], 0, self.proxy.stats)
        self.assert_exact(agents, 2 * FLEET, per_account={a: 2 for a in agents})

    def test_3_receipts_and_balances_behind_pay_every_drain_once(self):
        """Receipts and balances 4 blocks behind the head, nonces at the head: a taken nonce with no
        receipt for 3 blocks is no proof of a drop."""
        self.proxy = LaggingProxy(self.chain.url, "receipts_lag", k=4)
        agents = [fresh_address() for _ in range(FLEET)]
        self.daemon = Daemon(self.config(self.proxy.url, agents), self.data)
        wait_for("first funding", lambda: self.at_least_target(agents), timeout=40, step=0.25)
        drains = self.drain_cycles(agents, 2)
        wait_for("quiet", lambda: self.quiet(4), timeout=40, step=0.5)
        text = self.daemon.metrics()
        self.assertEqual(self.daemon.stop(), 0)
        self.assert_no_false_reorg(text)
        with self.subTest("receipts really lagged"):
            self.assertGreater(self.proxy.stats["hidden_receipts"], 0, self.proxy.stats)
        self.assert_exact(agents, FLEET + sum(drains.values()), per_account={a: 1 + drains[a] for a in agents})

    def no_receipts_with_a_draining_agent(self, hash_index):
        """A node that serves no receipts, and an agent whose key leaked (drained every second for
        15 s), under `limits.daily` 1.5 ether. Returns what the chain and the ledger hold."""
        self.proxy = LaggingProxy(self.chain.url, "no_receipts", hash_index=hash_index)
        drainer, watchers = fresh_address(), [fresh_address(), fresh_address()]
        # First funding 0.5 + 2 x 0.2 = 0.9 ether; one refund of the drainer (0.5) fits the limit, a
        # second (1.9 in all) does not.
        cfg = self.config(self.proxy.url, [drainer, *watchers], threshold="0.1 ether", target="0.2 ether",
                          roles={"updater": {"threshold": "0.25 ether", "target": "0.5 ether"}},
                          limits={"daily": "1.5 ether"})
        self.daemon = Daemon(cfg, self.data)
        wait_for("first funding", lambda: self.chain.balance(drainer) >= ETHER // 2
                 and all(self.chain.balance(w) >= ETHER // 5 for w in watchers), timeout=40, step=0.25)
        for _ in range(15):  # the leaked key empties the agent every second, in its own transactions
            self.chain.spend_all(drainer)
            time.sleep(1)
        wait_for("quiet", lambda: self.quiet(3, ledger_settled=False), timeout=30, step=0.5)
        text = self.daemon.metrics()
        self.assertEqual(self.daemon.stop(), 0)
        mined, entries = self.mined(), self.history()
        sent = sum(int(tx["value"], 16) for tx in mined)
        with self.subTest("the bank sent no more than limits.daily"):
            self.assertLessEqual(sent, DAILY, f"{sent / ETHER} ether sent in {len(mined)} transfers")
        with self.subTest("no ledger entry dropped"):
            dropped = [f"nonce {e['nonce']}: {e.get('error')}" for e in entries if e["state"] == "dropped"]
            self.assertEqual(len(dropped), 0, f"{len(dropped)} of {len(entries)} entries dropped, e.g. {dropped[:2]}")
        with self.subTest("the watchers at exactly their target, each paid once"):
            self.assertEqual([self.chain.balance(w) for w in watchers], [ETHER // 5] * 2)
            self.assertEqual([sum(1 for tx in mined if tx["to"].lower() == w.lower()) for w in watchers], [1, 1])
        with self.subTest("the bank's nonce moved by exactly the transfers the ledger holds (sent or confirmed)"):
            held = {e["txHash"].lower() for e in entries if e["state"] in ("sent", "confirmed")}
            self.assertEqual(self.chain.nonce(DEV_ADDRESS) - self.bank_nonce, len(mined))
            self.assertEqual(held, {tx["hash"].lower() for tx in mined},
                             f"{len(held)} held by the ledger, {len(mined)} mined")
        return mined, entries, sent, text

    def test_4a_no_receipts_no_hash_index_stays_within_the_daily_limit(self):
        """No receipts and no transaction by hash (a node without a transaction index): missing
        receipts never make `dropped`, and what is unresolved counts against `daily`."""
        self.no_receipts_with_a_draining_agent(hash_index=False)

    def test_4b_no_receipts_mined_by_hash_confirmed_with_an_estimated_fee(self):
        """No receipts, transactions by hash answered (receipts pruned, the hash index kept): a top-up
        shown mined by hash is confirmed with its fee estimated as gas limit x gas price; the
        daily budget is spent to the wei (0.9 first funding + one 0.5 refund) and not beyond."""
        mined, entries, sent, text = self.no_receipts_with_a_draining_agent(hash_index=True)
        with self.subTest("every mined top-up confirmed, its fee estimated (gas limit x gas price)"):
            by_hash = {e["txHash"].lower(): e for e in entries}

            def seen(tx):
                e = by_hash.get(tx["hash"].lower(), {})
                return e.get("state"), bool(e.get("feeEstimated", e.get("fee_estimated"))), e.get("feePaidWei")
            off = {tx["hash"]: seen(tx) for tx in mined
                   if seen(tx) != ("confirmed", True, str(int(tx["gas"], 16) * int(tx["gasPrice"], 16)))}
            self.assertEqual(off, {}, f"{len(off)} of {len(mined)} mined top-ups not booked (state, feeEstimated, fee) "
                                      f"= (confirmed, True, gas x gasPrice)")
        with self.subTest("one refund of the drainer, then held back by the daily limit (counted)"):
            self.assertEqual(sent, 14 * ETHER // 10, f"{sent / ETHER} ether sent in {len(mined)} transfers")
            self.assertGreater(error_count(text, "alpha", "limit"), 0)

    def test_5_indexing_error_on_one_receipt_delays_only_that_entry(self):
        """geth answers one receipt with "transaction indexing is in progress": the network's other
        unresolved top-ups are settled all the same, and that one once the error stops."""
        agents = [fresh_address() for _ in range(4)]
        victim = agents[2]
        self.proxy = LaggingProxy(self.chain.url, "indexing_error", error_to=[victim])
        cfg = self.config(self.proxy.url, agents)
        # Four top-ups left unresolved in the ledger: sent while mining is paused, not waited for.
        rpc(self.chain.url, "evm_setIntervalMining", [0])
        r = self.run_top_up(cfg, "--confirm-timeout", "1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual([e["state"] for e in self.history()], ["sent"] * 4)
        rpc(self.chain.url, "evm_setIntervalMining", [1])
        wait_for("all four mined", lambda: all(self.chain.balance(a) == 2 * ETHER for a in agents), timeout=20)

        self.daemon = Daemon(cfg, self.data)
        state = lambda e: e["state"]  # noqa: E731
        others = lambda: [e for e in self.history() if e["recipient"].lower() != victim.lower()]  # noqa: E731
        try:
            wait_for("the other three settled while one receipt errs", lambda: [state(e) for e in others()]
                     == ["confirmed"] * 3, timeout=15, step=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}: ledger {[(x['recipient'][:8], x['state']) for x in self.history()]}; "
                                 f"indexing errors served: {self.proxy.stats['indexing_errors']}") from None
        self.assertGreater(self.proxy.stats["indexing_errors"], 0)
        mine = [e for e in self.history() if e["recipient"].lower() == victim.lower()]
        self.assertEqual(len(mine), 1, mine)
        self.assertNotIn(mine[0]["state"], ("dropped", "failed", "replaced"), mine[0])
        if mine[0]["state"] == "confirmed":  # by other evidence than its receipt: then its fee is estimated
            self.assertTrue(mine[0].get("feeEstimated") or mine[0].get("fee_estimated"), mine[0])
        self.proxy.indexing = False
        wait_for("that one settled once the error stops",
                 lambda: [e["state"] for e in self.history()] == ["confirmed"] * 4, timeout=15, step=0.5)
        wait_for("quiet", lambda: self.quiet(1), timeout=20, step=0.5)
        self.assertEqual(self.daemon.stop(), 0)
        self.assert_exact(agents, 4, per_account={a: 1 for a in agents})
        self.assertFalse([e for e in self.history() if e.get("feeEstimated") or e.get("fee_estimated")],
                         "every fee from its receipt at the end")


if __name__ == "__main__":
    unittest.main(verbosity=2)
