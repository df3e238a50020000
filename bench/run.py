#!/usr/bin/env python3
"""keymaster benchmark: first funding against the node's floor, and the steady poll.

Run by hand after scripts/build (it is not a test and asserts nothing):

    bench/run.py                       # the two sizes of the issue: 6 chains x 100, 4 chains x 2,500
    bench/run.py --sizes 2x50 --polls 5

For each size (C chains x A accounts per chain) it starts C anvil chains, writes a Nomad config
with A accounts per chain (an updater and A-1 watchers: funded on their home chain), and measures:

- first funding: wall time of `keymaster top-up --yes` from process start to exit (reads every
  balance, estimates gas, signs, journals, broadcasts, waits for every receipt, re-reads);
- the node's floor: on fresh chains, the same number of transfers sent by a minimal client
  (bench/floor.cpp) in one batch per chain with explicit nonces, receipts polled every 20 ms,
  chains in parallel; signing is not timed. The ratio of the two;
- steady poll (`keymaster run`, every account funded): wall time per network poll and HTTP round
  trips per network poll (from keymaster's own metrics), keymaster's CPU seconds per 1,000
  account-polls and per cycle (all networks once), and its peak RSS; with `--ledger postgres`, the
  rows the idle fleet writes to the ledger per poll (Postgres' statistics; the lease's renewal,
  one row every --lease-renew, apart).
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("KEYMASTER_BIN", os.path.join(ROOT, "build", "keymaster"))
os.environ.setdefault("ANVIL_BIN", os.path.join(ROOT, "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"))
os.environ.setdefault("CAST_BIN", os.path.join(ROOT, "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"))
from chains import KEYMASTER, Chain, DEV_ADDRESS, DEV_KEY, ETHER, fresh_address, free_port, write_config  # noqa: E402

FLOOR = os.path.join(ROOT, "build", "keymaster_bench_floor")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def start_chains(c):
    # Interval mining (1 s blocks), as on a real chain: transactions wait in the mempool for a block.
    chains = [Chain(31337 + i, block_time=1, extra=["--accounts", "1", "--balance", "10000000"]) for i in range(c)]
    return chains


def stop(chains):
    for ch in chains:
        ch.stop()


def config_for(chains, accounts):
    nets = {}
    for i, ch in enumerate(chains):
        nets[f"chain{i}"] = {"endpoint": ch.url, "bank": {"keyEnv": "KM_BANK"}, "threshold": "1 ether",
                             **({"gasLimit": int(os.environ["BENCH_GAS_LIMIT"])} if os.environ.get("BENCH_GAS_LIMIT") else {}),
                             "agents": {"updater": fresh_address(), "relayer": fresh_address(),
                                        "processor": fresh_address(),
                                        "watchers": [fresh_address() for _ in range(accounts - 1)]}}
    return {"networks": nets}


def ledger_args(url):
    return ["--ledger", url] if url else []


def first_funding(c, a, url=None):
    chains = start_chains(c)
    try:
        cfg = config_for(chains, a)
        path = write_config(cfg)
        data = tempfile.mkdtemp(prefix="keymaster-bench-")
        t0 = time.monotonic()
        r = subprocess.run([KEYMASTER, "top-up", "--yes", "--config", path, "--data-dir", data, "--log-level", "warn",
                            *ledger_args(url)],
                           capture_output=True, text=True, env=dict(os.environ, KM_BANK=DEV_KEY))
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"top-up failed:\n{r.stdout}\n{r.stderr}")
        return wall, chains, path, data
    except BaseException:
        stop(chains)
        raise


def floor(c, a):
    chains = start_chains(c)
    try:
        procs = []
        for ch in chains:
            f = tempfile.NamedTemporaryFile("w", delete=False)
            f.write("\n".join(fresh_address() for _ in range(a)) + "\n")
            f.close()
            procs.append(subprocess.Popen([FLOOR, ch.url, DEV_KEY, str(ch.chain_id), str(2 * ETHER), f.name],
                                          stdout=subprocess.PIPE, text=True))
        times = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError("floor client failed")
            times.append(float(out.split()[1]))
        return max(times)
    finally:
        stop(chains)


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    def total(name):
        return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))
    return {"polls": total("keymaster_poll_duration_seconds_count"),
            "poll_seconds": total("keymaster_poll_duration_seconds_sum"),
            "round_trips": total("keymaster_rpc_request_duration_seconds_count")}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024


def rows_written(pg, db):
    """Rows inserted, updated or deleted in the ledger's tables so far, the lease's renewals apart
    (Postgres' own statistics)."""
    if not pg:
        return 0
    time.sleep(1.5)  # backends report their statistics within a second of going idle
    out = pg.query(db, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
                       "WHERE relname <> 'lease'")
    return int(out)


def steady(path, data, c, a, polls, url=None, pg=None, db=None):
    port = free_port()
    proc = subprocess.Popen([KEYMASTER, "run", "--config", path, "--data-dir", data, "--interval", "1s",
                             "--metrics-addr", f"127.0.0.1:{port}", "--log-level", "warn", *ledger_args(url)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, KM_BANK=DEV_KEY))
    try:
        def wait_polls(n):
            deadline = time.time() + 120 + 3 * n
            while time.time() < deadline:
                try:
                    m = metrics(port)
                    if m["polls"] >= n:
                        return m
                except OSError:
                    pass
                time.sleep(0.5)
            raise RuntimeError("the daemon did not poll")
        wait_polls(2 * c)  # every network polled twice: warm
        # No scrape while measuring (a scrape of 10,000 accounts costs CPU too): one before, one after.
        written0 = rows_written(pg, db)
        first = metrics(port)
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(polls * 1.0)
        cpu1 = cpu_seconds(proc.pid)
        last = metrics(port)
        written = rows_written(pg, db) - written0
        n_polls = last["polls"] - first["polls"]
        cycles = n_polls / c
        return {"poll_ms": 1000 * (last["poll_seconds"] - first["poll_seconds"]) / n_polls,
                "round_trips": (last["round_trips"] - first["round_trips"]) / n_polls,
                "cpu_per_1000": (cpu1 - cpu0) / (n_polls * a) * 1000,
                "cpu_ms_per_cycle": 1000 * (cpu1 - cpu0) / cycles,
                "rss_mib": peak_rss_mib(proc.pid),
                "rows_per_poll": written / n_polls}
    finally:
        proc.terminate()
        proc.wait(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="6x100,4x2500", help="CxA,... (chains x accounts per chain)")
    ap.add_argument("--polls", type=int, default=20, help="steady polls per network to measure")
    ap.add_argument("--ledger", default="sqlite",
                    help="sqlite (the data directory's file), postgres (a throwaway server started here, "
                         "Debian's postgresql-15), or a Postgres URI")
    args = ap.parse_args()
    pg = None
    if args.ledger == "postgres":
        from postgres import Postgres
        pg = Postgres()
    for tool in (KEYMASTER, FLOOR):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} missing: run scripts/build first")
    rows = []
    for size in args.sizes.split(","):
        c, a = (int(x) for x in size.lower().split("x"))
        print(f"== {c} chains x {a} accounts", file=sys.stderr, flush=True)
        db = f"bench_{c}x{a}"
        url = pg.create_database(db) if pg else (None if args.ledger == "sqlite" else args.ledger)
        wall, chains, path, data = first_funding(c, a, url)
        try:
            s = steady(path, data, c, a, args.polls, url, pg, db)
        finally:
            stop(chains)
        fl = floor(c, a)
        rows.append((f"{c} x {a:,}", c * a, wall, fl, wall / fl, s))

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.+)", f.read())
        cpu = m.group(1).strip() if m else cpu
    if pg:
        pg.stop()
    print(f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; ledger: {args.ledger}")
    hdr = ("chains x accounts", "transfers", "first funding s", "node floor s", "ratio", "poll ms/network",
           "round trips/poll", "CPU s/1000 polls", "CPU ms/cycle", "peak RSS MiB", "ledger rows written/poll")
    table = [hdr] + [(r[0], f"{r[1]:,}", f"{r[2]:.2f}", f"{r[3]:.2f}", f"{r[4]:.2f}", f"{r[5]['poll_ms']:.1f}",
                      f"{r[5]['round_trips']:.2f}", f"{r[5]['cpu_per_1000']:.4f}", f"{r[5]['cpu_ms_per_cycle']:.1f}",
                      f"{r[5]['rss_mib']:.1f}", f"{r[5]['rows_per_poll']:.2f}" if pg else "-") for r in rows]
    print("| " + " | ".join(table[0]) + " |")
    print("|" + "---|" * len(hdr))
    for row in table[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
