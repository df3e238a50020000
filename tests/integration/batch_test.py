"""Batched sends: a network's top-ups go out as one batch of eth_sendRawTransaction with
consecutive nonces; a refused one in the middle is filled with a zero-value transfer so the
later ones still mine, and the refused account is paid (once) on the next run."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import Chain, DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, keymaster, write_config  # noqa: E402
from proxy import FaultProxy  # noqa: E402

ENV = {"KM_BANK": DEV_KEY}


class BatchedSends(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.chain = Chain(31337)

    @classmethod
    def tearDownClass(cls):
        cls.chain.stop()

    def config(self, url, agents):
        return write_config({"networks": {"alpha": {
            "endpoint": url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "agents": agents}}})

    def test_one_batch_and_a_refused_nonce_is_filled(self):
        watchers = [fresh_address() for _ in range(7)]
        agents = {"updater": fresh_address(), "relayer": fresh_address(), "processor": fresh_address(),
                  "watchers": watchers}
        funded = [agents["updater"], *watchers]  # funded on their home chain: 8 top-ups
        proxy = FaultProxy(self.chain.url, refuse_raw={2})
        start_nonce = self.chain.nonce(DEV_ADDRESS)
        try:
            r = keymaster("top-up", "--config", self.config(proxy.url, agents), "--yes", env=ENV)
        finally:
            proxy.stop()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # one top-up failed
        self.assertIn("refused by the test proxy", r.stdout + r.stderr)
        # Every top-up went out in one HTTP request (8 transactions), then the filler alone, which
        # took the refused one's nonce: 8 nonces used, none skipped.
        self.assertEqual(proxy.raw_batch_sizes, [8, 1])
        balances = {a: self.chain.balance(a) for a in funded}
        refused = [a for a, b in balances.items() if b == 0]
        self.assertEqual(len(refused), 1)
        self.assertTrue(all(b == 2 * ETHER for a, b in balances.items() if a not in refused))
        txs = self.chain.transactions_from(DEV_ADDRESS)
        mine = sorted((int(t["nonce"], 16), t) for t in txs if int(t["nonce"], 16) >= start_nonce)
        self.assertEqual([n for n, _ in mine], list(range(start_nonce, start_nonce + 8)))
        filler = [t for _, t in mine if int(t["value"], 16) == 0]
        self.assertEqual(len(filler), 1)
        self.assertEqual(filler[0]["to"].lower(), DEV_ADDRESS.lower())
        self.assertEqual(int(filler[0]["nonce"], 16), start_nonce + 2)
        h = keymaster("history", "--json", env=ENV)
        roles = [json.loads(line)["role"] for line in h.stdout.splitlines()]
        self.assertIn("nonce-filler", roles)

        # The next run pays the refused account, once; nobody else.
        r = keymaster("top-up", "--config", self.config(self.chain.url, agents), "--yes", env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for a in funded:
            self.assertEqual(self.chain.balance(a), 2 * ETHER)
        received = {}
        for t in self.chain.transactions_from(DEV_ADDRESS):
            if t["to"] and t["to"].lower() != DEV_ADDRESS.lower():
                received[t["to"].lower()] = received.get(t["to"].lower(), 0) + 1
        for a in funded:
            self.assertEqual(received[a.lower()], 1, a)


if __name__ == "__main__":
    unittest.main(verbosity=2)
