"""The vocabulary of the mapping table: where each model field lives in each dialect.

A path is a '/'-separated element path relative to the enclosing element. A group whose path in a
dialect is empty is flattened into its parent there (SESAM2 flattens patients, persons and addresses
into its HEAD record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.model.codes import Side
from broker.model.messages import Message


@dataclass(frozen=True)
class F:
    """A leaf field: one model attribute, one element in each dialect; `since`: the customer dialect's
    version that added it (an optional element; a customer on an older version neither sends nor gets it).
    `before`: (version, type) when a version widened the field's type: the customer dialect's versions older
    than that one keep the narrower type (as published), the newest and SESAM2's take the model's."""

    attr: str
    customer: str
    sesam2: str
    since: str = "1.0"
    before: tuple[str, Any] | None = None


@dataclass(frozen=True)
class G:
    """A nested value object (a person, a patient, an address); `since` as for F (an optional group)."""

    attr: str
    customer: str
    sesam2: str
    fields: tuple[Spec, ...]
    since: str = "1.0"


@dataclass(frozen=True)
class R:
    """A repeated group (order lines, devices, articles): path of the repeated element."""

    attr: str
    customer: str
    sesam2: str
    fields: tuple[Spec, ...]


Spec = F | G | R


@dataclass(frozen=True)
class TypeMap:
    """One message type: its root element in each dialect (None: not exchanged with SESAM2)."""

    cls: type[Message]
    customer: str
    sesam2: str | None
    fields: tuple[Spec, ...]
    since: str = "1.0"  # the customer dialect's version that added the type

    def path(self, dialect: Side) -> str | None:
        return self.customer if dialect is Side.CUSTOMER else self.sesam2


def path_in(spec: Spec, dialect: Side) -> str:
    return spec.customer if dialect is Side.CUSTOMER else spec.sesam2
