"""Berlinger logger exports: Fridge-tag 2, 2 L, UL and Q-tag CLm doc LR text files, as downloaded over USB.

The format is indentation-structured ``Key: value`` lines (one space per level, CRLF), several pairs on one
line separated by ``, ``: a header (``Device``, ``Fw Vers``), ``Conf:`` (serial, alarm limits ``T AL`` with
delays ``t AL`` in minutes, logging interval), ``Hist:`` on Fridge-tags (one block per local day: min/max/avg
and the accumulated minutes ``t Acc`` per alarm), ``Res:`` on Q-tags (the run's summary, MKT and alarm
events), and on logging models a tab-separated ``Data:`` block (``yyyy-MM-dd hh:mm<TAB>T<TAB>out-of-limits
flag``; ``--.-`` is no value). The file closes with the device's certificate and signature (``Sig:``).

Times are the device's local clock with no offset: the caller says which offset it ran on
(``utc_offset_min``) and every time is returned as aware UTC, readings keeping the offset.

Any malformed input raises :class:`LoggerFileError` with the 1-based line number and what was wrong; nothing
partial is returned.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import msgspec

from coldchain.domain.profiles import Action, AlarmRule
from coldchain.domain.readings import Reading

__all__ = [
    "AlarmKind",
    "BerlingerAlarmLimit",
    "BerlingerConfiguration",
    "BerlingerDevice",
    "BerlingerExport",
    "DailyAlarm",
    "DailySummary",
    "LoggerFileError",
    "Marker",
    "RunAlarm",
    "RunAlarmEvent",
    "RunSummary",
    "parse_berlinger",
]

AlarmKind = Literal["cold_consecutive", "hot_consecutive", "cold_cumulative", "hot_cumulative"]

#: Q-tag alarm ``Type`` codes (0 is a disabled alarm slot).
_QTAG_ALARM_TYPES: dict[int, AlarmKind] = {
    1: "cold_consecutive",
    2: "hot_consecutive",
    3: "cold_cumulative",
    4: "hot_cumulative",
}

#: Fridge-tag alarm slots: 0 is the low (freeze) alarm, 1 the high (heat) alarm, both single-event
#: (consecutive) alarms as in WHO PQS E006/TR06.
_FRIDGE_TAG_ALARMS: dict[int, AlarmKind] = {0: "cold_consecutive", 1: "hot_consecutive"}

_DATA_HEADER = ["yyyy-MM-dd hh:mm", "T", "Out of limits"]
_MARKER_HEADER = ["Number", "T", "yyyy-MM-dd hh:mm"]
_NO_VALUE = "--.-"
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
_PAIR_SPLIT = re.compile(r", (?=[A-Za-z][A-Za-z0-9 ]*:(?: |,|$))")


class LoggerFileError(ValueError):
    """A logger export is malformed: ``line`` (1-based) and what was wrong there."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


class BerlingerDevice(msgspec.Struct, frozen=True, kw_only=True):
    """Which device wrote the file."""

    model: str
    serial: str
    firmware: str
    format_version: str
    pcb: str | None = None
    device_lot: str | None = None


class BerlingerAlarmLimit(msgspec.Struct, frozen=True, kw_only=True):
    """One configured alarm: ``kind``, limit ``threshold_c`` (``T AL``) and delay ``delay_min`` (``t AL``).

    Berlinger limits are exclusive: checked against the Fridge-tag 2 L export, minutes strictly above +8.0 °C
    and strictly below +2.0 °C match the device's daily ``t Acc`` on every one of its 38 days within one
    logging interval per excursion, while counting readings equal to the limit does not.
    """

    index: int
    kind: AlarmKind
    threshold_c: float
    delay_min: int

    def to_rule(self, *, action: Action = "quarantine") -> AlarmRule:
        """The same alarm as a profile rule (scope shipment)."""
        cold = self.kind.startswith("cold")
        return AlarmRule(
            name=f"{self.kind.replace('_', ' ')} {self.threshold_c:+.1f} °C",
            metric="temperature",
            direction="below" if cold else "above",
            threshold=self.threshold_c,
            inclusive=False,
            mode="consecutive" if self.kind.endswith("consecutive") else "cumulative",
            delay_min=float(self.delay_min),
            scope="shipment",
            action=action,
        )


