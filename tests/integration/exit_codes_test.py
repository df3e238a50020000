"""Exit codes: every path of the README's "Exit codes" table, run against the real binary.

One table below, one row per (command, path): the code the path must exit with and how to reach
it (one or more invocations; each must give that code). The test fails when the binary gives
another code, and when the README's table (the rows after its `<!-- exit-codes: ... -->` line) and
this one differ in a row or a code: the code, the README and the test say the same or it fails.

One anvil chain (nothing is ever sent: its bank's nonce is checked at the end) and the KMS stand-in
of kms_test.py (Debian's python3 with python3-botocore) for `keys` and a KMS bank.
"""
import fcntl
import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from chains import (KEYMASTER, Chain, DEV_ADDRESS, DEV_KEY, free_port, fresh_address, keymaster,  # noqa: E402
                    write_config)
from kms_test import AKID, CLEAN, DENIED_AKID, DENIED_SECRET, SECRET, StandIn  # noqa: E402

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
ENV = {"KM_BANK": DEV_KEY}
# anvil's second and third dev accounts: 10,000 ether each, above any threshold here.
FUNDED = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"]
NOWHERE = "/nonexistent/keymaster.json"


def answering(answer, *args, env=None):
    """keymaster with a terminal on stdin (a pty) that has `answer` typed ahead."""
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        return keymaster(*args, env=env, stdin=slave, timeout=60)
    finally:
        os.close(slave)
        os.close(master)


