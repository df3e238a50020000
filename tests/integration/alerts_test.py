"""The shipped alert rules (etc/prometheus/keymaster-rules.yml, unchanged) under a real Prometheus
(1 s scrape and evaluation) against the daemon on anvil chains, checked through /api/v1/alerts; and
the shipped Alertmanager config (etc/alertmanager/alertmanager.yml, its webhook URLs pointed at a
local receiver) under a real Alertmanager, checked by what the receiver gets.

Every series exists from the first scrape (at 0), so the first failure is an increase.
KeymasterAccountBelowThreshold waits 10 minutes (`for: 10m`) and KeymasterNetworkNotPolled 5 minutes
(`> 300`) in the unchanged file: those two cannot be waited for here, so a copy of just them with
`for: 5s` and `> 5` is loaded beside the unchanged file, labelled `rules_copy="short"`; every other
alert checked here comes from the unchanged file."""
import copy
import os
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from chains import (DEV_ADDRESS, DEV_KEY, ETHER, Chain, checksum, fresh_address, metric_values, wait_for,  # noqa: E402
                    write_config)
from daemon_test import Daemon  # noqa: E402
from alertmanager import Alertmanager, WebhookReceiver  # noqa: E402
from prom import Prometheus  # noqa: E402
from proxy import FaultProxy  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "etc/prometheus/keymaster-rules.yml")
SCOPES = ["poll", "chain_id", "balance", "balance_mismatch", "bank_low", "bank", "ledger", "limit", "topup", "internal"]


def short_rules_copy():
    """KeymasterAccountBelowThreshold, KeymasterAccountRunwayShort and KeymasterBankRunwayShort with
    `for: 5s`, KeymasterNetworkNotPolled with `> 5`: nothing else changed."""
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    rules = []
    for r in doc["groups"][0]["rules"]:
        if r["alert"] in ("KeymasterAccountBelowThreshold", "KeymasterAccountRunwayShort", "KeymasterBankRunwayShort"):
            r = copy.deepcopy(r)
            r["for"] = "5s"
        elif r["alert"] == "KeymasterNetworkNotPolled":
            r = copy.deepcopy(r)
            assert "> 300" in r["expr"]
            r["expr"] = r["expr"].replace("> 300", "> 5")
        else:
            continue
        r["labels"]["rules_copy"] = "short"
        rules.append(r)
    path = os.path.join(tempfile.mkdtemp(prefix="keymaster-rules-"), "keymaster-rules-short.yml")
    with open(path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "keymaster-short", "rules": rules}]}, f)
    return path


def network(url, agents):
    return {"endpoint": url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
            "agents": {"updater": agents[0], "watchers": agents[1:2], "relayer": agents[2], "processor": agents[3]}}


