"""A real Alertmanager (Debian's `prometheus-alertmanager`) running the shipped
etc/alertmanager/alertmanager.yml, with only its webhook URLs pointed at a local receiver that
records every notification it gets."""
import json
import os
import subprocess
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from chains import free_port, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(ROOT, "etc/alertmanager/alertmanager.yml")


class WebhookReceiver:
    """Records each notification: (path, body) with the body's JSON (Alertmanager's webhook format)."""

    def __init__(self):
        self.received = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, path):
        """Every alert delivered to `path` so far: [{"labels", "status", ...}]."""
        return [a for p, body in list(self.received) if p == path for a in body.get("alerts", [])]

    def stop(self):
        self.server.shutdown()


class Alertmanager:
    def __init__(self, receiver):
        self.dir = tempfile.mkdtemp(prefix="keymaster-am-")
        with open(CONFIG) as f:
            doc = yaml.safe_load(f)
        for r in doc["receivers"]:
            for w in r.get("webhook_configs", []):
                w["url"] = receiver.url + urllib.parse.urlparse(w["url"]).path  # same path, local receiver
        self.config = os.path.join(self.dir, "alertmanager.yml")
        with open(self.config, "w") as f:
            yaml.safe_dump(doc, f)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={self.config}", f"--storage.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.address = f"127.0.0.1:{self.port}"
        wait_for("Alertmanager ready", self.ready, timeout=30, step=0.2)

    def ready(self):
        try:
            import urllib.request
            with urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
