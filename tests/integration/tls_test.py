"""keymaster over HTTPS: the system trust store (here pointed at a test CA with SSL_CERT_FILE),
host name verification and SNI, against a TLS proxy in front of a real anvil chain."""
import http.server
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from chains import Chain, DEV_KEY, fresh_address, keymaster, write_config  # noqa: E402


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_handler(upstream):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            req = urllib.request.Request(upstream, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                out = r.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    return Handler


class Https(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.chain = Chain(31337)
        cls.dir = tempfile.mkdtemp(prefix="keymaster-tls-")
        cls.cert = os.path.join(cls.dir, "cert.pem")
        key = os.path.join(cls.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cls.cert,
                        "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True)
        cls.sni = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cls.cert, key)
        ctx.sni_callback = lambda sock, name, _: cls.sni.append(name)
        cls.server = Proxy(("127.0.0.1", 0), make_handler(cls.chain.url))
        cls.server.socket = ctx.wrap_socket(cls.server.socket, server_side=True)
        cls.port = cls.server.server_address[1]
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.chain.stop()

    def config(self, host):
        return write_config({"networks": {"alpha": {
            "endpoint": f"https://{host}:{self.port}/v1/SECRET-API-KEY", "bank": {"keyEnv": "KM_BANK"},
            "threshold": "1 ether",
            "agents": {"updater": fresh_address(), "watchers": [], "relayer": fresh_address(),
                       "processor": fresh_address()}}}})

    def run_status(self, host, trust):
        env = {"KM_BANK": DEV_KEY}
        if trust:
            env["SSL_CERT_FILE"] = self.cert
        else:
            env["SSL_CERT_FILE"] = os.path.join(self.dir, "empty.pem")
            open(env["SSL_CERT_FILE"], "w").close()
        return keymaster("status", "--config", self.config(host), env=env)

    def test_trusted_certificate_for_the_host(self):
        self.sni.clear()
        r = self.run_status("localhost", trust=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("alpha: chain 31337", r.stdout)
        self.assertIn("localhost", self.sni)

    def test_untrusted_certificate_is_refused(self):
        r = self.run_status("localhost", trust=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("alpha: UNREACHABLE", r.stdout)
        self.assertIn("certificate verify failed", r.stdout + r.stderr)
        self.assertNotIn("SECRET-API-KEY", r.stdout + r.stderr)

    def test_certificate_for_another_name_is_refused(self):
        r = self.run_status("127.0.0.1", trust=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("alpha: UNREACHABLE", r.stdout)
        self.assertIn("certificate verify failed", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
