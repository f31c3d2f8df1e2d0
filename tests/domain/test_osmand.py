"""The OsmAnd decoder: every shared test vector, the rules behind them, and arbitrary input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.osmand import (
    MAX_BODY_BYTES,
    MAX_PARAMETERS,
    MAX_VALUE_CHARS,
    OsmandError,
    OsmandPosition,
    decode_json,
    decode_query,
    to_reading,
)
from tests.osmand_vectors import ALL_VECTORS, VECTOR_IDS, VECTORS, Vector

RECEIVED_AT = datetime(2025, 7, 1, 12, 0, 0, tzinfo=UTC)


def query_of(request: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(request).query, keep_blank_values=True, strict_parsing=True)


def decode_vector(vector: Vector) -> OsmandPosition:
    if vector.request is not None:
        return decode_query(query_of(vector.request), received_at=RECEIVED_AT)
    return decode_json(msgspec.json.encode(vector.body), received_at=RECEIVED_AT)


def query_vector(index: int) -> list[tuple[str, str]]:
    request = VECTORS.query[index].request
    assert request is not None
    return query_of(request)


def json_vector(index: int) -> bytes:
    return msgspec.json.encode(VECTORS.json[index].body)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=VECTOR_IDS)
def test_every_vector_is_accepted_or_rejected_with_the_values_it_states(vector: Vector) -> None:
    assert vector.expect.startswith(("accepted", "rejected"))
    assert (vector.request is None) != (vector.body is None)
    if vector.expect.startswith("rejected"):
        with pytest.raises(OsmandError):
            decode_vector(vector)
        return

    position = decode_vector(vector)

    assert position.device_id == vector.device
    if vector.lat is not None:
        assert position.latitude == pytest.approx(vector.lat)
    if vector.lon is not None:
        assert position.longitude == pytest.approx(vector.lon)
    if vector.time_utc is not None:
        assert position.device_time == vector.time_utc
        assert position.device_time.utcoffset() == timedelta(0)
    if vector.speed_kmh is not None:
        assert position.speed_kmh == pytest.approx(vector.speed_kmh)
    if vector.battery_pct is not None:
        assert position.battery_pct == pytest.approx(vector.battery_pct)
    if vector.temperature_c is not None:
        assert position.temperature_c == pytest.approx(vector.temperature_c)
    if vector.humidity_pct is not None:
        assert position.humidity_pct == pytest.approx(vector.humidity_pct)


# --- The rules the vectors' "expect" states in words ---------------------------------------------------


def test_a_request_without_coordinates_is_a_position_without_a_fix_keeping_cell_and_wifi_in_order() -> None:
    position = decode_query(query_vector(0), received_at=RECEIVED_AT)

    assert (position.latitude, position.longitude) == (None, None)
    assert position.attributes == {
        "cell": "257,02,16,2224;257,02,16,2223,-90",
        "wifi": "00-14-22-01-23-45,-80;00-1C-B3-09-85-15,-70",
    }


def test_a_request_without_a_device_id_says_which_parameters_to_send() -> None:
    with pytest.raises(OsmandError, match=r"^no device id: send 'id' or 'deviceid'$"):
        decode_query(query_vector(1), received_at=RECEIVED_AT)


def test_a_local_timestamp_is_read_in_the_configured_zone() -> None:
    central_european_summer = timezone(timedelta(hours=2))

    position = decode_query(query_vector(4), received_at=RECEIVED_AT, local_tz=central_european_summer)

    assert position.device_time == datetime(2014, 6, 4, 7, 10, 11, tzinfo=UTC)
    assert position.utc_offset_min == 0


def test_a_local_timestamp_is_utc_when_no_zone_is_configured() -> None:
    position = decode_query(query_vector(4), received_at=RECEIVED_AT)

    assert position.device_time == datetime(2014, 6, 4, 9, 10, 11, tzinfo=UTC)


def test_a_missing_timestamp_is_the_receive_time() -> None:
    position = decode_query(query_vector(7), received_at=RECEIVED_AT)

    assert position.device_time == RECEIVED_AT
    assert position.time_source == "server"
    assert decode_query(query_vector(6), received_at=RECEIVED_AT).time_source == "device"


def test_deviceid_is_an_alias_of_id_and_heading_of_bearing() -> None:
    position = decode_query([("deviceid", "123456"), ("heading", "90.5")], received_at=RECEIVED_AT)

    assert position.device_id == "123456"
    assert position.bearing_deg == 90.5


def test_query_speed_is_in_knots_and_unknown_parameters_become_attributes() -> None:
    position = decode_query(query_vector(10), received_at=RECEIVED_AT)

    assert position.speed_kmh == pytest.approx(74.08)
    assert position.bearing_deg == pytest.approx(7.19889788244)
    assert position.attributes == {"ignition": "true", "rpm": "933", "fuel": "24"}


def test_hdop_and_other_uninterpreted_parameters_are_kept_as_text() -> None:
    position = decode_query(query_vector(2), received_at=RECEIVED_AT)

    assert position.altitude_m == 224.0
    assert position.speed_kmh == 0.0
    assert position.attributes == {"hdop": "6.0"}


def test_json_speed_is_in_metres_per_second_and_battery_level_is_a_fraction() -> None:
    position = decode_json(json_vector(2), received_at=RECEIVED_AT)

    assert position.speed_kmh == pytest.approx(67.212)
    assert position.battery_pct == pytest.approx(79)
    assert position.bearing_deg == 63
    assert position.accuracy_m == 3.8
    assert position.altitude_m == 35.7
    assert position.device_time == datetime(2021, 7, 21, 8, 6, 34, 444000, tzinfo=UTC)


def test_minus_one_is_unknown_not_a_negative_value() -> None:
    position = decode_json(json_vector(1), received_at=RECEIVED_AT)

    assert (position.speed_kmh, position.bearing_deg, position.battery_pct) == (None, None, None)
    assert position.accuracy_m == 5


def test_json_location_metadata_and_extras_become_attributes() -> None:
    position = decode_json(json_vector(1), received_at=RECEIVED_AT)

    assert position.attributes == {
        "event": "motionchange",
        "is_moving": "false",
        "odometer": "0",
        "activity": '{"confidence":100,"type":"unknown"}',
        "mock": "true",
        "uuid": "2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8",
        "is_charging": "false",
    }


def test_sensor_values_in_json_extras_are_not_also_attributes() -> None:
    position = decode_json(json_vector(3), received_at=RECEIVED_AT)

    assert "temperature" not in position.attributes
    assert "humidity" not in position.attributes


# --- Further rules ------------------------------------------------------------------------------------------


def test_temp1_wins_over_temperature_which_stays_an_attribute() -> None:
    params = [("id", "7"), ("temperature", "21.5"), ("temp1", "4.5")]

    position = decode_query(params, received_at=RECEIVED_AT)

    assert position.temperature_c == 4.5
    assert position.attributes == {"temperature": "21.5"}


def test_a_sensor_value_in_json_extras_may_be_a_numeric_string() -> None:
    body = {"device_id": "7", "location": {"extras": {"temp1": "3.5", "humidity": 55, "door": "open"}}}

    position = decode_json(msgspec.json.encode(body), received_at=RECEIVED_AT)

    assert (position.temperature_c, position.humidity_pct) == (3.5, 55)
    assert position.attributes == {"door": "open"}


def test_an_offset_is_kept_so_the_local_time_can_be_shown() -> None:
    position = decode_query([("id", "7"), ("timestamp", "2016-01-27T20:55:47+02:00")], received_at=RECEIVED_AT)

    assert position.device_time == datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)
    assert position.utc_offset_min == 120
    assert to_reading(position).utc_offset_min == 120


def test_an_unencoded_plus_in_an_offset_arrives_as_a_space_and_still_reads_as_plus() -> None:
    params = query_of("/?id=7&timestamp=2016-01-27T20:55:47+05:30")

    position = decode_query(params, received_at=RECEIVED_AT)

    assert position.device_time == datetime(2016, 1, 27, 15, 25, 47, tzinfo=UTC)
    assert position.utc_offset_min == 330


def test_epoch_seconds_up_to_2147483647_are_seconds_and_above_are_milliseconds() -> None:
    def device_time(timestamp: str) -> datetime:
        return decode_query([("id", "7"), ("timestamp", timestamp)], received_at=RECEIVED_AT).device_time

    assert device_time("2147483647") == datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC)
    assert device_time("2147483648") == datetime(1970, 1, 25, 20, 31, 23, 648000, tzinfo=UTC)


def test_null_island_is_no_fix() -> None:
    position = decode_query([("id", "7"), ("lat", "0"), ("lon", "0.0")], received_at=RECEIVED_AT)

    assert (position.latitude, position.longitude) == (None, None)


def test_a_reading_takes_the_device_time_in_epoch_milliseconds_as_its_seq() -> None:
    position = decode_query(query_vector(3), received_at=RECEIVED_AT)

    reading = to_reading(position)

    assert reading.seq == 1442068686579
    assert reading.device_time == position.device_time
    assert (reading.latitude, reading.longitude) == (42.06288, -88.23412)
    assert reading.utc_offset_min == 0


def test_the_same_request_sent_twice_is_the_same_reading() -> None:
    first = to_reading(decode_json(json_vector(3), received_at=RECEIVED_AT))
    retried = to_reading(decode_json(json_vector(3), received_at=RECEIVED_AT + timedelta(minutes=5)))

    assert retried == first
    assert (first.temperature_c, first.humidity_pct, first.battery_pct) == (5.4, 48, 100)


def test_parameters_may_be_given_as_a_mapping() -> None:
    position = decode_query({"id": "7", "lat": "60.0", "lon": "30.0"}, received_at=RECEIVED_AT)

    assert (position.latitude, position.longitude) == (60.0, 30.0)


def test_a_naive_receive_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="received_at must be timezone-aware") as raised:
        decode_query([("id", "7")], received_at=datetime(2025, 1, 1))  # noqa: DTZ001

    assert not isinstance(raised.value, OsmandError)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("id", " ")], "no device id: id is empty"),
        ([("id", "7"), ("id", "8")], "parameter 'id' is given more than once"),
        ([("id", "7"), ("deviceid", "8")], "'id' and its alias 'deviceid' disagree: '7' and '8'; send one"),
        ([("id", "7"), ("lat", "91"), ("lon", "30")], "lat must be between -90 and 90, got 91.0"),
        ([("id", "7"), ("lat", "60"), ("lon", "-180.5")], "lon must be between -180 and 180, got -180.5"),
        ([("id", "7"), ("lat", "60")], "lat without lon: send both or neither"),
        ([("id", "7"), ("lat", "north"), ("lon", "30")], "lat must be a number, got 'north'"),
        ([("id", "7"), ("lat", "nan"), ("lon", "30")], "lat must be a number, got 'nan'"),
        ([("id", "7"), ("lat", "1e999"), ("lon", "30")], "lat must be a number, got '1e999'"),
        ([("id", "7"), ("location", "60.0;30.0")], "location must be 'lat,lon', got '60.0;30.0'"),
        ([("id", "7"), ("location", "91,30")], "location latitude must be between -90 and 90, got 91.0"),
        ([("id", "7"), ("location", "60,30"), ("lat", "60")], "send either 'location' or 'lat' and 'lon'"),
        (
            [("id", "7"), ("timestamp", "yesterday")],
            "timestamp must be epoch seconds or milliseconds, ISO 8601 or 'yyyy-MM-dd HH:mm:ss', got 'yesterday'",
        ),
        ([("id", "7"), ("timestamp", "-1377177267")], "timestamp must be epoch seconds or milliseconds"),
        (
            [("id", "7"), ("timestamp", "2016-02-30T00:00:00Z")],
            "timestamp '2016-02-30T00:00:00Z' is not a valid",
        ),
        ([("id", "7"), ("timestamp", "2016-01-27T18:55:47+25:00")], "is not a valid date and time"),
        ([("id", "7"), ("timestamp", "9" * 30)], f"timestamp '{'9' * 30}' is too far in the future"),
        ([("id", "7"), ("timestamp", "")], "timestamp must be epoch seconds or milliseconds"),
        ([("id", "7"), ("speed", "fast")], "speed must be a number, got 'fast'"),
        ([("id", "7"), ("bearing", "361")], "bearing must be between 0 and 360 degrees, got 361.0"),
        ([("id", "7"), ("batt", "150")], "batt must be a percentage from 0 to 100, got 150.0"),
        ([("id", "7"), ("humidity", "101")], "humidity must be a percentage from 0 to 100, got 101.0"),
        ([("id", "7"), ("temp1", "-127")], "temp1 must be between -100 and 100 °C, got -127.0"),
        ([("id", "7"), ("temperature", "85.5.1")], "temperature must be a number, got '85.5.1'"),
        (
            [("id", str(n)) for n in range(MAX_PARAMETERS + 1)],
            f"too many parameters: at most {MAX_PARAMETERS}",
        ),
        (
            [("id", "7"), ("note", "x" * (MAX_VALUE_CHARS + 1))],
            f"parameter 'note' is {MAX_VALUE_CHARS + 1} characters long: at most {MAX_VALUE_CHARS}",
        ),
        ([("id", "7"), ("n" * 65, "1")], "is longer than 64 characters"),
        ([("id", "7"), ("", "1")], "a parameter has an empty name"),
        ([("id", "7\x00")], r"parameter 'id' contains a control character: '7\\x00'"),
    ],
)
def test_a_bad_query_is_rejected_with_a_message_naming_the_parameter(
    params: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(OsmandError, match=message):
        decode_query(params, received_at=RECEIVED_AT)


def location_body(location: object, device_id: object = "7") -> bytes:
    return msgspec.json.encode({"device_id": device_id, "location": location})


def message_id(value: object) -> str:
    """Name a case by its expected message; bodies can be kilobytes long."""
    return value[:60] if isinstance(value, str) else "body"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"id=7&lat=60", "invalid JSON body: JSON is malformed"),
        (b'{"device_id": "\xff"}', "invalid JSON body: 'utf-8' codec can't decode"),
        (b'{"location": {}}', r"^no device id: send 'device_id'$"),
        (b'{"device_id": 7, "location": {}}', r"invalid JSON body: Expected `str \| null`, got `int`"),
        (b'{"device_id": "7"}', "no location: send 'location'"),
        (location_body([{}, {}]), "'location' is a list of 2: send one location per request"),
        (location_body({"timestamp": "15 June 2025"}), "location.timestamp must be epoch seconds"),
        (
            location_body({"timestamp": 1.5}),
            r"Expected `int \| str \| null`, got `float` - at `\$.location.timestamp`",
        ),
        (
            location_body({"coords": {"latitude": "37.4", "longitude": -122.0}}),
            r"Expected `float \| null`, got `str` - at `\$.location.coords.latitude`",
        ),
        (
            location_body({"coords": {"latitude": 37.4}}),
            "location.coords.latitude without location.coords.longitude",
        ),
        (
            location_body({"coords": {"latitude": -90.5, "longitude": 0.5}}),
            "location.coords.latitude must be between -90 and 90, got -90.5",
        ),
        (
            location_body({"battery": {"level": 87}}),
            r"location.battery.level is a fraction from 0 to 1 \(1 = 100 %\), got 87.0",
        ),
        (
            location_body({"extras": {"temperature": True}}),
            "location.extras.temperature must be a number, got true",
        ),
        (location_body({"extras": {"temp1": 10**400}}), "location.extras.temp1 is too large a number"),
        (location_body({"extras": {"humidity": 120}}), "location.extras.humidity must be a percentage"),
        (location_body({"event": "motionchange", "extras": {"event": "x"}}), "location.extras.event clashes"),
        (
            location_body({"extras": {str(n): n for n in range(MAX_PARAMETERS + 1)}}),
            "too many location.extras",
        ),
        (location_body({"extras": {"note": "x" * 300}}), "note is 300 characters long"),
        (location_body({}, device_id=""), "no device id: device_id is empty"),
        (
            b'{"device_id": "7", "location": {"extras": {"deep": ' + b"[" * 5000 + b"]" * 5000 + b"}}}",
            # Refused either way: as too deep where the decoder's recursion stops first (Python 3.11), or as an
            # attribute too long where it does not (3.12 and later raise the limit).
            r"nested too deeply|deep is 10000 characters long",
        ),
        (b" " * (MAX_BODY_BYTES + 1), f"JSON body is {MAX_BODY_BYTES + 1} bytes: at most {MAX_BODY_BYTES}"),
    ],
    ids=message_id,
)
def test_a_bad_json_body_is_rejected_with_a_message_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(OsmandError, match=message):
        decode_json(body, received_at=RECEIVED_AT)


# --- Properties ---------------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUERY_NAMES = sorted(
    {"id", "deviceid", "timestamp", "lat", "lon", "location", "speed", "bearing", "heading", "altitude"}
    | {"accuracy", "batt", "temp1", "temperature", "humidity", "cell", "wifi", "hdop"}
)
numbers = st.floats(allow_nan=True, allow_infinity=True).map(str) | st.integers().map(str)
timestamps = (
    st.integers(min_value=-(10**20), max_value=10**20).map(str)
    | st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda moment: moment.isoformat())
    | st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([+ -][0-9]{2}:[0-9]{2}|Z)?", fullmatch=True
    )
)
garbage_values = st.text(max_size=MAX_VALUE_CHARS + 8) | numbers | timestamps
zones = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)).map(
    timezone
)


@given(
    epoch_ms=st.integers(min_value=31_536_000_000, max_value=2_147_483_647_000),
    form=st.sampled_from(["seconds", "milliseconds", "iso"]),
    device_id=st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=20),
    latitude=st.floats(min_value=-90, max_value=90),
    longitude=st.floats(min_value=-180, max_value=180),
)
def test_decoding_is_deterministic_and_the_seq_is_the_device_time_in_milliseconds(
    epoch_ms: int, form: str, device_id: str, latitude: float, longitude: float
) -> None:
    moment = EPOCH + timedelta(milliseconds=epoch_ms)
    timestamp = {
        "seconds": str(epoch_ms // 1000),
        "milliseconds": str(epoch_ms),
        "iso": moment.isoformat(timespec="milliseconds"),
    }[form]
    params = [("id", device_id), ("timestamp", timestamp), ("lat", repr(latitude)), ("lon", repr(longitude))]

    first = decode_query(params, received_at=RECEIVED_AT)
    again = decode_query(params, received_at=RECEIVED_AT + timedelta(hours=1))

    assert again == first
    assert to_reading(again) == to_reading(first)
    expected_ms = epoch_ms // 1000 * 1000 if form == "seconds" else epoch_ms
    assert to_reading(first).seq == expected_ms


plausible_fields = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20)},
    optional={name: numbers | timestamps | garbage_values for name in QUERY_NAMES if name != "id"},
)
"""Each interpreted parameter at most once, so that many requests get past the first check."""
garbage_pairs = st.lists(
    st.tuples(st.sampled_from(QUERY_NAMES) | st.text(max_size=70), garbage_values),
    max_size=MAX_PARAMETERS + 5,
)


@given(
    params=st.builds(
        lambda fields, pairs: list(fields.items()) + pairs,
        plausible_fields,
        st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=10)), max_size=5),
    )
    | garbage_pairs,
    local_tz=zones,
)
def test_any_query_is_decoded_or_rejected_with_an_osmand_error(
    params: list[tuple[str, str]], local_tz: timezone
) -> None:
    try:
        position = decode_query(params, received_at=RECEIVED_AT, local_tz=local_tz)
    except OsmandError:
        return
    assert position.device_time.utcoffset() == timedelta(0)
    assert position == decode_query(params, received_at=RECEIVED_AT, local_tz=local_tz)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@given(
    body=st.binary(max_size=64)
    | st.fixed_dictionaries(
        {"device_id": json_values, "location": json_values},
        optional={"extra": json_values},
    ).map(json.dumps)
    | st.fixed_dictionaries(
        {"device_id": st.text(max_size=8)},
        optional={
            "location": st.fixed_dictionaries(
                {},
                optional={
                    "timestamp": timestamps | st.integers() | json_values,
                    "coords": st.dictionaries(
                        st.sampled_from(["latitude", "longitude", "speed", "heading", "accuracy", "altitude"]),
                        st.floats(allow_nan=False, allow_infinity=False) | st.integers() | json_values,
                    ),
                    "battery": st.dictionaries(st.sampled_from(["level", "is_charging"]), json_values),
                    "extras": st.dictionaries(
                        st.sampled_from(["temp1", "temperature", "humidity"]) | st.text(max_size=70),
                        numbers | json_values,
                    ),
                    "event": json_values,
                    "activity": json_values,
                },
            )
        },
    ).map(json.dumps),
    local_tz=zones,
)
def test_any_json_body_is_decoded_or_rejected_with_an_osmand_error(body: str | bytes, local_tz: timezone) -> None:
    raw = body.encode() if isinstance(body, str) else body
    try:
        position = decode_json(raw, received_at=RECEIVED_AT, local_tz=local_tz)
    except OsmandError:
        return
    assert position == decode_json(raw, received_at=RECEIVED_AT, local_tz=local_tz)
    assert to_reading(position).seq == (position.device_time - EPOCH) // timedelta(milliseconds=1)
