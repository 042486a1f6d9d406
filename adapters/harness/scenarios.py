"""Scripted sequences about one order: who sends what, in which order.

A scenario file (JSON; the shipped ones are in adapters/harness/scenarios/) looks like:

    {
      "name": "order-delay-delivery",
      "description": "...",
      "customer": "1001",                        (optional: used when the run names no customer)
      "steps": [
        {"from": "customer", "type": "CustomerOrder", "with": {"variant": "patient"}},
        {"from": "sesam2", "type": "OrderConfirmation"},
        {"from": "sesam2", "type": "DeliveryDelay", "with": {"reason": "supplier-delay", "days": 10}},
        {"from": "sesam2", "type": "DeliveryReceipt", "answers": 1}
      ]
    }

A step sends one message: "from" customer (an inbound type, built by the Generator) or sesam2 (an answer,
or one of SESAM2's own messages, built by the Sesam2Simulator); "with" sets a few options (OPTIONS lists
them per type); "answers" names the step an answer is about (default: the latest step it can answer);
"expect": "rejected" on a customer step says the broker must refuse it (a Rejection to the customer, nothing
to SESAM2); "note" is free text for readers. Files are checked when loaded, and every problem names the file and the
step, so a broken scenario fails before anything is sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from adapters.harness.generator import INBOUND_NAMES, ORDER_VARIANTS, Generator
from adapters.harness.sesam2_sim import Sesam2Simulator, delivered_lines
from broker.catalog import Catalog
from broker.contract import identifiers, routing
from broker.model import messages as m
from broker.model.codes import (
    ArticleStatus,
    CancellationReason,
    DelayReason,
    FaultSubject,
    Priority,
    Side,
    WorkOrderKind,
)
from broker.model.types import IdKind
from broker.translation import forward

# SESAM2's answers and what each can answer.
ANSWERS: dict[str, tuple[str, ...]] = {
    "OrderConfirmation": ("CustomerOrder", "BufferWithdrawal"),
    "DeliveryDelay": ("CustomerOrder",),
    "OrderCancelled": ("CustomerOrder",),
    "DeliveryReceipt": ("CustomerOrder",),
    "DeliveryNote": ("CustomerOrder",),
    "WorkOrderCompleted": ("WorkOrder",),
    "WorkOrderCancelled": ("WorkOrder",),
    "PickupConfirmation": ("PickupOrder",),
    "PickupCancelled": ("PickupOrder",),
    "FaultReportAnswer": ("FaultReport",),
    "OrthopaedicReferralAnswer": ("OrthopaedicReferral",),
}
SESAM2_OWN = ("PatientAddressQuery", "InvoiceData", "ArticleRegisterUpdate")
SESAM2_NAMES = (*ANSWERS, *SESAM2_OWN)
# An answer that needs its subject sent a certain way: (option, allowed values, what to write).
_SUBJECT_NEEDS: dict[str, tuple[str, tuple[Any, ...], str]] = {
    "DeliveryReceipt": ("variant", ("patient", "urgent"), '"variant": "patient" (a delivery to the home)'),
    "DeliveryNote": ("variant", ("buffer-store",), '"variant": "buffer-store"'),
    "FaultReportAnswer": ("answer_requested", (True,), '"answer_requested": true'),
}
_STEP_KEYS = {"from", "type", "with", "answers", "note", "expect"}
_SCENARIO_KEYS = {"name", "description", "customer", "steps"}


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file, the step and what is wrong."""


def _choice(*values: Any) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value not in values:
            raise ValueError(f"must be one of {', '.join(json.dumps(v) for v in values)}, not {json.dumps(value)}")
        return value

    return parse


def _enum(kind: type[StrEnum]) -> Callable[[Any], Any]:
    parse_value = _choice(*(e.value for e in kind))
    return lambda value: kind(parse_value(value))


def _int(low: int, high: int) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, not {json.dumps(value)}")
        return value

    return parse


def _article(value: Any) -> str:
    try:
        return identifiers.check(IdKind.ARTICLE_NUMBER, value if isinstance(value, str) else "")
    except identifiers.IdentifierError as e:
        raise ValueError(f"must be an article number ({e.message}), not {json.dumps(value)}") from None


