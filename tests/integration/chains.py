"""Local anvil chains and a few independent JSON-RPC helpers for keymaster's integration tests.

Only the Python standard library and the pinned anvil/cast binaries are used, so the checks do
not share code with keymaster itself.
"""
import json
import os
import re
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.request

ANVIL = os.environ.get("ANVIL_BIN", "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
CAST = os.environ.get("CAST_BIN", "node_modules/@foundry-rs/cast-linux-amd64/bin/cast")
KEYMASTER = os.environ.get("KEYMASTER_BIN", "build/keymaster")

# anvil's well-known first dev account.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ETHER = 10**18


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(url, method, params=None):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        reply = json.load(r)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def checksum(address):
    """EIP-55 form computed by cast, an independent implementation."""
    return subprocess.run([CAST, "to-check-sum-address", address], check=True, capture_output=True,
                          text=True).stdout.strip()


def fresh_address():
    return checksum("0x" + secrets.token_hex(20))


def wait_until_serving(url, proc, what, timeout=30):
    """Until the node at `url` answers eth_chainId; fails naming `what` if it exits or times out."""
    deadline = time.time() + timeout
    while True:
        try:
            rpc(url, "eth_chainId")
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.05)


def scrape(port):
    """The daemon's /metrics text, or "" while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


class Chain:
    def __init__(self, chain_id, hardfork=None, block_time=None, port=None, extra=()):
        self.chain_id = chain_id
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [ANVIL, "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(chain_id), "--silent"]
        if hardfork:
            args += ["--hardfork", hardfork]
        if block_time:
            args += ["--block-time", str(block_time)]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_serving(self.url, self.proc, f"anvil on port {self.port}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def balance(self, address):
        return int(rpc(self.url, "eth_getBalance", [address, "latest"]), 16)

    def set_balance(self, address, wei):
        rpc(self.url, "anvil_setBalance", [address, hex(wei)])

    def spend_all(self, address, to="0x000000000000000000000000000000000000dEaD", wait=10):
        """The agent spends its whole balance in a real transaction of its own (impersonated): its
        nonce moves, as for any account that spends, and it is left with exactly 0 (a legacy
        transaction pays its gas price, no more). Waits until it is mined; False if the balance
        does not cover the fee."""
        balance = self.balance(address)
        price = 2 * int(rpc(self.url, "eth_gasPrice"), 16)
        if balance <= 21000 * price:
            return False
        rpc(self.url, "anvil_impersonateAccount", [address])
        tx = rpc(self.url, "eth_sendTransaction", [{"from": address, "to": to, "value": hex(balance - 21000 * price),
                                                     "gas": hex(21000), "gasPrice": hex(price)}])
        deadline = time.time() + wait
        while rpc(self.url, "eth_getTransactionReceipt", [tx]) is None:
            if time.time() > deadline:
                raise AssertionError(f"the spend of {address} was not mined in {wait} s")
            time.sleep(0.05)
        return True

    def nonce(self, address):
        return int(rpc(self.url, "eth_getTransactionCount", [address, "latest"]), 16)

    def transactions_from(self, sender):
        """Every mined transaction sent by `sender`, from every block."""
        out = []
        latest = int(rpc(self.url, "eth_blockNumber"), 16)
        for n in range(latest + 1):
            block = rpc(self.url, "eth_getBlockByNumber", [hex(n), True])
            out += [tx for tx in block["transactions"] if tx["from"].lower() == sender.lower()]
        return out


def write_config(config, directory=None):
    directory = directory or tempfile.mkdtemp(prefix="keymaster-test-")
    path = os.path.join(directory, "keymaster.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path


# One ledger per test process, never the one in the working directory: a ledger belongs to real
# chains, and a test chain started again with the same chain id is not the same chain.
DATA_DIR = tempfile.mkdtemp(prefix="keymaster-ledger-")


def keymaster(*args, env=None, stdin=subprocess.DEVNULL, timeout=300):
    full_env = dict(os.environ)
    full_env.update(env or {})
    extra = [] if "--data-dir" in args else ["--data-dir", DATA_DIR]
    return subprocess.run([KEYMASTER, *args, *extra], capture_output=True, text=True, env=full_env, stdin=stdin,
                          timeout=timeout)


def start_daemon(config_path, data_dir, env, interval="300ms"):
    """`keymaster run` on a free metrics port, its log in a file: the Popen, with .log and .port."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="keymaster-", suffix=".log", delete=False).name
    with open(log, "w") as out:
        d = subprocess.Popen([KEYMASTER, "run", "--config", config_path, "--data-dir", data_dir, "--interval", interval,
                              "--metrics-addr", f"127.0.0.1:{port}"], stdout=out, stderr=out,
                             env=dict(os.environ, **env))
    d.log, d.port = log, port
    return d


def wait_for(what, predicate, timeout=60.0, step=0.1):
    """Polls `predicate` until it holds; fails the test naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def metric_values(text, name):
    """{frozenset(labels): value} for one metric name in Prometheus text format."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf'^{name}{{(.*)}} (\S+)$', line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            out[labels] = float(m.group(2))
    return out


def error_count(text, network, scope):
    """keymaster_errors_total{network, scope} (every series exists at 0 from the start)."""
    return metric_values(text, "keymaster_errors_total").get(frozenset({("network", network), ("scope", scope)}), 0)
