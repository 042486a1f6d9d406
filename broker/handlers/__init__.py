"""The broker's reactions to messages, each a module that registers its handlers by message type.

Adding a reaction means one new module with a `register(registry)` and one entry in REACTIONS. The order
of REACTIONS is the order a message's handlers run in: the order view opens or correlates first, so that
what is forwarded and what a status query answers see the order as this message leaves it.
"""

from __future__ import annotations

from broker.handlers import (
    article_register,
    buffer_stores,
    forwarding,
    invoices,
    order_view,
    prescribers,
    status_replies,
)
from broker.handlers.registry import Context, Registry

REACTIONS = (order_view, article_register, status_replies, forwarding, buffer_stores, invoices, prescribers)


def default_registry() -> Registry:
    registry = Registry()
    for reaction in REACTIONS:
        reaction.register(registry)
    return registry


__all__ = ["REACTIONS", "Context", "Registry", "default_registry"]