class BerlingerConfiguration(msgspec.Struct, frozen=True, kw_only=True):
    """The device's configuration (``Conf:``)."""

    temperature_unit: Literal["C"]
    alarms: list[BerlingerAlarmLimit]
    logging_interval_min: int | None = None
    measurement_delay_min: int | None = None
    start_delay_min: int | None = None
    mkt_activation_energy_kj_mol: float | None = None


class DailyAlarm(msgspec.Struct, frozen=True, kw_only=True):
    """One alarm slot on one day: accumulated minutes beyond the limit (``t Acc``), when the alarm was first
    met that day (``TS A``), and the device's ``C A`` counter as printed."""

    index: int
    minutes: int
    first_at: datetime | None = None
    alarm_counter: int | None = None


class DailySummary(msgspec.Struct, frozen=True, kw_only=True):
    """One local day of a Fridge-tag (``Hist:``): the per-day evidence a summary-only device gives."""

    day: date
    min_c: float | None
    min_at: datetime | None
    max_c: float | None
    max_at: datetime | None
    mean_c: float | None
    alarms: list[DailyAlarm]
    events: int | None = None
    sensor_timeout_min: int | None = None
    external_sensor_timeout_min: int | None = None


class RunAlarmEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One Q-tag alarm event: began (``TS S``), minutes beyond (``t A``), alarm met (``TS A``), ended
    (``TS E``, ``None`` while it lasted to the end), extreme value (``T M``) and when (``TS M``)."""

    began_at: datetime | None
    minutes: int | None
    met_at: datetime | None
    ended_at: datetime | None = None
    extreme_c: float | None = None
    extreme_at: datetime | None = None


class RunAlarm(msgspec.Struct, frozen=True, kw_only=True):
    """The events of one Q-tag alarm slot."""

    index: int
    events: list[RunAlarmEvent]


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A Q-tag run (``Res:``): when it started and stopped, min/max, MKT and mean as the device printed
    them."""

    activated_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    min_c: float | None
    min_at: datetime | None
    max_c: float | None
    max_at: datetime | None
    mkt_c: float | None
    mean_c: float | None
    run_number: int | None
    alarms: list[RunAlarm]


class Marker(msgspec.Struct, frozen=True, kw_only=True):
    """A marker the user set on a Q-tag (``Marker:`` rows)."""

    number: int
    temperature_c: float | None
    at: datetime


