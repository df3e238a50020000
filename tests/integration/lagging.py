"""A provider stand-in for the "never pay twice" evidence tests: one anvil behind a FaultProxy that
plays nodes at different heights, or nodes without receipts.

A view `lag` blocks behind answers every read as the chain stood `lag` blocks ago: the block tags
"latest" and "pending" of eth_getBalance, eth_getTransactionCount, eth_call, eth_getCode and
eth_getBlockByNumber become hex(head - lag) (anvil keeps every historical state, so the answer is
the real one at that height); eth_blockNumber answers head - lag; a block number above that is
not known there (eth_getBlockByNumber null, the state reads geth's "header not found");
eth_getTransactionReceipt is null for a transaction mined above head - lag, and
eth_getTransactionByHash shows such a transaction as a node's pool does (blockHash, blockNumber
and transactionIndex null). Like a real node that heard the transactions by gossip, a view behind
counts them in its `pending` nonce (`pool=True`, the default): its pending count is the head's.
With `pool=False` the pending nonce is read at head - lag too.

Modes (`mode=`):
- `balancer`: each HTTP request (a whole batch) is answered by one node, at random (seeded,
  `p_behind`): the head (lag 0) or a node `k` blocks behind.
- `receipts_lag`: receipts, transactions by hash and every state read but the nonce lag `k`
  blocks (a receipt and state backend behind the head); nonces, eth_blockNumber and
  eth_getBlockByNumber are the head's.
- `no_receipts`: eth_getTransactionReceipt is always null, and eth_getTransactionByHash null for
  every mined transaction (a node without a transaction index; a pending one is still answered
  from the pool, as geth does). With `hash_index=True` transactions by hash are answered truly
  (receipts pruned, the hash index kept). Everything else is true.
- `indexing_error`: eth_getTransactionReceipt of chosen transactions (by hash: `error_hashes`, or
  by recipient: `error_to`) answers geth's error while it indexes, {"code": -32000, "message":
  "transaction indexing is in progress"}, as long as `indexing` is true; so does
  eth_getTransactionByHash once they are mined (geth looks a mined one up in the same index; a
  pending one is answered from the pool). Everything else is true.

eth_sendRawTransaction is always forwarded unchanged. Batches are rewritten call by call.
"""
import json
import random
import threading

from chains import rpc
from proxy import FaultProxy

INDEXING = {"code": -32000, "message": "transaction indexing is in progress"}
HEADER_NOT_FOUND = {"code": -32000, "message": "header not found"}

# Methods whose block tag is rewritten, and the index of that tag in their params.
TAGGED = {"eth_getBalance": 1, "eth_getTransactionCount": 1, "eth_call": 1, "eth_getCode": 1, "eth_getBlockByNumber": 0}
# Reads that lag in `receipts_lag` (the nonce and the block are the head's).
RECEIPTS_LAG = {"eth_getBalance", "eth_call", "eth_getCode", "eth_getTransactionReceipt", "eth_getTransactionByHash"}
MODES = ("balancer", "receipts_lag", "no_receipts", "indexing_error")


