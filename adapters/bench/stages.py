"""CPU per message of the pipeline's pure stages, timed in the bench's process while nothing else runs.

They bound what one worker can do whatever the store and the transport cost: a worker that spends
`read + translate` microseconds of CPU per message cannot pass more than 1e6 / (read + translate) msg/s.
The floor is what lxml alone charges for the same bodies (hardened parse + XSD validation): the stages
are judged against it, timed right beside them so that both see the same machine load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lxml import etree

from adapters.bench.data import Data
from broker.contract import safe_xml
from broker.contract.dialect import DIALECTS, read
from broker.model.codes import Side
from broker.translation import forward

CUSTOMER = DIALECTS[Side.CUSTOMER]
SESAM2 = DIALECTS[Side.SESAM2]


@dataclass(frozen=True)
class StageCosts:
    """Microseconds per order: the stages (read, translate) and lxml's floor under them."""

    stages: dict[str, float]
    floor: float


def stage_costs(data: Data, count: int = 300) -> StageCosts:
    """Read (parse, XSD, binding, identifier rules) and translate (envelope, render), with the floor
    timed before and after them (the mean of the two)."""
    bodies = [s.body for s in data.orders(count)]
    read(bodies[0])  # schemas and bindings are built once per process: not part of the figure
    floor_before = floor_us(bodies)
    started = time.perf_counter()
    parsed = [read(b) for b in bodies]
    read_s = time.perf_counter() - started
    messages = [p.message for p in parsed if p.message is not None]
    if len(messages) != count:
        raise RuntimeError("bench orders did not read as valid")
    started = time.perf_counter()
    for message in messages:
        SESAM2.render(forward(message))
    translate_s = time.perf_counter() - started
    floor_after = floor_us(bodies)
    stages = {"read": read_s / count * 1e6, "translate": translate_s / count * 1e6}
    return StageCosts(stages, (floor_before + floor_after) / 2)


def floor_us(bodies: list[bytes]) -> float:
    """Microseconds per body of lxml alone: parse with the broker's hardened parser, validate with its XSD."""
    parser, xsd = safe_xml.parser(), CUSTOMER.compiled_schema
    started = time.perf_counter()
    for body in bodies:
        if not xsd.validate(etree.fromstring(body, parser)):
            raise RuntimeError("bench orders did not validate")
    return (time.perf_counter() - started) / len(bodies) * 1e6
