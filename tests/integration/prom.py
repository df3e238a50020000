"""A real Prometheus (Debian's `prometheus`) for tests: scrapes keymaster every second, evaluates
rule files every second, answers queries and alerts over its HTTP API, and (when given one) sends
firing alerts to an Alertmanager."""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from chains import free_port, wait_for


class Prometheus:
    def __init__(self, targets, rule_files=(), alertmanager=None):
        self.dir = tempfile.mkdtemp(prefix="keymaster-prom-")
        names = []
        for path in rule_files:
            shutil.copy(path, self.dir)
            names.append(os.path.basename(path))
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files: {json.dumps(names)}\n"
                    "scrape_configs:\n  - job_name: keymaster\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
            if alertmanager:  # "host:port": firing alerts are sent there
                f.write("alerting:\n  alertmanagers:\n    - static_configs:\n"
                        f"        - targets: {json.dumps([alertmanager])}\n")
        self.port = free_port()
        # Alerts go out again every second (default: every minute): the first ones are dropped while
        # Prometheus has not yet found its Alertmanager, and a test should not wait a minute for them.
        self.proc = subprocess.Popen(["prometheus", f"--config.file={self.dir}/prometheus.yml",
                                      f"--storage.tsdb.path={self.dir}/data", f"--web.listen-address=127.0.0.1:{self.port}",
                                      "--rules.alert.resend-delay=1s"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, {}
        except OSError:
            return 0, {}

    def query(self, expr):
        """The instant vector of `expr` as [(labels, value)], or [] (also while Prometheus starts)."""
        code, doc = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if code != 200:
            return []
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def alerts(self):
        """Every pending or firing alert: [{"labels", "state", ...}]."""
        code, doc = self.get("/api/v1/alerts")
        return doc["data"]["alerts"] if code == 200 else []

    def wait_scraped(self, expr, timeout=60):
        wait_for(f"Prometheus to see {expr}", lambda: self.query(expr), timeout=timeout, step=0.5)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
