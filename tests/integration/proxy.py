"""A JSON-RPC proxy for fault tests: in front of anvil, it drops connections, delays, answers 500,
429 with Retry-After, truncated JSON and JSON-RPC errors at set rates (seeded, bounded), and can lie
about chosen accounts' balances."""
import http.server
import json
import random
import socket
import threading
import time
import urllib.request

from chains import free_port


class FaultProxy:
    def __init__(self, upstream, rates=None, lie_empty=(), seed=1, refuse_raw=(), lose_raw_replies=(), rewrite=None):
        self.upstream = upstream
        # Called with each request (a list of calls) and the node's answers (a list), which it may
        # change in place before they are passed on.
        self.rewrite = rewrite
        # Indices (0-based, over HTTP requests carrying eth_sendRawTransaction) forwarded to the node
        # whose reply is then lost: the connection closes without an answer.
        self.lose_raw_replies = set(lose_raw_replies)
        # Indices (0-based, over every eth_sendRawTransaction seen) refused without forwarding.
        self.refuse_raw = set(refuse_raw)
        self.raw_seen = 0
        self.raw_requests = 0  # HTTP requests carrying at least one eth_sendRawTransaction
        self.raw_batch_sizes = []
        self.rates = rates or {}  # kind -> probability per request
        self.lie_empty = {a.lower() for a in lie_empty}
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/rpc"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = proxy.pick()
                if kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if kind == "delay":
                    time.sleep(0.7)
                if kind == "status500":
                    return self.reply(500, b"upstream exploded")
                if kind == "status429":
                    return self.reply(429, b"slow down", {"Retry-After": "1"})
                if kind == "rpc_error":
                    req = json.loads(body)
                    err = lambda r: {"jsonrpc": "2.0", "id": r.get("id"),
                                     "error": {"code": -32005, "message": "rate limit exceeded"}}
                    out = [err(r) for r in req] if isinstance(req, list) else err(req)
                    return self.reply(200, json.dumps(out).encode())
                raw_index = proxy.raw_requests if b"eth_sendRawTransaction" in body else None
                answer = proxy.forward(body)
                if raw_index in proxy.lose_raw_replies:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if kind == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer[: len(answer) // 2])
                    self.close_connection = True
                    return
                self.reply(200, answer)

            def reply(self, status, data, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pick(self):
        with self.lock:
            x = self.rng.random()
            for kind, p in sorted(self.rates.items()):
                if x < p:
                    self.counts[kind] = self.counts.get(kind, 0) + 1
                    return kind
                x -= p
            return None

    def forward(self, body):
        request = json.loads(body)
        refused = []
        reqs = request if isinstance(request, list) else [request]
        raws = [r for r in reqs if r.get("method") == "eth_sendRawTransaction"]
        if raws:
            with self.lock:
                self.raw_requests += 1
                self.raw_batch_sizes.append(len(raws))
                for r in raws:
                    if self.raw_seen in self.refuse_raw:
                        refused.append(r)
                    self.raw_seen += 1
        if refused:
            keep = [r for r in reqs if r not in refused]
            errors = [{"jsonrpc": "2.0", "id": r.get("id"),
                       "error": {"code": -32000, "message": "intrinsic gas too low (refused by the test proxy)"}}
                      for r in refused]
            if not keep:
                return json.dumps(errors if isinstance(request, list) else errors[0]).encode()
            body = json.dumps(keep).encode()
        req = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.load(r)
        if refused:
            answer = (answer if isinstance(answer, list) else [answer]) + errors
        if self.rewrite:
            self.rewrite(request if isinstance(request, list) else [request], answer if isinstance(answer, list) else [answer])
        if self.lie_empty:
            reqs = request if isinstance(request, list) else [request]
            answers = answer if isinstance(answer, list) else [answer]
            by_id = {r.get("id"): r for r in reqs}
            for a in answers:
                r = by_id.get(a.get("id"), {})
                if r.get("method") == "eth_getBalance" and r["params"][0].lower() in self.lie_empty:
                    a["result"] = "0x0"
        return json.dumps(answer).encode()

    def stop(self):
        self.server.shutdown()
