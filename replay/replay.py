"""Replaying stored messages: the same pipeline and the same publisher as every other message.

A replay is handed to Worker.process like a batch taken from a queue (its acknowledgement does
nothing), so it is validated, translated, routed, committed with its outbox and published with
publisher confirms by exactly the code that handles live traffic; if the publish fails, the outbox
relay of any running worker retries it. The pipeline decides what may go out again (see
broker/pipeline.py); this module selects, records and paces.

Every replay command is a job: the ids it replays are snapshotted in replay_items when it starts, and
it works through them in batches at a bounded rate. Interrupted, it stops after the batch in hand;
`--resume JOB` goes on where it stopped. A batch that was committed but not yet ticked off (the
command died in between) is recognised by the job's ticket on the replayed rows and not replayed again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.envelope import Delivery, Replay
from broker.model.codes import Side
from broker.observability import metrics
from broker.pipeline import Pipeline
from broker.runtime import Worker
from broker.store import Session, messages, replay_jobs, sessionmaker
from broker.store.tables import MessageRow, ReplayJobRow
from broker.store.unit_of_work import UnitOfWork, now
from replay import audit

AUDITED_IDS = 1000  # an audit row names at most this many messages (the job keeps them all)


class ReplayError(ValueError):
    """A replay that cannot be done as asked; the message says why and what to do instead."""


@dataclass(frozen=True)
class Outcome:
    source: int  # the row replayed
    original: int
    replay: int | None  # the new row (None: not replayed, e.g. pruned)
    status: str  # of the new row, after publishing: delivered, forwarded (relay retries), skipped, rejected...
    sent: list[str] = field(default_factory=list)  # what went out (or, in a dry run, would)
    held_back: list[str] = field(default_factory=list)  # what had gone out already and was not sent again
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "original": self.original,
            "replay": self.replay,
            "status": self.status,
            "sent": self.sent,
            "held_back": self.held_back,
            "error": self.error,
        }


@dataclass
class _Taken:
    """A replay handed to the worker as if it came from a queue; there is nothing to acknowledge."""

    delivery: Delivery

    def ack(self) -> None:
        return None


def delivery_for(row: MessageRow, replay: Replay, body: bytes | None = None) -> Delivery:
    """The delivery `row` arrived as, again: same side, routing key, AMQP properties and sender."""
    payload = body if body is not None else row.payload
    if payload is None:
        raise ReplayError(f"message #{row.id}: its payload was pruned; it can no longer be replayed")
    p = row.properties
    headers = p.get("headers") or {}
    return Delivery(
        side=Side.CUSTOMER if row.direction == "inbound" else Side.SESAM2,
        body=payload,
        routing_key=str(p.get("routing_key") or ""),
        message_id=p.get("message_id"),
        correlation_id=p.get("correlation_id"),
        message_type=p.get("type"),
        user_id=p.get("user_id"),  # the sender is checked again: a replay cannot launder a forged message
        reply_to=p.get("reply_to"),
        headers={str(k): str(v) for k, v in headers.items()},
        replay=replay,
    )


def carried_diff(row: MessageRow) -> str | None:
    """Replaying an edit replays the edited version: it stays an edit (new outgoing ids)."""
    note = row.properties.get("replay")
    diff = note.get("diff") if isinstance(note, dict) else None
    return str(diff) if diff else None


class Replayer:
    """Replays through `worker` (its pipeline, its publisher); a dry run needs only a pipeline."""

    def __init__(self, sessions: sessionmaker[Session], pipeline: Pipeline, worker: Worker | None = None) -> None:
        self.sessions = sessions
        self.pipeline = pipeline
        self.worker = worker

    @classmethod
    def of(cls, worker: Worker) -> Replayer:
        return cls(worker.sessions, worker.pipeline, worker)

    # ---------------------------------------------------------------- selection

    def sources(self, session: Session, ids: Iterable[int], *, strict: bool) -> tuple[list[MessageRow], list[int]]:
        """The rows to replay, one per original (the newest named), and those left out as pruned.

        `strict` (ids the operator named): an unknown or pruned id refuses the whole command.
        """
        wanted = list(dict.fromkeys(ids))
        rows = messages.by_ids(session, wanted)
        missing = [pk for pk in wanted if pk not in rows]
        if missing:
            raise ReplayError(f"no message {', '.join(f'#{pk}' for pk in missing)} in the store")
        pruned = [pk for pk in wanted if rows[pk].payload is None]
        if pruned and strict:
            raise ReplayError(f"payload pruned, cannot replay: {', '.join(f'#{pk}' for pk in pruned)}")
        by_original: dict[int, MessageRow] = {}
        for pk in sorted(wanted):
            row = rows[pk]
            if row.payload is not None:
                by_original[row.replay_of or row.id] = row  # the newest attempt of each original wins
        return sorted(by_original.values(), key=lambda r: r.id), pruned

    # ---------------------------------------------------------------- dry run

    def dry_run(
        self,
        sources: Sequence[MessageRow],
        actor: audit.Actor,
        *,
        force: bool,
        selection: dict[str, Any],
        body: bytes | None = None,
        diff: str | None = None,
    ) -> list[Outcome]:
        """Run the pipeline on the replays in a transaction that is rolled back: what would happen.

        Audited too: a dry run reads the messages (an edit even shows the payload in clear)."""
        with self.sessions() as session:
            details = {**selection, "force": force, "count": len(sources), "messages": [r.id for r in sources]}
            details["messages"] = details["messages"][:AUDITED_IDS]
            audit.record(session, actor, "replay-dry-run", details)
            session.commit()
        ticket = f"dry-{uuid.uuid4().hex}"
        outcomes: list[Outcome] = []
        for start in range(0, len(sources), 200):
            batch = sources[start : start + 200]
            deliveries = [self._delivery(row, actor, force, ticket, None, body, diff) for row in batch]
            with UnitOfWork(self.sessions) as uow:  # never committed: __exit__ rolls back
                self.pipeline.handle(deliveries, uow)
                uow.flush()
                created = _created(uow.session, batch, ticket)
                for row in batch:
                    new = created.get(row.replay_of or row.id)
                    outcomes.append(_outcome(uow.session, row, new, dry=True))
        return outcomes

    # ---------------------------------------------------------------- jobs

    def start(
        self,
        sources: Sequence[MessageRow],
        actor: audit.Actor,
        *,
        force: bool,
        selection: dict[str, Any],
        action: str = "replay",
    ) -> int:
        """Snapshot the rows to replay as a job, with its audit row, in one transaction; the job's id."""
        with self.sessions() as session:
            entry = audit.record(
                session,
                actor,
                action,
                {
                    **selection,
                    "force": force,
                    "count": len(sources),
                    "messages": [r.id for r in sources[:AUDITED_IDS]],
                },
            )
            job = replay_jobs.start(
                session,
                actor=actor.operator,
                reason=actor.reason,
                force=force,
                details={**selection, "audit": entry.id, "os_user": actor.os_user, "edit": action == "edit"},
                message_pks=[row.id for row in sources],
            )
            session.commit()
            return job

    def resume(self, job_id: int, actor: audit.Actor) -> ReplayJobRow:
        """Take up an interrupted job; the operator who resumes it is recorded beside who started it."""
        with self.sessions() as session:
            job = replay_jobs.get(session, job_id)
            if job is None:
                raise ReplayError(f"no replay job {job_id}")
            if job.status == "done":
                raise ReplayError(f"replay job {job_id} is done: {job.done} of {job.total} replayed")
            if job.details.get("edit"):
                # The edited payload lives only in the row it made; if none was made, edit again.
                raise ReplayError(f"replay job {job_id} was an edit: run the edit again instead of resuming it")
            audit.record(session, actor, "replay-resume", {"job": job_id, "left": job.total - job.done})
            job.status, job.updated_at = "running", now()  # written at the commit
            session.commit()
            return job

    def run(
        self,
        job_id: int,
        *,
        batch_size: int = 50,
        rate: float = 0.0,
        body: bytes | None = None,
        diff: str | None = None,
        progress: Callable[[int], None] = lambda _n: None,
        stop: Callable[[], bool] = lambda: False,
    ) -> list[Outcome]:
        """Replay the job's remaining messages, `batch_size` at a time, at most `rate` a second (0: no
        limit). `body` and `diff`: an edited payload (a job of one). Stops between batches when `stop()`."""
        if self.worker is None:
            raise ReplayError("replaying needs a worker to publish with (only a dry run goes without)")
        worker = self.worker
        with self.sessions() as session:
            job = replay_jobs.get(session, job_id)
            if job is None:
                raise ReplayError(f"no replay job {job_id}")
            operator, reason, force = job.actor, job.reason, job.force
        actor = audit.Actor(operator, reason)
        ticket = f"job-{job_id}"
        outcomes: list[Outcome] = []
        started, replayed = time.monotonic(), 0
        while not stop():
            with self.sessions() as session:
                items = replay_jobs.next_items(session, job_id, batch_size)
                if not items:
                    break
                rows = messages.by_ids(session, (i.message_pk for i in items))
                batch = [rows[i.message_pk] for i in items]
                done_before = _created(session, batch, ticket)  # committed by a run that died before ticking off
            todo = [r for r in batch if (r.replay_of or r.id) not in done_before and r.payload is not None]
            if todo:
                deliveries = [self._delivery(r, actor, force, ticket, job_id, body, diff) for r in todo]
                worker.process([_Taken(d) for d in deliveries])
            with self.sessions() as session:
                created = _created(session, batch, ticket)
                ticked = []
                for item, row in zip(items, batch, strict=True):
                    new = created.get(row.replay_of or row.id)
                    outcome = _outcome(session, row, new, dry=False)
                    outcomes.append(outcome)
                    metrics.REPLAYS.labels(outcome.status).inc()
                    ticked.append((item.position, outcome.replay, outcome.status))
                replay_jobs.tick_off(session, job_id, ticked)
                session.commit()
            progress(len(items))
            replayed += len(todo)
            if rate > 0:  # pace: never faster than `rate` messages a second on average
                time.sleep(max(0.0, replayed / rate - (time.monotonic() - started)))
        with self.sessions() as session:
            replay_jobs.close(session, job_id)
            session.commit()
        return outcomes

    def jobs(self, limit: int = 20) -> list[ReplayJobRow]:
        with self.sessions() as session:
            return replay_jobs.recent(session, limit)

    def _delivery(
        self,
        row: MessageRow,
        actor: audit.Actor,
        force: bool,
        ticket: str,
        job: int | None,
        body: bytes | None = None,
        diff: str | None = None,
    ) -> Delivery:
        replay = Replay(
            of=row.replay_of or row.id,
            source=row.id,
            operator=actor.operator,
            reason=actor.reason,
            force=force,
            diff=diff if body is not None else carried_diff(row),
            ticket=ticket,
            job=job,
        )
        return delivery_for(row, replay, body)


