"""Which chain, which bank, which nonce (issue 26, items 5, 6 and 7), on anvil with a SQLite ledger:

- a failover to an endpoint of another chain while a top-up is in flight writes nothing for it (it
  stays `sent`, never `dropped` on the other chain's nonces), and the error names the chain id
  mismatch; switched back, the entry is confirmed and the account paid once (`top-up` with the
  config edited between runs; and the daemon behind a proxy whose upstream is swapped, which must
  go on paying on its own chain afterwards);
- a network renamed in the config ("alpha", then "beta": same endpoint, chain and bank) while its
  top-up is in flight: the next run reconciles the entry and pays nobody twice;
- a nonce gap whose filler fails once (the test proxy refuses one send of the first batch and the
  first filler): a later Round fills the gap and every later top-up mines.

Each ends with exact checks: every account at its target, the bank's nonce moved by exactly what
was needed, the ledger's confirmed entries equal to the bank's transactions on chain."""
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from chains import (DEV_ADDRESS, DEV_KEY, ETHER, Chain, error_count, fresh_address, keymaster,  # noqa: E402
                    metric_values, rpc, scrape, start_daemon, wait_for, write_config)
from proxy import FaultProxy  # noqa: E402

ENV = {"KM_BANK": DEV_KEY}
HOME_ID, OTHER_ID = 31337, 4242
OTHER_BANK_NONCE = 50  # the bank has used more nonces on the other chain than ours in flight
TARGET = 2 * ETHER


def network(endpoint, agents, **extra):
    return {"endpoint": endpoint, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
            "agents": {"updater": agents[0], "watchers": list(agents[1:]), "relayer": fresh_address(),
                       "processor": fresh_address()}, **extra}


class Ledger:
    """The SQLite ledger of a data dir, read directly (beside a running keymaster: WAL)."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, "ledger.sqlite")

    def rows(self, sql, args=()):
        if not os.path.exists(self.path):  # (connecting would create it)
            return []
        con = sqlite3.connect(self.path, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, args).fetchall()]
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):  # keymaster has not created its schema yet
                return []
            raise
        finally:
            con.close()

    def topups(self):
        return self.rows("SELECT * FROM topups ORDER BY id")

    def snapshot(self):
        """Every top-up row, every column, and every event: any write shows."""
        return self.topups(), self.rows("SELECT * FROM events ORDER BY id")

    def unresolved(self):
        return self.rows("SELECT * FROM topups WHERE state IN ('intent','sent')")

    def confirmed_hashes(self):
        return sorted(r["tx_hash"].lower() for r in self.rows("SELECT tx_hash FROM topups WHERE state='confirmed'"))


def rlp(b):
    """(item, rest) of RLP bytes: an item is bytes or a list of items."""
    p = b[0]
    if p < 0x80:
        return b[:1], b[1:]
    if p <= 0xbf:
        n, skip = (p - 0x80, 1) if p <= 0xb7 else (int.from_bytes(b[1:1 + p - 0xb7], "big"), 1 + p - 0xb7)
        return b[skip:skip + n], b[skip + n:]
    n, skip = (p - 0xc0, 1) if p <= 0xf7 else (int.from_bytes(b[1:1 + p - 0xf7], "big"), 1 + p - 0xf7)
    payload, items = b[skip:skip + n], []
    while payload:
        item, payload = rlp(payload)
        items.append(item)
    return items, b[skip + n:]


def transfer_of(raw):
    """(nonce, to, value) of a signed transaction's bytes (legacy, EIP-2930 or EIP-1559)."""
    b = bytes.fromhex(raw[2:])
    if b[0] == 2:  # [chainId, nonce, tip, maxFee, gas, to, value, ...]
        f = rlp(b[1:])[0]
        nonce, to, value = f[1], f[5], f[6]
    elif b[0] == 1:  # [chainId, nonce, gasPrice, gas, to, value, ...]
        f = rlp(b[1:])[0]
        nonce, to, value = f[1], f[4], f[5]
    else:  # [nonce, gasPrice, gas, to, value, ...]
        f = rlp(b)[0]
        nonce, to, value = f[0], f[3], f[4]
    return int.from_bytes(nonce, "big"), "0x" + to.hex(), int.from_bytes(value, "big")