_BOOL = _choice(True, False)
_REASON = {"reason": _enum(CancellationReason)}

# The options a step's "with" may set, per type, and how each value is checked.
OPTIONS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "CustomerOrder": {"variant": _choice(*ORDER_VARIANTS), "lines": _int(1, 20), "article": _article},
    "ArticleRegisterUpdate": {"withdraw": _article},
    "BufferWithdrawal": {"lines": _int(1, 10)},
    "BufferStockReport": {"items": _int(1, 50)},
    "WorkOrder": {"kind": _enum(WorkOrderKind), "priority": _enum(Priority)},
    "PickupOrder": {"devices": _int(1, 10)},
    "FaultReport": {"answer_requested": _BOOL, "subject": _enum(FaultSubject)},
    "OrthopaedicReferral": {"acute": _BOOL},
    "DeliveryDelay": {"reason": _enum(DelayReason), "days": _int(1, 90), "line": _int(0, 9999)},
    "OrderCancelled": _REASON,
    "OrderWithdrawal": _REASON,
    "WorkOrderCancelled": _REASON,
    "PickupCancelled": _REASON,
}


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as in error messages
    side: Side
    type_name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    answers: int | None = None  # the step this answer is about (resolved when loaded)
    rejected: bool = False  # "expect": "rejected": the broker refuses it


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    description: str = ""
    customer: str | None = None
    source: str = "<scenario>"


# ------------------------------------------------------------------------- loading and checking


def shipped() -> dict[str, Traversable]:
    """The scenarios shipped with the package, by name (file name without .json)."""
    folder = resources.files("adapters.harness") / "scenarios"
    return {
        f.name.removesuffix(".json"): f
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".json")
    }


def find(name_or_path: str) -> Scenario:
    """A scenario file by path, or a shipped scenario by name."""
    path = Path(name_or_path)
    if path.is_file():
        return load(path)
    known = shipped()
    if name_or_path in known:
        return parse_text(known[name_or_path].read_text(encoding="utf-8"), f"{name_or_path}.json (shipped)")
    raise ScenarioError(f"{name_or_path}: no such file, nor a shipped scenario ({', '.join(sorted(known))})")


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: cannot read: {e}") from None
    return parse_text(text, str(path))


def parse_text(text: str, source: str) -> Scenario:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{source}: line {e.lineno} column {e.colno}: not valid JSON: {e.msg}") from None
    return parse(data, source)


def parse(data: Any, source: str) -> Scenario:
    def fail(what: str) -> ScenarioError:
        return ScenarioError(f"{source}: {what}")

    if not isinstance(data, dict):
        raise fail("expected a JSON object with name and steps")
    if unknown := sorted(set(data) - _SCENARIO_KEYS):
        raise fail(f"unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(_SCENARIO_KEYS))}")
    name, description, customer = data.get("name"), data.get("description", ""), data.get("customer")
    if not isinstance(name, str) or not name:
        raise fail('"name" must be a non-empty string')
    if not isinstance(description, str) or not (customer is None or isinstance(customer, str)):
        raise fail('"description" and "customer" must be strings')
    if customer is not None:
        try:
            identifiers.check(IdKind.CUSTOMER_NUMBER, customer)
        except identifiers.IdentifierError as e:
            raise fail(f'"customer": {e}') from None
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail('"steps" must be a non-empty list')
    steps: list[Step] = []
    for number, raw in enumerate(raw_steps, start=1):
        try:
            steps.append(_step(number, raw, steps))
        except ValueError as e:
            raise fail(f"step {number}: {e}") from None
    return Scenario(name=name, steps=tuple(steps), description=description, customer=customer, source=source)