class LaggingProxy(FaultProxy):
    def __init__(self, upstream, mode, k=3, seed=1, p_behind=0.5, pool=True, hash_index=False, error_hashes=(),
                 error_to=()):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {MODES}")
        self.mode, self.k, self.p_behind, self.pool, self.hash_index = mode, k, p_behind, pool, hash_index
        self.error_hashes = {h.lower() for h in error_hashes}
        self.error_to = {a.lower() for a in error_to}
        self.indexing = True
        self.view_rng = random.Random(seed)
        self.stats = {"head": 0, "behind": 0, "rewritten": 0, "hidden_receipts": 0, "indexing_errors": 0}
        self.errored = set()  # hashes whose receipt was answered with the indexing error
        self._to = {}  # tx hash -> recipient (lowercase), for error_to
        self._stats_lock = threading.Lock()
        super().__init__(upstream)

    # -- what each call sees -------------------------------------------------------------------

    def _count(self, key, n=1):
        with self._stats_lock:
            self.stats[key] += n

    def _lags(self):
        """method -> lag for this HTTP request."""
        if self.mode == "balancer":
            with self._stats_lock:
                behind = self.view_rng.random() < self.p_behind
            self._count("behind" if behind else "head")
            lag = self.k if behind else 0
            return lambda method: lag
        if self.mode == "receipts_lag":
            return lambda method: self.k if method in RECEIPTS_LAG else 0
        return lambda method: 0

    def _recipient(self, tx_hash):
        h = tx_hash.lower()
        if h not in self._to:
            tx = rpc(self.upstream, "eth_getTransactionByHash", [tx_hash])
            if tx is None:
                return None
            self._to[h] = (tx.get("to") or "").lower()
        return self._to[h]

    def _indexing_error_for(self, tx_hash):
        if self.mode != "indexing_error" or not self.indexing:
            return False
        h = tx_hash.lower()
        return h in self.error_hashes or (bool(self.error_to) and self._recipient(h) in self.error_to)

    # -- the rewrite ---------------------------------------------------------------------------

    def forward(self, body):
        request = json.loads(body)
        reqs = request if isinstance(request, list) else [request]
        lag_of = self._lags()
        needs_head = any(lag_of(r.get("method")) > 0 for r in reqs)
        head = int(rpc(self.upstream, "eth_blockNumber"), 16) if needs_head else None
        view = lambda method: max(0, head - lag_of(method)) if lag_of(method) > 0 else None  # noqa: E731

        local = {}  # position -> answer made here, never forwarded
        sent = []   # (position, call as forwarded)
        for i, r in enumerate(reqs):
            method, params = r.get("method"), list(r.get("params") or [])
            top = view(method)
            if top is not None and method in TAGGED:
                at = TAGGED[method]
                while len(params) <= at:
                    params.append("latest")
                tag = params[at]
                if tag == "pending" and method == "eth_getTransactionCount" and self.pool:
                    pass  # the pool holds what was mined above this node's head
                elif tag in ("latest", "pending"):
                    params[at] = hex(top)
                    self._count("rewritten")
                elif isinstance(tag, str) and tag.startswith("0x") and int(tag, 16) > top:
                    if method == "eth_getBlockByNumber":
                        local[i] = {"jsonrpc": "2.0", "id": r.get("id"), "result": None}
                    else:
                        local[i] = {"jsonrpc": "2.0", "id": r.get("id"), "error": HEADER_NOT_FOUND}
                    continue
                r = dict(r, params=params)
            if method == "eth_getTransactionReceipt" and params and self._indexing_error_for(params[0]):
                self.errored.add(params[0].lower())
                self._count("indexing_errors")
                local[i] = {"jsonrpc": "2.0", "id": r.get("id"), "error": INDEXING}
                continue
            sent.append((i, r))

        answers = {}
        if sent:
            out = json.loads(super().forward(json.dumps([r for _, r in sent]).encode()))
            by_id = {}
            for a in out if isinstance(out, list) else [out]:
                by_id.setdefault(json.dumps(a.get("id")), []).append(a)
            for i, r in sent:
                same = by_id.get(json.dumps(r.get("id"))) or []
                missing = {"code": -32603, "message": "no answer (lagging proxy)"}
                answers[i] = same.pop(0) if same else {"jsonrpc": "2.0", "id": r.get("id"), "error": missing}
                self._after(r, answers[i], view(r.get("method")))
        answers.update(local)
        merged = [answers[i] for i in range(len(reqs))]
        return json.dumps(merged if isinstance(request, list) else merged[0]).encode()

    def _after(self, call, answer, top):
        """Changes one forwarded call's answer in place to what its view knows."""
        method, result = call.get("method"), answer.get("result")
        if method == "eth_blockNumber" and top is not None and "result" in answer:
            answer["result"] = hex(top)
        elif method == "eth_getTransactionReceipt" and result is not None:
            if self.mode == "no_receipts" or (top is not None and int(result["blockNumber"], 16) > top):
                answer["result"] = None
                self._count("hidden_receipts")
        elif method == "eth_getTransactionByHash" and result is not None and result.get("blockNumber"):
            if self._indexing_error_for(result["hash"]):  # geth: a mined one is looked up in the index too
                del answer["result"]
                answer["error"] = INDEXING
                self._count("indexing_errors")
            elif self.mode == "no_receipts" and not self.hash_index:
                answer["result"] = None
            elif top is not None and int(result["blockNumber"], 16) > top:
                answer["result"] = dict(result, blockHash=None, blockNumber=None, transactionIndex=None)
