"""Stopping and restoring the machine's RabbitMQ and PostgreSQL for the fault tests.

Other work on this machine shares the services: while one is disrupted, FLAG exists (they wait on it), and
every disruption is undone in a finally, so later tests and CI find the services running.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions

PARTITIONS = 2  # of the fault tests' topology: two worker processes, one partition each
FLAG = Path("/tmp/hmc-fault-in-progress")


def _run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


def _cluster() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


@contextlib.contextmanager
def disrupting() -> Iterator[None]:
    FLAG.touch()
    try:
        yield
    finally:
        FLAG.unlink(missing_ok=True)


def rabbit_accepts(url: str) -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
        return True
    except (pika.exceptions.AMQPError, OSError):
        return False


def wait_rabbit(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not rabbit_accepts(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"RabbitMQ does not accept connections after {timeout_s} s")
        time.sleep(0.3)


def rabbit_stop_app() -> None:
    done = _run("rabbitmqctl", "stop_app")
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl stop_app failed: {done.stderr}")


def rabbit_start_app(url: str) -> None:
    _run("rabbitmqctl", "start_app")
    wait_rabbit(url)


def close_all_connections() -> None:
    done = _run("rabbitmqctl", "close_all_connections", "hmc fault test: connection loss")
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl close_all_connections failed: {done.stderr}")


def postgres_ready() -> bool:
    return _run("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q").returncode == 0


def postgres_stop() -> None:
    done = _run("pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "stop", "-m", "fast")
    if done.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster stop failed: {done.stderr}")


def postgres_start(timeout_s: float = 60) -> None:
    if not postgres_ready():
        _run("pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "start")
    deadline = time.monotonic() + timeout_s
    while not postgres_ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL not ready {timeout_s} s after start")
        time.sleep(0.3)


def ensure_up(url: str) -> list[str]:
    """Start whatever is down (the app, or the whole RabbitMQ node); what had to be started."""
    started = []
    if not rabbit_accepts(url):
        started.append("rabbitmq")
        if _run("rabbitmqctl", "start_app").returncode != 0:
            _run("rabbitmq-server", "-detached")
        wait_rabbit(url, timeout_s=120)
    if not postgres_ready():
        started.append("postgresql")
        postgres_start()
    return started


def consumers(url: str, queue: str) -> int:
    """How many consumers RabbitMQ counts on `queue` (a frozen worker's stays until its connection is closed)."""
    return _counts(url, queue)[1]


def waiting(url: str, queue: str) -> int:
    """How many messages wait in `queue`, not yet delivered to a consumer."""
    return _counts(url, queue)[0]


def _counts(url: str, queue: str) -> tuple[int, int]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        method = connection.channel().queue_declare(queue, passive=True).method
        return int(method.message_count), int(method.consumer_count)
    finally:
        connection.close()
