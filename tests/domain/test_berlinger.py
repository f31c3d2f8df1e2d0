"""Berlinger exports: the six real files in tests/fixtures/loggers/berlinger, and malformed ones."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from coldchain.domain.daily import daily_summaries
from coldchain.domain.evaluation import advance, evaluate, new_state, summarise
from coldchain.domain.loggers.berlinger import (
    BerlingerAlarmLimit,
    BerlingerExport,
    LoggerFileError,
    parse_berlinger,
)
from coldchain.domain.mkt import mean_kinetic_temperature
from coldchain.domain.profiles import MktSettings, Profile
from tests.domain.engine_support import BERLINGER

FRIDGE_TAG_2 = "fridgetag2_130400191542_202302140605.txt"
FRIDGE_TAG_2_EXT = "fridgetag2_130400191544_202304201514.txt"
FRIDGE_TAG_2L = "fridgetag2l_130500109088_202206081014.txt"
FRIDGE_TAG_UL = "fridgetagul_100800001215_202304201410.txt"
QTAG_RUN_2 = "qtag_clm_doc_lr_RCPJ00010_02_202211090128.txt"
QTAG_RUN_3 = "qtag_clm_doc_lr_RCPJ00010_03_202304201359.txt"


def export(name: str, **options: int) -> BerlingerExport:
    return parse_berlinger((BERLINGER / name).read_bytes(), **options)


def lines_of(name: str) -> list[str]:
    return (BERLINGER / name).read_text().splitlines()


def profile_of(parsed: BerlingerExport) -> Profile:
    """The device's own alarm configuration as a profile."""
    configuration = parsed.configuration
    return Profile(
        id=parsed.device.serial,
        name=parsed.device.model,
        label_range_c=(2.0, 8.0),
        rules=tuple(limit.to_rule() for limit in configuration.alarms),
        logging_interval_max_min=configuration.logging_interval_min,
        mkt=MktSettings(activation_energy_kj_mol=configuration.mkt_activation_energy_kj_mol or 83.144),
    )


@pytest.mark.parametrize(
    ("name", "model", "serial", "days", "readings"),
    [
        (FRIDGE_TAG_2, "Q-tag Fridge-tag 2", "130400191542", 60, 0),
        (FRIDGE_TAG_2_EXT, "Q-tag Fridge-tag 2", "130400191544", 4, 0),
        (FRIDGE_TAG_2L, "Q-tag Fridge-tag 2 L", "130500109088", 38, 10_653),
        (FRIDGE_TAG_UL, "Q-tag Fridge-tag Ultra Low", "100800001215", 4, 841),
        (QTAG_RUN_2, "Q-tag CLm doc LR", "RCPJ00010", 0, 124),
        (QTAG_RUN_3, "Q-tag CLm doc LR", "RCPJ00010", 0, 424),
    ],
)
def test_every_real_export_parses_with_its_device_days_and_readings(
    name: str, model: str, serial: str, days: int, readings: int
) -> None:
    parsed = export(name)

    assert (parsed.device.model, parsed.device.serial) == (model, serial)
    assert (len(parsed.days), len(parsed.readings), len(parsed.out_of_limits)) == (days, readings, readings)
    assert [reading.seq for reading in parsed.readings] == list(range(1, readings + 1))
    assert len(parsed.signature) == 128


def test_a_fridge_tag_2_without_data_still_gives_per_day_evidence() -> None:
    parsed = export(FRIDGE_TAG_2, utc_offset_min=60)

    assert parsed.configuration.alarms == [
        BerlingerAlarmLimit(index=0, kind="cold_consecutive", threshold_c=-0.5, delay_min=60),
        BerlingerAlarmLimit(index=1, kind="hot_consecutive", threshold_c=8.0, delay_min=600),
    ]
    newest = parsed.days[0]
    assert (newest.day, newest.min_c, newest.max_c, newest.mean_c) == (date(2023, 2, 14), 18.0, 18.8, 18.5)
    assert newest.max_at == datetime(2023, 2, 14, 3, 57, tzinfo=UTC)  # 04:57 on a UTC+1 clock
    assert [(alarm.index, alarm.minutes) for alarm in newest.alarms] == [(0, 0), (1, 366)]
    assert newest.alarms[1].first_at == datetime(2023, 2, 13, 23, 0, tzinfo=UTC)
    assert parsed.days[-1].day == date(2022, 12, 17)
    assert parsed.activated_at == datetime(2022, 3, 24, 1, 22, tzinfo=UTC)
    assert parsed.readings == []


