"""Throughput of the pure evaluation engine: readings per second on one core.

Run: ``python tests/benchmarks/bench_engine.py [readings]`` (default 1,000,000). The profile has five
temperature rules (instant, consecutive, cumulative shipment, cumulative lifetime, rolling 24 h) and a 24 h
MKT window. The log is one reading a minute of a 2–8 °C shipment with a short warm excursion every 10 h, a
longer one every three days, a freeze dip a day, a spike above 25 °C a week and a few data gaps.

Two figures: one ``advance`` over all readings (the engine alone), and batches of 10,000 readings with the
state encoded to bytes and decoded between batches, as the service does (this adds the state's size, which
grows with the number of excursions and alarms kept in it). Building the readings is not timed. Not collected
by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

from coldchain.domain.evaluation import advance, decode_state, encode_state, new_state, summarise
from coldchain.domain.excursions import Excursion
from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm

PROFILE = Profile(
    id="bench",
    name="benchmark: five rules and 24 h MKT",
    label_range_c=(2.0, 8.0),
    logging_interval_max_min=1,
    rules=(
        AlarmRule(name="heat", direction="above", threshold=8.0, inclusive=False, mode="consecutive",
                  delay_min=60, action="quarantine"),
        AlarmRule(name="budget", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=20160, scope="lifetime", action="reject"),
        AlarmRule(name="hot day", direction="above", threshold=10.0, inclusive=True, mode="cumulative",
                  delay_min=120, scope="rolling_24h", action="warn"),
        AlarmRule(name="above 25", direction="above", threshold=25.0, inclusive=False, mode="instant",
                  action="reject"),
        AlarmRule(name="freeze", direction="below", threshold=0.0, inclusive=True, mode="consecutive",
                  delay_min=30, action="reject"),
    ),
    mkt=MktSettings(window="24h", limit_c=8.0),
)  # fmt: skip


def make_readings(count: int, *, seed: int = 7) -> list[Reading]:
    randomness = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    readings = []
    minute = 0
    for seq in range(1, count + 1):
        minute += 1
        if randomness.random() < 0.0002:
            minute += randomness.randint(5, 90)  # a data gap now and then
        phase = minute % 600
        if minute % 10_080 < 5:
            temperature_c = 26.0  # a spike above 25 °C once a week
        elif minute % 4320 < 90:
            temperature_c = 9.5  # a 90 min warm spell every three days
        elif phase < 25:
            temperature_c = 9.0 + phase * 0.2  # a short warm excursion every 10 h
        elif minute % 1440 < 40:
            temperature_c = -0.5  # a freeze dip once a day
        else:
            temperature_c = round(5.0 + randomness.uniform(-1.5, 1.5), 1)
        readings.append(Reading(seq=seq, device_time=start + timedelta(minutes=minute), temperature_c=temperature_c))
    return readings


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    readings = make_readings(count)

    began = time.perf_counter()
    state, _ = advance(PROFILE, new_state(PROFILE), readings)
    elapsed = time.perf_counter() - began
    print(f"engine, one advance over {count:,} readings: {count / elapsed:,.0f} readings/s")

    batch = 10_000
    state = new_state(PROFILE)
    stored: dict[str, Excursion | Alarm] = {}  # the findings as the service stores them, by key
    began = time.perf_counter()
    for index in range(0, count, batch):
        state, events = advance(PROFILE, state, readings[index : index + batch])
        stored.update((event.key, event) for event in events if isinstance(event, Excursion | Alarm))
        state = decode_state(encode_state(state))
    elapsed = time.perf_counter() - began
    print(f"batches of {batch:,} with the state stored between them: {count / elapsed:,.0f} readings/s")

    # Closed findings older than the state's checkpoints left it: they come from the stored ones.
    evaluation = summarise(PROFILE, state, stored=stored.values())
    print(
        f"excursions {len(evaluation.excursions)}, alarms {len(evaluation.alarms)}, "
        f"gaps {len(evaluation.gaps)}, worst 24 h MKT {evaluation.mkt.window_mkt_c:.2f} °C, "
        f"state {len(encode_state(state)):,} bytes"
    )


if __name__ == "__main__":
    main()
