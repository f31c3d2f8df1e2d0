"""Rule statuses and cumulative alarms at their edges: a cumulative rule without a delay, what ``since`` says for an
excursion still open, a fraction of a minute beyond, a rolling rule pending within its day, and alarm counts."""

from __future__ import annotations

from coldchain.domain.evaluation import evaluate
from tests.domain.engine_support import at, profile, readings, rule


def every_ten_minutes(*temperatures: float, start: float = 0.0) -> list[tuple[float, float | None]]:
    return [(start + 10.0 * index, temperature) for index, temperature in enumerate(temperatures)]


def test_a_cumulative_rule_without_a_delay_alarms_at_the_first_reading_beyond_and_only_once() -> None:
    at_once = rule(name="any heat", mode="cumulative", delay_min=0.0, inclusive=False)

    result = evaluate(profile(at_once), readings(every_ten_minutes(5, 9, 5, 9, 5)))

    assert [(a.began_at, a.began_seq, a.met_at) for a in result.alarms] == [(at(10), 2, at(10))]
    (summary,) = result.rules
    assert (summary.status, summary.alarms, summary.excursions) == ("alarmed", 1, 2)


def test_an_open_excursion_is_pending_since_it_began_for_a_consecutive_rule_and_since_the_first_for_a_cumulative() -> (
    None
):
    heat = rule(name="heat", delay_min=60.0)
    total = rule(name="heat total", mode="cumulative", delay_min=120.0, inclusive=False)

    result = evaluate(profile(heat, total), readings(every_ten_minutes(5, 9, 5, 5, 9, 9)))

    since = {summary.rule: (summary.status, summary.since, summary.beyond_now) for summary in result.rules}
    assert since == {"heat": ("pending", at(40), True), "heat total": ("pending", at(10), True)}


def test_the_longest_excursion_counts_the_one_still_open() -> None:
    heat = rule(name="heat", delay_min=600.0)

    (summary,) = evaluate(profile(heat), readings(every_ten_minutes(9, 9, 5, 9, 9, 9, 9))).rules

    assert (summary.longest_min, summary.beyond_min) == (30.0, 50.0)


def test_half_a_minute_beyond_a_cumulative_rule_makes_it_pending() -> None:
    total = rule(name="heat total", mode="cumulative", delay_min=60.0, inclusive=False)

    (summary,) = evaluate(profile(total), readings([(0, 9.0), (0.5, 5.0), (10, 5.0)])).rules

    assert (summary.status, summary.beyond_min) == ("pending", 0.5)


def test_a_rolling_rule_is_pending_while_beyond_time_is_in_its_day_and_ok_once_it_has_left() -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=60.0, action="warn")  # fmt: skip
    spell = every_ten_minutes(5, 11, 5)  # 10 min beyond, from minute 10
    later = [(minutes, 5.0) for minutes in range(30, 1460, 10)]

    (within,) = evaluate(profile(hot_day), readings(spell)).rules
    (at_the_edge,) = evaluate(profile(hot_day), readings([*spell, (1459.0, 5.0)])).rules
    (after,) = evaluate(profile(hot_day), readings([*spell, *later, (1460.0, 5.0)])).rules

    assert (within.status, within.since) == ("pending", at(10))
    assert (at_the_edge.status, at_the_edge.since) == ("pending", at(10))
    assert (after.status, after.since) == ("ok", None)


def test_a_rolling_rule_counts_every_alarm_it_raised() -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=20.0, action="warn")  # fmt: skip
    first = every_ten_minutes(11, 11, 11, 5)
    quiet = [(minutes, 5.0) for minutes in range(40, 1500, 10)]
    second = every_ten_minutes(11, 11, 11, 5, start=1500.0)

    result = evaluate(profile(hot_day), readings(first + quiet + second))

    assert [a.met_at for a in result.alarms] == [at(20), at(1520)]
    (summary,) = result.rules
    assert (summary.alarms, summary.status, summary.since) == (2, "alarmed", at(1500))
