"""The evaluation engine: time accounting, gaps, faults, MKT windows and the incremental protocol."""

from __future__ import annotations

import math

import msgspec
import pytest

from coldchain.domain.evaluation import (
    EvaluationState,
    OutOfOrderError,
    ReadingKey,
    advance,
    decode_state,
    encode_state,
    evaluate,
    is_late,
    new_state,
    rewind,
    summarise,
)
from coldchain.domain.excursions import DataGap, Excursion, SensorFault
from coldchain.domain.profiles import MktSettings
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm
from tests.domain.engine_support import at, profile, readings, rule, shared_profile

HEAT = rule(mode="consecutive", delay_min=60.0)


def hourly(*temperatures: float | None, start_h: float = 0.0) -> list[tuple[float, float | None]]:
    return [(60.0 * (start_h + hour), temperature) for hour, temperature in enumerate(temperatures)]


# -- time accounting, gaps and faults ------------------------------------------------------------------


def test_a_silence_longer_than_max_gap_is_a_gap_event_and_credits_nothing() -> None:
    log = readings([(0, 5.0), (10, 5.0), (100, 5.0), (110, 5.0)])

    result = evaluate(profile(HEAT, max_gap_min=60.0), log)

    assert result.gaps == [DataGap(start=at(10), end=at(100), duration_min=90.0)]
    assert result.mkt.credited_min == 20.0
    assert result.gaps[0].key == f"gap|{at(10).isoformat()}"


def test_a_gap_exactly_as_long_as_max_gap_is_still_credited() -> None:
    result = evaluate(profile(HEAT, max_gap_min=60.0), readings([(0, 5.0), (60, 5.0)]))

    assert result.gaps == []
    assert result.mkt.credited_min == 60.0


def test_an_excursion_continues_across_a_gap_but_the_gap_is_not_credited_to_it() -> None:
    # Beyond 8 °C for 40 min, silent for 2 h, beyond for 40 min more: one excursion of 80 credited minutes.
    log = readings([(0, 9.0), (20, 9.0), (40, 9.0), (160, 9.0), (180, 9.0), (200, 5.0)])

    result = evaluate(profile(HEAT, max_gap_min=60.0), log)

    (excursion,) = result.excursions
    assert (excursion.start, excursion.end) == (at(0), at(200))
    assert (excursion.duration_min, excursion.uncredited_min) == (80.0, 120.0)
    assert [gap.duration_min for gap in result.gaps] == [120.0]
    # The consecutive counter neither reset at the gap nor counted it: 60 min is reached after the gap.
    (alarm,) = result.alarms
    assert (alarm.began_at, alarm.met_at) == (at(0), at(180))


def test_an_excursion_whose_last_reading_precedes_a_gap_ends_at_that_reading() -> None:
    log = readings([(0, 5.0), (10, 9.0), (20, 9.0), (200, 5.0)])

    result = evaluate(profile(HEAT, max_gap_min=60.0), log)

    (excursion,) = result.excursions
    assert (excursion.start, excursion.end, excursion.duration_min) == (at(10), at(20), 10.0)
    assert excursion.uncredited_min == 180.0


def test_missing_nan_and_impossible_temperatures_are_sensor_faults_not_excursions() -> None:
    log = readings([(0, 5.0), (10, None), (20, None), (30, float("nan")), (40, 150.0), (50, 5.0)])
    above_25 = rule(name="above 25", threshold=25.0, inclusive=False, mode="instant", delay_min=0.0)

    result = evaluate(profile(above_25), log)

    assert result.excursions == []
    assert result.alarms == []
    assert result.faults == [
        SensorFault(metric="temperature", reason="missing", start=at(10), start_seq=2, end=at(30), readings=2),
        SensorFault(metric="temperature", reason="not_a_number", start=at(30), start_seq=4, end=at(40), readings=1),
        SensorFault(
            metric="temperature",
            reason="out_of_range",
            start=at(40),
            start_seq=5,
            end=at(50),
            readings=1,
            first_value=150.0,
        ),
    ]
    assert result.mkt.credited_min == 10.0
    assert (result.temperature_min_c, result.temperature_max_c) == (5.0, 5.0)


def test_a_faulted_reading_inside_an_excursion_neither_splits_it_nor_counts_as_time_beyond() -> None:
    log = readings([(0, 9.0), (10, 9.0), (20, None), (30, 9.0), (40, 5.0)])

    result = evaluate(profile(HEAT), log)

    (excursion,) = result.excursions
    assert (excursion.duration_min, excursion.uncredited_min) == (30.0, 10.0)
    (fault,) = result.faults
    assert (fault.start, fault.end, fault.is_open) == (at(20), at(30), False)


