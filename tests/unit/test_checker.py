"""The fault tests' checker: what it calls lost, repeated, duplicated under another id, and out of order."""

from __future__ import annotations

from adapters.harness.checker import Arrival, Sent, causation, check, forwarded_id

SENT = [Sent("a1", "A"), Sent("b1", "B"), Sent("a2", "A"), Sent("b2", "B")]


def arrival(source: str) -> Arrival:
    return Arrival(forwarded_id(source), source)


def test_everything_delivered_once_in_order_is_ok() -> None:
    report = check(SENT, [arrival(s.message_id) for s in SENT], {})
    assert report.ok and (report.delivered, report.lost, report.repeats_same_id) == (4, 0, 0)


def test_a_repeat_under_the_same_id_is_counted_but_allowed() -> None:
    arrived = [arrival("a1"), arrival("b1"), arrival("a2"), arrival("a1"), arrival("b2")]
    report = check(SENT, arrived, {})
    assert report.ok and report.repeats_same_id == 1 and report.out_of_order == 0


def test_a_repeat_under_another_id_fails() -> None:
    arrived = [arrival(s.message_id) for s in SENT] + [Arrival("another-id", "a1")]
    report = check(SENT, arrived, {})
    assert not report.ok and report.duplicates_other_id == 1


def test_a_message_neither_arrived_nor_parked_is_lost_and_a_parked_one_is_not() -> None:
    arrived = [arrival("a1"), arrival("b1")]
    report = check(SENT, arrived, {"a2": "parked: publish: timeout"})
    assert not report.ok and report.parked == 1 and report.lost == 1 and report.examples["lost"] == ["b2"]


def test_messages_of_one_order_arriving_out_of_order_fail() -> None:
    arrived = [arrival("a2"), arrival("b1"), arrival("a1"), arrival("b2")]
    report = check(SENT, arrived, {})
    assert not report.ok and report.out_of_order == 1 and report.examples["out_of_order"] == ["A"]


def test_an_arrival_nobody_sent_fails() -> None:
    report = check(SENT, [arrival(s.message_id) for s in SENT] + [Arrival("x", None)], {})
    assert not report.ok and report.unexpected == 1


def test_the_causation_id_is_read_in_either_dialect() -> None:
    assert causation(b"<Header><CausationId>abc</CausationId></Header>") == "abc"
    assert causation(b"<s:HUVUD><s:ORSAKID>def</s:ORSAKID></s:HUVUD>") == "def"
    assert causation(b"<Header/>") is None
