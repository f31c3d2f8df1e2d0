"""Robust speed, arrival estimates with their risk flags, and when the stability budget runs out.

Tracks run along the equator, where a degree of longitude is exactly a·π/180 metres on WGS-84, so a
constant-speed track can be built without any geodesy in the test.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.eta import (
    Fix,
    budget_runs_out_at,
    estimate_eta,
    no_position_reason,
    overdue_reason,
    robust_speed,
)
from coldchain.domain.geo import Point
from coldchain.domain.profiles import Direction

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
METRES_PER_DEGREE_OF_EQUATOR = 6_378_137.0 * math.pi / 180.0


def equator_track(
    *, start: datetime = T0, lon0: float = 0.0, speed_mps: float, every_s: float = 60.0, count: int
) -> list[Fix]:
    """Fixes every ``every_s`` seconds of a tracker going east along the equator at ``speed_mps``."""
    step_deg = speed_mps * every_s / METRES_PER_DEGREE_OF_EQUATOR
    return [
        Fix(time=start + timedelta(seconds=i * every_s), lat=0.0, lon=_wrap(lon0 + i * step_deg)) for i in range(count)
    ]


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def equator(lon: float) -> Point:
    return Point(lat=0.0, lon=lon)


ROUTE = [equator(0.0), equator(1.0), equator(3.0)]


# --- robust_speed -----------------------------------------------------------------------------------------------


def test_a_constant_speed_track_gives_that_speed_with_tight_bounds() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    speed = robust_speed(fixes, now=fixes[-1].time)
    assert speed is not None
    assert speed.speed_mps == pytest.approx(20.0, rel=1e-6)
    assert speed.low_mps == pytest.approx(20.0, rel=1e-6)
    assert speed.high_mps == pytest.approx(20.0, rel=1e-6)
    assert speed.moving_fraction == 1.0
    assert speed.jumps_dropped == 0


def test_a_varying_speed_gets_a_band_around_its_median() -> None:
    """Ten-minute stretches alternating 10, 20 and 30 m/s: median 20, band from 10 to 30 (10th / 90th pct)."""
    fixes: list[Fix] = []
    start, lon0 = T0, 0.0
    for speed_mps in (10.0, 20.0, 30.0) * 4:
        stretch = equator_track(start=start, lon0=lon0, speed_mps=speed_mps, count=11)
        fixes.extend(stretch if not fixes else stretch[1:])
        start, lon0 = stretch[-1].time, stretch[-1].lon
    speed = robust_speed(fixes, now=fixes[-1].time)
    assert speed is not None
    assert speed.speed_mps == pytest.approx(20.0, rel=1e-6)
    assert speed.low_mps == pytest.approx(10.0, rel=1e-6)
    assert speed.high_mps == pytest.approx(30.0, rel=1e-6)


def test_an_hour_stopped_in_a_three_hour_window_counts_as_time_that_will_recur() -> None:
    """Chosen behaviour: the stop neither zeroes the speed nor vanishes; it slows it to the moving share."""
    driving = equator_track(speed_mps=25.0, count=61)
    stopped_at = driving[-1]
    stop = [
        Fix(time=stopped_at.time + timedelta(minutes=m), lat=stopped_at.lat, lon=stopped_at.lon) for m in range(1, 61)
    ]
    more_driving = equator_track(
        start=stop[-1].time + timedelta(minutes=1), lon0=stopped_at.lon, speed_mps=25.0, count=60
    )
    fixes = driving + stop + more_driving
    speed = robust_speed(fixes, now=fixes[-1].time, window=timedelta(hours=3))
    assert speed is not None
    assert speed.moving_fraction == pytest.approx(2 / 3, abs=0.01)
    assert speed.speed_mps == pytest.approx(25.0 * 2 / 3, rel=0.02)
    assert speed.high_mps == pytest.approx(25.0, rel=1e-6)  # the no-more-stops bound
    assert speed.low_mps <= speed.speed_mps <= speed.high_mps


def test_a_tracker_stopped_right_now_still_gets_its_recent_pace() -> None:
    driving = equator_track(speed_mps=25.0, count=91)
    last = driving[-1]
    stop = [Fix(time=last.time + timedelta(minutes=m), lat=last.lat, lon=last.lon) for m in range(1, 31)]
    speed = robust_speed(driving + stop, now=stop[-1].time)
    assert speed is not None
    assert speed.speed_mps == pytest.approx(25.0 * 0.75, rel=0.02)


def test_a_tracker_that_never_moved_has_speed_zero() -> None:
    fixes = [Fix(time=T0 + timedelta(minutes=m), lat=10.0, lon=10.0) for m in range(30)]
    speed = robust_speed(fixes, now=fixes[-1].time)
    assert speed is not None
    assert speed.speed_mps == 0.0
    assert speed.moving_fraction == 0.0


def jumped(fixes: list[Fix], index: int, *, km: float = 500.0) -> list[Fix]:
    """``fixes`` with the one at ``index`` thrown ``km`` north (a single GPS jump)."""
    wild = fixes[index]
    jump = Fix(time=wild.time, lat=wild.lat + km * 1000 / 110_574.4, lon=wild.lon)
    return [*fixes[:index], jump, *fixes[index + 1 :]]


@pytest.mark.parametrize("index", [0, 1, 30, 59, 60])
def test_a_single_500_km_gps_jump_is_dropped_wherever_it_falls(index: int) -> None:
    fixes = equator_track(speed_mps=15.0, count=61)
    clean = robust_speed(fixes, now=fixes[-1].time)
    noisy = robust_speed(jumped(fixes, index), now=fixes[-1].time)
    assert clean is not None
    assert noisy is not None
    assert noisy.jumps_dropped == 1
    assert noisy.fixes_used == 60
    assert noisy.speed_mps == pytest.approx(clean.speed_mps, rel=0.01)
    assert noisy.high_mps == pytest.approx(clean.high_mps, rel=0.01)


@given(
    speed_mps=st.floats(1.0, 300.0),
    every_s=st.floats(10.0, 600.0),
    count=st.integers(5, 60),
    data=st.data(),
)
def test_any_constant_speed_survives_one_gps_jump(
    speed_mps: float, every_s: float, count: int, data: st.DataObject
) -> None:
    fixes = equator_track(speed_mps=speed_mps, every_s=every_s, count=count)
    index = data.draw(st.integers(0, count - 1))
    speed = robust_speed(jumped(fixes, index), now=fixes[-1].time, window=timedelta(days=1))
    assert speed is not None
    assert speed.speed_mps == pytest.approx(speed_mps, rel=0.01)


def test_too_few_fixes_in_the_window_give_no_speed() -> None:
    fixes = equator_track(speed_mps=10.0, count=10)
    assert robust_speed(fixes[:2], now=fixes[1].time) is None
    # All ten are older than the window.
    assert robust_speed(fixes, now=fixes[-1].time + timedelta(hours=3)) is None


def test_fixes_after_now_are_not_used() -> None:
    slow = equator_track(speed_mps=10.0, count=31)
    fast = equator_track(start=slow[-1].time + timedelta(minutes=1), lon0=slow[-1].lon, speed_mps=40.0, count=30)
    speed = robust_speed(slow + fast, now=slow[-1].time)
    assert speed is not None
    assert speed.speed_mps == pytest.approx(10.0, rel=1e-6)


def test_a_fix_needs_an_aware_time_and_real_coordinates() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Fix(time=datetime(2025, 3, 1, 8, 0), lat=0.0, lon=0.0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="latitude"):
        Fix(time=T0, lat=95.0, lon=0.0)


# --- estimate_eta -----------------------------------------------------------------------------------------------


def test_a_straight_line_at_constant_speed_arrives_when_the_arithmetic_says() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)  # an hour's driving from 0° E
    now = fixes[-1].time
    estimate = estimate_eta(now=now, position=fixes[-1].point, route=ROUTE, fixes=fixes)
    remaining_m = (3.0 - fixes[-1].lon) * METRES_PER_DEGREE_OF_EQUATOR
    expected = now + timedelta(seconds=remaining_m / 20.0)
    assert estimate.remaining_m == pytest.approx(remaining_m, abs=0.1)
    assert estimate.eta is not None
    assert abs((estimate.eta - expected).total_seconds()) < 1.0
    assert estimate.eta_low is not None
    assert estimate.eta_high is not None
    assert estimate.eta_low <= estimate.eta <= estimate.eta_high
    assert not estimate.arrived
    assert not estimate.at_risk
    assert estimate.reasons == []


def test_a_stop_widens_the_bounds_around_the_eta() -> None:
    driving = equator_track(speed_mps=20.0, count=61)
    last = driving[-1]
    stop = [Fix(time=last.time + timedelta(minutes=m), lat=last.lat, lon=last.lon) for m in range(1, 31)]
    fixes = driving + stop
    estimate = estimate_eta(now=fixes[-1].time, position=last.point, route=ROUTE, fixes=fixes)
    assert estimate.eta is not None
    assert estimate.eta_low is not None
    assert estimate.eta_high is not None
    assert estimate.eta_low < estimate.eta < estimate.eta_high


def test_the_eta_crosses_the_antimeridian() -> None:
    fixes = equator_track(lon0=179.0, speed_mps=20.0, count=61)
    route = [equator(179.0), equator(-179.0)]
    estimate = estimate_eta(now=fixes[-1].time, position=fixes[-1].point, route=route, fixes=fixes)
    travelled_m = 3600 * 20.0
    expected = fixes[-1].time + timedelta(seconds=(2 * METRES_PER_DEGREE_OF_EQUATOR - travelled_m) / 20.0)
    assert estimate.eta is not None
    assert abs((estimate.eta - expected).total_seconds()) < 1.0


def test_a_detour_adds_the_way_back_to_the_route() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    off = Point(lat=0.1, lon=fixes[-1].lon)
    on_route = estimate_eta(now=fixes[-1].time, position=fixes[-1].point, route=ROUTE, fixes=fixes)
    detour = estimate_eta(now=fixes[-1].time, position=off, route=ROUTE, fixes=fixes)
    assert detour.off_route_m == pytest.approx(11_057, rel=0.01)
    assert detour.remaining_m == pytest.approx(on_route.remaining_m + detour.off_route_m, abs=0.1)


def test_an_eta_after_the_promised_time_is_at_risk_and_says_so() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    now = fixes[-1].time  # 09:00; about 3 h 40 min of driving left
    estimate = estimate_eta(
        now=now, position=fixes[-1].point, route=ROUTE, fixes=fixes, promised_at=now + timedelta(hours=2)
    )
    assert estimate.at_risk
    assert estimate.eta is not None
    assert estimate.reasons == [f"ETA {estimate.eta:%Y-%m-%d %H:%M} UTC after the promised 2025-03-01 11:00 UTC"]


def test_an_eta_before_the_promised_time_is_not_at_risk() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    now = fixes[-1].time
    estimate = estimate_eta(
        now=now, position=fixes[-1].point, route=ROUTE, fixes=fixes, promised_at=now + timedelta(hours=5)
    )
    assert not estimate.at_risk
    assert estimate.reasons == []


def test_a_budget_running_out_before_the_eta_is_at_risk_and_says_so() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    now = fixes[-1].time
    estimate = estimate_eta(
        now=now,
        position=fixes[-1].point,
        route=ROUTE,
        fixes=fixes,
        promised_at=now + timedelta(hours=5),
        budget=now + timedelta(hours=1, minutes=30),
    )
    assert estimate.at_risk
    assert estimate.eta is not None
    assert estimate.reasons == [
        f"stability budget runs out at 2025-03-01 10:30 UTC before the ETA {estimate.eta:%Y-%m-%d %H:%M} UTC"
    ]


def test_a_budget_lasting_past_the_eta_is_not_at_risk() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    now = fixes[-1].time
    estimate = estimate_eta(
        now=now, position=fixes[-1].point, route=ROUTE, fixes=fixes, budget=now + timedelta(hours=6)
    )
    assert not estimate.at_risk


def test_without_a_speed_only_a_passed_deadline_or_spent_budget_flags_risk() -> None:
    now = T0 + timedelta(hours=3)
    still = estimate_eta(now=now, position=equator(0.5), route=ROUTE, fixes=[], promised_at=now + timedelta(hours=1))
    assert still.eta is None
    assert not still.at_risk
    late = estimate_eta(
        now=now,
        position=equator(0.5),
        route=ROUTE,
        fixes=[],
        promised_at=now - timedelta(minutes=5),
        budget=now - timedelta(minutes=1),
    )
    assert late.at_risk
    assert late.reasons == [
        "overdue by 5 min (promised 2025-03-01 10:55 UTC)",
        "stability budget ran out at 2025-03-01 10:59 UTC before arrival",
    ]


def test_an_arrived_shipment_has_its_eta_now_and_no_risk() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    now = fixes[-1].time + timedelta(hours=4)
    estimate = estimate_eta(
        now=now,
        position=Point(lat=0.001, lon=3.0),  # about 110 m from the destination
        route=ROUTE,
        fixes=fixes,
        promised_at=now - timedelta(hours=1),
    )
    assert estimate.arrived
    assert estimate.eta == estimate.eta_low == estimate.eta_high == now
    assert not estimate.at_risk


def test_a_naive_promised_time_is_refused() -> None:
    fixes = equator_track(speed_mps=20.0, count=61)
    with pytest.raises(ValueError, match="promised_at must be timezone-aware"):
        estimate_eta(
            now=fixes[-1].time,
            position=fixes[-1].point,
            route=ROUTE,
            fixes=fixes,
            promised_at=datetime(2025, 3, 1, 12, 0),  # noqa: DTZ001
        )


# --- budget_runs_out_at -----------------------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def trend(*temperatures_c: float, every_min: float = 10.0) -> list[tuple[datetime, float]]:
    """Readings every ``every_min`` minutes, the last one at NOW."""
    count = len(temperatures_c)
    return [(NOW - timedelta(minutes=every_min * (count - 1 - i)), c) for i, c in enumerate(temperatures_c)]


def test_warming_toward_an_upper_threshold_runs_out_after_the_crossing_plus_the_budget() -> None:
    # 1 °C per 10 min, 7 °C now: crosses 8 °C in 10 min, then 30 min of budget.
    runs_out = budget_runs_out_at(
        now=NOW, remaining_min=30, threshold_c=8.0, direction="above", recent=trend(5.0, 6.0, 7.0)
    )
    assert runs_out == NOW + timedelta(minutes=40)


def test_cooling_toward_a_lower_threshold_runs_out_after_the_crossing_plus_the_budget() -> None:
    runs_out = budget_runs_out_at(
        now=NOW, remaining_min=30, threshold_c=2.0, direction="below", recent=trend(5.0, 4.0, 3.0)
    )
    assert runs_out == NOW + timedelta(minutes=40)


def test_already_beyond_and_staying_there_runs_out_after_the_remaining_budget() -> None:
    for readings in (trend(12.0, 12.0, 12.0), trend(10.0, 11.0, 12.0)):
        runs_out = budget_runs_out_at(now=NOW, remaining_min=45, threshold_c=8.0, direction="above", recent=readings)
        assert runs_out == NOW + timedelta(minutes=45)


def test_already_beyond_below_a_lower_threshold() -> None:
    runs_out = budget_runs_out_at(now=NOW, remaining_min=20, threshold_c=2.0, direction="below", recent=trend(0.5, 0.5))
    assert runs_out == NOW + timedelta(minutes=20)


def test_already_beyond_but_coming_back_in_time_saves_the_budget() -> None:
    # 10 °C now, falling 1 °C per 10 min: back under 8 °C in 20 min.
    coming_back = trend(12.0, 11.0, 10.0)
    assert budget_runs_out_at(now=NOW, remaining_min=30, threshold_c=8.0, direction="above", recent=coming_back) is None
    too_late = budget_runs_out_at(now=NOW, remaining_min=15, threshold_c=8.0, direction="above", recent=coming_back)
    assert too_late == NOW + timedelta(minutes=15)


def test_inside_and_steady_or_moving_away_is_not_at_risk() -> None:
    for readings in (trend(5.0, 5.0, 5.0), trend(7.0, 6.0, 5.0)):
        assert (
            budget_runs_out_at(now=NOW, remaining_min=30, threshold_c=8.0, direction="above", recent=readings) is None
        )
    warming = trend(3.0, 4.0, 5.0)
    assert budget_runs_out_at(now=NOW, remaining_min=30, threshold_c=2.0, direction="below", recent=warming) is None


def test_a_spent_budget_beyond_the_threshold_runs_out_now() -> None:
    assert budget_runs_out_at(now=NOW, remaining_min=0, threshold_c=8.0, direction="above", recent=trend(9.0)) == NOW


def test_the_trend_is_a_least_squares_line_not_the_last_two_readings() -> None:
    # Noisy readings around a 1 °C / 10 min rise; the fit through them puts NOW at 7 °C.
    readings = trend(4.8, 6.2, 5.8, 7.2, 7.0)
    runs_out = budget_runs_out_at(now=NOW, remaining_min=0, threshold_c=8.0, direction="above", recent=readings)
    assert runs_out is not None
    # Least squares: slope 0.054 °C/min, 7.28 °C at NOW, so 8 °C in 0.72 / 0.054 = 13.3 min. The last two
    # readings alone (7.2 then 7.0 °C) would say "cooling" and answer None.
    assert abs((runs_out - NOW).total_seconds() / 60 - 0.72 / 0.054) < 0.01


def test_a_drift_too_slow_to_matter_is_not_a_risk() -> None:
    creeping = [(NOW - timedelta(days=1), 5.0), (NOW, 5.0001)]
    assert budget_runs_out_at(now=NOW, remaining_min=30, threshold_c=8.0, direction="above", recent=creeping) is None


def test_budget_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        budget_runs_out_at(now=NOW, remaining_min=30, threshold_c=8.0, direction="above", recent=[])
    with pytest.raises(ValueError, match="remaining_min"):
        budget_runs_out_at(now=NOW, remaining_min=-1, threshold_c=8.0, direction="above", recent=trend(5.0))
    with pytest.raises(ValueError, match="timezone-aware"):
        budget_runs_out_at(
            now=NOW,
            remaining_min=30,
            threshold_c=8.0,
            direction="above",
            recent=[(datetime(2025, 3, 1, 11, 0), 5.0)],  # noqa: DTZ001
        )


@given(
    temperatures_c=st.lists(st.floats(-30, 40), min_size=1, max_size=12),
    remaining_min=st.floats(0, 10_000),
    threshold_c=st.floats(-25, 30),
    direction=st.sampled_from(["above", "below"]),
)
def test_the_budget_never_runs_out_before_its_remaining_minutes_and_more_budget_never_runs_out_sooner(
    temperatures_c: list[float], remaining_min: float, threshold_c: float, direction: Direction
) -> None:
    readings = trend(*temperatures_c)
    runs_out = budget_runs_out_at(
        now=NOW, remaining_min=remaining_min, threshold_c=threshold_c, direction=direction, recent=readings
    )
    more = budget_runs_out_at(
        now=NOW, remaining_min=remaining_min + 60, threshold_c=threshold_c, direction=direction, recent=readings
    )
    if runs_out is not None:
        assert runs_out >= NOW + timedelta(minutes=remaining_min) - timedelta(microseconds=1)
    if more is not None:
        assert runs_out is not None
        assert more > runs_out


def test_a_passed_promise_reads_as_overdue_by_how_long_even_with_an_estimate() -> None:
    now = T0 + timedelta(hours=3)
    fixes = [Fix(time=T0 + timedelta(minutes=m), lat=0.0, lon=m / 600) for m in range(0, 181, 5)]
    late = estimate_eta(
        now=now, position=fixes[-1].point, route=ROUTE, fixes=fixes, promised_at=now - timedelta(hours=3, minutes=10)
    )
    assert late.eta is not None
    assert late.at_risk
    assert late.reasons == ["overdue by 3 h (promised 2025-03-01 07:50 UTC)"]


@pytest.mark.parametrize(
    ("late_by", "said"),
    [
        (timedelta(minutes=1), "overdue by 1 min"),
        (timedelta(minutes=119), "overdue by 119 min"),
        (timedelta(hours=26, minutes=59), "overdue by 26 h"),
        (timedelta(days=4, hours=1), "overdue by 4 d"),
    ],
)
def test_how_long_overdue_reads_in_the_largest_whole_unit(late_by: timedelta, said: str) -> None:
    reason = overdue_reason(now=T0 + late_by, promised_at=T0)
    assert reason is not None and reason.startswith(said + " (promised ")


def test_a_promise_not_yet_due_is_not_overdue() -> None:
    assert overdue_reason(now=T0, promised_at=T0) is None


def test_silence_is_said_since_tracking_began_or_beyond_the_look_back() -> None:
    lookback = timedelta(hours=24)
    now = T0 + timedelta(days=2)
    assert no_position_reason(now=now, lookback=lookback, tracked_since=T0) == "no position for more than 24 h"
    assert (
        no_position_reason(now=now, lookback=lookback, tracked_since=now - timedelta(hours=5))
        == "no position for 5 h (since tracking began)"
    )
    assert no_position_reason(now=now, lookback=lookback, tracked_since=None) == "no position: no tracker is assigned"
