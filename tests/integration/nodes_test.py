"""Never pay twice on any node: the same scenarios on anvil, hardhat 3 (EDR) and ganache 7.9.2
(NODE_KIND picks one; ctest runs each as its own test). Each scenario ends with the same exact
checks, read with plain JSON-RPC: every agent at exactly its target; the bank's nonce moved by
exactly the number of top-ups (no filler, no second payment); `history` shows every top-up
confirmed; the fees in the ledger equal what the bank spent on chain beyond the amounts."""
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (CAST, DEV_ADDRESS, DEV_KEY, ETHER, error_count, fresh_address, keymaster, metric_values,  # noqa: E402
                    scrape, start_daemon, wait_for, write_config)
from nodes import NODES  # noqa: E402
from proxy import FaultProxy  # noqa: E402

KIND = os.environ.get("NODE_KIND", "anvil")
ENV = {"KM_BANK": DEV_KEY}


class NeverPayTwice(unittest.TestCase):
    def setUp(self):
        self.node = None
        self.idle = [fresh_address(), fresh_address()]
        self.data = tempfile.mkdtemp(prefix=f"keymaster-{KIND}-")

    def tearDown(self):
        if self.node:
            self.node.stop()

    def start(self, **kw):
        self.node = NODES[KIND](31337, **kw)
        self.bank_nonce = self.node.nonce(DEV_ADDRESS)
        self.bank_balance = self.node.balance(DEV_ADDRESS)
        self.first_block = self.node.block_number()
        return self.node

    def config(self, endpoint, agents, **extra):
        return write_config({"networks": {"alpha": {
            "endpoint": endpoint, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
            # A home's relayer and processor are funded on its replicas, not here: only updater and watchers.
            "agents": {"updater": agents[0], "watchers": agents[1:], "relayer": self.idle[0], "processor": self.idle[1]},
            **extra}}})

    def history(self):
        r = keymaster("history", "--json", "--network", "alpha", "--data-dir", self.data)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def assert_exact(self, agents, topups):
        """Every agent at exactly its target, `topups` transactions from the bank and no other."""
        node = self.node
        for a in agents:
            self.assertEqual(node.balance(a), 2 * ETHER, a)
        self.assertEqual(node.nonce(DEV_ADDRESS) - self.bank_nonce, topups, "the bank's nonce moved by exactly the top-ups")
        mined = node.transactions_from(DEV_ADDRESS, self.first_block)
        self.assertEqual(len(mined), topups, "one transaction per top-up, no filler, no second payment")
        entries = self.history()
        self.assertEqual(sorted(e["state"] for e in entries if e["state"] != "replaced"), ["confirmed"] * topups, entries)
        confirmed = [e for e in entries if e["state"] == "confirmed"]
        self.assertEqual(sorted(e["txHash"].lower() for e in confirmed), sorted(t["hash"].lower() for t in mined))
        paid = self.bank_balance - node.balance(DEV_ADDRESS)
        amounts = sum(int(e["amountWei"]) for e in confirmed)
        fees = sum(int(e.get("feePaidWei", 0)) for e in confirmed)
        self.assertGreater(fees, 0)
        self.assertEqual(paid - amounts, fees, "the ledger's fees are what the bank paid on chain")

    def top_up(self, endpoint, agents):
        r = keymaster("top-up", "--yes", "--config", self.config(endpoint, agents), "--data-dir", self.data,
                      "--confirm-timeout", "60", env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def test_automine(self):
        self.start()
        agents = [fresh_address() for _ in range(4)]
        self.top_up(self.node.url, agents)
        self.assert_exact(agents, 4)
        # Another process sends with the bank key: the next top-up's audit names the nonce.
        self.node.rpc("eth_sendTransaction", [{"from": DEV_ADDRESS, "to": self.idle[0], "value": hex(1)}])
        r = self.top_up(self.node.url, agents)
        self.assertIn(f"BANK AUDIT: nonce(s) {self.bank_nonce + 4} used by transactions keymaster did not journal", r.stdout)

    def test_legacy_berlin_chain(self):
        self.start(hardfork="berlin")
        agents = [fresh_address() for _ in range(3)]
        self.top_up(self.node.url, agents)
        self.assert_exact(agents, 3)
        self.assertTrue(all(t.get("type", "0x0") == "0x0" for t in self.node.transactions_from(DEV_ADDRESS, self.first_block)))

    def test_lost_reply_to_the_first_send_batch(self):
        self.start()
        proxy = FaultProxy(self.node.url, lose_raw_replies={0})
        try:
            agents = [fresh_address() for _ in range(3)]
            r = self.top_up(proxy.url, agents)
            self.assertGreaterEqual(proxy.raw_requests, 1)
        finally:
            proxy.stop()
        self.assert_exact(agents, 3)
        self.assertNotIn("FAILED", r.stdout)

    def test_top_up_with_blocks_slower_than_the_confirm_wait(self):
        self.start(block_time=3)
        agents = [fresh_address() for _ in range(3)]
        r = keymaster("top-up", "--yes", "--config", self.config(self.node.url, agents), "--data-dir", self.data,
                      "--confirm-timeout", "1", env=ENV)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # not confirmed in time: reported with its hash
        wait_for("mined", lambda: all(self.node.balance(a) == 2 * ETHER for a in agents), timeout=30)
        r = keymaster("top-up", "--yes", "--config", self.config(self.node.url, agents), "--data-dir", self.data, env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)  # settles them from the chain, pays nothing again
        self.assert_exact(agents, 3)

    def test_daemon_on_slow_blocks_refunds_a_drained_agent(self):
        self.start(block_time=3)
        agents = [fresh_address() for _ in range(3)]
        d = start_daemon(self.config(self.node.url, agents), self.data, ENV, interval="1s")
        try:
            wait_for("funded", lambda: all(self.node.balance(a) == 2 * ETHER for a in agents), timeout=60)
            time.sleep(3)  # a few more rounds on the same blocks: nothing is paid twice
            self.node.set_balance(agents[0], ETHER // 10)
            wait_for("refunded", lambda: self.node.balance(agents[0]) == 2 * ETHER, timeout=60)
            time.sleep(4)
            text = scrape(d.port)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(60), 0)
        # The drain took 1.9 ether without a transaction: the refund is one more top-up.
        self.assert_exact(agents, 4)
        for name in ("keymaster_bank_unaccounted_transactions_total", "keymaster_bank_unaccounted_ether_total"):
            self.assertEqual(metric_values(text, name).get(frozenset({("network", "alpha")})), 0.0, name)

    def test_stuck_with_mining_paused_then_resumed(self):
        self.start()
        self.node.pause_mining()
        agents = [fresh_address() for _ in range(3)]
        d = start_daemon(self.config(self.node.url, agents), self.data, ENV, interval="1s")
        try:
            wait_for("sent", lambda: len(self.history()) >= 3, timeout=30)
            stamp = lambda: metric_values(scrape(d.port), "keymaster_poll_last_success_timestamp_seconds").get(  # noqa: E731
                frozenset({("network", "alpha")}), 0)
            first = stamp()
            time.sleep(4)  # stuck: polls keep their pace, nothing is paid again
            self.assertGreater(stamp(), first + 1.5)
            self.assertEqual(len(self.history()), 3)
            self.node.resume_mining()
            wait_for("funded", lambda: all(self.node.balance(a) == 2 * ETHER for a in agents), timeout=60)
            wait_for("settled", lambda: all(e["state"] == "confirmed" for e in self.history()), timeout=30)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(60), 0)
        self.assert_exact(agents, 3)

    def test_bank_audit_notices_a_transaction_it_did_not_journal(self):
        self.start()
        agents = [fresh_address() for _ in range(2)]
        d = start_daemon(self.config(self.node.url, agents), self.data, ENV, interval="500ms")
        unaccounted = lambda: metric_values(scrape(d.port), "keymaster_bank_unaccounted_transactions_total").get(  # noqa: E731
            frozenset({("network", "alpha")}))
        try:
            wait_for("funded", lambda: all(self.node.balance(a) == 2 * ETHER for a in agents), timeout=30)
            time.sleep(1.5)
            self.assertEqual(unaccounted(), 0.0)
            # Another process sharing the bank key sends a transaction of its own.
            self.node.rpc("eth_sendTransaction", [{"from": DEV_ADDRESS, "to": self.idle[0], "value": hex(1)}])
            wait_for("counted", lambda: unaccounted() == 1.0, timeout=30)
            time.sleep(1.5)
            self.assertEqual(unaccounted(), 1.0)  # once
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(60), 0)
        with open(d.log) as f:
            self.assertRegex(f.read(), r"bank audit: the bank 0x[0-9a-fA-F]{40} used nonce\(s\) 2 ")

    def test_an_agent_that_spends_right_after_its_top_up_is_no_balance_mismatch(self):
        self.start()
        key = "0x" + secrets.token_hex(32)
        spender = subprocess.run([CAST, "wallet", "address", "--private-key", key], check=True, capture_output=True,
                                 text=True).stdout.strip()
        agents = [spender, fresh_address()]
        d = start_daemon(self.config(self.node.url, agents), self.data, ENV, interval="1s")
        try:
            wait_for("funded", lambda: all(self.node.balance(a) == 2 * ETHER for a in agents), timeout=30)
            # Within the interval: the agent spends below its threshold (its nonce moves).
            r = subprocess.run([CAST, "send", "--rpc-url", self.node.url, "--private-key", key, self.idle[0], "--value",
                                "1.9ether", "--gas-limit", "21000"], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_for("refunded", lambda: self.node.balance(spender) == 2 * ETHER, timeout=30)
            time.sleep(2)
            text = scrape(d.port)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(60), 0)
        self.assertEqual(error_count(text, "alpha", "balance_mismatch"), 0.0)
        with open(d.log) as f:
            self.assertNotIn("lying endpoint", f.read())

    def test_bank_audit_notices_a_loss_the_ledger_does_not_hold(self):
        self.start()
        agents = [fresh_address() for _ in range(2)]
        d = start_daemon(self.config(self.node.url, agents), self.data, ENV, interval="500ms")
        lost = lambda: metric_values(scrape(d.port), "keymaster_bank_unaccounted_ether_total").get(  # noqa: E731
            frozenset({("network", "alpha")}))
        try:
            wait_for("funded", lambda: all(self.node.balance(a) == 2 * ETHER for a in agents), timeout=30)
            time.sleep(1.5)
            self.assertEqual(lost(), 0.0)  # every wei the bank paid is in the ledger
            if KIND != "anvil":
                self.node.rpc("evm_mine")  # (hardhat and ganache set balances on the pending block)
            self.node.set_balance(DEV_ADDRESS, self.node.balance(DEV_ADDRESS) - ETHER // 4)
            if KIND != "anvil":
                self.node.rpc("evm_mine")
            wait_for("counted", lambda: lost() == 0.25, timeout=30)
            time.sleep(1.5)
            self.assertEqual(lost(), 0.25)  # once
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(60), 0)
        with open(d.log) as f:
            self.assertIn("lost 0.25 ETH more than the amounts and fees of keymaster's mined transactions", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
