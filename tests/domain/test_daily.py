"""Per-day evidence computed from readings, the shape Fridge-tags print."""

from __future__ import annotations

from datetime import date

from coldchain.domain.daily import daily_summaries
from coldchain.domain.readings import Reading
from tests.domain.engine_support import at, rule

HEAT = rule(threshold=8.0, inclusive=False)


def test_time_beyond_a_threshold_is_split_at_the_devices_local_midnight() -> None:
    # Device on UTC+2: 21:30 UTC is 23:30 local, so 30 of the 60 warm minutes fall on the next local day.
    log = [
        Reading(seq=1, device_time=at(21 * 60 + 30), utc_offset_min=120, temperature_c=9.0),
        Reading(seq=2, device_time=at(22 * 60 + 30), utc_offset_min=120, temperature_c=5.0),
        Reading(seq=3, device_time=at(23 * 60), utc_offset_min=120, temperature_c=5.0),
    ]

    first, second = daily_summaries(log, [HEAT], max_gap_min=60)

    assert (first.day, first.beyond_min, first.excursions, first.readings) == (
        date(2025, 3, 1),
        {"heat": 30.0},
        {"heat": 1},
        1,
    )
    assert (second.day, second.beyond_min, second.readings) == (date(2025, 3, 2), {"heat": 30.0}, 2)
    assert (second.min_c, second.max_c, second.mean_c) == (5.0, 5.0, 7.0)


def test_a_gap_credits_nothing_to_any_day_and_faults_are_left_out_of_min_and_max() -> None:
    log = [
        Reading(seq=1, device_time=at(0), temperature_c=9.0),
        Reading(seq=2, device_time=at(120), temperature_c=None),
        Reading(seq=3, device_time=at(130), temperature_c=9.5),
        Reading(seq=4, device_time=at(140), temperature_c=5.0),
    ]

    (day,) = daily_summaries(log, [HEAT], max_gap_min=60)

    assert (day.beyond_min, day.excursions, day.credited_min) == ({"heat": 10.0}, {"heat": 1}, 10.0)
    assert (day.min_c, day.max_c, day.readings) == (5.0, 9.5, 4)
