"""The bridge stand-ins the treasury's tests rely on (bridge.py), checked on their own: deposits
sent with Foundry's cast (an independent encoder) to the portal and the inbox on one anvil are
credited on another, to the recipient each bridge names, after the relay's delay; a held relay
credits on release, a dropped one never."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import bridge  # noqa: E402
from chains import CAST, DEV_ADDRESS, DEV_KEY, ETHER, Chain, fresh_address  # noqa: E402


def send(chain, to, signature, *args, value):
    subprocess.run([CAST, "send", "--rpc-url", chain.url, "--private-key", DEV_KEY, "--value", str(value), to,
                    signature, *args], check=True, capture_output=True, text=True)


def wait_balance(chain, address, want, timeout=15):
    deadline = time.time() + timeout
    while chain.balance(address) != want:
        if time.time() > deadline:
            raise AssertionError(f"{address} holds {chain.balance(address)} on the L2, not {want}")
        time.sleep(0.1)


class BridgeHarness(unittest.TestCase):
    def setUp(self):
        self.l1, self.l2 = Chain(31337), Chain(10)
        bridge.install(self.l1)
        self.relay = bridge.Relay(self.l1, self.l2, delay=1.0)

    def tearDown(self):
        self.relay.stop()
        self.l1.stop()
        self.l2.stop()

    def test_each_deposit_reaches_its_recipient(self):
        op_to, retry_to = fresh_address(), fresh_address()
        before = self.l2.balance(DEV_ADDRESS)
        send(self.l1, bridge.PORTAL, "depositTransaction(address,uint256,uint64,bool,bytes)", op_to, str(3 * ETHER),
             "100000", "false", "0x", value=3 * ETHER)
        send(self.l1, bridge.INBOX, "depositEth()", value=2 * ETHER)
        send(self.l1, bridge.INBOX, "createRetryableTicket(address,uint256,uint256,address,address,uint256,uint256,bytes)",
             retry_to, str(ETHER), "1000", retry_to, retry_to, "0", "0", "0x", value=ETHER + 1000)
        wait_balance(self.l2, op_to, 3 * ETHER)
        wait_balance(self.l2, DEV_ADDRESS, before + 2 * ETHER)  # depositEth: the sender's own address
        wait_balance(self.l2, retry_to, ETHER)                   # l2CallValue, not the submission cost
        self.assertEqual(3, len(self.relay.seen()))

    def test_held_credits_on_release_and_dropped_never(self):
        to = fresh_address()
        self.relay.hold()
        send(self.l1, bridge.PORTAL, "depositTransaction(address,uint256,uint64,bool,bytes)", to, str(ETHER),
             "100000", "false", "0x", value=ETHER)
        time.sleep(3)
        self.assertEqual(0, self.l2.balance(to), "credited while held")
        self.relay.release()
        wait_balance(self.l2, to, ETHER)
        self.relay.drop()
        send(self.l1, bridge.PORTAL, "depositTransaction(address,uint256,uint64,bool,bytes)", to, str(ETHER),
             "100000", "false", "0x", value=ETHER)
        time.sleep(3)
        self.assertEqual(ETHER, self.l2.balance(to), "a dropped deposit was credited")
        self.assertEqual([None], [d["credited"] for d in self.relay.seen()[1:]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
