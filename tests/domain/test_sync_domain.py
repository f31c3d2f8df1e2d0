"""The service's half of the sync protocol: the contiguous acknowledgement, and which readings go to quarantine."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.readings import Reading
from coldchain.domain.sync import (
    PHYSICAL_RANGES,
    SEQ_CEILING,
    Acknowledgement,
    acknowledge,
    all_acceptable,
    clock_offset_s,
    conflicts_with,
    extend_acknowledgement,
    is_fresh,
    quarantine_reason,
    sequence_refusal,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MAX_FUTURE = timedelta(hours=24)
SENSORS = ("temperature_c", "humidity_pct", "pressure_kpa", "battery_pct")
POSITION = ("latitude", "longitude")


def model_acknowledgement(acked_through: int, held: set[int]) -> Acknowledgement:
    """Brute force: walk every number from the acknowledgement up to the highest one held."""
    acked = acked_through
    while acked + 1 in held:
        acked += 1
    missing: list[tuple[int, int]] = []
    for seq in range(acked + 1, max(held, default=acked) + 1):
        if seq in held:
            continue
        if missing and missing[-1][1] == seq - 1:
            missing[-1] = (missing[-1][0], seq)
        else:
            missing.append((seq, seq))
    return Acknowledgement(acked_through=acked, missing=missing)


def a_reading(**values: object) -> Reading:
    fields: dict[str, object] = {
        "seq": 1,
        "device_time": NOW - timedelta(hours=1),
        "utc_offset_min": 120,
        "temperature_c": 5.0,
        "humidity_pct": 60.0,
        "pressure_kpa": 101.3,
        "latitude": 52.52,
        "longitude": 13.405,
        "battery_pct": 80.0,
    }
    fields.update(values)
    return Reading(**fields)  # type: ignore[arg-type]


def reason_for(reading: Reading) -> str | None:
    return quarantine_reason(reading, now=NOW, max_future=MAX_FUTURE)


# --- acknowledge ------------------------------------------------------------------------------------------


def test_nothing_held_above_the_acknowledgement_leaves_it_where_it_was() -> None:
    assert acknowledge(7, []) == Acknowledgement(acked_through=7, missing=[])


def test_a_contiguous_run_above_the_acknowledgement_advances_it_to_the_end_of_the_run() -> None:
    assert acknowledge(3, [4, 5, 6]) == Acknowledgement(acked_through=6, missing=[])


def test_each_gap_below_the_highest_held_number_is_reported_missing_as_an_inclusive_range() -> None:
    assert acknowledge(0, [1, 2, 5, 6, 9]) == Acknowledgement(acked_through=2, missing=[(3, 4), (7, 8)])


def test_without_the_next_number_the_acknowledgement_stays_and_everything_below_the_highest_is_missing() -> None:
    assert acknowledge(0, [4]) == Acknowledgement(acked_through=0, missing=[(1, 3)])


def test_a_single_missing_number_is_a_range_of_one() -> None:
    assert acknowledge(10, [12]) == Acknowledgement(acked_through=10, missing=[(11, 11)])


def test_repeated_numbers_and_numbers_already_acknowledged_change_nothing() -> None:
    assert acknowledge(3, [2, 3, 4, 4, 6, 6]) == acknowledge(3, [4, 6])
    assert acknowledge(3, [4, 6]) == Acknowledgement(acked_through=4, missing=[(5, 5)])


@given(
    acked_through=st.integers(min_value=0, max_value=50),
    offsets=st.sets(st.integers(min_value=1, max_value=80), max_size=60),
)
def test_the_acknowledgement_of_any_held_set_matches_the_brute_force_model(
    acked_through: int, offsets: set[int]
) -> None:
    held = {acked_through + offset for offset in offsets}

    assert acknowledge(acked_through, sorted(held)) == model_acknowledgement(acked_through, held)


@given(
    acked_through=st.integers(min_value=0, max_value=50),
    offsets=st.sets(st.integers(min_value=1, max_value=80), max_size=60),
)
def test_acknowledged_held_and_missing_numbers_cover_everything_up_to_the_highest_exactly_once(
    acked_through: int, offsets: set[int]
) -> None:
    held = {acked_through + offset for offset in offsets}

    ack = acknowledge(acked_through, sorted(held))

    missing = [seq for first, last in ack.missing for seq in range(first, last + 1)]
    assert len(missing) == len(set(missing))
    assert not set(missing) & held
    assert all(first <= last for first, last in ack.missing)
    assert ack.acked_through + 1 not in held
    top = max(held, default=acked_through)
    assert set(range(1, ack.acked_through + 1)) | held | set(missing) == set(range(1, max(top, ack.acked_through) + 1))


# --- extend_acknowledgement (the shortcut for in-order batches) ----------------------------------------------


def test_a_batch_continuing_a_log_without_a_hole_extends_the_acknowledgement_to_its_end() -> None:
    assert extend_acknowledgement(10, 10, [13, 11, 12]) == 13


def test_a_batch_of_numbers_already_acknowledged_leaves_the_acknowledgement_where_it_was() -> None:
    assert extend_acknowledgement(10, 10, [3, 10]) == 10
    assert extend_acknowledgement(10, 10, []) == 10


def test_the_shortcut_declines_when_something_is_missing_already_or_the_batch_leaves_a_hole() -> None:
    assert extend_acknowledgement(10, 15, [11]) is None  # 11..15 not all held: only a query can tell
    assert extend_acknowledgement(10, 10, [12, 13]) is None  # 11 missing
    assert extend_acknowledgement(10, 10, [11, 13]) is None  # 12 missing


def test_a_repeated_number_does_not_pass_for_the_missing_one() -> None:
    assert extend_acknowledgement(0, 0, [1, 1, 3]) is None
    assert extend_acknowledgement(0, 0, [1, 1, 2]) == 2


@given(
    acked_through=st.integers(min_value=0, max_value=30),
    seqs=st.lists(st.integers(min_value=1, max_value=60), max_size=40),
)
def test_whenever_the_shortcut_answers_it_agrees_with_the_full_acknowledgement(
    acked_through: int, seqs: list[int]
) -> None:
    # Nothing missing (max_seq == acked_through): everything held above the acknowledgement is this batch.
    full = acknowledge(acked_through, sorted({seq for seq in seqs if seq > acked_through}))

    extended = extend_acknowledgement(acked_through, acked_through, seqs)

    if full.missing:
        assert extended is None
    else:
        assert extended == full.acked_through


# --- quarantine_reason --------------------------------------------------------------------------------------


def test_an_ordinary_reading_is_accepted() -> None:
    assert reason_for(a_reading()) is None


def test_a_reading_with_no_sensor_values_at_all_is_accepted() -> None:
    empty = a_reading(
        temperature_c=None, humidity_pct=None, pressure_kpa=None, latitude=None, longitude=None, battery_pct=None
    )

    assert reason_for(empty) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", [*SENSORS, *POSITION])
def test_a_value_that_is_not_a_finite_number_is_quarantined_naming_the_sensor(name: str, value: float) -> None:
    reason = reason_for(a_reading(**{name: value}))

    assert reason is not None
    assert reason.startswith(name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature_c", 500.0),
        ("temperature_c", -127.0),
        ("temperature_c", 100.001),
        ("humidity_pct", -0.5),
        ("humidity_pct", 100.1),
        ("pressure_kpa", 9.99),
        ("pressure_kpa", 120.01),
        ("battery_pct", -1.0),
        ("battery_pct", 101.0),
        ("latitude", 95.0),
        ("latitude", -90.000001),
        ("longitude", 180.5),
        ("longitude", -181.0),
    ],
)
def test_a_value_outside_what_the_quantity_can_physically_be_is_quarantined(name: str, value: float) -> None:
    reason = reason_for(a_reading(**{name: value}))

    assert reason is not None
    assert reason.startswith(f"{name} {value}")
    assert "outside the physical range" in reason


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, bound) for name, bounds in PHYSICAL_RANGES.items() for bound in bounds],
)
def test_a_value_exactly_on_the_edge_of_its_range_is_accepted(name: str, value: float) -> None:
    assert reason_for(a_reading(**{name: value})) is None


def test_the_physical_ranges_are_those_the_sensors_and_the_globe_allow() -> None:
    assert PHYSICAL_RANGES == {
        "temperature_c": (-100.0, 100.0),
        "humidity_pct": (0.0, 100.0),
        "pressure_kpa": (10.0, 120.0),
        "battery_pct": (0.0, 100.0),
        "latitude": (-90.0, 90.0),
        "longitude": (-180.0, 180.0),
    }


@pytest.mark.parametrize(
    "position", [{"latitude": 52.5, "longitude": None}, {"latitude": None, "longitude": 13.4}], ids=["lat", "lon"]
)
def test_half_a_position_is_quarantined(position: dict[str, float | None]) -> None:
    assert reason_for(a_reading(**position)) == "a position needs both latitude and longitude"


def test_a_device_time_further_ahead_than_allowed_is_quarantined_saying_how_far() -> None:
    reason = reason_for(a_reading(device_time=NOW + timedelta(hours=36)))

    assert reason == "device_time is 36.0 h ahead of the service's clock"


def test_a_device_time_exactly_at_the_future_limit_is_accepted_and_a_microsecond_beyond_is_not() -> None:
    assert reason_for(a_reading(device_time=NOW + MAX_FUTURE)) is None
    assert reason_for(a_reading(device_time=NOW + MAX_FUTURE + timedelta(microseconds=1))) is not None


def test_the_future_limit_compares_instants_not_wall_clock_times() -> None:
    # 11:00 at UTC-14 is 01:00 UTC the next day: 13 h ahead, inside a 24 h limit, however far the wall clock reads.
    far_west = timezone(timedelta(hours=-14))
    device_time = datetime(2026, 3, 2, 11, 0, tzinfo=far_west)

    assert reason_for(a_reading(device_time=device_time)) is None
    assert quarantine_reason(a_reading(device_time=device_time), now=NOW, max_future=timedelta(hours=12)) is not None


def test_readings_long_in_the_past_are_accepted() -> None:
    assert reason_for(a_reading(device_time=datetime(2001, 1, 1, tzinfo=UTC))) is None


def in_range(name: str) -> st.SearchStrategy[float | None]:
    low, high = PHYSICAL_RANGES[name]
    return st.none() | st.floats(min_value=low, max_value=high)


def out_of_range(name: str) -> st.SearchStrategy[float]:
    low, high = PHYSICAL_RANGES[name]
    return (
        st.floats(max_value=low, exclude_max=True)
        | st.floats(min_value=high, exclude_min=True)
        | st.sampled_from([math.nan, math.inf, -math.inf])
    )


positions = st.one_of(
    st.just((None, None)),
    st.tuples(
        st.floats(min_value=-90, max_value=90),
        st.floats(min_value=-180, max_value=180),
    ),
)
past_or_near_future = st.timedeltas(min_value=timedelta(days=-3650), max_value=MAX_FUTURE)


@given(
    temperature_c=in_range("temperature_c"),
    humidity_pct=in_range("humidity_pct"),
    pressure_kpa=in_range("pressure_kpa"),
    battery_pct=in_range("battery_pct"),
    position=positions,
    ahead=past_or_near_future,
)
def test_any_reading_within_every_range_with_a_whole_position_and_no_far_future_time_is_accepted(
    temperature_c: float | None,
    humidity_pct: float | None,
    pressure_kpa: float | None,
    battery_pct: float | None,
    position: tuple[float | None, float | None],
    ahead: timedelta,
) -> None:
    reading = a_reading(
        device_time=NOW + ahead,
        temperature_c=temperature_c,
        humidity_pct=humidity_pct,
        pressure_kpa=pressure_kpa,
        latitude=position[0],
        longitude=position[1],
        battery_pct=battery_pct,
    )

    assert reason_for(reading) is None


@given(data=st.data(), name=st.sampled_from(sorted(PHYSICAL_RANGES)))
def test_any_single_impossible_value_is_quarantined_with_a_reason_naming_it(data: st.DataObject, name: str) -> None:
    value = data.draw(out_of_range(name))

    reason = reason_for(a_reading(**{name: value}))

    assert reason is not None
    assert reason.startswith(name)


def any_value(name: str) -> st.SearchStrategy[float | None]:
    """Mostly possible values (a batch is mostly valid), sometimes impossible ones or none."""
    return st.one_of(in_range(name), in_range(name), out_of_range(name))


any_position = st.one_of(positions, st.tuples(st.none() | any_value("latitude"), st.none() | any_value("longitude")))
any_device_time = st.one_of(
    st.builds(lambda ahead: NOW + ahead, st.timedeltas(min_value=timedelta(days=-3650), max_value=2 * MAX_FUTURE)),
    # At the edges of the years a datetime can hold: some have no UTC form.
    st.builds(
        lambda moment, hours: moment.replace(tzinfo=timezone(timedelta(hours=hours))),
        st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23)]),  # noqa: DTZ001 (zone set just above)
        st.integers(min_value=-14, max_value=14),
    ),
)
any_reading = st.builds(
    lambda time, t, h, p, b, position: a_reading(
        device_time=time,
        temperature_c=t,
        humidity_pct=h,
        pressure_kpa=p,
        battery_pct=b,
        latitude=position[0],
        longitude=position[1],
    ),
    any_device_time,
    any_value("temperature_c"),
    any_value("humidity_pct"),
    any_value("pressure_kpa"),
    any_value("battery_pct"),
    any_position,
)


valid_reading = st.builds(
    lambda ahead, t, h, p, b, position: a_reading(
        device_time=NOW + ahead,
        temperature_c=t,
        humidity_pct=h,
        pressure_kpa=p,
        battery_pct=b,
        latitude=position[0],
        longitude=position[1],
    ),
    past_or_near_future,
    in_range("temperature_c"),
    in_range("humidity_pct"),
    in_range("pressure_kpa"),
    in_range("battery_pct"),
    positions,
)


one_change = st.one_of(
    st.builds(lambda moment: {"device_time": moment}, any_device_time),
    st.sampled_from(sorted(PHYSICAL_RANGES)).flatmap(
        lambda name: st.builds(lambda value: {name: value}, out_of_range(name))
    ),
    st.builds(lambda lat: {"latitude": lat, "longitude": None}, st.floats(min_value=-90, max_value=90)),
    st.builds(lambda lon: {"latitude": None, "longitude": lon}, st.floats(min_value=-180, max_value=180)),
)
odd_reading = st.builds(lambda base, change: msgspec.structs.replace(base, **change), valid_reading, one_change)


def quantities_in_range(reading: Reading) -> bool:
    return all(
        (value := getattr(reading, name)) is None or (math.isfinite(value) and low <= value <= high)
        for name, (low, high) in PHYSICAL_RANGES.items()
    )


@pytest.mark.parametrize("quantities_checked", [False, True], ids=["as_sent", "quantities_checked"])
@given(
    valid=st.lists(valid_reading, max_size=6),
    odd=st.lists(st.one_of(odd_reading, any_reading), max_size=2),
    at=st.integers(min_value=0, max_value=6),
)
def test_a_batch_is_all_acceptable_exactly_when_no_reading_of_it_has_a_quarantine_reason(
    valid: list[Reading], odd: list[Reading], at: int, quantities_checked: bool
) -> None:
    """With ``quantities_checked``, of what the sync route's checking decoder lets through (every quantity
    finite and in range): the positions' pairs and the device times are still told apart."""
    readings = [*valid[:at], *odd, *valid[at:]]
    if quantities_checked:
        readings = [reading for reading in readings if quantities_in_range(reading)]
    assert all_acceptable(readings, now=NOW, max_future=MAX_FUTURE, quantities_checked=quantities_checked) == all(
        reason_for(reading) is None for reading in readings
    )


