"""The OsmAnd protocol: positions and sensor values that phone apps and GPS trackers send over HTTP.

Two forms reach the server (protocol description: traccar.org/osmand; reference decoder: Traccar's
``OsmAndProtocolDecoder``, whose test vectors are in ``tests/fixtures/osmand/vectors.json``):

- the query form, ``/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0``, sent by the OsmAnd app,
  Traccar Client and many GPS devices, as GET parameters or as a form-encoded POST body: :func:`decode_query`;
- the JSON form, ``{"device_id": ..., "location": {"timestamp": ..., "coords": {...}, "battery": {...}}}``,
  sent by Traccar Client (the transistorsoft background-geolocation format): :func:`decode_json`.

Both give one :class:`OsmandPosition`; :func:`to_reading` turns it into a :class:`Reading`. OsmAnd clients
send no sequence number, so the device time in epoch milliseconds is the reading's identity: a position sent
twice is the same reading twice.

Errors: a request that a compatible server refuses (HTTP 400) raises :class:`OsmandError`, a ``ValueError``
whose message names the parameter and the value at fault. Nothing a client sends raises anything else.

The module does no I/O and reads no clock: the receive time and the server's time zone come in as arguments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import islice
from typing import Literal

import msgspec

from coldchain.domain.canonical import canonical_text
from coldchain.domain.readings import Reading

__all__ = [
    "KMH_PER_KNOT",
    "KMH_PER_MPS",
    "MAX_BODY_BYTES",
    "MAX_NAME_CHARS",
    "MAX_PARAMETERS",
    "MAX_VALUE_CHARS",
    "OsmandError",
    "OsmandPosition",
    "TimeSource",
    "decode_json",
    "decode_query",
    "to_reading",
]

MAX_PARAMETERS = 100
"""Most parameters (query form) or extras (JSON form) one request may carry; real clients send about 15."""
MAX_NAME_CHARS = 64
"""Longest parameter name accepted."""
MAX_VALUE_CHARS = 256
"""Longest parameter value accepted (the device id included)."""
MAX_BODY_BYTES = 16 * 1024
"""Largest JSON body accepted; Traccar Client sends under 1 KiB."""

KMH_PER_KNOT = 1.852
"""The query form's speed is in knots (traccar.org/osmand); a nautical mile is exactly 1852 m."""
KMH_PER_MPS = 3.6
"""The JSON form's speed is in metres per second."""

_LARGEST_EPOCH_SECONDS = 2**31 - 1
"""A numeric timestamp above this (Java's Integer.MAX_VALUE, in 2038) is in milliseconds, not seconds."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

TimeSource = Literal["device", "server"]
"""Where ``device_time`` came from: the request's timestamp, or the receive time when it had none."""


class OsmandError(ValueError):
    """A request that a compatible server rejects (HTTP 400); the message says which parameter and why."""


