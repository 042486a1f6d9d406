"""The article register: SESAM2's ArticleRegisterUpdate changes the store's register in the transaction that
broadcasts it, so an order for an article it withdrew is refused from the moment it is committed (every
worker's cached copy reloads when the register's version moved: broker/catalog.py)."""

from __future__ import annotations

from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model.codes import ArticleStatus


def register(registry: Registry) -> None:
    registry.on(m.ArticleRegisterUpdate)(apply_update)


def apply_update(ctx: Context, message: m.ArticleRegisterUpdate) -> None:
    written = ctx.uow.articles.put(message.articles, by=f"update {message.header.message_id}")
    withdrawn = sum(1 for a in message.articles if a.status is ArticleStatus.WITHDRAWN)
    ctx.step("register", "ok", f"{written} articles in the register, {withdrawn} of them withdrawn")