def test_an_open_fault_run_is_reported_with_no_end() -> None:
    result = evaluate(profile(HEAT), readings([(0, 5.0), (10, None)]))

    (fault,) = result.faults
    assert fault.end is None
    assert fault.key == f"sensor_fault|temperature|{at(10).isoformat()}|2"


def test_a_metric_the_profile_judges_but_the_tracker_lacks_is_a_fault_of_its_own() -> None:
    humid = rule(name="humid", metric="humidity", threshold=75.0, inclusive=False)

    result = evaluate(profile(humid), readings([(0, 5.0), (10, 5.0)]))

    assert [(f.metric, f.reason, f.readings) for f in result.faults] == [("humidity", "missing", 2)]


# -- MKT over the profile's window --------------------------------------------------------------------------


def test_the_reference_customs_hold_fails_the_24h_mkt_although_the_budget_is_fine() -> None:
    """REFERENCE §4: 18 h at 5 °C + 6 h at 14 °C, hourly: 24 h MKT 8.29 °C fails <= 8 °C."""
    cct = shared_profile("usp-cct")
    cold_chain = rule(name="8-25 allowance", threshold=8.0, inclusive=False, mode="cumulative", delay_min=72 * 60.0)
    with_budget = msgspec.structs.replace(cct, rules=(*cct.rules, cold_chain))
    log = readings(hourly(*([5.0] * 18), *([14.0] * 6), 5.0))

    result = evaluate(with_budget, log)

    assert result.mkt.window == "24h"
    assert round(result.mkt.window_mkt_c or 0.0, 2) == 8.29
    assert result.mkt.passes is False
    assert (result.mkt.window_start, result.mkt.window_end) == (at(0), at(24 * 60))
    assert result.alarms == []
    assert next(s for s in result.rules if s.rule == "8-25 allowance").beyond_min == 360.0


def test_the_24h_window_mkt_finds_the_worst_day_not_the_shipment_average() -> None:
    settings = MktSettings(window="24h", limit_c=8.0)
    # Three days at 5 °C with a 6 h hold at 14 °C on the second day.
    temperatures = [5.0] * 30 + [14.0] * 6 + [5.0] * 37
    log = readings(hourly(*temperatures))

    result = evaluate(profile(HEAT, mkt=settings, max_gap_min=90.0), log)

    assert result.mkt.window_complete
    assert round(result.mkt.window_mkt_c or 0.0, 2) == 8.29
    assert result.mkt.passes is False
    assert (result.mkt.shipment_mkt_c or 99.0) < 7.0
    assert result.mkt.window_end is not None
    assert at(36 * 60) <= result.mkt.window_end <= at(54 * 60)


def test_a_shipment_shorter_than_its_mkt_window_is_judged_on_the_bounds_of_the_whole_window() -> None:
    result = evaluate(
        profile(HEAT, mkt=MktSettings(window="30d", limit_c=25.0), max_gap_min=90.0),
        readings(hourly(24.0, 24.0, 30.0, 24.0)),
    )

    assert not result.mkt.window_complete
    assert result.mkt.window_mkt_c == result.mkt.shipment_mkt_c  # the MKT over the 3 h covered: above 25 °C
    assert (result.mkt.shipment_mkt_c or 0.0) > 25.0
    # 3 h of a 30-day window: even with the rest at the label range's upper end (8 °C) the window stays far below.
    assert (result.mkt.verdict, result.mkt.rests_on, result.mkt.passes) == ("pass", "bounds", True)


def test_with_incomplete_windows_judged_on_the_data_covered_a_short_shipment_fails_on_its_own_mkt() -> None:
    result = evaluate(
        profile(HEAT, mkt=MktSettings(window="30d", limit_c=25.0, incomplete_window="covered"), max_gap_min=90.0),
        readings(hourly(24.0, 24.0, 30.0, 24.0)),
    )

    assert (result.mkt.verdict, result.mkt.rests_on, result.mkt.passes) == ("fail", "covered_data", False)


def test_without_mkt_settings_the_shipment_mkt_is_still_reported_without_a_verdict() -> None:
    result = evaluate(profile(HEAT), readings(hourly(5.0, 5.0)))

    assert result.mkt.shipment_mkt_c == pytest.approx(5.0)
    assert (result.mkt.limit_c, result.mkt.passes, result.mkt.window) == (None, None, "shipment")


def test_a_final_evaluation_holds_the_last_reading_until_the_record_closes() -> None:
    heat = rule(mode="consecutive", delay_min=30.0)
    state, _ = advance(profile(heat), new_state(profile(heat)), readings([(0, 5.0), (10, 9.0), (20, 9.0)]))

    open_ended = summarise(profile(heat), state)
    closed = summarise(profile(heat), state, until=at(45))

    assert open_ended.alarms == []
    assert open_ended.mkt.credited_min == 20.0
    assert [(a.began_at, a.met_at) for a in closed.alarms] == [(at(10), at(40))]
    assert closed.mkt.credited_min == 45.0
    assert closed.last_reading_at == at(20)
    assert summarise(profile(heat), state) == open_ended  # the state itself did not change
    assert [g.duration_min for g in summarise(profile(heat), state, until=at(200)).gaps] == [180.0]


