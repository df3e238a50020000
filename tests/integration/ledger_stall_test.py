"""A Postgres ledger that stops answering under a running daemon: frozen (SIGSTOP on every server
process) and cut off (a TCP proxy in between that stops forwarding, connections left open). The
event loop never waits for it: /healthz and /metrics answer within 2 s at every probe, polls go on
(an agent drained meanwhile shows its new balance), keymaster_ledger_up and /readyz say the ledger
is away, nothing is sent while it is; once it answers again the drained agent is paid exactly once."""
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from chains import (DEV_ADDRESS, DEV_KEY, ETHER, Chain, checksum, fresh_address, metric_values, start_daemon,  # noqa: E402
                    wait_for, write_config)
from postgres import Postgres  # noqa: E402

FREEZE = 25  # seconds the ledger gives no answer
ANSWER_TIMEOUT = 3  # keymaster_timeout in the URI: how long a statement may go unanswered


def get(port, path, timeout=2.0):
    """(status, body, seconds) of a GET; status 0 when no answer came within `timeout`."""
    start = time.time()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode(), time.time() - start
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), time.time() - start
    except OSError:
        return 0, "", time.time() - start


def gauge(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class CutProxy:
    """TCP between the daemon and Postgres that can stop forwarding (`cut`): bytes wait, connections
    stay open, new ones are accepted and get nothing, as on a path that drops packets."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.flowing = threading.Event()
        self.flowing.set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connect, args=(client,), daemon=True).start()

    def connect(self, client):
        self.flowing.wait()
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.flowing.clear()

    def mend(self):
        self.flowing.set()


class LedgerStall(unittest.TestCase):
    def setUp(self):
        self.pg = Postgres()
        self.chain = Chain(31337, block_time=1)
        self.agents = [fresh_address() for _ in range(2)]  # (relayer and processor: funded on replicas only)
        self.config = write_config({"networks": {"alpha": {
            "endpoint": self.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
            "agents": {"updater": self.agents[0], "watchers": [self.agents[1]], "relayer": fresh_address(),
                       "processor": fresh_address()}}}})
        self.data = tempfile.mkdtemp(prefix="keymaster-stall-")
        self.daemon = None
        self.proxy = None

    def tearDown(self):
        self.resume()
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait(10)
        self.chain.stop()
        self.pg.stop()

    # -- the two ways a ledger stops answering -------------------------------------------------

    def server_pids(self):
        """The postmaster and every backend it started."""
        root = self.pg.proc.pid
        pids = [root]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == root:
                            pids.append(int(entry))
                except (OSError, IndexError, ValueError):
                    pass
        return pids

    def freeze(self):
        self.frozen = self.server_pids()
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in getattr(self, "frozen", []):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []
        if self.proxy:
            self.proxy.mend()

    # -- the case, run once per way ----------------------------------------------------------

    def start(self, ledger_url):
        url = ledger_url + f"?keymaster_timeout={ANSWER_TIMEOUT}"
        self.daemon = start_daemon(self.config, self.data, {"KM_BANK": DEV_KEY, "KEYMASTER_LEDGER": url})
        wait_for("first funding", lambda: all(self.chain.balance(a) >= 2 * ETHER for a in self.agents), timeout=60, step=0.25)
        wait_for("nothing in flight", lambda: self.chain.nonce(DEV_ADDRESS) == len(self.agents), timeout=30)
        time.sleep(2)

    def balance_shown(self, address):
        _, text, _ = get(self.daemon.port, "/metrics", timeout=5)
        for labels, v in metric_values(text, "keymaster_account_balance_ether").items():
            if dict(labels).get("address", "").lower() == address.lower():
                return v
        return None

    def stalled(self, stop):
        """Stops the ledger for FREEZE seconds with `stop`; probes meanwhile. Returns what they saw."""
        drained = self.agents[1]
        nonce_before = self.chain.nonce(DEV_ADDRESS)
        seen = {"slow": [], "ledger_down": False, "not_ready": False, "drain_shown": False}
        stop()
        start = time.time()
        spent = False
        while time.time() - start < FREEZE:
            for path in ("/healthz", "/metrics"):
                status, body, took = get(self.daemon.port, path)
                if status != 200:
                    seen["slow"].append(f"{path}: {status} after {took:.1f} s at {time.time() - start:.0f} s")
                if path == "/metrics" and gauge(body, "keymaster_ledger_up") == 0:
                    seen["ledger_down"] = True
            if get(self.daemon.port, "/readyz")[0] == 503:
                seen["not_ready"] = True
            if not spent and time.time() - start > 2:
                self.chain.spend_all(drained)  # the agent spends while the ledger is away
                spent = True
            if spent and self.balance_shown(drained) == 0:
                seen["drain_shown"] = True
            time.sleep(0.5)
        seen["sent_while_away"] = self.chain.nonce(DEV_ADDRESS) - nonce_before
        self.resume()
        return drained, nonce_before, seen

    def check(self, drained, nonce_before, seen):
        self.assertEqual(seen["slow"], [], "/healthz and /metrics answer within 2 s at every probe")
        self.assertTrue(seen["drain_shown"], "the drained agent's new balance is exported while the ledger is away")
        self.assertTrue(seen["ledger_down"], "keymaster_ledger_up says the ledger is away")
        self.assertTrue(seen["not_ready"], "/readyz says the ledger is away")
        self.assertEqual(seen["sent_while_away"], 0, "nothing is sent while the ledger is away")
        wait_for("the drained agent funded again", lambda: self.chain.balance(drained) >= 2 * ETHER, timeout=60, step=0.25)
        wait_for("ledger up again", lambda: gauge(get(self.daemon.port, "/metrics", 5)[1], "keymaster_ledger_up") == 1,
                 timeout=30)
        time.sleep(3)  # a few more Rounds: nothing more is sent
        self.assertEqual(self.chain.nonce(DEV_ADDRESS), nonce_before + 1, "the drained agent paid exactly once")
        txs = [tx for tx in self.chain.transactions_from(DEV_ADDRESS) if tx["to"].lower() == drained.lower()]
        self.assertEqual(len(txs), 2, "first funding and one refill")
        self.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.wait(30), 0)

    def test_frozen_postgres(self):
        self.start(self.pg.create_database("keymaster"))
        self.check(*self.stalled(self.freeze))

    def test_sigterm_while_frozen_exits(self):
        """A stop asked while the ledger is frozen is not held up by it: the Round in a ledger call
        gives up after keymaster_timeout, the leases' release likewise, and the process exits 0."""
        self.start(self.pg.create_database("keymaster"))
        self.freeze()
        time.sleep(3)
        self.assertEqual(get(self.daemon.port, "/healthz")[0], 200)
        self.daemon.send_signal(signal.SIGTERM)
        start = time.time()
        self.assertEqual(self.daemon.wait(60), 0)
        self.assertLess(time.time() - start, 40, "the stop waited for the frozen ledger")

    def test_cut_path_to_postgres(self):
        self.pg.create_database("keymaster")
        self.proxy = CutProxy(self.pg.port)
        self.start(f"postgresql://postgres@127.0.0.1:{self.proxy.port}/keymaster")
        self.check(*self.stalled(self.proxy.cut))


if __name__ == "__main__":
    unittest.main(verbosity=2)
