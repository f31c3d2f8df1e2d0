"""Alarm rules at work: one state machine per rule of a stability profile (REFERENCE §3).

A rule's state machine (:class:`~coldchain.domain.evaluation.rule_tracker.RuleTracker`, run by the engine) is fed,
in device time order, the intervals of its metric (``credit``: the value of the reading at ``a`` held until ``b``;
``uncredited``: time nobody can vouch for, a data gap or a faulted reading) and each new valid value
(``observe``). It keeps the rule's excursions, counters and alarms:

- instant: a reading beyond the threshold raises the alarm at that reading (one alarm per excursion);
- consecutive (Berlinger Fridge-tag "single event", WHO PQS E006/TR06): the alarm is met when one excursion
  has been beyond the threshold for ``delay_min``; the counter resets when a reading comes back within the
  threshold. Uncredited time inside an excursion (a gap or a faulted reading between readings both beyond the
  threshold) neither resets nor advances the counter: there is no evidence the value came back, nor that it
  stayed;
- cumulative, scope shipment (Controlant, WHO PQS E006/TR07): the alarm is met when the time beyond the
  threshold, never reset, reaches ``delay_min``. One alarm per shipment;
- cumulative, scope lifetime (a stability budget, REFERENCE §4): the tracker records the intervals it spent
  beyond the threshold (device time) and raises nothing itself: the budget is one timeline across every stream
  of every shipment of the lot, judged by :mod:`coldchain.domain.lot_budget`;
- cumulative, scope rolling_24h: the alarm is met when the time beyond the threshold within the 24 h ending at
  some moment reaches ``delay_min``; it can be met again once that time has fallen below ``delay_min``.

The moment an alarm's condition is met is exact under the engine's convention (the value holds between
readings), e.g. 10 h after the excursion began for a 10 h consecutive rule, even when no reading falls on that
moment.

Rule status (:class:`RuleSummary`) latches like a device's alarm indicator: ``alarmed`` once the rule raised
an alarm in the shipment, else ``pending`` while its condition is building (an excursion is open, or
cumulative time has been spent), else ``ok``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from coldchain.domain.profiles import (
    Action,
    AlarmRule,
    Direction,
    Metric,
    Mode,
    Scope,
)

__all__ = [
    "Alarm",
    "RuleMemory",
    "RuleStatus",
    "RuleSummary",
]

RuleStatus = Literal["ok", "pending", "alarmed"]


class Alarm(msgspec.Struct, frozen=True, kw_only=True, tag="alarm"):
    """A rule's condition was met.

    ``began_at`` is the device time the condition began (the excursion's start; for cumulative rules the start
    of the first excursion counted; for rolling rules the start of the earliest beyond period in the window);
    ``began_seq`` is the sequence number of the reading that began it (readings may share a device time);
    ``met_at`` the device time the condition was met. The service adds the time it detected the alarm, so a
    late detection is labelled as such. ``key`` (rule, ``began_at``, ``began_seq``) is stable across
    re-judging: the same data always gives the same key.
    """

    rule: str
    action: Action
    metric: Metric
    direction: Direction
    threshold: float
    mode: Mode
    scope: Scope
    delay_min: float
    began_at: datetime
    began_seq: int
    met_at: datetime

    @property
    def key(self) -> str:
        return f"alarm|{self.rule}|{self.began_at.isoformat()}|{self.began_seq}"

    @classmethod
    def of(cls, rule: AlarmRule, *, began_at: datetime, began_seq: int, met_at: datetime) -> Alarm:
        """``rule``'s alarm, its condition begun at ``began_at`` (reading ``began_seq``) and met at ``met_at``."""
        return cls(
            rule=rule.name,
            action=rule.action,
            metric=rule.metric,
            direction=rule.direction,
            threshold=rule.threshold,
            mode=rule.mode,
            scope=rule.scope,
            delay_min=rule.delay_min,
            began_at=began_at,
            began_seq=began_seq,
            met_at=met_at,
        )


class RuleSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Where one rule stands: status, time beyond its threshold (cumulative and longest single excursion),
    degree-minutes, counts. ``since`` is the device time the reported condition began (``None`` when ok)."""

    rule: str
    status: RuleStatus
    since: datetime | None
    beyond_now: bool
    beyond_min: float
    longest_min: float
    degree_min: float
    excursions: int
    alarms: int


class RuleMemory(msgspec.Struct, kw_only=True, array_like=True):
    """Everything a rule's state machine (:class:`~coldchain.domain.evaluation.rule_tracker.RuleTracker`)
    remembers, as plain values (stored in states and checkpoints).

    The tracker works on a copy of its own and hands out copies at checkpoints.

    Times are epoch seconds. ``roll_*`` describe the rolling window: absolute indices of its buffer's head and
    end, the end of its last interval (the last interval may be extended after a checkpoint), the beyond
    minutes in the window, whether it may alarm again, and how far the window's end has been slid.
    """

    open: bool = False
    ex_start_s: float = 0.0
    ex_start_seq: int = 0
    ex_end_s: float = 0.0
    ex_credited_min: float = 0.0
    ex_uncredited_min: float = 0.0
    ex_peak: float = 0.0
    ex_degree_min: float = 0.0
    ex_alarmed: bool = False
    total_min: float = 0.0
    total_degree_min: float = 0.0
    longest_min: float = 0.0
    excursions: int = 0
    alarms: int = 0
    first_start_s: float | None = None
    first_start_seq: int = 0
    latched: bool = False
    last_alarm_began_s: float | None = None
    roll_head: int = 0
    roll_len: int = 0
    roll_last_end_s: float | None = None
    roll_sum_min: float = 0.0
    roll_armed: bool = True
    roll_x_s: float = 0.0