class OsmandPosition(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded OsmAnd request.

    ``device_time`` is aware and in UTC; ``utc_offset_min`` is the offset the timestamp carried (0 for epoch
    numbers, local-time strings and a missing timestamp). A value the client did not send, or sent as unknown
    (a negative speed, bearing, accuracy, battery or humidity; ``-1`` is the protocol's "unknown"), is
    ``None``; so are the coordinates when the device had no fix. ``attributes`` keeps every parameter this
    module does not interpret (``hdop``, ``cell``, ``ignition``, JSON ``extras``...) as text; a repeated query
    parameter (``cell``, ``wifi``) keeps its values joined by ``;`` in request order.
    """

    device_id: str
    device_time: datetime
    utc_offset_min: int = 0
    time_source: TimeSource = "device"
    latitude: float | None = None
    longitude: float | None = None
    speed_kmh: float | None = None
    bearing_deg: float | None = None
    altitude_m: float | None = None
    accuracy_m: float | None = None
    battery_pct: float | None = None
    temperature_c: float | None = None
    humidity_pct: float | None = None
    attributes: dict[str, str] = msgspec.field(default_factory=dict)


def to_reading(position: OsmandPosition) -> Reading:
    """The position as a :class:`Reading`, whose ``seq`` is the device time in epoch milliseconds."""
    return Reading(
        seq=(position.device_time - _EPOCH) // _ONE_MS,
        device_time=position.device_time,
        utc_offset_min=position.utc_offset_min,
        temperature_c=position.temperature_c,
        humidity_pct=position.humidity_pct,
        latitude=position.latitude,
        longitude=position.longitude,
        battery_pct=position.battery_pct,
    )


# --- Query form ---------------------------------------------------------------------------------------------

_QUERY_FIELDS = frozenset(
    {
        "id",
        "deviceid",
        "timestamp",
        "lat",
        "lon",
        "location",
        "speed",
        "bearing",
        "heading",
        "altitude",
        "accuracy",
        "batt",
        "temp1",
        "temperature",
        "humidity",
    }
)
"""The parameters this module interprets; each may appear once. Any other becomes an attribute."""


def decode_query(
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    received_at: datetime,
    local_tz: tzinfo = UTC,
) -> OsmandPosition:
    """Decode the query form from its already percent-decoded parameters, in request order.

    Pass the pairs (``urllib.parse.parse_qsl(query, keep_blank_values=True)``) rather than a mapping when
    parameters can repeat, as ``cell`` and ``wifi`` do. ``received_at`` stands in for a missing timestamp;
    ``local_tz`` is the zone of a ``yyyy-MM-dd HH:mm:ss`` timestamp, which carries none.
    """
    received_utc = _as_utc(received_at)
    fields: dict[str, str] = {}
    others: dict[str, list[str]] = {}
    for name, value in _bounded(params):
        if name not in _QUERY_FIELDS:
            others.setdefault(name, []).append(value)
        elif name in fields:
            raise OsmandError(f"parameter {name!r} is given more than once")
        else:
            fields[name] = value

    device = _either(fields, "id", "deviceid")
    if device is None:
        raise OsmandError("no device id: send 'id' or 'deviceid'")
    device_time, utc_offset_min, time_source = _device_time(
        "timestamp", fields.get("timestamp"), received_at=received_utc, local_tz=local_tz
    )
    latitude, longitude = _query_coordinates(fields)
    bearing = _either(fields, "bearing", "heading")
    temperature_name = _temperature_name(fields)
    if temperature_name == "temp1" and "temperature" in fields:
        others["temperature"] = [fields["temperature"]]
    temperature = None if temperature_name is None else (temperature_name, fields[temperature_name])
    speed_knots = _optional_number(fields, "speed")

    return OsmandPosition(
        device_id=_device_id(*device),
        device_time=device_time,
        utc_offset_min=utc_offset_min,
        time_source=time_source,
        latitude=latitude,
        longitude=longitude,
        speed_kmh=_speed_kmh(speed_knots, KMH_PER_KNOT),
        bearing_deg=None if bearing is None else _bearing(bearing[0], _number(*bearing)),
        altitude_m=_optional_number(fields, "altitude"),
        accuracy_m=_unknown_if_negative(_optional_number(fields, "accuracy")),
        battery_pct=_percent("batt", _optional_number(fields, "batt")),
        temperature_c=None if temperature is None else _temperature(temperature[0], _number(*temperature)),
        humidity_pct=_percent("humidity", _optional_number(fields, "humidity")),
        attributes={name: ";".join(values) for name, values in others.items()},
    )


def _bounded(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    pairs = list(islice(items, MAX_PARAMETERS + 1))
    if len(pairs) > MAX_PARAMETERS:
        raise OsmandError(f"too many parameters: at most {MAX_PARAMETERS} are accepted")
    for name, value in pairs:
        _check_name(name)
        _check_text(f"parameter {name!r}", value)
    return pairs


def _either(fields: Mapping[str, str], name: str, alias: str) -> tuple[str, str] | None:
    """The (name, value) of a parameter sent under its name or its alias; both are fine if they agree."""
    if name in fields and alias in fields and fields[name] != fields[alias]:
        raise OsmandError(
            f"{name!r} and its alias {alias!r} disagree: {fields[name]!r} and {fields[alias]!r}; send one"
        )
    for candidate in (name, alias):
        if candidate in fields:
            return candidate, fields[candidate]
    return None


def _query_coordinates(fields: Mapping[str, str]) -> tuple[float | None, float | None]:
    if "location" not in fields:
        return _coordinates("lat", _optional_number(fields, "lat"), "lon", _optional_number(fields, "lon"))
    if "lat" in fields or "lon" in fields:
        raise OsmandError("send either 'location' or 'lat' and 'lon', not both")
    text = fields["location"]
    parts = text.split(",")
    if len(parts) != 2:
        raise OsmandError(f"location must be 'lat,lon', got {text!r}")
    return _coordinates(
        "location latitude",
        _number("location latitude", parts[0]),
        "location longitude",
        _number("location longitude", parts[1]),
    )


def _optional_number(fields: Mapping[str, str], name: str) -> float | None:
    if name not in fields:
        return None
    return _number(name, fields[name])


# --- JSON form ----------------------------------------------------------------------------------------------
# Wire types are lenient about unknown fields: Traccar Client sends many (uuid, age, floor, speed_accuracy...)
# and a new client version may add more; only the fields read below are typed, so only they can be refused.


class _CoordsIn(msgspec.Struct, frozen=True, kw_only=True):
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None


class _BatteryIn(msgspec.Struct, frozen=True, kw_only=True):
    level: float | None = None
    is_charging: object = None


class _LocationIn(msgspec.Struct, frozen=True, kw_only=True):
    timestamp: str | int | None = None
    coords: _CoordsIn | None = None
    battery: _BatteryIn | None = None
    extras: dict[str, object] = msgspec.field(default_factory=dict)
    event: object = None
    is_moving: object = None
    odometer: object = None
    activity: object = None
    mock: object = None
    uuid: object = None


class _PositionIn(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str | None = None
    location: _LocationIn | list[_LocationIn] | None = None


_position_in = msgspec.json.Decoder(_PositionIn)


def decode_json(body: bytes, *, received_at: datetime, local_tz: tzinfo = UTC) -> OsmandPosition:
    """Decode the JSON form from the request body; ``received_at``, ``local_tz`` as in :func:`decode_query`.

    Speed is in m/s and ``battery.level`` is a fraction (1 = 100 %). ``extras`` carries the sensor values
    (``temp1`` or ``temperature``, ``humidity``); the rest of it, and the location's ``event``, ``is_moving``,
    ``odometer``, ``activity``, ``mock``, ``uuid`` and the battery's ``is_charging``, become attributes.
    """
    received_utc = _as_utc(received_at)
    if len(body) > MAX_BODY_BYTES:
        raise OsmandError(f"JSON body is {len(body)} bytes: at most {MAX_BODY_BYTES} are accepted")
    try:
        message = _position_in.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise OsmandError(f"invalid JSON body: {error}") from error
    except RecursionError as error:
        raise OsmandError("invalid JSON body: nested too deeply") from error

    if message.device_id is None:
        raise OsmandError("no device id: send 'device_id'")
    location = message.location
    if location is None:
        raise OsmandError("no location: send 'location' with 'timestamp' and 'coords'")
    if isinstance(location, list):
        raise OsmandError(f"'location' is a list of {len(location)}: send one location per request")
    timestamp = None if location.timestamp is None else str(location.timestamp)
    device_time, utc_offset_min, time_source = _device_time(
        "location.timestamp", timestamp, received_at=received_utc, local_tz=local_tz
    )
    coords = location.coords or _CoordsIn()
    latitude, longitude = _coordinates(
        "location.coords.latitude", coords.latitude, "location.coords.longitude", coords.longitude
    )
    battery = location.battery or _BatteryIn()
    extras = location.extras
    if len(extras) > MAX_PARAMETERS:
        raise OsmandError(f"too many location.extras: at most {MAX_PARAMETERS} are accepted")
    temperature_name = _temperature_name(extras)
    temperature_label = f"location.extras.{temperature_name}"

    return OsmandPosition(
        device_id=_device_id("device_id", message.device_id),
        device_time=device_time,
        utc_offset_min=utc_offset_min,
        time_source=time_source,
        latitude=latitude,
        longitude=longitude,
        speed_kmh=_speed_kmh(coords.speed, KMH_PER_MPS),
        bearing_deg=_bearing("location.coords.heading", coords.heading),
        altitude_m=coords.altitude,
        accuracy_m=_unknown_if_negative(coords.accuracy),
        battery_pct=_battery_from_fraction(battery.level),
        temperature_c=_temperature(temperature_label, _extra_number(extras, temperature_name)),
        humidity_pct=_percent("location.extras.humidity", _extra_number(extras, "humidity")),
        attributes=_json_attributes(location, battery, used={temperature_name, "humidity"}),
    )


def _extra_number(extras: Mapping[str, object], name: str | None) -> float | None:
    """A sensor value from ``extras``: a JSON number, or a number in a string as the query form sends it."""
    if name is None or name not in extras:
        return None
    value = extras[name]
    label = f"location.extras.{name}"
    if isinstance(value, str):
        return _number(label, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OsmandError(f"{label} must be a number, got {_as_text(value)[:MAX_VALUE_CHARS]}")
    try:
        return float(value)
    except OverflowError as error:
        raise OsmandError(f"{label} is too large a number ({len(str(value))} digits)") from error


def _battery_from_fraction(level: float | None) -> float | None:
    if level is None or level < 0:
        return None
    if level > 1:
        raise OsmandError(f"location.battery.level is a fraction from 0 to 1 (1 = 100 %), got {level}")
    return level * 100


def _json_attributes(location: _LocationIn, battery: _BatteryIn, *, used: set[str | None]) -> dict[str, str]:
    metadata = {
        "event": location.event,
        "is_moving": location.is_moving,
        "odometer": location.odometer,
        "activity": location.activity,
        "mock": location.mock,
        "uuid": location.uuid,
        "is_charging": battery.is_charging,
    }
    attributes = {name: _as_text(value) for name, value in metadata.items() if value is not None}
    for name, value in location.extras.items():
        if name in used:
            continue
        _check_name(name)
        if name in attributes:
            raise OsmandError(f"location.extras.{name} clashes with the attribute {name!r} of the location")
        attributes[name] = _as_text(value)
    for name, text in attributes.items():
        _check_text(name, text)
    return attributes


def _as_text(value: object) -> str:
    """A string as itself; anything else as its JSON text (``true``, ``12.5``, ``{"type":"still"}``)."""
    if isinstance(value, str):
        return value
    return canonical_text(value)


# --- Shared rules -------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+\- ])(?P<hours>[0-9]{2}):?(?P<minutes>[0-9]{2}))?"
)
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
"""Control characters (PostgreSQL refuses NUL in text) and lone surrogates (not encodable as UTF-8)."""


def _as_utc(received_at: datetime) -> datetime:
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(UTC)


def _check_name(name: str) -> None:
    if not name:
        raise OsmandError("a parameter has an empty name")
    if len(name) > MAX_NAME_CHARS:
        raise OsmandError(f"parameter name {name[:MAX_NAME_CHARS]!r}... is longer than {MAX_NAME_CHARS} characters")
    if _UNSTORABLE.search(name):
        raise OsmandError(f"parameter name {name!r} contains a control character")


def _check_text(label: str, text: str) -> None:
    if len(text) > MAX_VALUE_CHARS:
        raise OsmandError(f"{label} is {len(text)} characters long: at most {MAX_VALUE_CHARS} are accepted")
    if _UNSTORABLE.search(text):
        raise OsmandError(f"{label} contains a control character: {text!r}")


def _device_id(name: str, value: str) -> str:
    _check_text(name, value)
    if not value.strip():
        raise OsmandError(f"no device id: {name} is empty")
    return value


def _device_time(
    name: str, text: str | None, *, received_at: datetime, local_tz: tzinfo
) -> tuple[datetime, int, TimeSource]:
    """The UTC time, the offset it carried in minutes, and its source; a missing timestamp is ``received_at``.

    Forms, as Traccar's decoder reads them: epoch seconds, or milliseconds when above 2**31 - 1; ISO 8601 /
    RFC 3339 with ``T`` or a space, with or without an offset; without an offset (``yyyy-MM-dd HH:mm:ss``)
    it is local time in ``local_tz``. An offset's ``+`` sent unencoded in a query arrives as a space; that is
    read as ``+`` too.
    """
    if text is None:
        return received_at, 0, "server"
    if _DIGITS.fullmatch(text):
        number = int(text)
        milliseconds = number if number > _LARGEST_EPOCH_SECONDS else number * 1000
        try:
            return _EPOCH + timedelta(milliseconds=milliseconds), 0, "device"
        except OverflowError as error:
            raise OsmandError(f"{name} {text!r} is too far in the future") from error
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise OsmandError(
            f"{name} must be epoch seconds or milliseconds, ISO 8601 or 'yyyy-MM-dd HH:mm:ss', got {text!r}"
        )
    offset_min = 0
    zone = local_tz
    if match["utc"]:
        zone = UTC
    elif match["sign"]:
        offset_min = (-1 if match["sign"] == "-" else 1) * (int(match["hours"]) * 60 + int(match["minutes"]))
    try:
        if match["sign"]:
            zone = timezone(timedelta(minutes=offset_min))
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
        utc = local.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise OsmandError(f"{name} {text!r} is not a valid date and time: {error}") from error
    return utc, offset_min, "device"


def _number(name: str, text: str) -> float:
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise OsmandError(f"{name} must be a number, got {text!r}")
    return value


def _coordinates(
    lat_name: str, latitude: float | None, lon_name: str, longitude: float | None
) -> tuple[float | None, float | None]:
    """Both or neither: a request without coordinates is a valid position without a fix.

    (0, 0) is read as no fix too: trackers without one send it, and Traccar's decoder long treated it so.
    """
    if latitude is None and longitude is None:
        return None, None
    if latitude is None or longitude is None:
        missing, sent = (lat_name, lon_name) if latitude is None else (lon_name, lat_name)
        raise OsmandError(f"{sent} without {missing}: send both or neither")
    if not -90 <= latitude <= 90:
        raise OsmandError(f"{lat_name} must be between -90 and 90, got {latitude}")
    if not -180 <= longitude <= 180:
        raise OsmandError(f"{lon_name} must be between -180 and 180, got {longitude}")
    if latitude == 0 and longitude == 0:
        return None, None
    return latitude, longitude


def _unknown_if_negative(value: float | None) -> float | None:
    """-1 is the protocol's "unknown" for quantities that cannot be negative; iOS (CoreLocation) reports any
    negative speed, course or accuracy as invalid, so every negative value of such a quantity is unknown."""
    return None if value is None or value < 0 else value


def _speed_kmh(value: float | None, kmh_per_unit: float) -> float | None:
    known = _unknown_if_negative(value)
    return None if known is None else known * kmh_per_unit


def _bearing(name: str, value: float | None) -> float | None:
    known = _unknown_if_negative(value)
    if known is not None and known > 360:
        raise OsmandError(f"{name} must be between 0 and 360 degrees, got {known}")
    return known


def _percent(name: str, value: float | None) -> float | None:
    known = _unknown_if_negative(value)
    if known is not None and known > 100:
        raise OsmandError(f"{name} must be a percentage from 0 to 100, got {known}")
    return known


def _temperature_name(fields: Mapping[str, object]) -> str | None:
    """``temp1`` (the first probe, Traccar's name for it) wins over ``temperature``: a logger that sends both
    reports the product's probe as ``temp1`` and its own housing as ``temperature``, kept as an attribute."""
    for name in ("temp1", "temperature"):
        if name in fields:
            return name
    return None


def _temperature(name: str, value: float | None) -> float | None:
    """A probe reading outside -100..100 °C is a sensor fault (a DS18B20 reports -127 when disconnected)."""
    if value is not None and not -100 <= value <= 100:
        raise OsmandError(f"{name} must be between -100 and 100 °C, got {value}")
    return value
