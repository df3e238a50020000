"""keymaster top-up, status and validate on three real anvil chains (two London, one Berlin).

The expected funding is written out by hand below from the Nomad v2 rules, not computed by the
code under test; balances and transactions are read back with plain JSON-RPC.
"""
import json
import os
import pty
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import Chain, DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, keymaster, write_config  # noqa: E402

ENV = {"KM_BANK": DEV_KEY}


class TopUpOnAnvil(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.alpha = Chain(31337)
        cls.beta = Chain(1338)
        cls.gamma = Chain(1339, hardfork="berlin")
        cls.chains = {"alpha": cls.alpha, "beta": cls.beta, "gamma": cls.gamma}
        a = {k: fresh_address() for k in ("updater", "watcher", "relayer", "processor", "kathy")}
        b = {k: fresh_address() for k in ("updater", "watcher", "relayer", "processor")}
        g = {k: fresh_address() for k in ("updater", "relayer", "processor")}
        cls.a, cls.b, cls.g = a, b, g
        bank = {"keyEnv": "KM_BANK"}
        # Nomad v2 format: an object of networks, replicas, ignore lists, an {address, threshold} agent.
        cls.config = {"networks": {
            "alpha": {"endpoint": cls.alpha.url, "replicas": ["beta", "gamma"], "bank": bank,
                      "threshold": "1 ether",
                      "agents": {"updater": a["updater"], "watchers": [a["watcher"]], "relayer": a["relayer"],
                                 "processor": a["processor"],
                                 "kathy": {"address": a["kathy"], "threshold": "3 ether"}}},
            "beta": {"endpoint": cls.beta.url, "replicas": ["alpha"], "bank": bank,
                     "threshold": 500000000000000000, "target": "2 ether",
                     "ignore": {"remote": ["watcher"]},
                     "agents": {"updater": b["updater"], "watchers": [b["watcher"]], "relayer": b["relayer"],
                                "processor": b["processor"]}},
            "gamma": {"endpoint": cls.gamma.url, "replicas": ["alpha"], "bank": bank, "threshold": "0.25 ether",
                      "ignore": {"all": ["processor"]},
                      "agents": {"updater": g["updater"], "watchers": [], "relayer": g["relayer"],
                                 "processor": g["processor"]}},
        }}
        cls.path = write_config(cls.config)
        # A pre-funded agent: beta's updater already holds more than its threshold.
        cls.beta.set_balance(b["updater"], 5 * ETHER)
        # (network, address) -> the balance each account must end at: exactly its target.
        cls.expected = {
            # On alpha: its updater, watcher, kathy (own threshold 3 -> target 6); beta's and gamma's
            # relayer, processor and watchers (alpha is their replica).
            ("alpha", a["updater"]): 2 * ETHER, ("alpha", a["watcher"]): 2 * ETHER,
            ("alpha", a["kathy"]): 6 * ETHER,
            ("alpha", b["relayer"]): 2 * ETHER, ("alpha", b["processor"]): 2 * ETHER,
            ("alpha", b["watcher"]): 2 * ETHER,
            ("alpha", g["relayer"]): 2 * ETHER, ("alpha", g["processor"]): 2 * ETHER,
            # On beta: its watcher (the updater is pre-funded); alpha's relayer and processor; alpha's
            # watcher is ignored as a remote watcher.
            ("beta", b["watcher"]): 2 * ETHER, ("beta", a["relayer"]): 2 * ETHER,
            ("beta", a["processor"]): 2 * ETHER,
            # On gamma (Berlin): its updater; alpha's relayer and watcher; processors ignored everywhere.
            ("gamma", g["updater"]): ETHER // 2, ("gamma", a["relayer"]): ETHER // 2,
            ("gamma", a["watcher"]): ETHER // 2,
        }
        cls.nonces = {n: c.nonce(DEV_ADDRESS) for n, c in cls.chains.items()}

    @classmethod
    def tearDownClass(cls):
        for c in cls.chains.values():
            c.stop()

    def km(self, *args, **kw):
        return keymaster(*args, "--config", self.path, env=ENV, **kw)

    def assert_no_new_transactions(self):
        for n, c in self.chains.items():
            self.assertEqual(c.nonce(DEV_ADDRESS), self.nonces[n], f"{n}: the bank sent something")

    def test_1_validate(self):
        r = self.km("validate")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 network(s)", r.stdout)
        self.assertIn(f"{len(self.expected) + 1} funded account(s)", r.stdout)  # + the pre-funded updater

    def test_2_dry_run_sends_nothing(self):
        r = self.km("top-up", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dry run: nothing sent", r.stdout)
        self.assertIn("EIP-1559", r.stdout)
        self.assertIn("legacy EIP-155", r.stdout)
        self.assert_no_new_transactions()

    def test_3_no_terminal_without_yes_refuses(self):
        r = self.km("top-up")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yes", r.stderr)
        self.assert_no_new_transactions()

    def test_3b_declined_confirmation_exits_1_and_sends_nothing(self):
        # A terminal on stdin (a pty): the operator answers "n". Exit 1 (the accounts are still low),
        # as the README's exit-code table and its top-up section both say.
        master, slave = pty.openpty()
        try:
            os.write(master, b"n\n")
            r = self.km("top-up", stdin=slave)
        finally:
            os.close(slave)
            os.close(master)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("Proceed? [y/N]", r.stdout)
        self.assertIn("Aborted: nothing sent", r.stdout)
        self.assert_no_new_transactions()

    def test_4_top_up_funds_exactly_and_once(self):
        r = self.km("top-up", "--yes")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Summary", r.stdout)
        for (network, address), want in self.expected.items():
            self.assertEqual(self.chains[network].balance(address), want, f"{network} {address}")
        self.assertEqual(self.beta.balance(self.b["updater"]), 5 * ETHER)
        for network, chain in self.chains.items():
            txs = chain.transactions_from(DEV_ADDRESS)
            recipients = sorted(tx["to"].lower() for tx in txs)
            wanted = sorted(addr.lower() for (n, addr) in self.expected if n == network)
            self.assertEqual(recipients, wanted, f"{network}: one transaction per needy account, no other")
            for tx in txs:
                self.assertEqual(int(tx["value"], 16), self.expected[(network, self.find(tx["to"]))])
                if network == "gamma":
                    self.assertEqual(tx["type"], "0x0")
                    # EIP-155: v = 35 + 2 * chainId + parity
                    self.assertIn(int(tx["v"], 16), (35 + 2 * 1339, 36 + 2 * 1339))
                else:
                    self.assertEqual(tx["type"], "0x2")
                    self.assertEqual(int(tx["chainId"], 16), chain.chain_id)

    def find(self, address):
        for (_, a) in self.expected:
            if a.lower() == address.lower():
                return a
        raise AssertionError(f"unexpected recipient {address}")

    def test_5_second_run_sends_nothing(self):
        before = {n: c.nonce(DEV_ADDRESS) for n, c in self.chains.items()}
        r = self.km("top-up", "--yes")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for n, c in self.chains.items():
            self.assertEqual(c.nonce(DEV_ADDRESS), before[n])

    def test_6_status_matches_the_chains(self):
        r = self.km("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        seen = 0
        for net in doc["networks"]:
            chain = self.chains[net["name"]]
            self.assertEqual(net["chainId"], chain.chain_id)
            self.assertEqual(int(net["bank"]["balanceWei"]), chain.balance(DEV_ADDRESS))
            for acc in net["accounts"]:
                self.assertEqual(int(acc["balanceWei"]), chain.balance(acc["address"]))
                seen += 1
        self.assertEqual(seen, len(self.expected) + 1)
        text = self.km("status")
        self.assertEqual(text.returncode, 0)
        self.assertIn("kathy", text.stdout)

    def test_7_unreachable_network_is_reported_and_others_shown(self):
        broken = json.loads(json.dumps(self.config))
        broken["networks"]["beta"]["endpoint"] = "http://127.0.0.1:1/SECRET-API-KEY"
        path = write_config(broken)
        r = keymaster("status", "--config", path, env=ENV)
        self.assertEqual(r.returncode, 1)
        self.assertIn("beta: UNREACHABLE", r.stdout)
        self.assertIn("alpha: chain 31337", r.stdout)
        self.assertNotIn("SECRET-API-KEY", r.stdout + r.stderr)
        r = keymaster("top-up", "--yes", "--config", path, env=ENV)
        self.assertEqual(r.returncode, 1)

    def test_7b_chain_id_mismatch_is_not_touched(self):
        wrong = json.loads(json.dumps(self.config))
        wrong["networks"]["alpha"]["chainId"] = 1
        path = write_config(wrong)
        self.alpha.set_balance(self.a["updater"], 0)
        before = self.alpha.nonce(DEV_ADDRESS)
        r = keymaster("top-up", "--yes", "--config", path, env=ENV)
        self.assertEqual(r.returncode, 1)
        self.assertIn("chain id mismatch: expected 1, endpoint reports 31337", r.stdout)
        self.assertEqual(self.alpha.nonce(DEV_ADDRESS), before)
        # With the right chain id, the drained account is funded again, to exactly its target.
        wrong["networks"]["alpha"]["chainId"] = 31337
        r = keymaster("top-up", "--yes", "--config", write_config(wrong), env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.alpha.balance(self.a["updater"]), 2 * ETHER)
        self.assertEqual(self.alpha.nonce(DEV_ADDRESS), before + 1)

    def test_8_config_errors_exit_2_and_send_nothing(self):
        bad = json.loads(json.dumps(self.config))
        bad["networks"]["beta"]["agents"]["relayer"] = self.b["relayer"][:5] + self.b["relayer"][5:].swapcase()
        path = write_config(bad)
        before = {n: c.nonce(DEV_ADDRESS) for n, c in self.chains.items()}
        for cmd in (["validate"], ["status"], ["top-up", "--yes"], ["top-up", "--dry-run"]):
            r = keymaster(*cmd, "--config", path, env=ENV)
            self.assertEqual(r.returncode, 2, cmd)
            self.assertIn("networks.beta.agents.relayer: bad EIP-55 checksum", r.stderr)
        r = keymaster("status", "--config", self.path, env={"KM_BANK": ""})
        self.assertEqual(r.returncode, 2)
        self.assertIn("networks.alpha.bank: environment variable KM_BANK is not set", r.stderr)
        for n, c in self.chains.items():
            self.assertEqual(c.nonce(DEV_ADDRESS), before[n])

    def test_9_address_and_env_override(self):
        r = keymaster("address", "--key-env", "KM_BANK", env=ENV)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout.strip(), DEV_ADDRESS)
        self.assertNotIn(DEV_KEY[2:], r.stdout + r.stderr)
        # <NAME>_RPC overrides the endpoint, as in Nomad.
        broken = json.loads(json.dumps(self.config))
        broken["networks"]["beta"]["endpoint"] = "http://127.0.0.1:1"
        path = write_config(broken)
        r = keymaster("status", "--config", path, env={**ENV, "BETA_RPC": self.beta.url})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_10_logs(self):
        # JSON logs: one object per line on stderr, the warning of an unreachable network among them.
        broken = json.loads(json.dumps(self.config))
        broken["networks"]["beta"]["endpoint"] = "http://127.0.0.1:1/SECRET-API-KEY"
        r = keymaster("status", "--log-format", "json", "--config", write_config(broken), env=ENV)
        lines = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
        self.assertTrue(any(entry["level"] == "warning" and "beta" in entry["msg"] for entry in lines), r.stderr)
        self.assertNotIn("SECRET-API-KEY", r.stderr)
        for bad in (["--log-level", "loud"], ["--log-format", "xml"], ["--no-such-flag"]):
            r = self.km("status", *bad)
            self.assertEqual(r.returncode, 2, bad)
        r = self.km("top-up", "--networks", "alpha,nowhere", "--dry-run")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown network 'nowhere'", r.stderr)
        r = self.km("top-up", "--networks", "gamma", "--dry-run")
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("alpha:", r.stdout)


class HistoryInDecimals(unittest.TestCase):
    def test_history_prints_amounts_in_the_network_decimals(self):
        import tempfile
        chain = Chain(31337)
        try:
            agent = fresh_address()
            cfg = write_config({"networks": {"six": {
                "endpoint": chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1000000 wei", "target": "2500000 wei",
                "decimals": 6, "symbol": "USDX",
                "agents": {"updater": agent, "watchers": [], "relayer": fresh_address(), "processor": fresh_address()}}}})
            data = tempfile.mkdtemp(prefix="keymaster-decimals-")
            r = keymaster("top-up", "--yes", "--config", cfg, "--data-dir", data, env=ENV)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = keymaster("history", "--json", "--config", cfg, "--data-dir", data)
            amounts = {json.loads(line)["recipient"].lower(): json.loads(line)["amount"] for line in r.stdout.splitlines()}
            self.assertEqual(amounts[agent.lower()], "2.5")  # 2,500,000 base units at 6 decimals, not 2.5e-12
            r = keymaster("history", "--config", cfg, "--data-dir", data)
            self.assertIn(" 2.5 ", r.stdout)
        finally:
            chain.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
