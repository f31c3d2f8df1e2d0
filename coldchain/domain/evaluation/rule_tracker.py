"""One alarm rule's state machine, fed by the engine: the semantics are :mod:`coldchain.domain.rules`'.

A module of its own so that ``ops/compile-engine`` compiles it with the engine (its methods run for every reading
beyond a threshold, and the engine then calls them natively); it runs as plain Python as well.
"""

from __future__ import annotations

import math

from coldchain.domain._epoch import from_epoch_s
from coldchain.domain.excursions import Excursion
from coldchain.domain.profiles import ROLLING_WINDOW_MIN, AlarmRule
from coldchain.domain.rules import Alarm, RuleMemory, RuleStatus, RuleSummary

__all__ = ["RuleTracker"]

_ROLLING_WINDOW_S = ROLLING_WINDOW_MIN * 60.0


class _Working:
    """A tracker's :class:`RuleMemory` while it works: the same fields, as attributes of a class of its own (where
    the module is compiled, fields of a C struct, read and written without a look-up; a msgspec Struct's are
    looked up by name each time)."""

    open: bool
    ex_start_s: float
    ex_start_seq: int
    ex_end_s: float
    ex_credited_min: float
    ex_uncredited_min: float
    ex_peak: float
    ex_degree_min: float
    ex_alarmed: bool
    total_min: float
    total_degree_min: float
    longest_min: float
    excursions: int
    alarms: int
    first_start_s: float | None
    first_start_seq: int
    latched: bool
    last_alarm_began_s: float | None
    roll_head: int
    roll_len: int
    roll_last_end_s: float | None
    roll_sum_min: float
    roll_armed: bool
    roll_x_s: float

    def __init__(self, memory: RuleMemory) -> None:
        self.open = memory.open
        self.ex_start_s = memory.ex_start_s
        self.ex_start_seq = memory.ex_start_seq
        self.ex_end_s = memory.ex_end_s
        self.ex_credited_min = memory.ex_credited_min
        self.ex_uncredited_min = memory.ex_uncredited_min
        self.ex_peak = memory.ex_peak
        self.ex_degree_min = memory.ex_degree_min
        self.ex_alarmed = memory.ex_alarmed
        self.total_min = memory.total_min
        self.total_degree_min = memory.total_degree_min
        self.longest_min = memory.longest_min
        self.excursions = memory.excursions
        self.alarms = memory.alarms
        self.first_start_s = memory.first_start_s
        self.first_start_seq = memory.first_start_seq
        self.latched = memory.latched
        self.last_alarm_began_s = memory.last_alarm_began_s
        self.roll_head = memory.roll_head
        self.roll_len = memory.roll_len
        self.roll_last_end_s = memory.roll_last_end_s
        self.roll_sum_min = memory.roll_sum_min
        self.roll_armed = memory.roll_armed
        self.roll_x_s = memory.roll_x_s

    def memory(self) -> RuleMemory:
        return RuleMemory(
            open=self.open,
            ex_start_s=self.ex_start_s,
            ex_start_seq=self.ex_start_seq,
            ex_end_s=self.ex_end_s,
            ex_credited_min=self.ex_credited_min,
            ex_uncredited_min=self.ex_uncredited_min,
            ex_peak=self.ex_peak,
            ex_degree_min=self.ex_degree_min,
            ex_alarmed=self.ex_alarmed,
            total_min=self.total_min,
            total_degree_min=self.total_degree_min,
            longest_min=self.longest_min,
            excursions=self.excursions,
            alarms=self.alarms,
            first_start_s=self.first_start_s,
            first_start_seq=self.first_start_seq,
            latched=self.latched,
            last_alarm_began_s=self.last_alarm_began_s,
            roll_head=self.roll_head,
            roll_len=self.roll_len,
            roll_last_end_s=self.roll_last_end_s,
            roll_sum_min=self.roll_sum_min,
            roll_armed=self.roll_armed,
            roll_x_s=self.roll_x_s,
        )