# -- the incremental protocol -------------------------------------------------------------------------------


def test_advance_reports_only_what_the_new_readings_created_or_changed() -> None:
    rules = profile(HEAT)
    state = new_state(rules)

    state, first = advance(rules, state, readings([(0, 5.0), (10, 9.0)]))
    state, second = advance(rules, state, readings([(0, 5.0), (10, 9.0), (20, 9.0), (80, 9.0)])[2:])
    state, third = advance(rules, state, [Reading(seq=5, device_time=at(90), temperature_c=5.0)])
    state, nothing = advance(rules, state, [])

    (opened,) = first
    assert isinstance(opened, Excursion)
    assert opened.end is None
    assert sorted(type(event).__name__ for event in second) == ["Alarm", "Excursion"]
    assert [type(event) for event in third] == [Excursion]
    closed = third[0]
    assert isinstance(closed, Excursion)
    assert (closed.key, closed.end, closed.duration_min) == (opened.key, at(90), 80.0)
    assert nothing == []


def test_a_reading_not_after_the_last_one_is_refused_until_the_state_is_rewound() -> None:
    rules = profile(HEAT)
    log = readings(hourly(5.0, 5.0, 5.0))
    state, _ = advance(rules, new_state(rules), log[1:])

    assert is_late(state, log[0])
    assert is_late(state, log[2])  # the same reading again
    assert not is_late(state, Reading(seq=9, device_time=at(121), temperature_c=5.0))
    with pytest.raises(OutOfOrderError, match="rewind first"):
        advance(rules, state, log[:1])
    with pytest.raises(OutOfOrderError):
        advance(rules, new_state(rules), [log[1], log[0]])


def test_advance_leaves_the_given_state_untouched() -> None:
    rules = profile(HEAT)
    state, _ = advance(rules, new_state(rules), readings(hourly(9.0, 9.0)))
    before = encode_state(state)

    advance(rules, state, [Reading(seq=3, device_time=at(120), temperature_c=5.0)])

    assert encode_state(state) == before


def test_the_state_round_trips_through_messagepack_bytes() -> None:
    air = shared_profile("biologic-air-freight")
    log = readings(hourly(5.0, 9.0, 9.0, 1.0, None, 5.0), humidity_pct=80.0, pressure_kpa=65.0)
    state, _ = advance(air, new_state(air, lot_spent_before_min={"heat": 30.0}), log)

    data = encode_state(state)
    restored = decode_state(data)

    assert isinstance(data, bytes)
    assert restored == state
    assert summarise(air, restored) == summarise(air, state)


def test_a_state_is_refused_for_another_profile_or_version() -> None:
    state = new_state(profile(HEAT))

    with pytest.raises(ValueError, match="state was made for profile 'test' v1"):
        advance(shared_profile("usp-cct"), state, [])
    with pytest.raises(ValueError, match="not 'test' v2"):
        summarise(msgspec.structs.replace(profile(HEAT), version=2), state)


def test_new_state_refuses_lot_spend_for_a_rule_that_is_not_a_budget() -> None:
    with pytest.raises(ValueError, match="'heat' is not a lifetime rule"):
        new_state(profile(HEAT), lot_spent_before_min={"heat": 10.0})
    with pytest.raises(ValueError, match="checkpoints_kept"):
        new_state(profile(HEAT), checkpoints_kept=0)


def test_checkpoints_are_taken_each_period_of_device_time_and_kept_bounded() -> None:
    rules = profile(HEAT, mkt=MktSettings(window="24h"), max_gap_min=20.0)
    log = readings((10.0 * step, 5.0) for step in range(6 * 24 * 4))  # four days every 10 min

    state, _ = advance(rules, new_state(rules, checkpoint_every_min=60.0, checkpoints_kept=5), log)

    assert len(state.checkpoints) == 5
    last_times = [checkpoint.machine.last_s for checkpoint in state.checkpoints]
    assert last_times == sorted(last_times)
    assert state.checkpoints[-1].machine.last_s == at(4 * 1440 - 70).timestamp()
    # The MKT window buffer holds about a day (plus what the oldest checkpoint needs), not four.
    assert len(state.mkt_end_s) <= 2 * (6 * 24 + 6 * 5)