def test_a_fridge_tag_with_an_external_sensor_reports_its_timeouts() -> None:
    parsed = export(FRIDGE_TAG_2_EXT)

    assert [(day.day.isoformat(), day.external_sensor_timeout_min) for day in parsed.days] == [
        ("2023-04-20", 21),
        ("2023-04-19", 0),
        ("2023-04-18", 0),
        ("2023-04-17", 178),
    ]
    assert parsed.days[2].alarms[1].minutes == 2


def test_readings_carry_the_device_clocks_offset_and_are_stored_in_utc() -> None:
    parsed = export(FRIDGE_TAG_2L, utc_offset_min=120)

    first = parsed.readings[0]
    assert (first.device_time, first.utc_offset_min, first.temperature_c) == (
        datetime(2022, 5, 2, 2, 44, tzinfo=UTC),
        120,
        26.3,
    )
    assert parsed.out_of_limits[0] is True
    assert parsed.configuration.logging_interval_min == 5


def test_the_fridge_tag_2l_log_has_one_352_minute_gap_right_after_activation() -> None:
    parsed = export(FRIDGE_TAG_2L)

    result = evaluate(profile_of(parsed), parsed.readings)

    assert [(gap.start, gap.duration_min) for gap in result.gaps] == [(datetime(2022, 5, 2, 4, 44, tzinfo=UTC), 352.0)]


def test_the_fridge_tag_2l_minutes_beyond_its_limits_match_the_device_every_day() -> None:
    """README: the device integrates at 1 min, so allow one logging interval (5 min) per excursion."""
    parsed = export(FRIDGE_TAG_2L)
    rules = [limit.to_rule() for limit in parsed.configuration.alarms]
    cold, hot = rules
    interval_min = parsed.configuration.logging_interval_min or 0

    computed = {day.day: day for day in daily_summaries(parsed.readings, rules, max_gap_min=2 * interval_min)}

    for device_day in parsed.days:
        ours = computed[device_day.day]
        device_minutes = {alarm.index: alarm.minutes for alarm in device_day.alarms}
        for index, limit_rule in ((0, cold), (1, hot)):
            tolerance = interval_min * max(1, ours.excursions[limit_rule.name])
            assert abs(ours.beyond_min[limit_rule.name] - device_minutes[index]) <= tolerance, (
                device_day.day,
                limit_rule.name,
            )
    assert computed[date(2022, 5, 2)].beyond_min[hot.name] == 40.0  # device: 42
    assert computed[date(2022, 5, 3)].beyond_min[hot.name] == 80.0  # device: 84


def test_the_qtag_mkt_matches_what_the_device_printed() -> None:
    """README: the device prints MKT 10.4 (truncated) with 83.0 kJ/mol; time-weighted, the rows give 10.479."""
    parsed = export(QTAG_RUN_3)
    energy = parsed.configuration.mkt_activation_energy_kj_mol
    assert energy == 83.0
    assert parsed.run is not None

    mkt_c = mean_kinetic_temperature(parsed.readings, max_gap_min=20, activation_energy_kj_mol=energy)
    until_stop_c = mean_kinetic_temperature(
        parsed.readings, max_gap_min=20, activation_energy_kj_mol=energy, until=parsed.run.stopped_at
    )

    assert mkt_c == pytest.approx(10.479, abs=0.001)
    assert math.floor(mkt_c * 10) / 10 == parsed.run.mkt_c == 10.4
    assert math.floor(until_stop_c * 10) / 10 == 10.4


def test_the_qtag_mkt_of_a_run_is_reproduced_once_the_record_closes_at_the_stop_time() -> None:
    parsed = export(QTAG_RUN_2)
    assert parsed.run is not None and parsed.run.stopped_at is not None
    device_profile = profile_of(parsed)
    state, _ = advance(device_profile, new_state(device_profile), parsed.readings)

    open_ended = summarise(device_profile, state)
    closed = summarise(device_profile, state, until=parsed.run.stopped_at)

    assert open_ended.mkt.shipment_mkt_c is not None and closed.mkt.shipment_mkt_c is not None
    # The last reading (24.1 °C) held until the stop 9 minutes later: the device's printed (truncated) value.
    assert math.floor(closed.mkt.shipment_mkt_c * 10) / 10 == parsed.run.mkt_c == 10.5
    assert open_ended.mkt.shipment_mkt_c < 10.4