def _created(session: Session, sources: Sequence[MessageRow], ticket: str) -> dict[int, MessageRow]:
    """The rows a replay run (its ticket) made, by original."""
    out: dict[int, MessageRow] = {}
    for row in messages.replays_of(session, (r.replay_of or r.id for r in sources)):
        note = row.properties.get("replay")
        if isinstance(note, dict) and note.get("ticket") == ticket and row.replay_of is not None:
            out[row.replay_of] = row
    return out


def _outcome(session: Session, source: MessageRow, new: MessageRow | None, *, dry: bool) -> Outcome:
    original = source.replay_of or source.id
    if new is None:
        status = "pruned" if source.payload is None else "not-replayed"
        return Outcome(source.id, original, None, status)
    outbox = messages.published(session, [new.id])
    sent = [f"{o.exchange or 'reply_to'}/{o.routing_key} {o.message_id}{'' if dry else ' ' + o.status}" for o in outbox]
    note = new.properties.get("replay") or {}
    status = new.status if not dry or new.status != "forwarded" else "would-send"
    return Outcome(
        source=source.id,
        original=original,
        replay=None if dry else new.id,
        status=status,
        sent=sent,
        held_back=list(note.get("held_back") or []),
        error=new.last_error if new.status in ("rejected", "parked") else None,
    )
