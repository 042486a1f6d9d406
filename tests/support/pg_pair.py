"""A PostgreSQL primary with a streaming standby on this machine, both clusters of the test's own.

Never the machine's own cluster (`main`, port 5432): each server is a fresh `initdb` in a folder of its own
under /tmp, on free ports, with its Unix socket in that folder, started from the installed binaries
(/usr/lib/postgresql/<newest>/bin, or HMC_TEST_PG_BIN). initdb and postgres refuse to run as root, so when the
tests run as root (CI) the servers run as the `postgres` OS user and the folder is given to it.

The standby is made as an operator makes one: a physical replication slot on the primary, `pg_basebackup -R`
(it writes `standby.signal` and `primary_conninfo`), and `cluster_name` so that the primary's
`synchronous_standby_names` can name it. With `synchronous` the primary waits for the standby's flush
(`synchronous_commit = on`) before a commit returns; without it the standby is asynchronous (the control).

Each server is a child of the test in a process group of its own: kill -9 of the primary is SIGKILL of the
group (postmaster and backends at once, as when its host dies). `stop()` kills both and removes the folder.
A run killed before its cleanup leaves its servers running: the next pair reaps them (a folder whose lock
no live run holds).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg

from tests.support.fault_stream import free_ports

PREFIX = "hmc-pg-pair-"  # the folders under the temporary directory
STANDBY_NAME = "hmc_standby"  # the standby's cluster_name, its walreceiver's application_name and its slot
DATABASE = "hmc"


def pg_bin() -> Path | None:
    """The PostgreSQL server binaries: HMC_TEST_PG_BIN, else the newest /usr/lib/postgresql/<n>/bin."""
    if given := os.environ.get("HMC_TEST_PG_BIN"):
        return Path(given)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def unavailable() -> str | None:
    """Why no pair can be made here (None: it can)."""
    bin_dir = pg_bin()
    if bin_dir is None or not all(os.access(bin_dir / b, os.X_OK) for b in ("initdb", "postgres", "pg_basebackup")):
        return "no PostgreSQL server binaries (install postgresql, or set HMC_TEST_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` OS user to run initdb and postgres as"
    return None


class PairError(RuntimeError):
    """A server did not start, or the standby did not stream."""


@dataclass
class Server:
    name: str
    port: int
    data: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=2"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Pair:
    """A primary and its standby under one temporary folder; `start()` makes both, `stop()` removes them."""

    def __init__(self, *, synchronous: bool) -> None:
        self.synchronous = synchronous
        self.bin = pg_bin() or Path("/nonexistent")
        _reap()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._lock = open(self.root / ".lock", "w")  # noqa: SIM115 (held for the pair's life: see _reap)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        first = free_ports(2)
        self.primary = Server("primary", first, self.root / "primary")
        self.standby = Server("standby", first + 1, self.root / "standby")
        self._as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_postgres = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def url(self, database: str = DATABASE) -> str:
        """The broker's HMC_DB_URL: both hosts (libpq multi-host), the one that takes writes wins."""
        hosts = "&".join(f"host=127.0.0.1:{s.port}" for s in (self.primary, self.standby))
        return f"postgresql+psycopg://postgres@/{database}?{hosts}&target_session_attrs=read-write&connect_timeout=2"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 60) -> None:
        primary, standby = self.primary, self.standby
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(primary.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._launch(primary, synchronous_commit="on")
        self._await(primary, timeout_s)
        with self.connect(primary) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        self._run(
            str(self.bin / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(standby.data),
            "-R",
            "-X",
            "stream",
            "-C",
            "-S",
            STANDBY_NAME,
            "--no-sync",
            "--checkpoint=fast",  # a spread checkpoint first took over a minute
        )
        self._launch(standby, cluster_name=STANDBY_NAME)
        self._await(standby, timeout_s)
        if self.synchronous:
            # Only now: with a synchronous standby named before it streams, every commit (CREATE DATABASE
            # above) would wait for it. `on`: a commit returns once the standby has flushed it to disk;
            # `remote_apply` would also wait until it is visible to queries there, which the broker never reads.
            with self.connect(primary) as conn:
                conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
                conn.execute("SELECT pg_reload_conf()")
        self.await_streaming(timeout_s)

    def await_streaming(self, timeout_s: float = 60) -> None:
        """Until the primary streams to the standby (as a synchronous standby when the pair is synchronous)."""
        wanted = "sync" if self.synchronous else "async"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.connect(self.primary) as conn:
                rows = conn.execute(
                    "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s", (STANDBY_NAME,)
                ).fetchall()
            if rows and rows[0] == ("streaming", wanted):
                return
            time.sleep(0.2)
        raise PairError(f"the standby is not streaming ({wanted}) after {timeout_s} s")

    def stall_standby(self) -> None:
        """SIGSTOP of the primary's WAL sender to the standby: a slow or congested link, the standby falling
        behind (a synchronous primary's commits wait meanwhile). The sender, not the standby's receiver: WAL
        already sent would wait in the receiver's socket buffer and survive the primary. kill_primary() ends it."""
        with self.connect(self.primary) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_stat_replication WHERE application_name = %s", (STANDBY_NAME,)
            ).fetchone()
        if row is None:
            raise PairError("the primary has no WAL sender to the standby")
        os.kill(row[0], signal.SIGSTOP)

    def kill_primary(self) -> None:
        """kill -9 of the primary's postmaster and every backend: no checkpoint, no goodbye to clients."""
        _kill_group(self.primary)

    def promote(self, timeout_s: float = 60) -> None:
        """`pg_promote()`: the standby replays what it has, leaves recovery and takes writes."""
        with self.connect(self.standby) as conn:
            promoted = conn.execute("SELECT pg_promote(true, %s)", (int(timeout_s),)).fetchone()
        if not promoted or not promoted[0]:
            raise PairError("the standby was not promoted")

    def stop(self) -> None:
        for server in (self.primary, self.standby):
            if server.running:
                _kill_group(server)
        shutil.rmtree(self.root, ignore_errors=True)
        self._lock.close()

    def connect(self, server: Server, database: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(server.conninfo.replace("dbname=postgres", f"dbname={database}"), autocommit=True)

    def log(self, server: Server) -> str:
        return (self.root / f"{server.name}.log").read_text(errors="replace")[-3000:]

    # ------------------------------------------------------------------ internals

    def _run(self, *argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **self._as_postgres)
        if done.returncode != 0:
            raise PairError(f"{' '.join(argv)}: {done.stderr or done.stdout}")

    def _launch(self, server: Server, **settings: str) -> None:
        options = {
            "port": str(server.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "max_connections": "40",
            "shared_buffers": "32MB",
            "max_wal_senders": "4",
            "max_replication_slots": "4",
            "hot_standby": "on",
            **settings,
        }
        argv = [str(self.bin / "postgres"), "-D", str(server.data)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        log: IO[bytes]
        with open(self.root / f"{server.name}.log", "ab") as log:
            server.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill -9 takes the backends too
                **self._as_postgres,
            )

    def _await(self, server: Server, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if not server.running:
                raise PairError(f"{server.name} ended while starting:\n{self.log(server)}")
            with contextlib.suppress(psycopg.OperationalError):
                self.connect(server).close()
                return
            if time.monotonic() > deadline:
                raise PairError(f"{server.name} not accepting connections after {timeout_s} s:\n{self.log(server)}")
            time.sleep(0.2)


def _reap() -> None:
    """Kill the servers of pairs whose run ended without its cleanup (its lock is free), remove their folders."""
    for root in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            with open(root / ".lock") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a live run holds it
                for pid_file in root.glob("*/postmaster.pid"):
                    with contextlib.suppress(ValueError, OSError):
                        os.killpg(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except OSError:
            continue
        shutil.rmtree(root, ignore_errors=True)


def _kill_group(server: Server) -> None:
    assert server.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(30)


@contextlib.contextmanager
def running_pair(*, synchronous: bool) -> Iterator[Pair]:
    """A primary and a streaming standby for the duration of the block; removed afterwards, also on failure."""
    pair = Pair(synchronous=synchronous)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
