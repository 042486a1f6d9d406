"""A 3-node RabbitMQ cluster of the test's own on this machine, from the installed rabbitmq-server.

Never the machine's own node (rabbit@localhost, port 5672): every node has its own name (hmc-c1@localhost...),
AMQP and distribution ports, data and log directories under one folder, and an Erlang cookie in a HOME of
its own, so the system node's cookie is neither read nor changed. The scripts are run from RabbitMQ's own
bin directory, not /usr/sbin: the Debian wrappers there `su` to the rabbitmq user (whose HOME holds the
system node's cookie). /etc/rabbitmq/rabbitmq-env.conf names the system node, so it is replaced by an empty
file of ours, and every rabbitmqctl call names its node with -n.

The nodes are clustered as an operator would: started, then `rabbitmqctl join_cluster` from the second and
third. Each node is a child of the test (kill -9 is `Popen.kill`); `stop()` kills them all and removes the
folder. A file lock keeps two test runs from sharing the fixed ports, and a run killed without its cleanup
has its nodes reaped by the next one (their pids are in the folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

RABBITMQ_BIN = Path(os.environ.get("HMC_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
PLUGINS = ("rabbitmq_consistent_hash_exchange",)  # what the broker's partitions need; no management (port 15672)
FIRST_AMQP_PORT, FIRST_DIST_PORT = 5681, 25681
ROOT = Path(tempfile.gettempdir()) / "hmc-rabbit-cluster"
# pause_minority: a node that finds itself in the minority of a partition stops its listeners until it sees
# the majority again, so no client goes on writing to a side that will be overruled when the partition heals.
# Quorum queues (Raft) decide on their own; this is for the rest (exchanges, bindings, connections).
CONFIG = """\
listeners.tcp.default = {amqp_port}
cluster_partition_handling = pause_minority
log.file.level = info
log.console = false
"""
# Three Erlang VMs share two cores with other work: few schedulers, and none spinning when idle.
ERL_ARGS = "+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none"


class ClusterError(RuntimeError):
    """The cluster did not start or form, or a rabbitmqctl call failed."""


class ClusterUnavailable(ClusterError):
    """No cluster can be started on this machine (not installed, ports taken): the test is skipped."""


def unavailable() -> str | None:
    """Why no cluster can be started here (None: it can); asked with the lock held (running_cluster)."""
    for script in ("rabbitmq-server", "rabbitmqctl"):
        if not os.access(RABBITMQ_BIN / script, os.X_OK):
            return f"{RABBITMQ_BIN / script} not found (install rabbitmq-server, or set HMC_TEST_RABBITMQ_BIN)"
    for port in (*_ports(FIRST_AMQP_PORT), *_ports(FIRST_DIST_PORT)):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return (
                    f"port {port} is taken: the test cluster needs {FIRST_AMQP_PORT}-{FIRST_AMQP_PORT + 2} (AMQP) "
                    f"and {FIRST_DIST_PORT}-{FIRST_DIST_PORT + 2} (distribution)"
                )
    return None


def _ports(first: int, size: int = 3) -> range:
    return range(first, first + size)


@dataclass
class Node:
    name: str  # e.g. hmc-c1@localhost
    amqp_port: int
    dist_port: int
    base: Path  # its data, logs, config and pid file
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """Three nodes under `root`; `start()` forms the cluster, `stop()` removes it."""

    def __init__(self, root: Path = ROOT, size: int = 3) -> None:
        self.root = root
        self.home = root / "home"  # HOME of every node and rabbitmqctl call: the cookie lives here
        self.nodes = [
            Node(f"hmc-c{i + 1}@localhost", FIRST_AMQP_PORT + i, FIRST_DIST_PORT + i, root / f"c{i + 1}")
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node's URL, ';'-separated (kombu's failover syntax, HMC_AMQP_URL)."""
        return ";".join(n.url for n in self.nodes)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 180) -> None:
        self._prepare()
        for node in self.nodes:  # all at once: the boots overlap
            self._launch(node)
        for node in self.nodes:
            self._await(node, timeout_s)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app", timeout=timeout_s)
        members = self.running_members()
        if members != {n.name for n in self.nodes}:
            raise ClusterError(f"the cluster formed with {sorted(members)} only")

    def kill(self, node: Node) -> None:
        """kill -9 of the node (its Erlang VM): no goodbye to clients or peers."""
        _kill_group(node)

    def stop_node(self, node: Node) -> None:
        """`rabbitmqctl stop`: the node closes its clients' connections and hands its leaderships over, then ends."""
        self.ctl(node, "stop", timeout=120)
        assert node.process is not None
        node.process.wait(60)

    def partition(self, node: Node) -> None:
        """Cut `node` off from the other nodes, both ways, and keep it cut off: a network partition.

        Without privileges there is no firewall to block the distribution port (no iptables or nft here), and
        `erlang:disconnect_node/1` alone lasts only until the next message between the nodes reconnects them.
        So the node is given another Erlang cookie for each of its peers (`erlang:set_cookie/2`, per node) and
        disconnected from them: every reconnection, from either side, then fails the cookie handshake, as a
        dropped link would. Its own cookie stays, so rabbitmqctl still reaches it (heal() undoes it)."""
        self._each_peer(node, "erlang:set_cookie(P, hmc_partitioned), erlang:disconnect_node(P)")

    def heal(self, node: Node) -> None:
        """End partition(): the peers' cookie is the node's own again, and it reconnects to them."""
        self._each_peer(node, "erlang:set_cookie(P, erlang:get_cookie()), net_adm:ping(P)")

    def _each_peer(self, node: Node, expressions: str) -> None:
        """Erlang `expressions` evaluated on `node` for each other node P."""
        peers = ", ".join(f"'{n.name}'" for n in self.nodes if n is not node)
        self.ctl(node, "eval", f"[begin {expressions} end || P <- [{peers}]], ok.")

    def serving(self, node: Node) -> bool:
        """Whether the node's RabbitMQ application runs (false while pause_minority has paused it)."""
        return self.ctl(node, "eval", "rabbit:is_running().", check=False).strip() == "true"

    def partitions(self) -> dict[str, list[str]]:
        """Each running node's view of the partitions it saw (empty once healed)."""
        out: dict[str, list[str]] = {}
        for n in self.nodes:
            if n.running:
                status = json.loads(self.ctl(n, "cluster_status", "--formatter", "json"))
                out[n.name] = [str(p) for p in status.get("partitions", {})]
        return out

    def restart(self, node: Node, timeout_s: float = 120) -> None:
        """Start a stopped or killed node again: it rejoins the cluster from its own data directory."""
        self._launch(node)
        self._await(node, timeout_s)

    def stop(self) -> None:
        """Kill every node and remove the folder (throwaway data: no graceful stop needed)."""
        for node in self.nodes:
            if node.running:
                _kill_group(node)
        _reap(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ rabbitmqctl

    def ctl(self, node: Node, *args: str, timeout: float = 60, check: bool = True) -> str:
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node.name, *args],
            env=self._env(node),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise ClusterError(f"rabbitmqctl -n {node.name} {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def running_members(self) -> set[str]:
        """The running nodes as one of them sees it."""
        node = next(n for n in self.nodes if n.running)
        status = self.ctl(node, "cluster_status", "--formatter", "json")
        return set(json.loads(status)["running_nodes"])

    def placement(self, queues: list[str]) -> dict[str, tuple[str, set[str]]]:
        """Each quorum queue's leader and members (asked of a running node)."""
        node = next(n for n in self.nodes if n.running)
        out = self.ctl(node, "list_queues", "name", "leader", "members", "--formatter", "json")
        return {q["name"]: (q["leader"], set(q["members"])) for q in json.loads(out) if q["name"] in queues}

    def connection_nodes(self) -> dict[str, int]:
        """How many client connections each running node holds (each asked for its own)."""
        return {
            n.name: int(self.ctl(n, "eval", "length(rabbit_networking:connections_local()).").strip())
            for n in self.nodes
            if n.running
        }

    # ------------------------------------------------------------------ internals

    def _prepare(self) -> None:
        _reap(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        self.home.mkdir(parents=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex())
        cookie.chmod(0o400)
        (self.root / "rabbitmq-env.conf").write_text("")
        for node in self.nodes:
            node.base.mkdir()
            (node.base / "rabbitmq.conf").write_text(CONFIG.format(amqp_port=node.amqp_port))
            (node.base / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")

    def _env(self, node: Node) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        return {
            **keep,
            "HOME": str(self.home),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(node.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.base / "log"),
            "RABBITMQ_PID_FILE": str(node.base / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(node.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.base / "advanced.config"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _await(self, node: Node, timeout_s: float) -> None:
        """Until the node has booted. await_startup fails at once while the VM has not registered with epmd."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not node.running:
                log = (node.base / "console.log").read_text(errors="replace")[-2000:]
                raise ClusterError(f"{node.name} ended while starting:\n{log}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClusterError(f"{node.name} not started after {timeout_s} s")
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.ctl(node, "await_startup", "--timeout", str(int(remaining)), timeout=remaining + 10)
                return
            time.sleep(1)

    def _launch(self, node: Node) -> None:
        log: IO[bytes]
        with open(node.base / "console.log", "ab") as log:
            node.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self._env(node),
                cwd=node.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest is for pytest; stop() ends the nodes
            )


def server_ports(pids: Iterable[int]) -> dict[int, set[int]]:
    """The local server ports each process holds established TCP connections to (from `ss`, in milliseconds:
    rabbitmqctl takes seconds per call)."""
    wanted = set(pids)
    found: dict[int, set[int]] = {pid: set() for pid in wanted}
    listing = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        fields = line.split()
        owner = re.search(r"pid=(\d+)", line)
        if owner and int(owner.group(1)) in wanted and len(fields) >= 4:
            found[int(owner.group(1))].add(int(fields[3].rsplit(":", 1)[1]))
    return found


def _kill_group(node: Node) -> None:
    """kill -9 of the node's process group: rabbitmq-server's shell, which runs the Erlang VM as its child (and
    would leave it running if killed alone), the VM and the VM's helpers."""
    assert node.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.process.pid, signal.SIGKILL)
    node.process.wait(30)


def _reap(root: Path) -> None:
    """Kill nodes a previous run left (pytest killed before its cleanup): the VMs named in their pid files that
    run with this folder's HOME, with their process groups."""
    for pid_file in root.glob("c*/pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            if f"HOME={root / 'home'}\0" in Path(f"/proc/{pid}/environ").read_text(errors="replace"):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


@contextlib.contextmanager
def running_cluster(root: Path = ROOT) -> Iterator[Cluster]:
    """A formed cluster for the duration of the block; removed afterwards, also when the block fails."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run's cluster on the same ports: wait for it to end
        _reap(root)
        problem = unavailable()
        if problem is not None:
            raise ClusterUnavailable(problem)
        cluster = Cluster(root)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