@pytest.mark.parametrize(
    "device_time",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=3))),  # the earliest of the batch, before year 1 in UTC
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-3))),  # the latest, past 9999 in UTC
        NOW + MAX_FUTURE + timedelta(microseconds=1),
    ],
)
@pytest.mark.parametrize("at", [0, 2, 4])
def test_a_device_time_refused_anywhere_in_a_batch_makes_it_not_all_acceptable(device_time: datetime, at: int) -> None:
    batch = [a_reading(seq=seq, device_time=NOW - timedelta(minutes=seq)) for seq in range(1, 5)]
    batch.insert(at, a_reading(seq=9, device_time=device_time))

    assert reason_for(batch[at]) is not None
    assert not all_acceptable(batch, now=NOW, max_future=MAX_FUTURE)


def test_one_impossible_value_among_many_valid_readings_makes_the_batch_not_all_acceptable() -> None:
    valid = [a_reading(seq=seq) for seq in range(1, 1001)]
    for name in PHYSICAL_RANGES:
        for bad in (math.nan, math.inf, PHYSICAL_RANGES[name][1] + 1):
            batch = [*valid[:500], a_reading(seq=501, **{name: bad}), *valid[501:]]
            assert not all_acceptable(batch, now=NOW, max_future=MAX_FUTURE), (name, bad)
    assert all_acceptable(valid, now=NOW, max_future=MAX_FUTURE)
    assert not all_acceptable([*valid, a_reading(seq=1001, longitude=None)], now=NOW, max_future=MAX_FUTURE)


