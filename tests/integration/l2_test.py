"""Fees as an OP Stack chain charges them, on anvil behind an OP Stack stand-in (op_stack.py: an
oracle at the GasPriceOracle predeploy, receipts with l1Fee and the operator fee, the bank charged
them): `top-up` budgets the L1 data and operator fees before it sends, books what the bank paid to
the wei, and refuses a bank that covers gas x price but not the L1 fee."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, keymaster, write_config  # noqa: E402
from op_stack import OpStackChain  # noqa: E402

GWEI = 10**9
L1_FEE_BOUND = 40_000 * GWEI  # what the oracle says a transfer's L1 data fee may reach
L1_FEE = 25_000 * GWEI        # what each receipt says it was
OPERATOR_PER_GAS, OPERATOR_CONSTANT = 2, 7


class OpStackFees(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = OpStackChain(10, DEV_ADDRESS, L1_FEE_BOUND, L1_FEE, OPERATOR_PER_GAS, OPERATOR_CONSTANT)
        cls.data_dir = os.path.join(write_config({}).rsplit("/", 1)[0], "data")

    @classmethod
    def tearDownClass(cls):
        cls.op.stop()

    def config(self, agents):
        return write_config({"networks": {"optimism": {
            "endpoint": self.op.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
            # (the relayer and the processor are funded on replicas only: none here)
            "agents": {"updater": agents[0], "watchers": agents[1:], "relayer": fresh_address(),
                       "processor": fresh_address()}}}})

    def top_up(self, config):
        return keymaster("top-up", "--config", config, "--yes", "--data-dir", self.data_dir, env={"KM_BANK": DEV_KEY})

    def test_1_the_ledger_books_what_the_bank_lost_to_the_wei(self):
        agents = [fresh_address() for _ in range(3)]
        config = self.config(agents)
        bank_before = self.op.chain.balance(DEV_ADDRESS)
        r = self.top_up(config)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("OP Stack: each transfer's L1 data fee budgeted at 0.00006 ETH", r.stdout)  # the bound x 1.5
        for a in agents:
            self.assertEqual(self.op.chain.balance(a), 2 * ETHER)
        h = keymaster("history", "--json", "--config", config, "--data-dir", self.data_dir)
        entries = [json.loads(line) for line in h.stdout.splitlines()]
        self.assertEqual(len(entries), 3)
        operator_fee = 21000 * OPERATOR_PER_GAS + OPERATOR_CONSTANT
        for e in entries:
            self.assertEqual(e["state"], "confirmed")
            self.assertEqual(int(e["l1FeeWei"]), L1_FEE)
            self.assertEqual(int(e["operatorFeeWei"]), operator_fee)
            self.assertGreater(int(e["feePaidWei"]), L1_FEE + operator_fee)  # and the gas
        lost = bank_before - self.op.chain.balance(DEV_ADDRESS)
        self.assertEqual(lost, sum(int(e["amountWei"]) + int(e["feePaidWei"]) for e in entries))
        self.assertEqual(len(self.op.charged), 3)  # each receipt charged once

    def test_2_a_bank_short_of_the_l1_fee_sends_nothing(self):
        agents = [fresh_address()]
        config = self.config(agents)
        # 2 ether and 0.001 more: the amount and its gas at any price anvil asks, not the L1 fee
        # budgeted (0.015 ether: the bound x 1.5).
        self.op.set_l1_fee_bound(10_000_000 * GWEI)
        self.op.chain.set_balance(DEV_ADDRESS, 2 * ETHER + ETHER // 1000)
        nonce = self.op.chain.nonce(DEV_ADDRESS)
        r = self.top_up(config)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("DOES NOT cover it", r.stdout)
        self.assertIn("bank balance too low", r.stdout + r.stderr)
        self.assertEqual(self.op.chain.nonce(DEV_ADDRESS), nonce)
        self.assertEqual(self.op.chain.balance(agents[0]), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
