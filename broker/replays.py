"""How the pipeline treats a delivery: a first delivery, or an operator's replay of a stored message.

The pipeline asks its policy at four points and otherwise runs every message alike:
- whether to de-duplicate (a replay is a new attempt, never a duplicate of its original);
- around storing (a replay locks its original, so two operators replaying one message take turns, and
  needs its own row id at once: what an edit sends derives its ids from it);
- for each outgoing message (a replay does not send again what went out before unless forced; an edited
  payload is a new version with ids of its own);
- at the end (a replay records who, why and what it held back, and settles its original).

Outgoing ids derive from the incoming id, so a forced replay resends under the same ids (consumers that
kept the first copy drop it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from broker.envelope import Replay
from broker.model import messages as m
from broker.store.tables import MessageRow
from broker.store.unit_of_work import NewMessage, UnitOfWork
from broker.translation import derived_id


class Policy(Protocol):
    @property
    def deduplicate(self) -> bool: ...

    def before_store(self, uow: UnitOfWork) -> None: ...

    def after_store(self, row: NewMessage, uow: UnitOfWork) -> None: ...

    def outgoing(self, row: NewMessage, message: m.Message, uow: UnitOfWork) -> m.Message | None: ...

    def settle(self, row: NewMessage, uow: UnitOfWork) -> None: ...


class FirstDelivery:
    """A message as it arrives: de-duplicated on its id, everything it causes is sent."""

    deduplicate = True

    def before_store(self, uow: UnitOfWork) -> None:
        pass

    def after_store(self, row: NewMessage, uow: UnitOfWork) -> None:
        pass

    def outgoing(self, row: NewMessage, message: m.Message, uow: UnitOfWork) -> m.Message | None:
        return message

    def settle(self, row: NewMessage, uow: UnitOfWork) -> None:
        pass


FIRST_DELIVERY = FirstDelivery()


class ReplayPolicy:
    """An operator's replay: stored as a new row linked to its original (replay_of), run again in full."""

    deduplicate = False

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.original: MessageRow | None = None
        self.family: list[int] | None = None  # the original and its replays (row ids), once looked up
        self.held_back: list[str] = []  # outgoing messages that had gone out already
        self.sent = 0

    def before_store(self, uow: UnitOfWork) -> None:
        # Two operators replaying one message at once: the second waits here, then sees what the first
        # sent, so it does not send it again.
        self.original = uow.lock(self.replay.of)

    def after_store(self, row: NewMessage, uow: UnitOfWork) -> None:
        uow.flush()  # what an edited replay sends derives its ids from its own row id

    def outgoing(self, row: NewMessage, message: m.Message, uow: UnitOfWork) -> m.Message | None:
        base = message.header.message_id
        if self.family is None:
            self.family = [r.id for r in uow.family(self.replay.of)]
        # The same outgoing message under the ids the original and earlier edits gave it.
        state = uow.outgoing_state([base, *(edited_id(base, pk) for pk in self.family)])
        if state in ("sent", "pending") and not self.replay.force:
            self.held_back.append(f"{type(message).__name__} {base} ({state})")
            return None
        if self.replay.diff is not None:
            # An edited payload is a new version: a consumer that kept an earlier one must not drop it.
            message = replace(message, header=replace(message.header, message_id=edited_id(base, row.id)))
        self.sent += 1
        return message

    def settle(self, row: NewMessage, uow: UnitOfWork) -> None:
        replay = self.replay
        if self.original is not None:
            self.original.attempts += 1
        if self.held_back and not self.sent and row.status in ("forwarded", "answered"):
            uow.set_status(row, "skipped")  # not an error: everything it would send went out before
        note = {
            "of": replay.of,
            "source": replay.source,
            "operator": replay.operator,
            "reason": replay.reason,
            "force": replay.force,
            "ticket": replay.ticket,
            "job": replay.job,
            "diff": replay.diff,
            "held_back": self.held_back,
        }
        row.properties = {**row.properties, "replay": note}
        if self.held_back:
            uow.event(row, "replay", "held-back", "not sent again (use --force to): " + "; ".join(self.held_back))
        edited = " (edited)" if replay.diff is not None else ""
        forced = " (forced)" if replay.force else ""
        uow.event(row, "replay", "ok", f"replay{edited}{forced} of #{replay.of} by {replay.operator}: {replay.reason}")
        if row.status in ("forwarded", "answered", "skipped"):
            uow.resolve(replay.of, row)


def edited_id(base: str, row_id: int) -> str:
    return derived_id(base, f"edit/{row_id}")