class BerlingerExport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a Berlinger export says.

    ``readings`` (``Data:`` rows, seq 1..n) is empty on summary-only models; ``out_of_limits`` holds the
    device's own flag for each reading. ``days`` come from Fridge-tags, ``run`` from Q-tags.
    """

    device: BerlingerDevice
    configuration: BerlingerConfiguration
    utc_offset_min: int
    activated_at: datetime | None
    report_created_at: datetime | None
    days: list[DailySummary]
    run: RunSummary | None
    readings: list[Reading]
    out_of_limits: list[bool]
    markers: list[Marker]
    signature: str


# -- the line structure ---------------------------------------------------------------------------------


class _Node:
    """One ``Key: value`` line with the lines indented under it, or a section holding tab rows."""

    __slots__ = ("children", "indent", "line", "pairs", "rows")

    def __init__(self, line: int, indent: int, pairs: list[tuple[str, str]]) -> None:
        self.line = line
        self.indent = indent
        self.pairs = pairs
        self.children: list[_Node] = []
        self.rows: list[tuple[int, list[str]]] = []

    @property
    def key(self) -> str:
        return self.pairs[0][0]

    @property
    def last_line(self) -> int:
        if self.rows:
            return self.rows[-1][0]
        return self.children[-1].last_line if self.children else self.line

    def find(self, key: str) -> _Node | None:
        for child in self.children:
            if child.key == key:
                return child
        return None

    def section(self, key: str) -> _Node:
        found = self.find(key)
        if found is None:
            raise LoggerFileError(self.last_line + 1, f"missing '{key}:' under '{self.key}:'")
        return found

    def value(self, key: str) -> tuple[str, int] | None:
        """The value of ``key`` on a child line (a line may carry several pairs)."""
        for child in self.children:
            for pair_key, pair_value in child.pairs:
                if pair_key == key:
                    return pair_value, child.line
        return None

    def required(self, key: str) -> tuple[str, int]:
        found = self.value(key)
        if found is None:
            raise LoggerFileError(self.last_line + 1, f"missing '{key}' under '{self.key}:'")
        return found

    def pair(self, key: str) -> str | None:
        for pair_key, pair_value in self.pairs:
            if pair_key == key:
                return pair_value
        return None


def _split_pairs(content: str, line: int) -> list[tuple[str, str]]:
    pairs = []
    for part in _PAIR_SPLIT.split(content):
        key, colon, value = part.partition(":")
        if not colon or not key.strip():
            raise LoggerFileError(line, f"expected 'Key: value', got {part!r}")
        if value and not value.startswith(" "):
            raise LoggerFileError(line, f"expected a space after '{key}:', got {part!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _tree(lines: list[str]) -> _Node:
    root = _Node(0, -1, [("file", "")])
    stack = [root]
    section_with_rows: _Node | None = None
    previous_indent = -1
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            raise LoggerFileError(number, "empty line")
        if text.startswith("\t"):
            if section_with_rows is None:
                raise LoggerFileError(number, "tab-separated row outside a 'Data:' or 'Marker:' section")
            section_with_rows.rows.append((number, text.split("\t")[1:]))
            continue
        content = text.lstrip(" ")
        indent = len(text) - len(content)
        if indent > previous_indent + 1:
            raise LoggerFileError(number, f"indented {indent} spaces, expected at most {previous_indent + 1}")
        previous_indent = indent
        node = _Node(number, indent, _split_pairs(content, number))
        while stack[-1].indent >= indent:
            stack.pop()
        stack[-1].children.append(node)
        stack.append(node)
        section_with_rows = node if indent == 0 and node.key in ("Data", "Marker") else None
    return root


# -- values ---------------------------------------------------------------------------------------------


def _number(text: str, line: int, what: str, *, missing_ok: bool = False) -> float | None:
    if text == _NO_VALUE and missing_ok:
        return None
    try:
        value = float(text)
    except ValueError:
        raise LoggerFileError(line, f"{what}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise LoggerFileError(line, f"{what}: not a finite number: {text!r}")
    return value


def _integer(text: str, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LoggerFileError(line, f"{what}: not a whole number: {text!r}") from None


class _Clock:
    """The device's local clock: parses its times and turns them into aware UTC."""

    def __init__(self, utc_offset_min: int) -> None:
        self.offset = timedelta(minutes=utc_offset_min)

    def utc(self, local: datetime) -> datetime:
        """``local`` is the device's wall clock (naive); the result is aware UTC."""
        return local.replace(tzinfo=UTC) - self.offset

    def moment(self, text: str, line: int, what: str) -> datetime:
        if _MOMENT.fullmatch(text) is not None:
            try:
                return self.utc(datetime.fromisoformat(text))
            except ValueError:
                pass
        raise LoggerFileError(line, f"{what}: expected 'yyyy-MM-dd hh:mm', got {text!r}")

    def optional_moment(self, text: str | None, line: int, what: str) -> datetime | None:
        return None if not text else self.moment(text, line, what)

    def time_of_day(self, day: date, text: str | None, line: int, what: str) -> datetime | None:
        if not text:
            return None
        try:
            clock = time.fromisoformat(text)
        except ValueError:
            raise LoggerFileError(line, f"{what}: expected 'hh:mm', got {text!r}") from None
        return self.utc(datetime.combine(day, clock))


