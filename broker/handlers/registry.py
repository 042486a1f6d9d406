"""The handler registry: message type -> the reactions that handle it, in registration order.

Like Cosmic Python's message bus (a dict from message type to handlers), with one addition the batch
needs: a reaction may also prepare the batch before any message is handled (the buffer stores lock their
stock rows in key order; the order view reads the batch's orders in one query).

A handler gets a Context: the stored message and the few things a reaction may do with it (record a step,
set its status, park it, send something). It never sees AMQP, and writes through the unit of work only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from broker.config import Settings
from broker.envelope import Delivery, Exchange
from broker.model import messages as m
from broker.store.unit_of_work import NewMessage, UnitOfWork

Send = Callable[[m.Message, Exchange, str], None]


@dataclass
class Context:
    """One stored, valid message while its reactions run."""

    message: m.Message
    row: NewMessage
    delivery: Delivery
    uow: UnitOfWork
    settings: Settings
    send: Send  # write an outgoing message to the outbox (the pipeline's, with the replay policy applied)

    def step(self, stage: str, outcome: str, detail: str | None = None) -> None:
        self.uow.event(self.row, stage, outcome, detail)

    def set_status(self, status: str, error: str | None = None) -> None:
        self.uow.set_status(self.row, status, error)

    def park(self, stage: str, reason: str) -> None:
        """Keep the message for an operator: nothing can be done with it until the configuration changes."""
        self.set_status("parked", reason)
        self.step(stage, "parked", reason)


Handler = Callable[[Context, Any], None]
Prepare = Callable[[Sequence[m.Message], UnitOfWork, Settings], None]


class Registry:
    def __init__(self) -> None:
        self._handlers: defaultdict[type[m.Message], list[Handler]] = defaultdict(list)
        self._prepare: list[Prepare] = []

    def on(self, *types: type[m.Message]) -> Callable[[Handler], Handler]:
        """Register a handler for these message types (a decorator, or called directly)."""

        def add(handler: Handler) -> Handler:
            for t in types:
                self._handlers[t].append(handler)
            return handler

        return add

    def before_batch(self, prepare: Prepare, *, first: bool = False) -> Prepare:
        """Run `prepare` on every batch before its messages are handled; `first` puts it ahead of the others
        (a lock that must be taken before anything is read)."""
        if first:
            self._prepare.insert(0, prepare)
        else:
            self._prepare.append(prepare)
        return prepare

    def prepare(self, messages: Sequence[m.Message], uow: UnitOfWork, settings: Settings) -> None:
        for prepare in self._prepare:
            prepare(messages, uow, settings)

    def handlers(self, message_type: type[m.Message]) -> Sequence[Handler]:
        return self._handlers.get(message_type, ())

    def dispatch(self, ctx: Context) -> None:
        for handler in self.handlers(type(ctx.message)):
            handler(ctx, ctx.message)
