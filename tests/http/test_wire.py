"""The sync batch's readings as the domain takes them (``to_readings``), held to the plain conversion it shortcuts:
each device time moved to UTC on its own with ``astimezone``, or passed on as sent when it has no UTC form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.http.wire import BatchIn, ReadingIn, to_readings

# A few zones, each one object (as msgspec gives one per offset of a body), among them offsets no body can carry.
ZONES = [
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-14)),
    timezone(timedelta(microseconds=1)),
    timezone(timedelta(hours=2)),
]

# Where runs start (naive wall times, made aware in a zone below): now-ish, and the ends of Python's range.
SPANS = [
    (datetime(2000, 1, 1), datetime(2100, 1, 1)),  # noqa: DTZ001
    (datetime(1, 1, 1), datetime(1, 1, 2)),  # noqa: DTZ001
    (datetime(9999, 12, 30), datetime.max),  # noqa: DTZ001, DTZ901
]

STEPS = [timedelta(minutes=1), timedelta(seconds=30), timedelta(microseconds=1), timedelta(0), timedelta(minutes=-7)]


@st.composite
def device_times(draw: st.DrawFn) -> list[datetime]:
    """Runs of a logger's times (a fixed step, in one zone object or switching zones part-way) with odd ones
    between, some of them within a day of the ends of Python's range, where a zone can leave no UTC form."""
    times: list[datetime] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        start = draw(st.one_of(*(st.datetimes(min_value=low, max_value=high) for low, high in SPANS)))
        step = draw(st.sampled_from(STEPS))
        zone = draw(st.sampled_from(ZONES))
        for index in range(draw(st.integers(min_value=1, max_value=30))):
            if draw(st.integers(min_value=0, max_value=9)) == 0:
                zone = draw(st.sampled_from(ZONES))  # the same instants on, as another zone would send them
            try:
                wall = start + step * index
            except OverflowError:
                break
            times.append(wall.replace(tzinfo=zone))
    return times


def plainly(sent: datetime) -> datetime:
    try:
        return sent.astimezone(UTC)
    except OverflowError:
        return sent


@settings(max_examples=300)
@given(times=device_times())
def test_each_device_time_is_moved_to_utc_as_astimezone_moves_it_or_passed_on_when_it_has_no_utc_form(
    times: list[datetime],
) -> None:
    batch = BatchIn(
        readings=[ReadingIn(seq=number, device_time=sent, temperature_c=5.0) for number, sent in enumerate(times, 1)]
    )

    readings = to_readings(batch)

    assert [r.seq for r in readings] == list(range(1, len(times) + 1))
    for reading, sent in zip(readings, times, strict=True):
        expected = plainly(sent)
        assert reading.device_time == expected
        assert reading.device_time.tzinfo is expected.tzinfo  # UTC, or the zone sent when there is no UTC form
        assert (reading.device_time.replace(tzinfo=None), reading.device_time.utcoffset()) == (
            expected.replace(tzinfo=None),
            expected.utcoffset(),
        )
        offset = sent.utcoffset()
        assert offset is not None
        assert reading.utc_offset_min == int(offset.total_seconds() // 60)