# -- sections -------------------------------------------------------------------------------------------


def _configuration(conf: _Node) -> BerlingerConfiguration:
    unit = conf.value("Temp unit")
    if unit is not None and unit[0] != "C":
        raise LoggerFileError(unit[1], f"temperature unit {unit[0]!r} is not supported (only C)")

    def optional_int(key: str) -> int | None:
        found = conf.value(key)
        return None if found is None else _integer(found[0], found[1], key)

    energy = conf.value("MKT Energy")
    return BerlingerConfiguration(
        temperature_unit="C",
        alarms=_alarm_limits(conf.section("Alarm")),
        logging_interval_min=optional_int("Logging Interval"),
        measurement_delay_min=optional_int("Measurement delay"),
        start_delay_min=optional_int("Start Delay"),
        mkt_activation_energy_kj_mol=(None if energy is None else _number(energy[0], energy[1], "MKT Energy")),
    )


def _alarm_limits(alarms: _Node) -> list[BerlingerAlarmLimit]:
    """Q-tags give each slot a ``Type``; Fridge-tags have fixed slots (0 low, 1 high)."""
    qtag = any(slot.value("Type") is not None for slot in alarms.children)
    limits = []
    for slot in alarms.children:
        index = _integer(slot.key, slot.line, "alarm slot")
        if qtag:
            kind_code = slot.value("Type")
            if kind_code is None:
                raise LoggerFileError(slot.line, f"alarm {index}: missing 'Type'")
            code = _integer(kind_code[0], kind_code[1], "alarm Type")
            if code == 0:
                continue
            if code not in _QTAG_ALARM_TYPES:
                raise LoggerFileError(kind_code[1], f"alarm {index}: unknown Type {code}")
            kind = _QTAG_ALARM_TYPES[code]
        else:
            if index not in _FRIDGE_TAG_ALARMS:
                raise LoggerFileError(slot.line, f"unknown Fridge-tag alarm slot {index}")
            kind = _FRIDGE_TAG_ALARMS[index]
        limit_text, limit_line = slot.required("T AL")
        delay_text, delay_line = slot.required("t AL")
        threshold_c = _number(limit_text, limit_line, "T AL")
        assert threshold_c is not None
        limits.append(
            BerlingerAlarmLimit(
                index=index,
                kind=kind,
                threshold_c=threshold_c,
                delay_min=_integer(delay_text, delay_line, "t AL"),
            )
        )
    return limits


def _day(block: _Node, clock: _Clock) -> DailySummary:
    day_text, day_line = block.required("Date")
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise LoggerFileError(day_line, f"Date: expected 'yyyy-MM-dd', got {day_text!r}") from None

    def temperature(key: str) -> tuple[float | None, int]:
        text, line = block.required(key)
        return _number(text, line, key, missing_ok=True), line

    min_c, min_line = temperature("Min T")
    max_c, max_line = temperature("Max T")
    mean_c, _ = temperature("Avrg T")
    alarms = []
    for slot in block.section("Alarm").children:
        minutes_text, minutes_line = slot.required("t Acc")
        first = slot.value("TS A")
        counter = slot.value("C A")
        alarms.append(
            DailyAlarm(
                index=_integer(slot.key, slot.line, "alarm slot"),
                minutes=_integer(minutes_text, minutes_line, "t Acc"),
                first_at=None if first is None else clock.time_of_day(day, first[0], first[1], "TS A"),
                alarm_counter=None if counter is None else _integer(counter[0], counter[1], "C A"),
            )
        )
    events = block.value("Events")

    def timeout(section: str) -> int | None:
        found = block.find(section)
        if found is None:
            return None
        text, line = found.required("t AccST")
        return _integer(text, line, "t AccST")

    min_at = block.value("TS Min T")
    max_at = block.value("TS Max T")
    return DailySummary(
        day=day,
        min_c=min_c,
        min_at=clock.time_of_day(day, min_at[0] if min_at else None, min_line, "TS Min T"),
        max_c=max_c,
        max_at=clock.time_of_day(day, max_at[0] if max_at else None, max_line, "TS Max T"),
        mean_c=mean_c,
        alarms=alarms,
        events=None if events is None else _integer(events[0], events[1], "Events"),
        sensor_timeout_min=timeout("Int Sensor timeout"),
        external_sensor_timeout_min=timeout("Ext Sensor timeout"),
    )


