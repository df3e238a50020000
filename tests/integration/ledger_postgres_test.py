"""The ledger on a real Postgres server (Debian's postgresql-15, started here): the ledger suite
(tests/unit/ledger) again, every case not tagged [sqlite] (those test the SQLite file itself: its
lock, WAL, and migration from an earlier release); then the commands with --ledger postgresql://."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from postgres import Postgres  # noqa: E402

LEDGER_TEST = os.environ["LEDGER_TEST_BIN"]


class LedgerSuiteOnPostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def test_the_ledger_suite_passes_on_postgres(self):
        env = dict(os.environ, KEYMASTER_TEST_POSTGRES=self.pg.url())
        r = subprocess.run([LEDGER_TEST, "~[sqlite]", "--reporter", "compact"], env=env, capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-4000:])
        self.assertIn("Passed all", r.stdout)
        # It really ran on Postgres: each case's database is there, with its entries.
        dbs = self.pg.query("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'km_%'")
        self.assertGreaterEqual(int(dbs), 6, "the suite did not use the server")


class CommandsOnPostgres(unittest.TestCase):
    """top-up, history, status and run with --ledger postgresql://... (and KEYMASTER_LEDGER)."""

    @classmethod
    def setUpClass(cls):
        from chains import Chain, DEV_KEY, fresh_address, write_config
        cls.pg = Postgres()
        # A password in the URL (trust authentication ignores it): it must never be shown.
        cls.url = cls.pg.create_database("keymaster").replace("postgres@", "postgres:s3cret@")
        cls.chain = Chain(31337)
        cls.agents = [fresh_address() for _ in range(4)]
        cls.config = write_config({"networks": {"alpha": {
            "endpoint": cls.chain.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether", "target": "2 ether",
            "agents": {"updater": cls.agents[0], "watchers": [cls.agents[1]], "relayer": cls.agents[2],
                       "processor": cls.agents[3]}}}})
        cls.env = {"KM_BANK": DEV_KEY}
        cls.funded = cls.agents[:2]  # the updater and the watcher (relayer and processor: on replicas only)

    @classmethod
    def tearDownClass(cls):
        cls.chain.stop()
        cls.pg.stop()

    def km(self, *args, env=None):
        from chains import keymaster
        return keymaster(*args, "--config", self.config, env={**self.env, **(env or {})})

    def assert_no_password(self, r):
        self.assertNotIn("s3cret", r.stdout + r.stderr)

    def test_1_top_up_journals_in_postgres(self):
        from chains import ETHER
        r = self.km("top-up", "--yes", "--ledger", self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_password(r)
        for a in self.funded:
            self.assertEqual(self.chain.balance(a), 2 * ETHER)
        rows = self.pg.query("keymaster", "SELECT state, count(*) FROM topups GROUP BY state")
        self.assertEqual(rows, "confirmed|2")
        # Again: nothing to do, nothing sent (the journal is read back from Postgres).
        before = self.chain.nonce("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        r = self.km("top-up", "--yes", "--ledger", self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.chain.nonce("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), before)

    def test_2_history_and_status_read_it_from_the_environment(self):
        r = self.km("history", "--json", env={"KEYMASTER_LEDGER": self.url})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_password(r)
        entries = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual(sorted(e["recipient"].lower() for e in entries), sorted(a.lower() for a in self.funded))
        self.assertTrue(all(e["state"] == "confirmed" for e in entries))
        r = self.km("status", env={"KEYMASTER_LEDGER": self.url})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_password(r)

    def test_3_run_logs_the_ledger_without_its_password(self):
        import signal
        from chains import KEYMASTER, free_port
        args = [KEYMASTER, "run", "--config", self.config, "--ledger", self.url, "--interval", "1s",
                "--metrics-addr", f"127.0.0.1:{free_port()}"]
        d = subprocess.Popen(args, env={**os.environ, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        time.sleep(3)
        d.send_signal(signal.SIGTERM)
        out, _ = d.communicate(timeout=30)
        self.assertEqual(d.returncode, 0, out)
        self.assertIn("ledger postgresql://postgres:***@127.0.0.1", out)
        self.assertNotIn("s3cret", out)

    def test_4_a_bad_ledger_url_is_a_usage_error_naming_the_option(self):
        r = self.km("top-up", "--yes", "--ledger", "mysql://km:s3cret@db/x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--ledger", r.stderr)
        self.assertIn("expected sqlite:PATH or a Postgres URI", r.stderr)
        self.assert_no_password(r)


if __name__ == "__main__":
    unittest.main()