def test_the_qtag_run_summary_and_alarm_events_are_parsed() -> None:
    parsed = export(QTAG_RUN_2)
    assert parsed.run is not None

    kinds = [limit.kind for limit in parsed.configuration.alarms]
    assert kinds == ["hot_consecutive", "hot_cumulative", "cold_cumulative", "cold_consecutive"]
    cold_events = next(alarm for alarm in parsed.run.alarms if alarm.index == 5).events
    assert [(event.minutes, event.extreme_c) for event in cold_events] == [(145, 0.9), (32, 1.4), (31, 1.4)]
    hot_event = parsed.run.alarms[0].events[0]
    assert (hot_event.ended_at, hot_event.extreme_c) == (None, 24.5)
    assert (parsed.run.min_c, parsed.run.max_c, parsed.run.mean_c, parsed.run.run_number) == (0.9, 24.3, 5.4, 2)


def test_no_value_rows_of_the_ultra_low_tag_become_readings_without_temperature() -> None:
    parsed = export(FRIDGE_TAG_UL)

    assert [reading.temperature_c for reading in parsed.readings[:4]] == [None, None, None, -9.6]
    result = evaluate(profile_of(parsed), parsed.readings)
    assert result.faults[0].reason == "missing"
    assert result.faults[0].readings == 3


# -- malformed files -----------------------------------------------------------------------------------------


def with_line(name: str, number: int, text: str) -> str:
    lines = lines_of(name)
    lines[number - 1] = text
    return "\r\n".join(lines) + "\r\n"


def test_a_file_cut_short_between_lines_is_reported_at_its_end() -> None:
    truncated = "\r\n".join(lines_of(QTAG_RUN_3)[:300]) + "\r\n"

    with pytest.raises(LoggerFileError, match="truncated") as raised:
        parse_berlinger(truncated)

    assert raised.value.line == 301


def test_a_file_cut_inside_a_data_row_is_reported_at_that_row() -> None:
    text = (BERLINGER / QTAG_RUN_3).read_text()
    cut = text[: text.index("\t2023-04-17 16:03\t") + 11]

    with pytest.raises(LoggerFileError, match="data row") as raised:
        parse_berlinger(cut)

    assert raised.value.line == 72


def test_a_bad_number_in_a_data_row_names_its_line() -> None:
    with pytest.raises(LoggerFileError, match=r"line 533: data row temperature: not a number: '2x\.5'") as raised:
        parse_berlinger(with_line(FRIDGE_TAG_2L, 533, "\t2022-05-02 10:36\t2x.5\tx"))

    assert (raised.value.line, raised.value.problem) == (533, "data row temperature: not a number: '2x.5'")


def test_a_bad_alarm_limit_in_the_configuration_names_its_line() -> None:
    with pytest.raises(LoggerFileError, match="line 21: T AL: not a number"):
        parse_berlinger(with_line(FRIDGE_TAG_2L, 21, "   T AL: +8.O, t AL: 60"))


@pytest.mark.parametrize(
    ("number", "text", "problem"),
    [
        (1, "Gadget: 3000", "not a Berlinger export"),
        (6, "   Serial: 130500109088", "indented 3 spaces"),
        (6, "", "empty line"),
        (6, " Serial 130500109088", "expected 'Key: value'"),
        (8, "\t2022-05-02 10:36\t27.5\tx", "tab-separated row outside"),
        (16, " Temp unit: F", "temperature unit 'F' is not supported"),
        (533, "\t2022-05-02 04:40\t27.5\tx", "is not after the row before"),
        (533, "\t2022-05-02 10:36\t27.5\ty", "out-of-limits flag"),
        (533, "\t2022/05/02 10:36\t27.5\tx", "expected 'yyyy-MM-dd hh:mm'"),
        (531, "\tyyyy-MM-dd\tT", "unexpected Data header"),
    ],
)
def test_a_malformed_line_is_reported_with_its_number_and_what_is_wrong(number: int, text: str, problem: str) -> None:
    with pytest.raises(LoggerFileError, match=problem) as raised:
        parse_berlinger(with_line(FRIDGE_TAG_2L, number, text))

    assert raised.value.line == number


def test_a_file_without_a_configuration_or_that_is_not_text_is_refused() -> None:
    no_conf = [line for line in lines_of(FRIDGE_TAG_2_EXT) if not line.startswith("Conf:")]
    with pytest.raises(LoggerFileError, match="missing 'Conf:' section") as raised:
        parse_berlinger("\r\n".join(no_conf))
    assert raised.value.line == len(no_conf) + 1
    with pytest.raises(LoggerFileError, match="line 2: not UTF-8 text"):
        parse_berlinger(b"Device: Q-tag Fridge-tag 2\r\nVers: \xff\r\n")
    with pytest.raises(LoggerFileError, match="missing 'Conf:' section"):
        parse_berlinger("Device: Q-tag Fridge-tag 2\r\nSig: ab\r\n")
