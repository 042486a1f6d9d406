"""Replays from the console: dry runs at once, real replays as jobs (replay/replay.py's) on one background
thread, and the jobs' progress."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from broker.store import Session, replay_jobs, sessionmaker
from console.accounts import OPERATOR, PRIVACY, VIEWER, Identity
from console.operations import NotFound, actor, flag, need, number, selection_of
from replay import edit, reveal
from replay.filters import FilterError
from replay.replay import Outcome, Replayer, ReplayError
from replay.search import utc

log = logging.getLogger(__name__)

# Messages a console dry run puts through the pipeline. A replay takes the whole selection, and its job
# shows every outcome; a dry run of the whole took 4.1 s for a group of 1,490 on the benchmark store, and
# the replay pipeline handles replays one at a time (5-8 ms each, six round trips), so a group of tens of
# thousands would outlast the HTTP request. 100 answer within a second there, and are plenty to see what a
# group's replay would do. `hmc-broker replay --dry-run` still runs the whole selection.
PREVIEWED = 100


class Replays:
    """Replays for the console: dry runs at once, real ones as jobs on one background thread (one job at
    a time, so that two operators' bulk replays do not double the rate the partners see)."""

    def __init__(self, offline: Replayer, live: Callable[[], Replayer]) -> None:
        self.offline = offline
        self._live = live
        self._replayer: Replayer | None = None
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-replay")
        self._lock = threading.Lock()
        self.running: dict[int, Future[list[Outcome]]] = {}

    def live(self) -> Replayer:
        with self._lock:
            if self._replayer is None:
                self._replayer = self._live()
            return self._replayer

    def preview(self, identity: Identity, body: Mapping[str, Any], edited: bytes | None = None) -> dict[str, Any]:
        """A dry run: what a replay of the selection would do, changing nothing (audited as a dry run)."""
        need(identity, OPERATOR)
        who = actor(identity, body.get("reason"), "a replay")
        sources, pruned, selection, diff = self._sources(identity, body, edited)
        sample = sources[:PREVIEWED]
        if len(sample) < len(sources):
            selection = {**selection, "selected": len(sources)}  # the audit row: how many a replay would take
        outcomes = self.offline.dry_run(
            sample, who, force=flag(body.get("force")), selection=selection, body=edited, diff=diff
        )
        return {
            "dry_run": True,
            "count": len(sources),
            "previewed": len(sample),
            "pruned": pruned,
            "diff": reveal.text_of(diff.encode(), revealed=False) if diff else None,
            "outcomes": [o.as_dict() for o in outcomes],
        }

    def start(self, identity: Identity, body: Mapping[str, Any], edited: bytes | None = None) -> dict[str, Any]:
        """Start a replay job; it runs in the background at `rate` messages a second."""
        need(identity, OPERATOR)
        who = actor(identity, body.get("reason"), "a replay")
        rate, batch = number(body.get("rate"), 20.0), int(number(body.get("batch_size"), 50))
        if rate < 0 or batch < 1:
            raise FilterError("rate is at least 0 (0: no limit) and batch size at least 1")
        sources, pruned, selection, diff = self._sources(identity, body, edited)
        if not sources:
            raise ReplayError("nothing to replay: the selection is empty or every payload was pruned")
        replayer = self.live()
        force = flag(body.get("force"))
        job = replayer.start(sources, who, force=force, selection=selection, action="edit" if edited else "replay")
        self._submit(job, lambda: replayer.run(job, batch_size=batch, rate=rate, body=edited, diff=diff))
        return {"job": job, "count": len(sources), "pruned": pruned}

    def resume(self, identity: Identity, job_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        need(identity, OPERATOR)
        who = actor(identity, body.get("reason"), "resuming a replay")
        replayer = self.live()
        job = replayer.resume(job_id, who)
        rate, batch = number(body.get("rate"), 20.0), int(number(body.get("batch_size"), 50))
        self._submit(job.id, lambda: replayer.run(job.id, batch_size=batch, rate=rate))
        return {"job": job.id, "left": job.total - job.done}

    def _submit(self, job: int, run: Callable[[], list[Outcome]]) -> None:
        """Run a job on the replay thread; a job that fails is logged (it stays resumable in the store)."""

        def said(future: Future[list[Outcome]]) -> None:
            error = future.exception() if not future.cancelled() else None
            if error is not None:
                log.error("replay job failed", extra={"job": job, "error": f"{type(error).__name__}: {error}"})

        future = self._runner.submit(run)
        future.add_done_callback(said)
        self.running[job] = future

    def _sources(
        self, identity: Identity, body: Mapping[str, Any], edited: bytes | None
    ) -> tuple[list[Any], list[int], dict[str, Any], str | None]:
        with self.offline.sessions() as session:
            ids, selection = selection_of(session, body)
            sources, pruned = self.offline.sources(session, ids, strict="ids" in selection)
        if edited is None:
            return sources, pruned, selection, None
        need(identity, PRIVACY)  # the editor shows the payload in clear
        if len(sources) != 1:
            raise FilterError("an edit replays exactly one message")
        stored = sources[0].payload or b""
        edit.check(stored, edited)
        diff = edit.unified_diff(stored, edited, f"message-{sources[0].id}.xml")
        selection = {**selection, "edit": True, "diff": reveal.text_of(diff.encode(), revealed=False)}
        return sources, pruned, selection, diff

    def close(self) -> None:
        self._runner.shutdown(wait=False, cancel_futures=True)


def jobs(sessions: sessionmaker[Session], identity: Identity, limit: int = 50) -> list[dict[str, Any]]:
    need(identity, VIEWER)
    with sessions() as session:
        return [
            {
                "job": j.id,
                "created_at": utc(j.created_at).isoformat(),
                "updated_at": utc(j.updated_at).isoformat(),
                "operator": j.actor,
                "reason": j.reason,
                "status": j.status,
                "done": j.done,
                "total": j.total,
                "left": j.total - j.done,
                "force": j.force,
                "edit": bool(j.details.get("edit")),
                "selection": j.details.get("filter") or j.details.get("ids") or j.details.get("group"),
            }
            for j in replay_jobs.recent(session, limit)
        ]


def job(sessions: sessionmaker[Session], identity: Identity, job_id: int) -> dict[str, Any]:
    found = [j for j in jobs(sessions, identity, 1000) if j["job"] == job_id]
    if not found:
        raise NotFound(f"no replay job {job_id}")
    return found[0]