class RefusingProxy(FaultProxy):
    """Refuses (as FaultProxy's refuse_raw does, "intrinsic gas too low") the first transaction
    sent that matches each rule (a predicate of (nonce, to, value)), whatever its place among the
    sends; `refused` lists what was refused, in order."""

    def __init__(self, upstream, rules):
        super().__init__(upstream)
        self.rules = list(rules)
        self.refused = []

    def forward(self, body):
        request = json.loads(body)
        raws = [r["params"][0] for r in (request if isinstance(request, list) else [request])
                if r.get("method") == "eth_sendRawTransaction"]
        with self.lock:
            for k, raw in enumerate(raws):
                t = transfer_of(raw)
                for rule in list(self.rules):
                    if rule(*t):
                        self.rules.remove(rule)
                        self.refuse_raw.add(self.raw_seen + k)
                        self.refused.append(t)
                        break
        return super().forward(body)


def without_updated(snapshot):
    topups, events = snapshot
    return [{k: v for k, v in r.items() if k != "updated"} for r in topups], events


def pending_nonce(chain):
    return int(rpc(chain.url, "eth_getTransactionCount", [DEV_ADDRESS, "pending"]), 16)


def mined_hashes(chain):
    return sorted(t["hash"].lower() for t in chain.transactions_from(DEV_ADDRESS))


def start_other_chain():
    """An anvil of another chain id where the bank has used OTHER_BANK_NONCE nonces, some blocks ahead."""
    other = Chain(OTHER_ID)
    rpc(other.url, "anvil_setNonce", [DEV_ADDRESS, hex(OTHER_BANK_NONCE)])
    for _ in range(5):
        rpc(other.url, "evm_mine")
    return other