def _run(res: _Node, clock: _Clock) -> RunSummary:
    def moment(key: str) -> datetime | None:
        found = res.value(key)
        return None if found is None else clock.optional_moment(found[0], found[1], key)

    def temperature(key: str) -> float | None:
        found = res.value(key)
        return None if found is None else _number(found[0], found[1], key, missing_ok=True)

    alarms = []
    section = res.find("Alarm")
    for slot in section.children if section else []:
        events = []
        for event in slot.children:
            minutes = event.pair("t A")
            extreme = event.pair("T M")
            events.append(
                RunAlarmEvent(
                    began_at=clock.optional_moment(event.pair("TS S"), event.line, "TS S"),
                    minutes=None if minutes is None else _integer(minutes, event.line, "t A"),
                    met_at=clock.optional_moment(event.pair("TS A"), event.line, "TS A"),
                    ended_at=clock.optional_moment(event.pair("TS E"), event.line, "TS E"),
                    extreme_c=None if not extreme else _number(extreme, event.line, "T M"),
                    extreme_at=clock.optional_moment(event.pair("TS M"), event.line, "TS M"),
                )
            )
        alarms.append(RunAlarm(index=_integer(slot.key, slot.line, "alarm slot"), events=events))
    run_number = res.value("Run Number")
    return RunSummary(
        activated_at=moment("TS Actv"),
        started_at=moment("TS Start"),
        stopped_at=moment("TS Stop"),
        min_c=temperature("Min T"),
        min_at=moment("TS Min T"),
        max_c=temperature("Max T"),
        max_at=moment("TS Max T"),
        mkt_c=temperature("MKT"),
        mean_c=temperature("Avrg T"),
        run_number=None if run_number is None else _integer(run_number[0], run_number[1], "Run Number"),
        alarms=alarms,
    )


def _header_row(section: _Node, expected: list[str]) -> list[tuple[int, list[str]]]:
    if not section.rows:
        raise LoggerFileError(section.line + 1, f"'{section.key}:' without its header row")
    line, header = section.rows[0]
    if [cell for cell in header if cell] != expected:
        raise LoggerFileError(line, f"unexpected {section.key} header {header!r}, expected {expected!r}")
    return section.rows[1:]


def _data(section: _Node, clock: _Clock, utc_offset_min: int) -> tuple[list[Reading], list[bool]]:
    readings: list[Reading] = []
    flags: list[bool] = []
    previous: datetime | None = None
    for line, cells in _header_row(section, _DATA_HEADER):
        if len(cells) == 2:
            cells = [*cells, ""]  # rows within limits may end without the flag's tab
        if len(cells) != 3:
            raise LoggerFileError(line, f"data row needs a time, a temperature and a flag, got {cells!r}")
        moment_text, temperature_text, flag = cells
        moment = clock.moment(moment_text, line, "data row time")
        if previous is not None and moment <= previous:
            raise LoggerFileError(line, f"data row time {moment_text} is not after the row before")
        if flag not in ("", "x"):
            raise LoggerFileError(line, f"out-of-limits flag must be 'x' or empty, got {flag!r}")
        temperature_c = _number(temperature_text, line, "data row temperature", missing_ok=True)
        readings.append(
            Reading(
                seq=len(readings) + 1,
                device_time=moment,
                utc_offset_min=utc_offset_min,
                temperature_c=temperature_c,
            )
        )
        flags.append(flag == "x")
        previous = moment
    return readings, flags


