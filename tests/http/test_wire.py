"""The sync batch as the route reads it: its two decoders (the one that checks every quantity as it reads it, and
the plain one), and its readings as the domain takes them (``to_readings``), held to the plain conversion it
shortcuts: each device time moved to UTC on its own with ``astimezone``, or passed on as sent when it has no UTC
form."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.domain.sync import PHYSICAL_RANGES
from coldchain.http.errors import ApiError
from coldchain.http.sync import _decode as decode_batch
from coldchain.http.wire import BatchIn, CheckedBatchIn, ReadingIn, to_readings

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


# -- the sync route's two decoders ---------------------------------------------------------------------------------


def quantity(name: str) -> st.SearchStrategy[float | None]:
    low, high = PHYSICAL_RANGES[name]
    return st.one_of(
        st.none(),
        st.floats(min_value=low, max_value=high),
        st.sampled_from([low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]),
        st.floats(allow_nan=True, allow_infinity=True),
    )


sent_readings = st.fixed_dictionaries(
    {"seq": st.integers(min_value=1, max_value=10**6), "device_time": st.just("2026-03-01T08:00:00.000001+01:00")},
    optional={name: quantity(name) for name in PHYSICAL_RANGES},
)


def in_range(reading: dict[str, object]) -> bool:
    return all(
        (value := reading.get(name)) is None
        or (isinstance(value, float) and math.isfinite(value) and low <= value <= high)
        for name, (low, high) in PHYSICAL_RANGES.items()
    )


@settings(max_examples=200)
@given(readings=st.lists(sent_readings, max_size=8), as_msgpack=st.booleans())
def test_the_checking_decoder_takes_exactly_the_batches_whose_quantities_are_all_possible_and_reads_them_alike(
    readings: list[dict[str, object]], as_msgpack: bool
) -> None:
    """The sync route decodes a batch first with every quantity checked against its physical range as it is
    read (which spares ingest those checks), then, when that refuses it, as a plain batch: the readings are the
    same either way, and the checked form is taken exactly when every quantity sent is finite and possible."""
    # JSON has no NaN nor infinity: such a batch is MessagePack only.
    as_msgpack = as_msgpack or not all(
        math.isfinite(value) for reading in readings for value in reading.values() if isinstance(value, float)
    )
    body = msgspec.msgpack.encode({"readings": readings}) if as_msgpack else msgspec.json.encode({"readings": readings})
    content_type = "application/msgpack" if as_msgpack else "application/json"
    plain = msgspec.msgpack.decode(body, type=BatchIn) if as_msgpack else msgspec.json.decode(body, type=BatchIn)

    batch = decode_batch(body, content_type)

    assert isinstance(batch, CheckedBatchIn) == all(in_range(reading) for reading in readings)
    # Compared as encoded: NaN is not equal to itself, but its bytes are.
    assert msgspec.msgpack.encode(to_readings(batch)) == msgspec.msgpack.encode(to_readings(plain))


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"readings": [{"seq": 1, "device_time": "2026-03-01T08:00:00Z", "temperature_c": "warm"}]}', 422, "float"),
        (b'{"readings": [{"seq": 0, "device_time": "2026-03-01T08:00:00Z"}]}', 422, ">= 1"),
        (b'{"readings": [{"seq": 1, "device_time": "2026-03-01T08:00:00Z", "temperature_c": 1e999}]}', 422, "range"),
        (b'{"readings": [', 400, "not valid"),
    ],
)
def test_a_body_neither_decoder_takes_gets_the_plain_decoders_reason(body: bytes, status: int, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_batch(body, "application/json")
    assert refused.value.status_code == status
    assert says in str(refused.value.detail)