class FailoverToAnotherChain(unittest.TestCase):
    """Item 5: chain identity before any write."""

    def setUp(self):
        self.home = Chain(HOME_ID, extra=["--no-mining"])  # the top-up stays in flight until we mine
        self.other = start_other_chain()
        self.data = tempfile.mkdtemp(prefix="keymaster-identity-")
        self.ledger = Ledger(self.data)
        self.agent = fresh_address()

    def tearDown(self):
        self.home.stop()
        self.other.stop()

    def assert_other_chain_untouched(self):
        self.assertEqual(self.other.nonce(DEV_ADDRESS), OTHER_BANK_NONCE)
        self.assertEqual(pending_nonce(self.other), OTHER_BANK_NONCE)
        self.assertEqual(self.other.balance(self.agent), 0)

    def assert_paid_once(self, payments):
        """`payments` top-ups on the home chain, each mined once; the ledger books exactly those."""
        with self.subTest(check="the account at exactly its target"):
            self.assertEqual(self.home.balance(self.agent), TARGET)
        with self.subTest(check=f"the bank's nonce moved by exactly {payments}"):
            self.assertEqual(self.home.nonce(DEV_ADDRESS), payments)
            self.assertEqual(pending_nonce(self.home), payments)
        with self.subTest(check="the ledger's confirmed entries are exactly the bank's transactions on chain"):
            self.assertEqual(self.ledger.confirmed_hashes(), mined_hashes(self.home))
        with self.subTest(check="nothing dropped, replaced or failed, nothing on the other chain"):
            self.assertEqual([(r["nonce"], r["state"]) for r in self.ledger.topups() if r["state"] != "confirmed"], [])
            self.assert_other_chain_untouched()

    def test_topup_against_an_endpoint_of_another_chain_writes_nothing_then_settles_at_home(self):
        def config(url):  # the operator pins the chain id, as the README recommends
            return write_config({"networks": {"alpha": network(url, [self.agent], chainId=HOME_ID)}})

        def top_up(url):
            return keymaster("top-up", "--yes", "--config", config(url), "--data-dir", self.data,
                             "--confirm-timeout", "2", env=ENV)

        # 1. A top-up left in flight (no mining): `sent`, exit 1 (pending).
        r = top_up(self.home.url)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        [entry] = self.ledger.topups()
        self.assertEqual((entry["state"], entry["nonce"], entry["chain_id"]), ("sent", 0, HOME_ID))
        self.assertEqual(pending_nonce(self.home), 1)
        before = self.ledger.snapshot()

        # 2. The endpoint now answers for another chain, whose blocks go on and where the bank's
        # nonce is far past ours: two runs, 5 blocks apart (more than the 3 of drop evidence).
        for _ in range(2):
            r = top_up(self.other.url)
            with self.subTest(check="exit 1, naming the chain id mismatch"):
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("chain id mismatch", r.stdout + r.stderr)
                self.assertIn(str(OTHER_ID), r.stdout + r.stderr)
            for _ in range(5):
                rpc(self.other.url, "evm_mine")
        with self.subTest(check="nothing written while the endpoint is of another chain: the entry stays sent"):
            after = self.ledger.snapshot()
            self.assertEqual([(r["id"], r["state"]) for r in after[0]], [(entry["id"], "sent")])
            self.assertEqual(after, before)
        self.assert_other_chain_untouched()

        # 3. Back home, still unmined: nothing new is sent (the account is busy with its top-up).
        top_up(self.home.url)
        with self.subTest(check="back home, unmined: no second top-up"):
            self.assertEqual(pending_nonce(self.home), 1)
            self.assertEqual(len(self.ledger.topups()), 1)

        # 4. Mined: the next run settles it confirmed; nothing is paid again.
        rpc(self.home.url, "evm_mine")
        r = top_up(self.home.url)
        with self.subTest(check="mined: the next run exits 0 and books the entry confirmed"):
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(self.ledger.rows("SELECT state FROM topups WHERE id=?", (entry["id"],)),
                             [{"state": "confirmed"}])
        rpc(self.home.url, "evm_mine")  # anything sent since is mined too, and shows below
        self.assert_paid_once(1)

    def test_daemon_failed_over_to_another_chain_writes_nothing_and_carries_on_at_home(self):
        forwarded = {"n": 0}

        def count(requests, answers):
            forwarded["n"] += 1
        # The network's one endpoint; its upstream is swapped below. Counts the requests it passes.
        proxy = FaultProxy(self.home.url, rewrite=count)
        path = write_config({"networks": {"alpha": network(proxy.url, [self.agent],
                                                           replaceAfter={"blocks": 1000, "seconds": 3600})}})
        d = start_daemon(path, self.data, ENV, interval="300ms")  # the chain id pinned at the first poll
        try:
            def polled():  # the time of the network's last successful poll
                return metric_values(scrape(d.port), "keymaster_poll_last_success_timestamp_seconds").get(
                    frozenset({("network", "alpha")}), 0.0)

            # 1. The daemon's top-up in flight (no mining), and two more polls: settled as sent.
            wait_for("the top-up sent", lambda: [r["state"] for r in self.ledger.topups()] == ["sent"]
                     and pending_nonce(self.home) == 1, timeout=20)
            for _ in range(2):
                t = polled()
                wait_for("a poll", lambda: polled() > t, timeout=10)
            [entry] = self.ledger.topups()
            before = self.ledger.snapshot()

            # 2. Failover to an endpoint of another chain: Rounds there while its blocks go on.
            proxy.upstream = self.other.url
            for _ in range(6):  # 6 blocks there, each after a few Rounds (the interval is 300 ms)
                n = forwarded["n"]
                wait_for("requests to the other chain", lambda: forwarded["n"] >= n + 4, timeout=15)
                rpc(self.other.url, "evm_mine")
            with self.subTest(check="nothing written while the endpoint is of another chain: the entry stays sent"):
                after = self.ledger.snapshot()
                self.assertEqual([(r["id"], r["state"]) for r in after[0]], [(entry["id"], "sent")])
                # (`updated` aside: a Round answered at home may have been under way at the swap)
                self.assertEqual(without_updated(after), without_updated(before))
            with self.subTest(check="the log and metrics name the chain id mismatch"):
                with open(d.log) as f:
                    log = f.read()
                self.assertIn("chain id mismatch", log)
                self.assertIn(str(OTHER_ID), log)
                self.assertGreater(error_count(scrape(d.port), "alpha", "chain_id"), 0)
            self.assert_other_chain_untouched()

            # 3. Back home: the entry is confirmed once mined; the account is not paid again.
            proxy.upstream = self.home.url
            with self.subTest(check="back home, polls succeed again"):
                for _ in range(2):
                    t = polled()
                    wait_for("a poll at home", lambda: polled() > t, timeout=15)
            with self.subTest(check="back home, unmined: no second top-up"):
                self.assertEqual(pending_nonce(self.home), 1)
                self.assertEqual(len(self.ledger.topups()), 1)
            rpc(self.home.url, "evm_mine")
            with self.subTest(check="mined: the entry booked confirmed"):
                wait_for("the entry confirmed",
                         lambda: self.ledger.rows("SELECT state FROM topups WHERE id=?", (entry["id"],)) ==
                         [{"state": "confirmed"}], timeout=15)

            # 4. The network carries on at home (the other chain's higher blocks do not make its
            # reads look stale): a drained agent is paid, once.
            rpc(self.home.url, "evm_mine")  # whatever was sent meanwhile
            wait_for("nothing unresolved", lambda: not self.ledger.unresolved(), timeout=15)
            paid_before = self.home.nonce(DEV_ADDRESS)
            self.home.set_balance(self.agent, 0)

            def refunded():
                rpc(self.home.url, "evm_mine")
                return self.home.balance(self.agent) > 0 and not self.ledger.unresolved()
            with self.subTest(check="after the failover, a drained agent is paid again at home"):
                wait_for("the drained agent refunded", refunded, timeout=30, step=0.5)
            time.sleep(1.5)  # a few more Rounds: nothing more may be sent
            rpc(self.home.url, "evm_mine")
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
            proxy.stop()
        with self.subTest(check="the failover and back paid the account once before the drain"):
            self.assertEqual(paid_before, 1)
        self.assert_paid_once(2)  # its first funding and the refund


