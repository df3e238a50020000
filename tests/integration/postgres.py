"""A throwaway Postgres server for tests: Debian's postgresql-15, initdb in a temp folder (as the
`postgres` user when run as root: the server refuses to run as root), trust authentication,
listening on a free loopback port only. Stopped (fast shutdown) and removed by stop()."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def _bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install postgresql-15 (scripts/setup does)")
    return found[-1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="keymaster-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        # As root, the server runs as `postgres` (it refuses root): the process itself, so that
        # signals reach it (no runuser in between).
        self.user = {}
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        subprocess.run([_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"], check=True,
                       stdout=subprocess.DEVNULL, cwd=self.dir, **self.user)
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [_bin("postgres"), "-D", self.data, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={self.dir}", "-c", "max_connections=200"],
            stdout=self.log, stderr=self.log, cwd=self.dir, **self.user)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: see {self.dir}/server.log")
            ready = subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not start in 30 s")

    def stop_server(self, mode_signal=2):
        """Stops the server (SIGINT: fast shutdown), keeping its data: start() brings it back."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(mode_signal)
            self.proc.wait(timeout=60)
        self.proc = None

    def url(self, db="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name):
        subprocess.run([_bin("psql"), self.url(), "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                       stdout=subprocess.DEVNULL)
        return self.url(name)

    def query(self, db, sql):
        out = subprocess.run([_bin("psql"), self.url(db), "-At", "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)
