"""Broker workers and baseline relays as child processes: started, watched, measured (RSS), stopped.

Workers run as `python -m broker.cli run`, exactly as operators run them, configured by the environment
only (HMC_*); the bench's own HMC_* variables are not passed on, so an HMC_CONFIG of the shell cannot
change what is measured. Their output goes to a log file that is shown when one dies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from adapters.bench.wire import EXIT_CONNECTION_LOST, BenchError, ConnectionLost


def proc_status(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM), in MB; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def proc_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far; 0 when it is gone."""
    try:
        # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class Child:
    """One child process with its log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT)
        self.peak_mb = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return proc_status(self.pid, "VmRSS")

    def check(self) -> None:
        """Raise, with the end of its log, if the process has died."""
        code = self.process.poll()
        if code == EXIT_CONNECTION_LOST:
            raise ConnectionLost(f"{self.name}: its AMQP connection was closed")
        if code is not None:
            raise BenchError(f"{self.name} exited with {code}:\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (a worker finishes its batch and flushes its outbox), SIGKILL if it does not stop."""
        if self.process.poll() is None:
            self.peak_mb = max(self.peak_mb, proc_status(self.pid, "VmHWM"))  # while it still exists
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HMC_")}


class Workers:
    """`count` broker workers sharing the partitions (HMC_WORKERS, HMC_WORKER_INDEX)."""

    def __init__(
        self, env: Mapping[str, str], count: int, log_dir: Path, label: str, argv: list[str] | None = None
    ) -> None:
        self.children: list[Child] = []
        self.peak_mb = 0.0  # the largest peak RSS (VmHWM) among them, once stopped
        for index in range(count):
            child_env = {**_clean_env(), **env, "HMC_WORKERS": str(count), "HMC_WORKER_INDEX": str(index)}
            command = argv or [sys.executable, "-m", "broker.cli", "run"]
            self.children.append(Child(f"{label}-worker{index}", command, child_env, log_dir))

    def check(self) -> None:
        for child in self.children:
            child.check()

    def cpu_seconds(self) -> float:
        """CPU time the workers have used so far, together."""
        return sum(proc_cpu_seconds(c.pid) for c in self.children)

    def rss_mb(self) -> float:
        """The largest current RSS among the workers."""
        return max((c.rss_mb() for c in self.children), default=0.0)

    def stop(self) -> float:
        """Stop all (again is harmless); the largest peak RSS (VmHWM) among them, in MB."""
        for child in self.children:
            child.stop()
        self.peak_mb = max((c.peak_mb for c in self.children), default=0.0)
        return self.peak_mb

    def wait_consuming(self, url: str, queues: list[str], timeout_s: float = 60.0) -> None:
        """Until every one of `queues` has a consumer (the workers have started)."""
        from adapters.bench.wire import close, connect, consumers

        connection = connect(url)
        try:
            channel = connection.channel()
            deadline = time.monotonic() + timeout_s
            while not all(consumers(channel, queues)):
                self.check()
                if time.monotonic() > deadline:
                    raise BenchError(f"workers did not start consuming within {timeout_s:.0f} s")
                time.sleep(0.05)
        finally:
            close(connection)


def relay(kind: str, config: Mapping[str, object], log_dir: Path) -> Child:
    argv = [sys.executable, "-m", "adapters.bench.relays", kind, json.dumps(dict(config))]
    return Child(f"{kind}-relay", argv, _clean_env(), log_dir)


def profiler(child: Child, out: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    """py-spy sampling `child` until it exits (collapsed stacks in `out`); None when py-spy is not installed.

    py-spy is a measuring tool, not a dependency: `pip install py-spy` where you profile.
    """
    import shutil

    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return None
    argv = [exe, "record", "--pid", str(child.pid), "--rate", str(rate), "--format", "raw", "-o", str(out)]
    return subprocess.Popen([*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
