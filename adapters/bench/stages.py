"""CPU per message of the pipeline's pure stages, timed in the bench's process while nothing else runs.

They bound what one worker can do whatever the store and the transport cost: a worker that spends
`read + translate` microseconds of CPU per message cannot pass more than 1e6 / (read + translate) msg/s.
"""

from __future__ import annotations

import time

from adapters.bench.data import Data
from broker.contract.dialect import DIALECTS, read
from broker.contract.spec import Dialect
from broker.translation import forward

SESAM2 = DIALECTS[Dialect.SESAM2]


def stage_costs(data: Data, count: int = 300) -> dict[str, float]:
    """Microseconds per order: read (parse, XSD, binding, identifier rules) and translate (envelope, render)."""
    bodies = [s.body for s in data.orders(count)]
    read(bodies[0])  # schemas and bindings are built once per process: not part of the figure
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
    return {"read": read_s / count * 1e6, "translate": translate_s / count * 1e6}