class Fixture:
    """Configs, ledgers and holders the table's paths need; built once."""

    def __init__(self):
        self.chain = Chain(31337)
        self.kms = StandIn()
        self.kms.create_key("alias/exit-bank")
        self.keys = self.kms.keys()  # no path of the table creates a key
        self.dir = tempfile.mkdtemp(prefix="keymaster-exit-")
        self.nonce = self.chain.nonce(DEV_ADDRESS)

        def config(name, endpoint=None, updater=None, bank=None):
            agents = {"updater": updater or FUNDED[0], "watchers": [FUNDED[1]], "relayer": fresh_address(),
                      "processor": fresh_address()}
            cfg = {"networks": {"alpha": {"endpoint": endpoint or self.chain.url, "bank": bank or {"keyEnv": "KM_BANK"},
                                          "threshold": "1 ether", "agents": agents}}}
            os.makedirs(os.path.join(self.dir, name))
            return write_config(cfg, os.path.join(self.dir, name))

        self.funded = config("funded")  # nothing to do
        self.needy = config("needy", updater=fresh_address())  # an updater at 0: a top-up to plan
        self.unreachable = config("unreachable", endpoint="http://127.0.0.1:1")
        self.kms_bank = config("kms", bank={"keyId": "alias/exit-bank", "region": "us-east-1"})
        self.malformed = os.path.join(self.dir, "malformed.json")
        with open(self.malformed, "w") as f:
            f.write('{"networks": {')
        # A ledger file that is not a database, and one whose directory cannot be made (under a file).
        self.garbage = os.path.join(self.dir, "garbage.sqlite")
        with open(self.garbage, "w") as f:
            f.write("this is not an SQLite database\n" * 64)
        self.unopenable = os.path.join(self.malformed, "ledger.sqlite")
        self.key_sets = os.path.join(self.dir, "key-sets.json")
        with open(self.key_sets, "w") as f:
            json.dump({"agentKeys": {"lab": ["relayer-signer"]}}, f)  # no networks for "lab"
        self.aws = dict(CLEAN, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ENDPOINT_URL_KMS=self.kms.url)
        self.aws_denied = dict(self.aws, AWS_ACCESS_KEY_ID=DENIED_AKID, AWS_SECRET_ACCESS_KEY=DENIED_SECRET)

    def data_dir(self):
        return tempfile.mkdtemp(prefix="data-", dir=self.dir)

    def locked(self, fn):
        """fn(data_dir) while another process would hold the data directory's lock (an flock)."""
        d = self.data_dir()
        with open(os.path.join(d, "keymaster.lock"), "w") as f:
            f.write("4242\n")
            f.flush()
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fn(d)

    def listening(self, fn):
        """fn(address) while another socket listens on that address."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            return fn(f"127.0.0.1:{s.getsockname()[1]}")

    def daemon_stopped_by(self, sig):
        """`keymaster run` until it serves /healthz, then `sig`: the completed process."""
        port = free_port()
        p = subprocess.Popen([KEYMASTER, "run", "--config", self.funded, "--data-dir", self.data_dir(), "--interval",
                              "300ms", "--metrics-addr", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ, **ENV))
        deadline = time.time() + 30
        while time.time() < deadline and p.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def stop(self):
        self.chain.stop()
        self.kms.stop()


def cases(fx):
    """(command, path, code, [invocation, ...]): the README's table, each path with how to reach it.
    An invocation is a function returning a CompletedProcess; every one ends within a minute (a
    `run` that should have refused and did not fails the test by its timeout)."""
    km = lambda *a, env=ENV: lambda: keymaster(*a, env=env, timeout=60)  # noqa: E731
    g = fx.garbage
    return [
        ("any", "an unknown command, an unknown flag, a missing required flag", 2,
         [km("frobnicate"), km("status", "--no-such-flag"), km("top-up", "--confirm-timeout"),
          km("keys", "policy", "--environment", "production")]),
        ("any", "a bad `--log-level` or `--log-format`", 2,
         [km("--log-level", "loud", "validate", "--config", fx.funded),
          km("--log-format", "xml", "validate", "--config", fx.funded)]),
        ("any", "`--help`, `--version`", 0, [km("--help"), km("--version"), km("top-up", "--help")]),

        ("`validate`", "the config loads and every bank key can be read", 0,
         [km("validate", "--config", fx.funded), km("validate", "--config", fx.kms_bank, env=fx.aws)]),
        ("`validate`", "the config is missing or malformed", 2,
         [km("validate", "--config", NOWHERE), km("validate", "--config", fx.malformed)]),
        ("`validate`", "a bank key cannot be read (a KMS key included)", 2,
         [km("validate", "--config", fx.funded, env={"KM_BANK": ""}),
          km("validate", "--config", fx.kms_bank, env=fx.aws_denied),
          km("validate", "--config", fx.kms_bank, env=dict(CLEAN, AWS_ENDPOINT_URL_KMS=fx.kms.url))]),

        ("`address`", "neither `--key-env` nor `--key-file`", 2, [km("address")]),
        ("`address`", "the key cannot be read", 2,
         [km("address", "--key-env", "KM_NOT_SET"), km("address", "--key-file", fx.malformed)]),

        ("`status`", "every network reachable", 0, [km("status", "--config", fx.funded)]),
        ("`status`", "a network unreachable", 1, [km("status", "--config", fx.unreachable)]),
        ("`status`", "the config is missing or malformed, or `--networks` names a network it lacks", 2,
         [km("status", "--config", NOWHERE), km("status", "--config", fx.malformed),
          km("status", "--config", fx.funded, "--networks", "nowhere")]),
        ("`status`", "a bad `--ledger`", 2, [km("status", "--config", fx.funded, "--ledger", "mysql://db/keymaster")]),
        ("`status`", "a ledger that cannot be read (the burn columns are left out, with a note)", 0,
         [km("status", "--config", fx.funded, "--ledger", "sqlite:" + g)]),

        ("`top-up`", "every account funded, or nothing to do", 0, [km("top-up", "--yes", "--config", fx.funded)]),
        ("`top-up`", "`--dry-run`", 0, [km("top-up", "--dry-run", "--config", fx.needy)]),
        ("`top-up`", "the operator answers no", 1, [lambda: answering("n\n", "top-up", "--config", fx.needy, env=ENV)]),
        ("`top-up`", "a network unreachable", 1, [km("top-up", "--yes", "--config", fx.unreachable)]),
        ("`top-up`", "the config is missing or malformed, or `--networks` names a network it lacks", 2,
         [km("top-up", "--yes", "--config", NOWHERE), km("top-up", "--yes", "--config", fx.malformed),
          km("top-up", "--yes", "--config", fx.needy, "--networks", "nowhere")]),
        ("`top-up`", "no terminal on stdin and no `--yes`", 2, [km("top-up", "--config", fx.needy)]),
        ("`top-up`", "a bad `--ledger`", 2, [km("top-up", "--yes", "--config", fx.needy, "--ledger", "mysql://db/k")]),
        ("`top-up`", "a ledger that cannot be opened or read", 2,
         [km("top-up", "--yes", "--config", fx.needy, "--ledger", "sqlite:" + g),
          km("top-up", "--yes", "--config", fx.needy, "--ledger", "sqlite:" + fx.unopenable),
          km("top-up", "--dry-run", "--config", fx.needy, "--ledger", "sqlite:" + g)]),
        ("`top-up`", "another keymaster holds the data directory's lock", 2,
         [lambda: fx.locked(lambda d: keymaster("top-up", "--yes", "--config", fx.needy, "--data-dir", d, env=ENV))]),

        ("`history`", "the ledger read (a new, empty one included)", 0,
         [km("history", "--config", fx.funded), km("history", "--json", "--data-dir", fx.data_dir())]),
        ("`history`", "the config cannot be read (amounts shown with 18 decimals)", 0,
         [km("history", "--config", NOWHERE), km("history", "--config", fx.malformed)]),
        ("`history`", "a bad `--address` or `--since`", 2,
         [km("history", "--address", "0x1234"), km("history", "--since", "yesterday")]),
        ("`history`", "a bad `--ledger`", 2, [km("history", "--ledger", "mysql://db/keymaster")]),
        ("`history`", "a ledger that cannot be opened or read", 2,
         [km("history", "--ledger", "sqlite:" + g), km("history", "--ledger", "sqlite:" + fx.unopenable)]),

        ("`run`", "a bad `--interval`, or `--lease-duration` under three `--lease-renew`", 2,
         [km("run", "--config", fx.funded, "--interval", "soon"),
          km("run", "--config", fx.funded, "--lease-renew", "5s", "--lease-duration", "10s")]),
        ("`run`", "a bad `--metrics-addr`, or one it cannot listen on", 2,
         [km("run", "--config", fx.funded, "--data-dir", fx.data_dir(), "--metrics-addr", "nowhere"),
          lambda: fx.listening(lambda a: keymaster("run", "--config", fx.funded, "--data-dir", fx.data_dir(),
                                                   "--metrics-addr", a, env=ENV))]),
        ("`run`", "the config is missing or malformed, or `--networks` names a network it lacks", 2,
         [km("run", "--config", NOWHERE), km("run", "--config", fx.malformed),
          km("run", "--config", fx.funded, "--networks", "nowhere")]),
        ("`run`", "a bad `--ledger`", 2, [km("run", "--config", fx.funded, "--ledger", "mysql://db/keymaster")]),
        ("`run`", "a ledger that cannot be opened or read", 2,
         [km("run", "--config", fx.funded, "--metrics-addr", "127.0.0.1:0", "--ledger", "sqlite:" + g),
          km("run", "--config", fx.funded, "--metrics-addr", "127.0.0.1:0", "--ledger", "sqlite:" + fx.unopenable)]),
        ("`run`", "another keymaster holds the data directory's lock", 2,
         [lambda: fx.locked(lambda d: keymaster("run", "--config", fx.funded, "--data-dir", d, "--metrics-addr",
                                                "127.0.0.1:0", env=ENV))]),
        ("`run`", "SIGTERM or SIGINT", 0,
         [lambda: fx.daemon_stopped_by(signal.SIGTERM), lambda: fx.daemon_stopped_by(signal.SIGINT)]),

        ("`keys`", "no `--region` and no `AWS_REGION`", 2,
         [km("keys", "list", "--environment", "staging", env=fx.aws),
          km("keys", "provision", "--environment", "staging", "--networks", "alpha", "--yes", env=fx.aws)]),
        ("`keys`", "an unknown environment or role", 2,
         [km("keys", "list", "--environment", "qa", "--region", "us-east-1", env=fx.aws),
          km("keys", "policy", "--environment", "production", "--role", "janitor")]),
        ("`keys`", "`provision` with no networks (no `--networks`, config or key-sets networks)", 2,
         [km("keys", "provision", "--environment", "lab", "--region", "us-east-1", "--key-sets", fx.key_sets,
             "--config", NOWHERE, "--yes", env=fx.aws)]),
        ("`keys`", "`provision` with keys to create, no terminal and no `--yes`", 2,
         [km("keys", "provision", "--environment", "staging", "--region", "us-east-1", "--networks", "alpha",
             env=fx.aws)]),
        ("`keys`", "`provision`: the operator answers no", 1,
         [lambda: answering("n\n", "keys", "provision", "--environment", "staging", "--region", "us-east-1",
                            "--networks", "alpha", env=fx.aws)]),
        ("`keys`", "an AWS call fails (no credentials, denied, unreachable)", 1,
         [km("keys", "list", "--environment", "staging", "--region", "us-east-1", env=fx.aws_denied),
          km("keys", "list", "--environment", "staging", "--region", "us-east-1",
             env=dict(CLEAN, AWS_ENDPOINT_URL_KMS=fx.kms.url)),
          km("keys", "list", "--environment", "staging", "--region", "us-east-1",
             env=dict(fx.aws, AWS_ENDPOINT_URL_KMS=f"http://127.0.0.1:{free_port()}"))]),
    ]


def readme_rows():
    """{(command, path): code} from the README's table after its exit-codes marker."""
    with open(README) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<!-- exit-codes:"))
    rows = {}
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("command", "") or re.fullmatch(r"-+", cells[0]):
            continue
        rows[(cells[0], cells[1])] = int(cells[2])
    return rows


class ExitCodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = Fixture()
        cls.table = cases(cls.fx)

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop()

    def test_1_every_path_exits_with_its_code(self):
        for command, path, code, invocations in self.table:
            for n, invoke in enumerate(invocations):
                with self.subTest(command=command, path=path, invocation=n):
                    r = invoke()
                    self.assertEqual(r.returncode, code, f"{r.args}\nstdout: {r.stdout}\nstderr: {r.stderr}")
        self.assertEqual(self.fx.chain.nonce(DEV_ADDRESS), self.fx.nonce, "the bank sent something")
        self.assertEqual(self.fx.kms.keys(), self.fx.keys, "a KMS key was created")

    def test_2_the_readme_table_is_this_table(self):
        ours = {(command, path): code for command, path, code, _ in self.table}
        self.assertEqual(len(ours), len(self.table), "a (command, path) row twice in the test's table")
        theirs = readme_rows()
        self.assertGreater(len(theirs), 20, "the README's exit-code table was not found after its marker")
        for key in sorted(set(ours) | set(theirs)):
            with self.subTest(row=key):
                self.assertIn(key, theirs, "a path the test runs is not in the README's table")
                self.assertIn(key, ours, "a README row no test runs")
                self.assertEqual(theirs[key], ours[key], "the README and the test give different codes")


if __name__ == "__main__":
    unittest.main(verbosity=2)
