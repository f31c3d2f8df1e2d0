"""A lot's stability budget as one timeline in device time (REFERENCE §4; DESIGN "Evaluation").

A lifetime rule's allowance is spent over the product's whole life: every stream (tracker assignment) of every
shipment of the lot spends from it, in device time. Each stream's spending is a list of intervals beyond the
rule's threshold (credited under the engine's sample-and-hold convention, never across a gap). The lot's spending
by a moment ``t`` is the sum over all intervals of their part before ``t``; the budget runs out at the first
moment that sum reaches the allowance, and it runs out on the stream (so the shipment) whose interval is being
spent at that moment, nowhere else. The crossing depends only on the set of intervals, never on the order they
were synced in, so any delivery order ends with the same crossing.

Minutes without a device time (the lot's life before monitoring, given as a figure; figures stored before the
timeline existed) are ``unplaced``: they count as spent before every interval, which can only bring the crossing
earlier, never hide it.

When two streams spend at the same moment (two trackers watching the same time, or two shipments of the lot in
transit at once), both count, which errs on the side of caution; if both are spending when the sum reaches the
allowance, the crossing goes to the interval that began first (then the lower shipment id, then stream id), a
fixed rule so the answer is the same in any order.

A shipment's view (:func:`shipment_budget`): what the lot had spent by the shipment's own time (its last reading:
the other streams' spending up to then, plus the shipment's own), and, separately, the lot's total now and when
the lot's budget ran out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

from coldchain.domain._epoch import from_epoch_s
from coldchain.domain.budget import StabilityBudget, stability_budget
from coldchain.domain.profiles import AlarmRule
from coldchain.domain.rules import Alarm

__all__ = [
    "Crossing",
    "Spending",
    "crossing_stands",
    "find_crossing",
    "lot_alarm",
    "shipment_budget",
    "spent_by",
    "surely_not_crossed",
]

#: Rounding between a stream's running total and the sum of its intervals (minutes): below this, none unplaced.
_ROUNDING_MIN = 1e-6

#: How far after a placed crossing a changed spending must lie to leave it standing (seconds; the crossing's
#: moment is stored to the microsecond, and the sum a second past it exceeds the allowance far beyond rounding).
_PAST_CROSSING_S = 1.0

#: How far short of its allowance a lot's summed running totals must be for the sweep of :func:`find_crossing`,
#: which adds the same minutes in another order, to find no crossing for certain (minutes; far above rounding).
_SURELY_SHORT_MIN = 1.0

Interval = tuple[float, float, int]


class Spending(msgspec.Struct, frozen=True, kw_only=True):
    """What one stream spent of one lifetime rule: ``intervals`` (start, end in epoch seconds, seq of the reading
    whose value was held), in device time order, and ``unplaced_min`` without a device time."""

    stream_id: int
    shipment_id: int
    rule: str
    intervals: tuple[Interval, ...] = ()
    unplaced_min: float = 0.0

    @property
    def total_min(self) -> float:
        return self.unplaced_min + sum((end - start) / 60.0 for start, end, _ in self.intervals)

    @classmethod
    def of(
        cls, *, stream_id: int, shipment_id: int, rule: str, spent_min: float, intervals: Iterable[Interval]
    ) -> Spending:
        """A stream's spending from its running total and its intervals: the part of the total the intervals do
        not account for (figures older than the intervals) is unplaced."""
        held = tuple(intervals)
        placed = sum((end - start) / 60.0 for start, end, _ in held)
        unplaced = spent_min - placed
        return cls(
            stream_id=stream_id,
            shipment_id=shipment_id,
            rule=rule,
            intervals=held,
            unplaced_min=unplaced if unplaced > _ROUNDING_MIN else 0.0,
        )


class Crossing(msgspec.Struct, frozen=True, kw_only=True):
    """Where a lot's budget ran out: the device time, the stream and shipment that spent it, and the start of
    that stream's first spending (the condition the alarm reports as begun)."""

    rule: str
    at: datetime
    stream_id: int
    shipment_id: int
    began_at: datetime
    began_seq: int


def spent_by(spendings: Iterable[Spending], moment_s: float) -> float:
    """Minutes spent by ``moment_s`` (epoch seconds): unplaced minutes and every interval's part before it."""
    total = 0.0
    for spending in spendings:
        total += spending.unplaced_min
        for start, end, _ in spending.intervals:
            if start >= moment_s:
                break
            total += (min(end, moment_s) - start) / 60.0
    return total


def surely_not_crossed(rule: AlarmRule, spent_min: float) -> bool:
    """Whether a lot whose streams spent ``spent_min`` of ``rule`` in all (their running totals, summed) has
    certainly not reached the allowance, so :func:`find_crossing` finds nothing: told without the intervals.
    The sum by a moment never exceeds the total; within a minute of the allowance, ask the timeline."""
    return spent_min + _SURELY_SHORT_MIN < rule.delay_min