class RuleTracker:
    """The state machine of one rule; see the module docstring for the semantics.

    Closed excursions and raised alarms are appended to the lists given at construction (shared by all
    trackers of an evaluation, so they stay in the order the facts happened). ``roll_start_s``/``roll_end_s``
    are the rule's buffer of beyond intervals, merged when contiguous: the rolling window's, or a lifetime rule's
    spending in device time (never dropped); ``roll_offset`` is how many entries were dropped from their front.
    """

    __slots__ = (
        "_above",
        "_alarms",
        "_consecutive",
        "_cumulative",
        "_delay",
        "_excursions",
        "_inclusive",
        "_instant",
        "_lifetime",
        "_rolling",
        "_snapshot",
        "_threshold",
        "current",
        "roll_end_s",
        "roll_head",
        "roll_offset",
        "roll_start_s",
        "roll_start_seq",
        "rule",
    )

    def __init__(
        self,
        rule: AlarmRule,
        memory: RuleMemory,
        *,
        excursions: list[Excursion],
        alarms: list[Alarm],
        roll_start_s: list[float],
        roll_end_s: list[float],
        roll_start_seq: list[int],
        roll_offset: int,
    ) -> None:
        self.rule = rule
        self._above = rule.direction == "above"
        self._threshold = rule.threshold
        self._inclusive = rule.inclusive
        self._delay = rule.delay_min
        self._instant = rule.mode == "instant"
        self._consecutive = rule.mode == "consecutive"
        self._rolling = rule.scope == "rolling_24h"
        self._lifetime = rule.scope == "lifetime"
        self._cumulative = rule.mode == "cumulative" and not self._rolling and not self._lifetime
        self._excursions = excursions
        self._alarms = alarms
        self.roll_start_s = roll_start_s
        self.roll_end_s = roll_end_s
        self.roll_start_seq = roll_start_seq
        self.roll_offset = roll_offset
        # The rule's memory, its own mutable copy (roll_head is kept relative to the buffers, below).
        self.current = _Working(memory)
        self.roll_head = memory.roll_head - roll_offset
        self._snapshot: RuleMemory | None = memory

    # -- the rule itself -------------------------------------------------------------------------------------

    def is_beyond(self, value: float) -> bool:
        if self._above:
            return value >= self._threshold if self._inclusive else value > self._threshold
        return value <= self._threshold if self._inclusive else value < self._threshold

    @property
    def busy(self) -> bool:
        """Whether quiet readings (within every threshold) can still change this tracker.

        A rolling window slides lazily: the quiet time since its last beyond interval is slid over when the
        next beyond interval comes (the result is the same, the window's sum only falls in quiet time).
        """
        return self.current.open

    # -- feeding ---------------------------------------------------------------------------------------------

    def credit(self, start_s: float, end_s: float, value: float, seq: int) -> None:
        """The valid ``value`` of reading ``seq``, read at ``start_s``, held until ``end_s``.

        Only time beyond the threshold changes anything, and the last valid value is beyond the threshold
        exactly while the excursion is open: a value within the threshold is a no-op.
        """
        state = self.current
        if not state.open:
            return
        self._snapshot = None
        held_min = (end_s - start_s) / 60.0
        before_min = state.ex_credited_min
        state.ex_credited_min = before_min + held_min
        excess = value - self._threshold if self._above else self._threshold - value
        if excess > 0:
            degree_min = excess * held_min
            state.ex_degree_min += degree_min
            state.total_degree_min += degree_min
        total_before_min = state.total_min
        state.total_min = total_before_min + held_min
        state.ex_end_s = end_s
        delay = self._delay
        if self._consecutive:
            if not state.ex_alarmed and before_min < delay <= before_min + held_min:
                state.ex_alarmed = True
                self._raise(state.ex_start_s, state.ex_start_seq, start_s + (delay - before_min) * 60.0)
        elif self._cumulative:
            if not state.latched and total_before_min < delay <= total_before_min + held_min:
                state.latched = True
                began_s = state.first_start_s if state.first_start_s is not None else state.ex_start_s
                self._raise(began_s, state.first_start_seq, start_s + (delay - total_before_min) * 60.0)
        elif self._lifetime:
            if end_s > start_s:
                ends = self.roll_end_s
                if ends and ends[-1] == start_s:
                    ends[-1] = end_s  # contiguous with the last spending: one interval
                else:
                    self.roll_start_s.append(start_s)
                    ends.append(end_s)
                    self.roll_start_seq.append(seq)
        elif self._rolling:
            if state.roll_x_s < start_s:
                self._slide(state.roll_x_s, start_s, beyond=False, seq=seq)  # catch up the quiet time
            self._slide(start_s, end_s, beyond=True, seq=seq)
            state.roll_x_s = end_s

    def uncredited(self, start_s: float, end_s: float) -> None:
        """Time between two readings that is credited to no value (a data gap, or a faulted reading)."""
        state = self.current
        if state.open:
            self._snapshot = None
            state.ex_uncredited_min += (end_s - start_s) / 60.0

    def observe(self, time_s: float, seq: int, value: float) -> None:
        """A new valid reading (``seq`` at ``time_s``): opens, continues or closes this rule's excursion."""
        state = self.current
        self._snapshot = None
        if self.is_beyond(value):
            if state.open:
                if (value > state.ex_peak) if self._above else (value < state.ex_peak):
                    state.ex_peak = value
                return
            state.open = True
            state.ex_start_s = time_s
            state.ex_start_seq = seq
            state.ex_end_s = time_s
            state.ex_credited_min = 0.0
            state.ex_uncredited_min = 0.0
            state.ex_peak = value
            state.ex_degree_min = 0.0
            state.ex_alarmed = False
            state.excursions += 1
            if state.first_start_s is None:
                state.first_start_s = time_s
                state.first_start_seq = seq
            if self._instant or (self._consecutive and self._delay == 0):
                state.ex_alarmed = True
                self._raise(time_s, seq, time_s)
            elif self._cumulative and not state.latched and state.total_min >= self._delay:
                # Delay 0.
                state.latched = True
                self._raise(state.first_start_s, state.first_start_seq, time_s)
        elif state.open:
            self._close()

    def open_excursion(self) -> Excursion | None:
        """The excursion in progress, if any."""
        return self._excursion(end_s=None) if self.current.open else None

    def summary(self, last_s: float) -> RuleSummary:
        """Where the rule stands after the reading at ``last_s``."""
        state = self.current
        since_s: float | None = None
        status: RuleStatus = "ok"
        if state.alarms:
            status, since_s = "alarmed", state.last_alarm_began_s
        elif state.open:
            status, since_s = "pending", state.first_start_s if self._cumulative or self._lifetime else state.ex_start_s
        elif (self._cumulative or self._lifetime) and state.total_min > 0:
            status, since_s = "pending", state.first_start_s
        elif self._rolling:
            window_start_s = last_s - _ROLLING_WINDOW_S
            for start_s, end_s in zip(
                self.roll_start_s[self.roll_head :], self.roll_end_s[self.roll_head :], strict=True
            ):
                if end_s > window_start_s:
                    status, since_s = "pending", start_s
                    break
        longest = max(state.longest_min, state.ex_credited_min) if state.open else state.longest_min
        return RuleSummary(
            rule=self.rule.name,
            status=status,
            since=None if since_s is None else from_epoch_s(since_s),
            beyond_now=state.open,
            beyond_min=state.total_min,
            longest_min=longest,
            degree_min=state.total_degree_min,
            excursions=state.excursions,
            alarms=state.alarms,
        )

    def spending(self) -> list[tuple[float, float, int]]:
        """A lifetime rule's spending so far: (start, end, seq of the reading held) intervals in epoch seconds."""
        return list(zip(self.roll_start_s, self.roll_end_s, self.roll_start_seq, strict=True))

    def memory(self) -> RuleMemory:
        """A copy of the tracker's memory (the same copy again while nothing changed, which keeps checkpoints
        cheap)."""
        if self._snapshot is None:
            current = self.current
            current.roll_head = self.roll_head + self.roll_offset
            current.roll_len = len(self.roll_start_s) + self.roll_offset
            current.roll_last_end_s = self.roll_end_s[-1] if self.roll_end_s else None
            self._snapshot = current.memory()
        return self._snapshot

    # -- internals -------------------------------------------------------------------------------------------

    def _close(self) -> None:
        state = self.current
        state.open = False
        if state.ex_credited_min > state.longest_min:
            state.longest_min = state.ex_credited_min
        self._excursions.append(self._excursion(end_s=state.ex_end_s))

    def _excursion(self, *, end_s: float | None) -> Excursion:
        state = self.current
        rule = self.rule
        return Excursion(
            rule=rule.name,
            metric=rule.metric,
            direction=rule.direction,
            threshold=rule.threshold,
            start=from_epoch_s(state.ex_start_s),
            start_seq=state.ex_start_seq,
            end=None if end_s is None else from_epoch_s(end_s),
            duration_min=state.ex_credited_min,
            uncredited_min=state.ex_uncredited_min,
            peak=state.ex_peak,
            degree_min=state.ex_degree_min,
        )

    def _raise(self, began_s: float, began_seq: int, met_s: float) -> None:
        state = self.current
        state.alarms += 1
        state.last_alarm_began_s = began_s
        self._alarms.append(
            Alarm.of(self.rule, began_at=from_epoch_s(began_s), began_seq=began_seq, met_at=from_epoch_s(met_s))
        )

    def _slide(self, start_s: float, end_s: float, *, beyond: bool, seq: int) -> None:
        """Move the 24 h window's end from ``start_s`` to ``end_s`` (rolling_24h scope).

        S(x), the beyond time within [x − 24 h, x], is piecewise linear in x with breakpoints where the
        window's start crosses a buffered interval's edge; walking those breakpoints finds the exact moment S
        reaches the delay (alarm) or falls below it again (re-armed).
        """
        state = self.current
        starts, ends = self.roll_start_s, self.roll_end_s
        if self.roll_head >= len(starts):
            # Nothing in the window: the sum is 0 (reset, so rounding cannot accumulate) and below any delay.
            state.roll_sum_min = 0.0
            state.roll_armed = True
            if not beyond:
                return
        if beyond and end_s - start_s >= _ROLLING_WINDOW_S / 2:
            # A held value longer than half the window: slide in halves so the window's start never reaches
            # the interval being added.
            middle_s = start_s + (end_s - start_s) / 2
            self._slide(start_s, middle_s, beyond=beyond, seq=seq)
            self._slide(middle_s, end_s, beyond=beyond, seq=seq)
            return
        delay = self._delay
        total = state.roll_sum_min
        head = self.roll_head
        count = len(starts)
        x = start_s
        while x < end_s:
            window_start = x - _ROLLING_WINDOW_S
            while head < count and ends[head] <= window_start:
                head += 1
            inside = False
            next_break = math.inf
            if head < count:
                if window_start < starts[head]:
                    next_break = starts[head] + _ROLLING_WINDOW_S
                else:
                    inside = True
                    next_break = ends[head] + _ROLLING_WINDOW_S
            y = end_s if end_s < next_break else next_break
            slope = (1 if beyond else 0) - (1 if inside else 0)
            after = total + slope * (y - x) / 60.0
            if slope > 0 and state.roll_armed and total < delay <= after:
                state.roll_armed = False
                # The window's start lies before the head interval (slope > 0), so the earliest beyond period
                # in the window is the head interval, or the one being added when the buffer is empty.
                began_s, began_seq = (starts[head], self.roll_start_seq[head]) if head < count else (start_s, seq)
                self._raise(began_s, began_seq, x + (delay - total) * 60.0)
            elif slope < 0 and not state.roll_armed and after < delay:
                state.roll_armed = True
            total = after
            x = y
        self.roll_head = head
        state.roll_sum_min = total
        if beyond:
            if head < len(starts) and ends[-1] == start_s:
                ends[-1] = end_s  # contiguous with the last beyond period: one period
            else:
                starts.append(start_s)
                ends.append(end_s)
                self.roll_start_seq.append(seq)