# --- sequence numbers out of reach, conflicts, replays ------------------------------------------------------------


def test_a_number_up_to_the_jump_past_max_seq_extends_the_log_and_one_beyond_is_refused() -> None:
    assert sequence_refusal(1060, max_seq=60, max_jump=1000) is None
    assert sequence_refusal(1061, max_seq=60, max_jump=1000) == (
        "seq 1061 is more than 1000 past the highest sequence number held (60)"
    )
    assert sequence_refusal(SEQ_CEILING, max_seq=SEQ_CEILING - 1, max_jump=1000) is None
    assert sequence_refusal(SEQ_CEILING + 1, max_seq=SEQ_CEILING, max_jump=1000) == (
        f"seq {SEQ_CEILING + 1} is above the ceiling {SEQ_CEILING}"
    )


def test_a_source_numbered_by_time_keeps_only_the_ceiling() -> None:
    assert sequence_refusal(1_772_000_000_000, max_seq=None, max_jump=1) is None
    assert sequence_refusal(SEQ_CEILING + 1, max_seq=None, max_jump=1) is not None


def test_a_copy_conflicts_when_a_value_differs_or_exactly_one_of_the_two_is_valid() -> None:
    held = Reading(seq=7, device_time=NOW, utc_offset_min=60, temperature_c=5.0)

    assert not conflicts_with(held, None, held, None)
    assert conflicts_with(held, None, msgspec.structs.replace(held, temperature_c=5.5), None)
    assert conflicts_with(held, None, msgspec.structs.replace(held, utc_offset_min=0), None)
    assert conflicts_with(held, None, msgspec.structs.replace(held, device_time=NOW + timedelta(seconds=1)), None)
    assert conflicts_with(held, "device_time is 30.0 h ahead", held, None), "quarantined, sent again valid"
    assert conflicts_with(held, None, held, "device_time is 30.0 h ahead")


