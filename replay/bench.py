"""`hmc-broker messages bench`: how fast the operators' searches are on a large store.

Seeds an empty store with synthetic messages (a year of traffic: 60 customers, mostly delivered, some
rejected and parked with realistic errors, patient refs from a pool of synthetic patients), then times
the searches operators run, through the same search() the `messages list` command uses, and prints
the median and the slowest of `repeat` runs of each. A benchmark, not a test: the figures depend on
the machine.

The rows are made here and loaded by broker/store/bulk_load.py (COPY on PostgreSQL).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from stdnum import luhn

from broker.contract.identifiers import DEFAULT_RESERVE_PATTERNS
from broker.store import Session, sessionmaker
from broker.store.bulk_load import load_messages
from broker.store.unit_of_work import patient_ref, store_key
from replay.audit import Actor
from replay.filters import Filter, FilterError
from replay.search import search

SEED = 20261124
_BENCH = {"bench": 1}
_INBOUND = (
    ["CustomerOrder"] * 8
    + ["WorkOrder"] * 3
    + [
        "PickupOrder",
        "FaultReport",
        "BufferWithdrawal",
        "BufferStockReport",
        "ReturnReceipt",
        "OrthopaedicReferral",
        "OrderStatusQuery",
    ]
)
_OUTBOUND = ["OrderConfirmation"] * 6 + [
    "DeliveryDelay",
    "DeliveryReceipt",
    "DeliveryNote",
    "WorkOrderCompleted",
    "PickupConfirmation",
    "OrderCancelled",
    "FaultReportAnswer",
    "InvoiceData",
]
_ERRORS = (
    "schema.range at /CustomerOrder/Lines/Line[{n}]/Quantity: value 0 is below the minimum 1",
    "personnummer.check-digit at /CustomerOrder/Patient/PatientId: check digit does not match (Luhn)"
    " (value [patient-id:{hex}])",
    "customer.unknown at /: customer number {customer} is not configured",
    "catalog.unknown-article at /CustomerOrder/Lines/Line[{n}]/ArticleNumber: article 9{hex} is not in the catalog",
    "schema.code-list at /WorkOrder/Kind: 'repair' is not one of corrective, adaptation, assembly",
    "security.forged-customer at /: AMQP user websesam-{customer} does not own customer {customer}",
)
_PARKED = (
    "publish: unroutable: NO_ROUTE",
    "publish: unconfirmed within 10.0 s",
    "customer number {customer} is not configured; nobody to deliver to",
    "customer {customer} has no invoice permission",
)
RARE_ERROR = "hsa-id.organisation-number"  # seeded on a handful of messages only


@dataclass(frozen=True)
class Probe:
    """What the timed searches look for: values that exist in the seeded store."""

    customer: str
    correlation_id: str
    order: str
    message_id: str
    patient: str


def _personnummer(rng: random.Random) -> str:
    """A synthetic personnummer (valid form and check digit; a test identifier, never a real one's)."""
    born = date(1925, 1, 1) + timedelta(days=rng.randrange(80 * 365))
    body = f"{born:%y%m%d}{rng.randrange(980, 1000):03d}"
    return f"{born.year // 100}{body}{luhn.calc_check_digit(body)}"


def _rows(count: int, key: bytes, payload: bytes) -> Iterator[tuple[dict[str, Any], Probe | None]]:
    """The seeded rows, and with one of them (near the middle) the probe: the same for the same count."""
    rng = random.Random(SEED)
    patients = [_personnummer(rng) for _ in range(max(1, min(150_000, count // 5)))]
    refs = [patient_ref(key, p, DEFAULT_RESERVE_PATTERNS) for p in patients]
    customers = [str(1001 + i) for i in range(60)]
    weights = [1 / (i + 1) for i in range(60)]  # a few large regions, many small municipalities
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / count
    probe_at = count // 2
    customer = customers[0]
    for i in range(count):
        inbound = rng.random() < 0.6
        message_type = rng.choice(_INBOUND if inbound else _OUTBOUND)
        if i % 4 == 0:  # four messages per order (the order and its answers), all of one customer
            customer = rng.choices(customers, weights)[0]
        order = f"WS-{customer}-{i // 4:07d}"
        roll = rng.random()
        status, error = ("answered" if message_type == "OrderStatusQuery" else "delivered"), None
        if i % 50_000 == 7:
            status, error = "rejected", f"{RARE_ERROR} at /WorkOrder/Unit/HsaId: not an organisation number"
        elif roll < 0.04:
            status = "rejected"
            template = rng.choice(_ERRORS)
            error = template.format(n=rng.randrange(1, 20), hex=f"{rng.getrandbits(32):08x}", customer=customer)
        elif roll < 0.045:
            status, error = "parked", rng.choice(_PARKED).format(customer=customer)
        elif roll < 0.047:
            status = "forwarded"
        patient = rng.randrange(len(refs)) if message_type not in ("InvoiceData", "BufferStockReport") else None
        at = start + step * i
        message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        row: dict[str, Any] = {
            "message_id": message_id,
            "direction": "inbound" if inbound else "outbound",
            "message_type": message_type,
            "customer_number": customer,
            "correlation_id": order,
            "order_ref": order,
            "patient_ref": refs[patient] if patient is not None else None,
            "status": status,
            "attempts": 1,
            "last_error": error,
            "received_at": at,
            "updated_at": at,
            "payload": payload,
            "properties": _BENCH,
        }
        probe = None
        if i == probe_at:
            probe = Probe(customer, order, order, message_id, patients[patient if patient is not None else 0])
        yield row, probe


def seed(sessions: sessionmaker[Session], count: int, console: Console, payload_bytes: int = 600) -> Probe:
    payload = (b"<CustomerOrder>" + b"x" * payload_bytes)[:payload_bytes]
    with sessions() as session:
        key = store_key(session)
    probes: list[Probe] = []

    def rows() -> Iterator[dict[str, Any]]:
        for row, probe in _rows(count, key, payload):
            if probe is not None:
                probes.append(probe)
            yield row

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("seeding", total=count)
        load_messages(sessions, rows(), lambda n: progress.advance(task, n))
    return probes[0]


def _probe(session: Session) -> Probe:
    """The probe of a store seeded earlier (--reuse): the seed is deterministic for a count of rows, and
    the rows' ids count them (the newest row's is the count)."""
    newest = search(session, Filter(), limit=1).rows
    count = newest[0].id if newest else 0
    probe = next((p for _row, p in _rows(count, store_key(session), b"") if p is not None), None)
    if probe is None or not search(session, Filter(message_id=probe.message_id), limit=1).rows:
        raise FilterError("the store was not seeded by `messages bench`: --reuse measures only a bench store")
    return probe


def seeded(sessions: sessionmaker[Session], *, rows: int, reuse: bool, console: Console) -> tuple[Probe, str]:
    """Seed an empty store with `rows` messages, or take up one seeded before (`reuse`): the probe and the
    store's dialect. Used by `messages bench` and by `console-bench` (console/bench.py)."""
    with sessions() as session:
        empty = not search(session, Filter(), limit=1).rows
        dialect = session.get_bind().dialect.name
        if not empty and not reuse:
            raise FilterError(
                "the store is not empty: the benchmark seeds synthetic messages, so point HMC_DB_URL at an empty,"
                " disposable database (or --reuse one seeded by an earlier bench)"
            )
    if empty:
        started = time.perf_counter()
        probe = seed(sessions, rows, console)
        console.print(f"seeded {rows:,} messages in {time.perf_counter() - started:.1f} s ({dialect})")
        return probe, dialect
    with sessions() as session:
        return _probe(session), dialect


def run(
    sessions: sessionmaker[Session],
    *,
    rows: int,
    repeat: int,
    reuse: bool,
    console: Console,
) -> list[dict[str, Any]]:
    probe, dialect = seeded(sessions, rows=rows, reuse=reuse, console=console)
    actor = Actor("bench", "benchmark of patient search")
    week, month = datetime.now(UTC) - timedelta(days=7), datetime.now(UTC) - timedelta(days=30)
    cases: list[tuple[str, Filter, int]] = [
        ("newest, no filter", Filter(), 1),
        ("status parked", Filter(statuses=("parked",)), 1),
        ("status rejected, 10 pages (total)", Filter(statuses=("rejected",)), 10),
        ("customer + last 7 days", Filter(customers=(probe.customer,), since=week), 1),
        (
            "type + status + 30..20 days ago",
            Filter(types=("CustomerOrder",), statuses=("delivered",), since=month, until=month + timedelta(days=10)),
            1,
        ),
        ("correlation id", Filter(correlation_id=probe.correlation_id), 1),
        ("order reference", Filter(order=probe.order), 1),
        ("message id (or an id it sent)", Filter(message_id=probe.message_id), 1),
        ("patient (audited)", Filter(patient=probe.patient), 1),
        ("error text 'Luhn'", Filter(error="Luhn"), 1),
        (f"error text, rare ({RARE_ERROR})", Filter(error=RARE_ERROR), 1),
        (
            "error text + customer + rejected",
            Filter(error="not configured", customers=(probe.customer,), statuses=("rejected", "parked")),
            1,
        ),
    ]
    results: list[dict[str, Any]] = []
    for label, f, pages in cases:
        timings, found = [], 0
        for _ in range(repeat):
            elapsed, found = _timed(sessions, f, pages, actor)
            timings.append(elapsed)
        results.append(
            {
                "search": label,
                "rows": found,
                "median_ms": statistics.median(timings) * 1000,
                "max_ms": max(timings) * 1000,
            }
        )
    table = Table(title=f"search on {dialect}, {repeat} runs each (page of 50)", header_style="bold")
    for column in ("search", "rows on page", "median ms", "slowest ms"):
        table.add_column(column, justify="left" if column == "search" else "right")
    for r in results:
        table.add_row(r["search"], str(r["rows"]), f"{r['median_ms']:.1f}", f"{r['max_ms']:.1f}")
    console.print(table)
    return results


def _timed(sessions: sessionmaker[Session], f: Filter, pages: int, actor: Actor) -> tuple[float, int]:
    """Time `pages` pages of a search (following the cursor), each in a session of its own."""
    after: str | None = None
    found = 0
    started = time.perf_counter()
    for _ in range(pages):
        with sessions() as session:
            page = search(session, f, limit=50, after=after, actor=actor if f.patient else None)
        found, after = len(page.rows), page.next
        if after is None:
            break
    return time.perf_counter() - started, found