def test_rewind_restores_the_last_checkpoint_before_the_late_reading() -> None:
    rules = profile(HEAT)
    log = readings((10.0 * step, 9.0 if 30 <= step < 40 else 5.0) for step in range(60))
    late = log[35]
    state, _ = advance(rules, new_state(rules), log[:35] + log[36:])

    rewound = rewind(rules, state, ReadingKey.of(late))

    # Checkpoints are taken hourly, before the first reading of each hour: the last one before the late
    # reading (at 350 min) was taken before the reading at 360 min, after the one at 340 min.
    assert rewound.replay_after == ReadingKey(device_time=at(340), seq=35)
    assert rewound.state.readings == 35
    assert set(rewound.superseded) == {
        f"excursion|heat|{at(300).isoformat()}|31",
        f"alarm|heat|{at(300).isoformat()}|31",
    }
    replay = [reading for reading in log if reading.device_time > rewound.replay_after.device_time]
    final, events = advance(rules, rewound.state, replay)
    assert summarise(rules, final) == evaluate(rules, log)
    assert {event.key for event in events} >= set(rewound.superseded)


def test_rewind_before_every_checkpoint_starts_over_from_the_first_reading() -> None:
    rules = profile(HEAT)
    log = readings((10.0 * step, 5.0) for step in range(60))
    state, _ = advance(rules, new_state(rules, checkpoints_kept=2), log[1:])

    rewound = rewind(rules, state, ReadingKey.of(log[0]))

    assert rewound.replay_after is None
    assert rewound.state.readings == 0
    final, _ = advance(rules, rewound.state, log)
    assert summarise(rules, final) == evaluate(rules, log)


def test_a_late_in_range_reading_withdraws_the_alarm_it_disproves() -> None:
    rules = profile(HEAT)
    # 90 min beyond 8 °C as first received; the reading at 40 min (in range) arrives late and splits it.
    log = readings([(10.0 * step, 5.0 if step == 4 else 9.0) for step in range(10)] + [(100.0, 5.0)])
    received = log[:4] + log[5:]
    state, events = advance(rules, new_state(rules, checkpoint_every_min=30.0), received)
    raised = {event.key for event in events if isinstance(event, Alarm)}
    assert raised == {f"alarm|heat|{at(0).isoformat()}|1"}

    rewound = rewind(rules, state, ReadingKey.of(log[4]))
    after = rewound.replay_after
    assert after is not None
    replay = [reading for reading in log if (reading.device_time, reading.seq) > (after.device_time, after.seq)]
    final, replayed = advance(rules, rewound.state, replay)
    withdrawn = set(rewound.superseded) - {event.key for event in replayed}

    assert withdrawn >= raised
    assert summarise(rules, final).alarms == []
    assert summarise(rules, final) == evaluate(rules, log)


def test_re_judging_the_same_data_gives_an_alarm_the_same_key() -> None:
    rules = profile(HEAT)
    log = readings((10.0 * step, 9.0) for step in range(10))
    state, first = advance(rules, new_state(rules, checkpoint_every_min=20.0), log)

    rewound = rewind(rules, state, ReadingKey.of(log[3]))
    after = rewound.replay_after
    assert after is not None
    _, again = advance(rules, rewound.state, [r for r in log if r.device_time > after.device_time])

    keys = {event.key for event in first if isinstance(event, Alarm)}
    assert keys == {event.key for event in again if isinstance(event, Alarm)}
    assert len(keys) == 1


def test_an_evaluation_of_nothing_recommends_nothing_beyond_its_emptiness() -> None:
    result = summarise(profile(HEAT), new_state(profile(HEAT)))

    assert (result.readings, result.first_reading_at, result.mkt.shipment_mkt_c) == (0, None, None)
    assert isinstance(new_state(profile(HEAT)), EvaluationState)
    assert math.isinf(new_state(profile(HEAT)).machine.next_checkpoint_s)


def test_a_rolling_window_rejudged_from_a_checkpoint_forgets_exactly_what_one_pass_forgets() -> None:
    hot_day = rule(name="hot day", mode="cumulative", scope="rolling_24h", delay_min=90.0, threshold=10.0)
    rules = profile(hot_day)
    day_one = [(5.0 * step, 5.0 if step in (5, 12) else 12.0) for step in range(13)]  # 25 + 30 min warm
    bridge = [(60.0 * hour, 5.0) for hour in range(2, 25)]
    day_two = [(1460.0 + 10.0 * step, 12.0) for step in range(15)] + [(1610.0, 5.0)]
    log = readings(day_one + bridge + day_two)
    late = log[5]  # the in-range reading at 25 min, which splits the first warm spell
    state, _ = advance(rules, new_state(rules, checkpoint_every_min=15.0), log[:5] + log[6:])

    rewound = rewind(rules, state, ReadingKey.of(late))
    after = rewound.replay_after
    assert after is not None
    final, _ = advance(
        rules, rewound.state, [r for r in log if (r.device_time, r.seq) > (after.device_time, after.seq)]
    )

    expected = evaluate(rules, log)
    assert [(a.began_at, a.met_at) for a in expected.alarms] == [(at(1460), at(1550))]
    assert summarise(rules, final) == expected