def _step(number: int, raw: Any, earlier: list[Step]) -> Step:
    if not isinstance(raw, dict):
        raise ValueError('expected an object with "from" and "type"')
    if unknown := sorted(set(raw) - _STEP_KEYS):
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(_STEP_KEYS))}")
    side_name, type_name = raw.get("from"), raw.get("type")
    if side_name not in ("customer", "sesam2"):
        raise ValueError(f'"from" must be "customer" or "sesam2", not {json.dumps(side_name)}')
    side = Side(side_name)
    allowed = INBOUND_NAMES if side is Side.CUSTOMER else SESAM2_NAMES
    if type_name not in allowed:
        raise ValueError(f"{side_name} does not send {json.dumps(type_name)}; it sends {', '.join(allowed)}")
    options = _options(type_name, raw.get("with", {}))
    answers = _subject(number, type_name, raw.get("answers"), earlier) if type_name in ANSWERS else None
    if "answers" in raw and type_name not in ANSWERS:
        raise ValueError(f'{type_name} answers no earlier step: remove "answers"')
    if type_name == "InvoiceData" and not any(s.type_name == "OrderConfirmation" for s in earlier):
        raise ValueError("InvoiceData bills confirmed lines: put an OrderConfirmation step before it")
    expect = raw.get("expect")
    if expect is not None and (expect != "rejected" or side is not Side.CUSTOMER):
        raise ValueError('"expect" can only be "rejected", on a customer step')
    rejected = expect == "rejected"
    step = Step(number=number, side=side, type_name=type_name, options=options, answers=answers, rejected=rejected)
    if type_name == "DeliveryDelay":
        _check_delay_line(step, earlier)
    return step