def test_a_quarantined_nan_held_as_null_is_the_same_as_the_nan_sent_again() -> None:
    # Quarantine keeps a reading as JSON, where NaN is null.
    held = Reading(seq=3, device_time=NOW, temperature_c=None)
    sent = Reading(seq=3, device_time=NOW, temperature_c=math.nan)

    assert not conflicts_with(held, "temperature_c is nan", sent, "temperature_c is nan")


def test_a_batch_counts_as_contact_only_when_sent_later_than_the_last_or_bringing_something() -> None:
    assert is_fresh(NOW, None, brought_anything=False)
    assert is_fresh(NOW, NOW - timedelta(seconds=1), brought_anything=False)
    assert not is_fresh(NOW, NOW, brought_anything=True), "a replay may bring something, and still is no contact"
    assert not is_fresh(NOW - timedelta(hours=1), NOW, brought_anything=False)
    assert is_fresh(None, NOW, brought_anything=True)
    assert not is_fresh(None, NOW, brought_anything=False)


def test_a_trackers_clock_offset_is_its_sent_time_less_the_services_receipt_in_any_utc_offset() -> None:
    ahead = datetime(2026, 3, 2, 14, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # 12:01:30 UTC

    assert clock_offset_s(ahead, NOW) == 90.0
    assert clock_offset_s(NOW - timedelta(seconds=2.5), NOW) == -2.5