class AlertsFire(unittest.TestCase):
    def setUp(self):
        self.names = ["healthy", "refused", "drained", "dead"]
        self.chains = {n: Chain(31337 + i) for i, n in enumerate(self.names)}
        self.agents = {n: [fresh_address() for _ in range(4)] for n in self.names}
        self.proxy = FaultProxy(self.chains["refused"].url, refuse_raw={0})  # the first send ever is refused
        for n, chain in self.chains.items():
            for a in self.agents[n]:
                chain.set_balance(a, 5 * ETHER)  # a funded fleet: nothing to do at first
        urls = {n: c.url for n, c in self.chains.items()}
        urls["refused"] = self.proxy.url
        self.config = {"networks": {n: network(urls[n], self.agents[n]) for n in self.names}}
        self.path = write_config(self.config)
        self.daemon = Daemon(self.path, {"KM_BANK": DEV_KEY})
        self.prom = None
        # The shipped Alertmanager config, its webhooks pointed at a local receiver.
        self.receiver = WebhookReceiver()
        self.alertmanager = Alertmanager(self.receiver)

    def tearDown(self):
        if self.prom:
            self.prom.stop()
        self.alertmanager.stop()
        self.receiver.stop()
        self.daemon.stop()
        self.proxy.stop()
        for c in self.chains.values():
            c.stop()

    def firing(self, alertname, **labels):
        return [a for a in self.prom.alerts() if a["state"] == "firing" and a["labels"]["alertname"] == alertname
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def test_every_series_from_the_first_scrape_and_alerts_on_the_first_failure(self):
        # 1. A fresh daemon, before any top-up or error: every series there, at 0.
        wait_for("ready", lambda: self.daemon.get("/readyz")[0] == 200)
        text = self.daemon.metrics()
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        topups = metric_values(text, "keymaster_topups_total")
        amounts = metric_values(text, "keymaster_topup_amount_ether_total")
        spent = metric_values(text, "keymaster_account_spent_ether_total")
        errors = metric_values(text, "keymaster_errors_total")
        for n in self.names:
            for role, a in zip(("updater", "watcher"), self.agents[n]):  # funded on their home network
                acct = {("network", n), ("home", n), ("address", checksum(a)), ("role", role)}
                for result in ("success", "failure"):
                    self.assertEqual(topups.get(frozenset(acct | {("result", result)})), 0.0, (n, role, result))
                self.assertEqual(amounts.get(frozenset(acct)), 0.0, (n, role))
                self.assertEqual(spent.get(frozenset(acct)), 0.0, (n, role))
            for scope in SCOPES:
                self.assertEqual(errors.get(frozenset({("network", n), ("scope", scope)})), 0.0, (n, scope))
            for name in ("keymaster_replacements_total", "keymaster_gas_spent_ether_total",
                         "keymaster_bank_unaccounted_transactions_total", "keymaster_bank_unaccounted_ether_total"):
                self.assertEqual(metric_values(text, name).get(frozenset({("network", n)})), 0.0, (name, n))
        for scope in ("config", "internal"):
            self.assertEqual(errors.get(frozenset({("network", ""), ("scope", scope)})), 0.0, scope)
        self.assertIn("process_start_time_seconds ", text)

        # 2. Under Prometheus with the unchanged rules: a healthy funded fleet fires nothing.
        self.prom = Prometheus([f"127.0.0.1:{self.daemon.port}"], [RULES, short_rules_copy()],
                               alertmanager=self.alertmanager.address)
        self.prom.wait_scraped('keymaster_topups_total{network="refused",result="failure"} == 0')
        self.prom.wait_scraped('keymaster_poll_last_success_timestamp_seconds{network="dead"}')
        time.sleep(8)
        # Only the watchdog, which always fires; and it reaches its receiver through Alertmanager.
        self.assertEqual([a["labels"]["alertname"] for a in self.prom.alerts()], ["KeymasterWatchdog"])
        wait_for("KeymasterWatchdog delivered to the watchdog receiver",
                 lambda: [a for a in self.receiver.alerts("/keymaster/watchdog")
                          if a["labels"]["alertname"] == "KeymasterWatchdog" and a["status"] == "firing"], timeout=30)

        # 3. Faults: one refused send (the next round pays), an emptied bank, a dead endpoint.
        self.chains["refused"].set_balance(self.agents["refused"][0], 0)
        self.chains["drained"].set_balance(DEV_ADDRESS, 0)
        self.chains["drained"].set_balance(self.agents["drained"][0], 0)
        self.chains["dead"].stop()
        wait_for("the refused top-up paid by the next round",
                 lambda: self.chains["refused"].balance(self.agents["refused"][0]) == 2 * ETHER)
        refused = checksum(self.agents["refused"][0])
        wait_for("KeymasterTopUpsFailing (unchanged rule)",
                 lambda: self.firing("KeymasterTopUpsFailing", network="refused", address=refused), timeout=30)
        wait_for("KeymasterAccountBelowThreshold (for: 5s copy)",
                 lambda: self.firing("KeymasterAccountBelowThreshold", network="drained", rules_copy="short"), timeout=40)
        wait_for("KeymasterNetworkNotPolled (> 5 s copy)",
                 lambda: self.firing("KeymasterNetworkNotPolled", network="dead", rules_copy="short"), timeout=40)
        # The drained account "spent" its 5 ether at once and cannot be refilled: its runway is 0.
        wait_for("KeymasterAccountRunwayShort (for: 5s copy)",
                 lambda: self.firing("KeymasterAccountRunwayShort", network="drained", rules_copy="short",
                                     address=checksum(self.agents["drained"][0])), timeout=40)
        # The refused network's bank paid 2 ether (and fees) within seconds: at that rate its
        # 10,000 ether last well under 3 days.
        wait_for("KeymasterBankRunwayShort (for: 5s copy)",
                 lambda: self.firing("KeymasterBankRunwayShort", network="refused", rules_copy="short"), timeout=40)
        healthy = [a for a in self.prom.alerts() if a["labels"].get("network") == "healthy"]
        self.assertEqual(healthy, [], "the healthy network fires nothing")

        # 4. It reaches a person: the refused top-up at the pager receiver (critical), with its
        # network and address, after the route's group_wait (30 s).
        def paged():
            return [a for a in self.receiver.alerts("/keymaster/pager")
                    if a["labels"]["alertname"] == "KeymasterTopUpsFailing" and a["status"] == "firing"
                    and a["labels"].get("network") == "refused" and a["labels"].get("address") == refused]
        wait_for("KeymasterTopUpsFailing delivered to the pager receiver", paged, timeout=60)
        self.assertEqual(paged()[0]["labels"]["severity"], "critical")
        # Nothing of the healthy network reached anyone.
        for path in ("/keymaster/pager", "/keymaster/chat"):
            self.assertEqual([a for a in self.receiver.alerts(path) if a["labels"].get("network") == "healthy"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