def _options(type_name: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError('"with" must be an object of options')
    known = OPTIONS.get(type_name, {})
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            offered = ", ".join(known) or "none"
            raise ValueError(f'{type_name} has no option "{key}" (options: {offered})')
        try:
            options[key] = known[key](value)
        except ValueError as e:
            raise ValueError(f'{type_name} option "{key}" {e}') from None
    return options


def _subject(number: int, type_name: str, answers: Any, earlier: list[Step]) -> int:
    """The step an answer is about: the one named, else the latest that it can answer."""
    subjects = ANSWERS[type_name]
    if answers is None:
        found = next((s for s in reversed(earlier) if s.type_name in subjects), None)
        if found is None:
            raise ValueError(f"{type_name} answers a {' or '.join(subjects)}, and no earlier step sends one")
    else:
        if isinstance(answers, bool) or not isinstance(answers, int) or not 1 <= answers < number:
            raise ValueError(f'"answers" must be the number of an earlier step (1 to {number - 1})')
        found = earlier[answers - 1]
        if found.type_name not in subjects:
            raise ValueError(
                f"{type_name} answers a {' or '.join(subjects)}, but step {answers} is a {found.type_name}"
            )
    if type_name in _SUBJECT_NEEDS:
        option, values, hint = _SUBJECT_NEEDS[type_name]
        if found.options.get(option) not in values:
            raise ValueError(f"{type_name} needs step {found.number} ({found.type_name}) sent with {hint}")
    return found.number


def _check_delay_line(step: Step, earlier: list[Step]) -> None:
    """A delay of line n needs an order known to have n lines (the generator draws the count otherwise)."""
    line = step.options.get("line", 0)
    lines = earlier[step.answers - 1].options.get("lines", 1) if step.answers else 1
    if line > lines:
        raise ValueError(f'DeliveryDelay of line {line} needs step {step.answers} sent with "lines": {line} or more')


# ------------------------------------------------------------------------- running


def run(
    scenario: Scenario,
    generator: Generator,
    simulator: Sesam2Simulator,
    *,
    customer: str | None = None,
) -> Iterator[tuple[Side, m.Message]]:
    """The scenario's messages in order, each as its side sends it (SESAM2's in the model, for its dialect)."""
    customer = customer or scenario.customer or generator.rng.choice(generator.customers)
    sent: dict[int, m.Message] = {}
    for step in scenario.steps:
        at = generator.now()
        if step.side is Side.CUSTOMER:
            message = generator.message(step.type_name, customer, at=at, **_context(step, sent), **step.options)
        else:
            message = _sesam2(step, sent, generator, simulator, customer, at)
        sent[step.number] = message
        yield step.side, message


def _context(step: Step, sent: Mapping[int, m.Message]) -> dict[str, Any]:
    """What a customer step takes from earlier steps: the pickup it closes, the store it orders for..."""
    latest = {type(msg).__name__: msg for _, msg in sorted(sent.items())}
    context: dict[str, Any] = {}
    if step.type_name == "ReturnReceipt" and isinstance(p := latest.get("PickupOrder"), m.PickupOrder):
        context["pickup"] = p
    elif step.type_name == "OrderStatusQuery" and (opened := [x for x in sent.values() if _opens(x)]):
        context["order_id"] = routing.reference(opened[-1])  # the latest order, work order, pickup...
    elif step.type_name == "OrderWithdrawal" and isinstance(o := latest.get("CustomerOrder"), m.CustomerOrder):
        context["order_id"] = o.order_id
    elif step.type_name == "PatientAddressReply" and isinstance(
        q := latest.get("PatientAddressQuery"), m.PatientAddressQuery
    ):
        context["query"] = q
    elif step.type_name in ("CustomerOrder", "BufferWithdrawal", "BufferStockReport"):
        stores = [msg for msg in sent.values() if isinstance(msg, m.BufferStockReport | m.BufferWithdrawal)]
        wants_store = step.type_name != "CustomerOrder" or step.options.get("variant") == "buffer-store"
        if stores and wants_store:
            context["buffer_store_id"] = stores[-1].buffer_store_id
    return context


def _opens(message: m.Message) -> bool:
    found = routing.route(type(message))
    return found is not None and found.opens_order


def _sesam2(
    step: Step,
    sent: Mapping[int, m.Message],
    generator: Generator,
    simulator: Sesam2Simulator,
    customer: str,
    at: datetime,
) -> m.Message:
    if step.answers is not None:
        subject = sent[step.answers]
        # What SESAM2 received: the broker's translation, forwarded as soon as the subject arrived.
        received = forward(subject, now=subject.header.sent_at)
        build: Callable[..., m.Message] = getattr(simulator, _SIMULATOR_METHODS[step.type_name])
        return build(received, now=at, **step.options)
    if step.type_name == "PatientAddressQuery":
        patients = [p for msg in sent.values() if isinstance(p := getattr(msg, "patient", None), m.Patient)]
        patient = patients[-1] if patients else generator.rng.choice(generator.world(customer).residents).patient
        return simulator.patient_address_query(customer, patient.patient_id, now=at)
    if step.type_name == "InvoiceData":
        confirmations = [msg for msg in sent.values() if isinstance(msg, m.OrderConfirmation)]
        lines = [line for c in confirmations for line in delivered_lines(c)]
        month = min(line.delivered_on for line in lines if line.delivered_on)
        invoice = simulator.invoice_data(customer, month, lines, now=at)
        assert invoice is not None  # the month is taken from the lines
        return invoice
    withdraw = step.options.get("withdraw")
    if withdraw is None:
        return simulator.article_register_update(now=at)
    article = simulator.catalog.articles.get(withdraw)
    if article is None:
        raise ScenarioError(f"step {step.number}: article {withdraw} is not in the simulator's catalog")
    withdrawn = dataclasses.replace(article, status=ArticleStatus.WITHDRAWN)
    return simulator.article_register_update(Catalog({**simulator.catalog.articles, withdraw: withdrawn}), now=at)


_SIMULATOR_METHODS = {
    "OrderConfirmation": "order_confirmation",
    "DeliveryDelay": "delivery_delay",
    "OrderCancelled": "order_cancelled",
    "DeliveryReceipt": "delivery_receipt",
    "DeliveryNote": "delivery_note",
    "WorkOrderCompleted": "work_order_completed",
    "WorkOrderCancelled": "work_order_cancelled",
    "PickupConfirmation": "pickup_confirmation",
    "PickupCancelled": "pickup_cancelled",
    "FaultReportAnswer": "fault_report_answer",
    "OrthopaedicReferralAnswer": "orthopaedic_referral_answer",
}
assert set(_SIMULATOR_METHODS) == set(ANSWERS)