def _markers(section: _Node, clock: _Clock) -> list[Marker]:
    markers = []
    for line, cells in _header_row(section, _MARKER_HEADER):
        cells = cells[:-1] if cells and cells[-1] == "" else cells
        if len(cells) != 3:
            raise LoggerFileError(line, f"marker row needs number, temperature and time, got {cells!r}")
        number_text, temperature_text, moment_text = cells
        markers.append(
            Marker(
                number=_integer(number_text, line, "marker number"),
                temperature_c=_number(temperature_text, line, "marker temperature", missing_ok=True),
                at=clock.moment(moment_text, line, "marker time"),
            )
        )
    return markers


# -- the file -------------------------------------------------------------------------------------------


def _text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoggerFileError(data.count(b"\n", 0, error.start) + 1, "not UTF-8 text") from None


def parse_berlinger(data: str | bytes, *, utc_offset_min: int = 0) -> BerlingerExport:
    """Parse a Berlinger export. ``utc_offset_min`` is the offset of the device's clock (the file has none).

    Raises :class:`LoggerFileError` (1-based line and problem) for anything malformed, including a file cut
    short (every export ends with its ``Sig:`` line, and logging models carry a ``Data:`` block).
    """
    lines = _text(data).splitlines()
    if not lines or not lines[0].startswith("Device: "):
        raise LoggerFileError(1, "not a Berlinger export: the first line must be 'Device: <model>'")
    root = _tree(lines)
    clock = _Clock(utc_offset_min)

    def top(key: str) -> tuple[str, int]:
        found = root.value(key)
        if found is None:
            raise LoggerFileError(len(lines) + 1, f"missing top-level '{key}'")
        return found

    model = top("Device")[0]
    conf = root.find("Conf")
    if conf is None:
        raise LoggerFileError(len(lines) + 1, "missing 'Conf:' section")
    configuration = _configuration(conf)
    pcb = conf.value("PCB")
    device_lot = conf.value("Lot")
    device = BerlingerDevice(
        model=model,
        serial=conf.required("Serial")[0],
        firmware=top("Fw Vers")[0],
        format_version=top("Vers")[0],
        pcb=pcb[0] if pcb else None,
        device_lot=device_lot[0] if device_lot else None,
    )

    days: list[DailySummary] = []
    activated_at = report_created_at = None
    hist = root.find("Hist")
    if hist is not None:
        activated = hist.value("TS Actv")
        created = hist.value("TS Report Creation")
        activated_at = None if activated is None else clock.moment(*activated, "TS Actv")
        report_created_at = None if created is None else clock.moment(*created, "TS Report Creation")
        days = [_day(block, clock) for block in hist.children if block.key.isdigit()]
    res = root.find("Res")
    run = None if res is None else _run(res, clock)
    if run is not None:
        activated_at = run.activated_at
    if hist is None and res is None:
        raise LoggerFileError(len(lines) + 1, "missing 'Hist:' or 'Res:' section")

    readings: list[Reading] = []
    flags: list[bool] = []
    section = root.find("Data")
    if section is not None:
        readings, flags = _data(section, clock, utc_offset_min)
    elif configuration.logging_interval_min is not None:
        raise LoggerFileError(len(lines) + 1, "a logging device's export needs a 'Data:' section")
    marker_section = root.find("Marker")
    markers = [] if marker_section is None else _markers(marker_section, clock)

    last = root.children[-1]
    if last.key != "Sig":
        raise LoggerFileError(len(lines) + 1, "file ends without its closing 'Sig:' line (truncated?)")
    signature = last.pairs[0][1]
    if not re.fullmatch(r"[0-9a-f]+", signature):
        raise LoggerFileError(last.line, "Sig: expected a hexadecimal signature")
    return BerlingerExport(
        device=device,
        configuration=configuration,
        utc_offset_min=utc_offset_min,
        activated_at=activated_at,
        report_created_at=report_created_at,
        days=days,
        run=run,
        readings=readings,
        out_of_limits=flags,
        markers=markers,
        signature=signature,
    )