def crossing_stands(rule: AlarmRule, at: datetime, changes: Iterable[tuple[Spending, Spending]]) -> bool:
    """Whether the lot's crossing of ``rule`` placed at ``at`` (by :func:`find_crossing`) stays where it is after
    ``changes``, each one stream's spending before and after a batch, so that the lot need not be swept again.

    It stays when every change lies after it: each changed stream had the same unplaced minutes and the same
    intervals up to a second past ``at`` (spending a batch adds later, or an open interval that was already past
    it growing). The sweep then meets the same edges, the same sums and the same streams up to the crossing; a
    change at or before it (late readings re-judged, an interval reaching past it only now) is swept again.
    """
    limit_s = at.timestamp() + _PAST_CROSSING_S

    def up_to_limit(spending: Spending) -> tuple[float, tuple[Interval, ...]]:
        kept = tuple((start, min(end, limit_s), seq) for start, end, seq in spending.intervals if start < limit_s)
        return spending.unplaced_min, kept

    return all(
        up_to_limit(before) == up_to_limit(after)
        for before, after in changes
        if before.rule == rule.name or after.rule == rule.name
    )


def find_crossing(rule: AlarmRule, spendings: Sequence[Spending]) -> Crossing | None:
    """The moment the lot's summed spending of ``rule`` reaches its allowance (``delay_min``), or ``None``.

    A sweep over the intervals' edges in device time: between two edges the sum grows at one minute per minute
    per interval being spent. An allowance already spent by unplaced minutes runs out at the first spending.
    """
    allowance = rule.delay_min
    owned = [
        (start, end, seq, spending)
        for spending in spendings
        if spending.rule == rule.name
        for start, end, seq in spending.intervals
        if end > start
    ]
    if not owned:
        return None
    owned.sort(key=lambda item: (item[0], item[3].shipment_id, item[3].stream_id, item[2]))
    total = sum(spending.unplaced_min for spending in spendings if spending.rule == rule.name)
    edges = sorted({edge for start, end, _, _ in owned for edge in (start, end)})
    active: list[tuple[float, float, int, Spending]] = []
    following = 0
    for left, right in itertools.pairwise(edges):
        active = [item for item in active if item[1] > left]
        while following < len(owned) and owned[following][0] <= left:
            active.append(owned[following])
            following += 1
        if not active:
            continue
        rate = len(active)
        after = total + rate * (right - left) / 60.0
        if after >= allowance:
            at_s = left + max(0.0, allowance - total) / rate * 60.0
            return _crossing(rule, min(active, key=_first), at_s)
        total = after
    return None


def _first(item: tuple[float, float, int, Spending]) -> tuple[float, int, int, int]:
    start, _, seq, spending = item
    return (start, spending.shipment_id, spending.stream_id, seq)


def _crossing(rule: AlarmRule, item: tuple[float, float, int, Spending], at_s: float) -> Crossing:
    spending = item[3]
    began_s, _, began_seq = spending.intervals[0]
    return Crossing(
        rule=rule.name,
        at=from_epoch_s(at_s),
        stream_id=spending.stream_id,
        shipment_id=spending.shipment_id,
        began_at=from_epoch_s(began_s),
        began_seq=began_seq,
    )


def lot_alarm(rule: AlarmRule, crossing: Crossing) -> Alarm:
    """The alarm of a lot's budget running out, on the stream that crossed it."""
    return Alarm.of(rule, began_at=crossing.began_at, began_seq=crossing.began_seq, met_at=crossing.at)


def shipment_budget(
    rule: AlarmRule,
    shipment_id: int,
    spendings: Sequence[Spending],
    *,
    shipment_end: datetime | None,
    crossing: Crossing | None,
) -> StabilityBudget:
    """The budget as one shipment sees it: the lot's other spending by the shipment's last reading
    (``shipment_end``; none placed when the shipment has no reading), the shipment's own, and the lot's total
    now with the moment it ran out."""
    mine = [s for s in spendings if s.rule == rule.name and s.shipment_id == shipment_id]
    others = [s for s in spendings if s.rule == rule.name and s.shipment_id != shipment_id]
    end_s = -math.inf if shipment_end is None else shipment_end.timestamp()
    return stability_budget(
        rule,
        spent_before_min=spent_by(others, end_s),
        spent_in_shipment_min=sum(s.total_min for s in mine),
        lot_spent_min=sum(s.total_min for s in mine) + sum(s.total_min for s in others),
        lot_exhausted_at=None if crossing is None else crossing.at,
    )
