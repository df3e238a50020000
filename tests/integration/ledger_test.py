"""Never pay twice, never lose a record: the ledger on real anvil chains.

Chains mine every 2 s (--block-time), so top-ups sit pending while the daemon is killed.
"""
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (KEYMASTER, CAST, Chain, DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, free_port, keymaster,  # noqa: E402
                    wait_for, write_config)

ENV = {"KM_BANK": DEV_KEY}


def limited(size):
    """Files can grow to `size` bytes only (soft limit; the hard one stays open so that prlimit can lift
    it): the ledger's WAL cannot grow, as on a full disk. SIGXFSZ is ignored, so writes fail with EFBIG."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    return apply


def read(path):
    with open(path) as f:
        return f.read()


class LedgerOnAnvil(unittest.TestCase):
    def setUp(self):
        self.chain = Chain(31337, block_time=2)
        self.agents = {r: fresh_address() for r in ("updater", "w1", "w2", "w3", "kathy")}
        self.config = {"networks": {"alpha": {
            "endpoint": self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "agents": {"updater": self.agents["updater"], "watchers": [self.agents[w] for w in ("w1", "w2", "w3")],
                       "relayer": fresh_address(), "processor": fresh_address(), "kathy": self.agents["kathy"]}}}}
        self.path = write_config(self.config)
        self.data = tempfile.mkdtemp(prefix="keymaster-ledger-")

    def tearDown(self):
        self.chain.stop()

    def daemon(self, preexec=None, interval="300ms"):
        log = tempfile.NamedTemporaryFile(prefix="keymaster-", suffix=".log", delete=False)
        proc = subprocess.Popen([KEYMASTER, "run", "--config", self.path, "--data-dir", self.data, "--interval", interval,
                                 "--metrics-addr", f"127.0.0.1:{free_port()}"],
                                stdout=log, stderr=log, env=dict(os.environ, **ENV), preexec_fn=preexec)
        proc.log = log.name
        return proc

    def all_at_target(self):
        return all(self.chain.balance(a) == 2 * ETHER for a in self.agents.values())

    def assert_paid_exactly_once(self):
        txs = self.chain.transactions_from(DEV_ADDRESS)
        to = [tx["to"].lower() for tx in txs]
        for name, a in self.agents.items():
            self.assertEqual(to.count(a.lower()), 1, f"{name} {a}: {to.count(a.lower())} transfers")
            self.assertEqual(self.chain.balance(a), 2 * ETHER, name)
        self.assertEqual(len(txs), len(set(to)), "one transfer per account, no other")

    def history(self, *args):
        r = keymaster("history", "--json", "--data-dir", self.data, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def test_sigkill_three_times_mid_flight_pays_each_account_once(self):
        rng = random.Random(4242)
        for _ in range(3):
            d = self.daemon()
            time.sleep(rng.uniform(0.4, 2.5))
            d.send_signal(signal.SIGKILL)
            d.wait()
        d = self.daemon()
        try:
            wait_for("every account at its target", self.all_at_target)
            time.sleep(3)  # a few more rounds: nothing more may be sent
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(20), 0)
        self.assert_paid_exactly_once()
        entries = self.history()
        confirmed = [e for e in entries if e["state"] == "confirmed"]
        self.assertEqual(sorted(e["recipient"] for e in confirmed), sorted(self.agents.values()))
        mined = {tx["hash"] for tx in self.chain.transactions_from(DEV_ADDRESS)}
        self.assertEqual({e["txHash"] for e in confirmed}, mined)

    def test_history(self):
        r = keymaster("top-up", "--yes", "--config", self.path, "--data-dir", self.data, env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        entries = self.history()
        self.assertEqual(len(entries), len(self.agents))  # a home's relayer and processor are not funded on it
        mined = {tx["hash"]: tx for tx in self.chain.transactions_from(DEV_ADDRESS)}
        for e in entries:
            self.assertEqual(e["state"], "confirmed")
            self.assertIn(e["txHash"], mined)
            self.assertEqual(int(mined[e["txHash"]]["value"], 16), int(e["amountWei"]))
            self.assertEqual(e["network"], "alpha")
            self.assertEqual(e["chainId"], 31337)
            self.assertIn("block", e)
        self.assertEqual(len(self.history("--address", self.agents["w2"])), 1)
        self.assertEqual(len(self.history("--network", "beta")), 0)
        self.assertEqual(len(self.history("--since", "1h")), len(entries))
        times = [e["time"] for e in entries]
        self.assertEqual(times, sorted(times, reverse=True))
        text = keymaster("history", "--data-dir", self.data)
        self.assertIn("confirmed", text.stdout)
        self.assertEqual(keymaster("history", "--since", "yesterday", "--data-dir", self.data).returncode, 2)

    def test_unwritable_ledger_sends_nothing_unrecorded(self):
        keymaster("history", "--data-dir", self.data)  # create the ledger
        r = subprocess.run([KEYMASTER, "top-up", "--yes", "--config", self.path, "--data-dir", self.data],
                           capture_output=True, text=True, env=dict(os.environ, **ENV), preexec_fn=limited(40000),
                           timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ledger cannot be written", r.stdout + r.stderr)
        # Everything broadcast is in the ledger: the bank's nonce moved by exactly the entries written.
        wait_for("pending mined", lambda: int(self.chain_pending_nonce(), 16) == self.chain.nonce(DEV_ADDRESS), 10)
        self.assertEqual(self.chain.nonce(DEV_ADDRESS), len(self.history()))
        # (A round's entries are written in one transaction before its one broadcast, so the ledger
        # fills up at a round's boundary: the entries of what was sent are all there.)
        self.assertLessEqual(len(self.history()), len(self.agents))
        # With the ledger writable again, the rest is funded, and nobody twice.
        r = keymaster("top-up", "--yes", "--config", self.path, "--data-dir", self.data, env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_paid_exactly_once_of(list(self.agents.values()))

    def chain_pending_nonce(self):
        from chains import rpc
        return rpc(self.chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"])

    def assert_paid_exactly_once_of(self, addresses):
        to = [tx["to"].lower() for tx in self.chain.transactions_from(DEV_ADDRESS)]
        for a in addresses:
            self.assertEqual(to.count(a.lower()), 1, a)
            self.assertEqual(self.chain.balance(a), 2 * ETHER, a)

    def test_daemon_fails_closed_then_recovers(self):
        keymaster("history", "--data-dir", self.data)
        d = self.daemon(preexec=limited(40000))
        try:
            wait_for("ledger errors counted", lambda: "ledger cannot be written" in read(d.log), timeout=30)
            self.assertIsNone(d.poll(), "the daemon must keep running")
            subprocess.run(["prlimit", "--pid", str(d.pid), "--fsize=unlimited"], check=True)
            wait_for("every account at its target", self.all_at_target)
            time.sleep(2)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(20), 0)
        self.assert_paid_exactly_once_of(list(self.agents.values()))

    def test_a_pending_top_up_replaced_by_someone_else_is_decided_afresh(self):
        # keymaster sends; before the block is mined it dies; someone else takes the nonce with a
        # higher fee. On restart the entry is dropped and the account is paid exactly once.
        d = self.daemon(interval="60s")
        wait_for("a top-up in the ledger", lambda: len(self.history()) > 0, timeout=20, step=0.05)
        d.send_signal(signal.SIGKILL)
        d.wait()
        pending = [e for e in self.history() if e["state"] in ("intent", "sent")]
        self.assertTrue(pending, "the kill came after the block: nothing was pending")
        if pending:
            nonce = min(e["nonce"] for e in pending)
            subprocess.run([CAST, "send", "--private-key", DEV_KEY, "--rpc-url", self.chain.url, "--async",
                            "--nonce", str(nonce), "--priority-gas-price", "50gwei", "--gas-price", "200gwei",
                            DEV_ADDRESS, "--value", "1"], check=True, capture_output=True)
        d = self.daemon()
        try:
            wait_for("every account at its target", self.all_at_target)
            time.sleep(3)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(20), 0)
        self.assert_paid_exactly_once_of(list(self.agents.values()))
        states = {e["txHash"]: e["state"] for e in self.history()}
        self.assertIn("dropped", states.values())


class MempoolAndChainId(unittest.TestCase):
    def test_a_transaction_lost_from_the_mempool_is_sent_again(self):
        from chains import rpc
        chain = Chain(31337, extra=["--no-mining"])
        data = tempfile.mkdtemp(prefix="keymaster-gap-")
        agent = fresh_address()
        cfg = {"networks": {"alpha": {"endpoint": chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
                                      "agents": {"updater": agent, "watchers": [], "relayer": fresh_address(),
                                                 "processor": fresh_address()}}}}
        log = tempfile.NamedTemporaryFile(prefix="keymaster-", suffix=".log", delete=False).name
        with open(log, "w") as out:
            d = subprocess.Popen([KEYMASTER, "run", "--config", write_config(cfg), "--data-dir", data, "--interval", "300ms",
                                  "--metrics-addr", "127.0.0.1:0"], stdout=out, stderr=out, env=dict(os.environ, **ENV))
        try:
            wait_for("a pending top-up", lambda: rpc(chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]) == "0x1",
                     timeout=20)
            tx_hash = rpc(chain.url, "eth_getBlockByNumber", ["pending", False])["transactions"][0]
            rpc(chain.url, "anvil_dropTransaction", [tx_hash])  # evicted: the nonce is free again
            self.assertEqual(rpc(chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]), "0x0")
            wait_for("sent again", lambda: rpc(chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]) == "0x1",
                     timeout=20)
            rpc(chain.url, "evm_mine")
            wait_for("funded", lambda: chain.balance(agent) == 2 * ETHER, timeout=20)
            time.sleep(1.5)
            rpc(chain.url, "evm_mine")
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
        txs = chain.transactions_from(DEV_ADDRESS)
        self.assertEqual([tx["hash"] for tx in txs], [tx_hash])  # the very same transaction, once
        self.assertEqual(chain.balance(agent), 2 * ETHER)
        chain.stop()

    def test_chain_id_mismatch_stops_signing_there_and_others_carry_on(self):
        good, bad = Chain(31337), Chain(4242)
        data = tempfile.mkdtemp(prefix="keymaster-chainid-")
        a, b = fresh_address(), fresh_address()
        net = lambda url, agent, chain_id: {"endpoint": url, "chainId": chain_id, "bank": {"keyEnv": "KM_BANK"},
                                            "threshold": "1 ether", "agents": {"updater": agent, "watchers": [],
                                                                               "relayer": fresh_address(),
                                                                               "processor": fresh_address()}}
        cfg = {"networks": {"good": net(good.url, a, 31337), "bad": net(bad.url, b, 1)}}
        log = tempfile.NamedTemporaryFile(prefix="keymaster-", suffix=".log", delete=False).name
        with open(log, "w") as out:
            d = subprocess.Popen([KEYMASTER, "run", "--config", write_config(cfg), "--data-dir", data, "--interval", "300ms",
                                  "--metrics-addr", "127.0.0.1:0"], stdout=out, stderr=out, env=dict(os.environ, **ENV))
        try:
            wait_for("good funded", lambda: good.balance(a) == 2 * ETHER, timeout=20)
            time.sleep(1)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
        with open(log) as f:
            self.assertIn("bad: poll failed: chain id mismatch: expected 1, endpoint reports 4242", f.read())
        self.assertEqual(bad.balance(b), 0)
        self.assertEqual(bad.nonce(DEV_ADDRESS), 0)
        good.stop()
        bad.stop()


class StuckOnAnvil(unittest.TestCase):
    def test_stuck_transaction_is_replaced_with_higher_fees_and_paid_once(self):
        from chains import rpc
        chain = Chain(31337, extra=["--no-mining"])  # nothing is mined until we say so
        data = tempfile.mkdtemp(prefix="keymaster-stuck-")
        agent = fresh_address()
        cfg = {"networks": {"alpha": {"endpoint": chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
                                      "replaceAfter": {"seconds": 2, "blocks": 1000},
                                      "agents": {"updater": agent, "watchers": [], "relayer": fresh_address(),
                                                 "processor": fresh_address()}}}}
        path = write_config(cfg)

        def history():
            r = keymaster("history", "--json", "--data-dir", data)
            return [json.loads(line) for line in r.stdout.splitlines()]
        d = subprocess.Popen([KEYMASTER, "run", "--config", path, "--data-dir", data, "--interval", "300ms",
                              "--metrics-addr", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, **ENV))
        try:
            wait_for("two replacements", lambda: sum(e["state"] == "replaced" for e in history()) >= 2, timeout=30)
            entries = sorted(history(), key=lambda e: e["id"])
            self.assertEqual({e["nonce"] for e in entries}, {0})
            fees = [int(e["maxFeePerGasWei"]) for e in entries]
            for before, after in zip(fees, fees[1:]):
                self.assertGreaterEqual(after * 8, before * 9, "fees raised by at least 12.5%")
            rpc(chain.url, "evm_mine")  # mining resumes
            wait_for("confirmed", lambda: any(e["state"] == "confirmed" for e in history()), timeout=30)
            wait_for("settled", lambda: all(e["state"] in ("confirmed", "replaced") for e in history()), timeout=30)
            rpc(chain.url, "evm_mine")
            time.sleep(1.5)
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
        self.assertEqual(chain.balance(agent), 2 * ETHER)
        txs = chain.transactions_from(DEV_ADDRESS)
        self.assertEqual(len(txs), 1)
        final = history()
        self.assertEqual(sum(e["state"] == "confirmed" for e in final), 1)
        confirmed = next(e for e in final if e["state"] == "confirmed")
        self.assertEqual(confirmed["txHash"], txs[0]["hash"])
        for e in final:
            if e["state"] == "replaced":
                self.assertTrue(e.get("replacedBy"))
        chain.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