class RenamedNetwork(unittest.TestCase):
    """Item 6: in-flight top-ups are found by chain id and bank, not by the network's name."""

    def test_renamed_network_reconciles_its_top_up_in_flight_and_pays_once(self):
        chain = Chain(HOME_ID, extra=["--no-mining"])
        data = tempfile.mkdtemp(prefix="keymaster-rename-")
        ledger = Ledger(data)
        agents = [fresh_address(), fresh_address()]
        net = network(chain.url, agents)  # the same endpoint, bank and agents under either name
        try:
            def top_up(name):
                cfg = write_config({"networks": {name: net}})
                return keymaster("top-up", "--yes", "--config", cfg, "--data-dir", data, "--confirm-timeout", "2", env=ENV)

            r = top_up("alpha")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # pending: nothing is mined
            self.assertEqual(sorted((e["network"], e["state"]) for e in ledger.topups()), [("alpha", "sent")] * 2)
            self.assertEqual(pending_nonce(chain), 2)

            # The config now names the network "beta": same endpoint, chain and bank. Its top-ups
            # in flight are still its own: nobody is paid again while they wait for a block.
            top_up("beta")
            with self.subTest(check="renamed, in flight: no second top-up"):
                self.assertEqual(pending_nonce(chain), 2)
                self.assertEqual(len(ledger.topups()), 2)

            # Mining resumes: the next run under the new name settles them.
            rpc(chain.url, "evm_mine")
            r = top_up("beta")
            with self.subTest(check="mined: the run under the new name settles both entries confirmed"):
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(ledger.unresolved(), [])
            rpc(chain.url, "evm_mine")  # anything sent since is mined too, and shows below

            with self.subTest(check="every account at exactly its target"):
                self.assertEqual([chain.balance(a) for a in agents], [TARGET, TARGET])
            with self.subTest(check="the bank's nonce moved by exactly the two top-ups"):
                self.assertEqual(chain.nonce(DEV_ADDRESS), 2)
                self.assertEqual(pending_nonce(chain), 2)
            with self.subTest(check="the ledger's confirmed entries are exactly the bank's transactions on chain"):
                self.assertEqual(ledger.confirmed_hashes(), mined_hashes(chain))
                self.assertEqual(len(ledger.topups()), 2)
            h = keymaster("history", "--json", "--data-dir", data)
            self.assertEqual(sorted(json.loads(line)["state"] for line in h.stdout.splitlines()), ["confirmed"] * 2)
        finally:
            chain.stop()


