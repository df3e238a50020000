"""Canonical-bridge stand-ins for the treasury's tests.

On the L1, code placed with anvil_setCode at the OptimismPortal's and the Arbitrum Inbox's
addresses accepts any call and its value (a single STOP: the value stays in the contract, as the
real ones lock it). A relay watches the L1's blocks for successful calls to them, decodes each
deposit as the real bridge does, and credits the L2 `delay` seconds later (as the sequencer would)
with a transfer from a funded account of its own: a real inflow with a transaction, as a deposit
transaction is on the L2.

- OptimismPortal.depositTransaction(_to, _value, _gasLimit, _isCreation, _data): the L2 gets the
  call's value (the mint) at `_to`.
- Inbox.depositEth(): the L2 gets the call's value at the sender's address.
- Inbox.createRetryableTicket(to, l2CallValue, ...): the L2 gets `l2CallValue` at `to`.

The relay can hold deposits (credited when released) or drop them (never credited), for the
cases of a slow and of a stuck bridge."""
import threading
import time

from chains import fresh_address, rpc

PORTAL = "0x00000000000000000000000000000000000B0001"
INBOX = "0x00000000000000000000000000000000000B0002"
STOP = "0x00"
DEPOSIT_TRANSACTION = "e9e05c42"
DEPOSIT_ETH = "439370b1"
CREATE_RETRYABLE_TICKET = "679b6ded"


def install(l1):
    """Places the portal's and the inbox's stand-ins on the L1 (a Chain)."""
    for address in (PORTAL, INBOX):
        rpc(l1.url, "anvil_setCode", [address, STOP])


def word(data, i):
    return data[8 + 64 * i: 8 + 64 * (i + 1)]


def decode(tx):
    """(recipient on the L2, value) of a deposit transaction on the L1, or None if it is not one."""
    to = (tx.get("to") or "").lower()
    data = tx.get("input", "0x")[2:]
    selector, value = data[:8], int(tx["value"], 16)
    if to == PORTAL.lower() and selector == DEPOSIT_TRANSACTION:
        return "0x" + word(data, 0)[24:], value
    if to == INBOX.lower() and selector == DEPOSIT_ETH:
        return tx["from"].lower(), value
    if to == INBOX.lower() and selector == CREATE_RETRYABLE_TICKET:
        return "0x" + word(data, 0)[24:], int(word(data, 1), 16)
    return None


class Relay(threading.Thread):
    """Credits on `l2` what is deposited on `l1`, `delay` seconds after the deposit is mined."""

    def __init__(self, l1, l2, delay=2.0):
        super().__init__(daemon=True)
        self.l1, self.l2, self.delay = l1, l2, delay
        self.sequencer = fresh_address()
        l2.set_balance(self.sequencer, 10**30)
        rpc(l2.url, "anvil_impersonateAccount", [self.sequencer])
        self.lock = threading.Lock()
        self.deposits = []  # dicts: l1 hash, to, value, mined (time), credited (L2 hash or None)
        self.held = False
        self.dropped = False
        self.next_block = int(rpc(l1.url, "eth_blockNumber"), 16) + 1
        self.stopping = threading.Event()
        self.start()

    def hold(self):
        with self.lock:
            self.held = True

    def release(self):
        with self.lock:
            self.held = False

    def drop(self):
        """From now on nothing is credited (a bridge that never delivers)."""
        with self.lock:
            self.dropped = True

    def stop(self):
        self.stopping.set()
        self.join(10)

    def seen(self):
        with self.lock:
            return [dict(d) for d in self.deposits]

    def run(self):
        while not self.stopping.wait(0.2):
            try:
                self.read_blocks()
                self.credit_due()
            except OSError:
                pass  # a node restarting in a test: read again next time

    def read_blocks(self):
        latest = int(rpc(self.l1.url, "eth_blockNumber"), 16)
        while self.next_block <= latest:
            block = rpc(self.l1.url, "eth_getBlockByNumber", [hex(self.next_block), True])
            for tx in block["transactions"]:
                found = decode(tx)
                if not found:
                    continue
                receipt = rpc(self.l1.url, "eth_getTransactionReceipt", [tx["hash"]])
                if receipt and int(receipt["status"], 16) == 1:
                    with self.lock:
                        self.deposits.append({"l1": tx["hash"], "to": found[0], "value": found[1],
                                              "mined": time.time(), "credited": None})
            self.next_block += 1

    def credit_due(self):
        with self.lock:
            if self.held or self.dropped:
                return
            due = [d for d in self.deposits if d["credited"] is None and time.time() - d["mined"] >= self.delay]
        for d in due:
            tx = rpc(self.l2.url, "eth_sendTransaction", [{"from": self.sequencer, "to": d["to"],
                                                             "value": hex(d["value"])}])
            with self.lock:
                d["credited"] = tx
