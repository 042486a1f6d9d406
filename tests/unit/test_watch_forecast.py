"""The reserve routine and an outage forecast (#17): Skåne's routine is "four hours and still no forecast".
A forecast that has not passed holds the routine back (the warning stays); once it passes, or without one,
the routine is raised after HMC_RESERVE_ROUTINE_S as before."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.observability.watch import Level, QueueState, Thresholds, Watch

T = Thresholds(stale_after_s=300, warn_after_s=900, reserve_after_s=4 * 3600)
DOWN = QueueState(messages=5, consumers=0, oldest_age_s=0.0)


def look(outage_s: float, forecast_in_s: float | None) -> Level:
    clock = [0.0]
    watch = Watch(T, clock=lambda: clock[0])
    watch.observe("sesam2", "q", DOWN)  # the outage starts
    clock[0] = outage_s
    back_by = None if forecast_in_s is None else outage_s + forecast_in_s
    watch.observe("sesam2", "q", DOWN, back_by)
    return watch.level("sesam2")


@given(st.floats(4 * 3600, 48 * 3600), st.floats(1, 24 * 3600))
def test_a_pending_forecast_holds_the_reserve_routine_back(outage_s: float, forecast_in_s: float) -> None:
    assert look(outage_s, forecast_in_s) is Level.WARNING
    assert look(outage_s, None) is Level.RESERVE_ROUTINE


@given(st.floats(4 * 3600, 48 * 3600), st.floats(0, 24 * 3600))
def test_a_passed_forecast_holds_nothing_back(outage_s: float, passed_s_ago: float) -> None:
    assert look(outage_s, -passed_s_ago) is Level.RESERVE_ROUTINE


@given(st.floats(0, 4 * 3600 - 1), st.one_of(st.none(), st.floats(-3600, 3600)))
def test_before_four_hours_a_forecast_changes_nothing(outage_s: float, forecast_in_s: float | None) -> None:
    assert look(outage_s, forecast_in_s) is look(outage_s, None)