class GapWhoseFillerFailsOnce(unittest.TestCase):
    """Item 7: a nonce gap below our lowest unresolved nonce is filled in every Round, also after a
    filler failed."""

    def test_gap_filled_in_a_later_round_after_the_filler_was_refused(self):
        chain = Chain(HOME_ID, block_time=1)
        data = tempfile.mkdtemp(prefix="keymaster-gap-")
        ledger = Ledger(data)
        agents = [fresh_address() for _ in range(8)]  # updater and 7 watchers: 8 top-ups in one batch
        start = chain.nonce(DEV_ADDRESS)
        gap = start + 2
        bank = DEV_ADDRESS.lower()
        # The top-up at nonce 2 of the first batch is refused, and so is the first filler sent for
        # that nonce (a zero-value transfer to the bank): the gap stays open, the 5 top-ups above it
        # wait in the pool until a later filler takes the nonce.
        proxy = RefusingProxy(chain.url, [lambda n, to, v: n == gap and v > 0,
                                          lambda n, to, v: n == gap and v == 0 and to == bank])
        d = start_daemon(write_config({"networks": {"alpha": network(proxy.url, agents)}}), data, ENV, interval="300ms")
        try:
            wait_for("the top-up at the gap and its first filler refused", lambda: len(proxy.refused) == 2, timeout=20)
            self.assertEqual(proxy.raw_batch_sizes[0], 8, "8 top-ups in one batch")
            wait_for("the refused filler journaled failed", lambda: ledger.rows(
                "SELECT nonce FROM topups WHERE role='nonce-filler' AND state='failed'") == [{"nonce": gap}],
                timeout=10)

            def done():
                return (all(chain.balance(a) == TARGET for a in agents) and not ledger.unresolved()
                        and pending_nonce(chain) == chain.nonce(DEV_ADDRESS))
            with self.subTest(check="the gap filled in a later Round: every top-up mined, every account at its target"):
                wait_for("every account at its target, nothing unresolved", done, timeout=30)
            time.sleep(2)  # a few more Rounds (and blocks): nothing more may be sent
        finally:
            d.send_signal(signal.SIGTERM)
            self.assertEqual(d.wait(30), 0)
            proxy.stop()
        try:
            mined = sorted(chain.transactions_from(DEV_ADDRESS), key=lambda t: int(t["nonce"], 16))
            paid = [t for t in mined if int(t["value"], 16) > 0]
            fillers = [t for t in mined if int(t["value"], 16) == 0]
            with self.subTest(check="every account at exactly its target, paid once"):
                self.assertEqual([chain.balance(a) for a in agents], [TARGET] * 8)
                self.assertEqual(sorted(t["to"].lower() for t in paid), sorted(a.lower() for a in agents))
            with self.subTest(check="the bank's nonce moved by exactly 8 top-ups and the one filler, none skipped"):
                self.assertEqual([int(t["nonce"], 16) for t in mined], list(range(start, start + 9)))
                self.assertEqual(chain.nonce(DEV_ADDRESS), start + 9)
                self.assertEqual(pending_nonce(chain), start + 9)
            with self.subTest(check="the gap (nonce 2) taken by a zero-value transfer to the bank"):
                self.assertEqual([(int(t["nonce"], 16), t["to"].lower()) for t in fillers], [(gap, bank)])
            with self.subTest(check="the ledger's confirmed entries are exactly the bank's transactions on chain"):
                self.assertEqual(ledger.confirmed_hashes(), sorted(t["hash"].lower() for t in mined))
                self.assertEqual(ledger.unresolved(), [])
            with self.subTest(check="the ledger: the refused top-up and filler failed, one filler confirmed"):
                at_gap = sorted((r["role"] == "nonce-filler", r["state"]) for r in ledger.topups() if r["nonce"] == gap)
                self.assertEqual(at_gap, [(False, "failed"), (True, "confirmed"), (True, "failed")])
        finally:
            chain.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
