"""The engine: a working copy of an :class:`~coldchain.domain.evaluation.state.EvaluationState`, fed readings
in device time order, then turned back into a new state (see the package docstring for the protocol)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from coldchain.domain._epoch import from_epoch_s, to_epoch_s
from coldchain.domain.evaluation.results import CompleteWindow, Evaluation, Event, MktResult, judge_mkt
from coldchain.domain.evaluation.rule_tracker import RuleTracker
from coldchain.domain.evaluation.state import (
    ChannelMemory,
    Checkpoint,
    EvaluationState,
    MachineMemory,
    MktMemory,
    OutOfOrderError,
)
from coldchain.domain.excursions import PHYSICAL_RANGES, DataGap, Excursion, SensorFault, classify_fault
from coldchain.domain.lot_budget import Spending
from coldchain.domain.mkt import KELVIN_OFFSET, dh_over_r_k
from coldchain.domain.profiles import DEFAULT_ACTIVATION_ENERGY_KJ_MOL, Metric, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm

__all__ = ["HOLD_SEQ", "Engine"]

#: Buffer length beyond which a long ``advance`` compacts at a checkpoint (it always compacts at its end).
_COMPACT_AT = 1 << 16

_READING_FIELD: dict[Metric, str] = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "pressure": "pressure_kpa",
}


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_EXACT_US: Final = 1 << 53
"""Microseconds since the epoch a float holds exactly (years 1685 to 2255)."""

#: The sequence number of the mark :meth:`Engine.hold_until` feeds (a tracker's numbers start at 1).
HOLD_SEQ = -1


class Channel:
    """One metric's readings fed to the trackers of the rules on that metric, with sensor-fault runs."""

    __slots__ = (
        "current",
        "faults",
        "field",
        "metric",
        "quiet_high",
        "quiet_low",
        "trackers",
    )

    def __init__(self, memory: ChannelMemory, trackers: list[RuleTracker], faults: list[SensorFault]) -> None:
        self.metric = memory.metric
        self.field = _READING_FIELD[memory.metric]
        self.trackers = trackers
        self.faults = faults
        # The channel's memory, its own mutable copy: what a checkpoint copies back out (:meth:`memory`).
        self.current = msgspec.structs.replace(memory)
        # Values strictly inside (quiet_low, quiet_high) are valid and beyond no rule: nothing to judge.
        low, high = PHYSICAL_RANGES[memory.metric]
        for tracker in trackers:
            if tracker.rule.direction == "above":
                high = min(high, tracker.rule.threshold)
            else:
                low = max(low, tracker.rule.threshold)
        self.quiet_low = low
        self.quiet_high = high

    @property
    def busy(self) -> bool:
        """Whether a quiet reading can still change anything here (an open excursion or fault run)."""
        return self.current.fault_open or any(tracker.current.open for tracker in self.trackers)

    def step(
        self, prev_s: float | None, prev_seq: int, time_s: float, seq: int, gap: bool, value: float | None
    ) -> bool:
        """Credit the time since the previous reading, then take ``value``; returns :attr:`busy`.

        Only trackers with an open excursion care about the time since the previous reading (the previous
        value was beyond their threshold exactly when their excursion is open).
        """
        trackers = self.trackers
        if prev_s is not None:
            if self.current.prev_valid and not gap:
                prev_value = self.current.prev_value
                for tracker in trackers:
                    if tracker.current.open:
                        tracker.credit(prev_s, time_s, prev_value, prev_seq)
            else:
                for tracker in trackers:
                    if tracker.current.open:
                        tracker.uncredited(prev_s, time_s)
        reason = classify_fault(self.metric, value)
        if reason is None:
            assert value is not None
            if self.current.fault_open:
                self._close_fault(time_s)
            busy = False
            for tracker in trackers:
                if tracker.current.open or tracker.is_beyond(value):
                    tracker.observe(time_s, seq, value)
                    busy = busy or tracker.current.open
            self.current.prev_valid = True
            self.current.prev_value = value
            return busy
        if self.current.fault_open and self.current.fault_reason != reason:
            self._close_fault(time_s)
        if self.current.fault_open:
            self.current.fault_readings += 1
        else:
            self.current.fault_open = True
            self.current.fault_reason = reason
            self.current.fault_start_s = time_s
            self.current.fault_start_seq = seq
            self.current.fault_readings = 1
            self.current.fault_first_value = value if reason == "out_of_range" else None
        self.current.prev_valid = False
        return True

    def hold(self, prev_s: float, prev_seq: int, until_s: float, gap: bool) -> None:
        """The last reading's value holds until ``until_s`` (the end of the record), as before a next
        reading."""
        for tracker in self.trackers:
            if tracker.current.open:
                if self.current.prev_valid and not gap:
                    tracker.credit(prev_s, until_s, self.current.prev_value, prev_seq)
                else:
                    tracker.uncredited(prev_s, until_s)

    def open_fault(self) -> SensorFault | None:
        return self._fault(end_s=None) if self.current.fault_open else None

    def memory(self) -> ChannelMemory:
        return msgspec.structs.replace(self.current)

    def _close_fault(self, end_s: float) -> None:
        self.faults.append(self._fault(end_s=end_s))
        self.current.fault_open = False

    def _fault(self, *, end_s: float | None) -> SensorFault:
        return SensorFault(
            metric=self.metric,
            reason=self.current.fault_reason,
            start=from_epoch_s(self.current.fault_start_s),
            start_seq=self.current.fault_start_seq,
            end=None if end_s is None else from_epoch_s(end_s),
            readings=self.current.fault_readings,
            first_value=self.current.fault_first_value,
        )


class Engine:
    """A working copy of an :class:`EvaluationState`: fed readings, then turned back into a new state."""

    def __init__(self, profile: Profile, state: EvaluationState) -> None:
        self.profile = profile
        self.state = state
        machine = state.machine
        self.excursions = list(state.excursions)
        self.alarms = list(state.alarms)
        self.excursions_offset = state.excursions_offset
        self.alarms_offset = state.alarms_offset
        self.gaps = list(state.gaps)
        self.faults = list(state.faults)
        self.checkpoints = list(state.checkpoints)
        self.readings = machine.readings
        self.first_s = machine.first_s
        self.last_s = machine.last_s
        self.last_seq = machine.last_seq
        self.next_checkpoint_s = machine.next_checkpoint_s
        self.checkpoint_every_s = state.checkpoint_every_min * 60.0
        self.max_gap_s = profile.gap_tolerance_min * 60.0
        self.trackers = [
            RuleTracker(
                rule,
                memory,
                excursions=self.excursions,
                alarms=self.alarms,
                roll_start_s=list(state.roll_start_s[index]),
                roll_end_s=list(state.roll_end_s[index]),
                roll_start_seq=list(state.roll_start_seq[index]),
                roll_offset=state.roll_offset[index],
            )
            for index, (rule, memory) in enumerate(zip(profile.rules, machine.rules, strict=True))
        ]
        self.channels = [
            Channel(
                memory,
                [tracker for tracker in self.trackers if tracker.rule.metric == memory.metric],
                self.faults,
            )
            for memory in machine.channels
        ]
        settings = profile.mkt
        self.activation_energy_kj_mol = (
            settings.activation_energy_kj_mol if settings else DEFAULT_ACTIVATION_ENERGY_KJ_MOL
        )
        self.dh_over_r = dh_over_r_k(self.activation_energy_kj_mol)
        window_min = settings.window_min if settings else None
        self.window_s = None if window_min is None else window_min * 60.0
        # A window is complete when the data covers it to within one logging interval (the profile's, else the
        # gap tolerance): a day logged every minute from 00:00 to 23:59 is a full day.
        interval_min = profile.logging_interval_max_min or profile.gap_tolerance_min
        self.complete_after_s = None if window_min is None else max(0.0, window_min - interval_min) * 60.0
        self.mkt = machine.mkt
        self.mkt_end_s = list(state.mkt_end_s)
        self.mkt_credit = list(state.mkt_credit)
        self.mkt_held_min = list(state.mkt_held_min)
        self.mkt_offset = state.mkt_offset

    # -- feeding ---------------------------------------------------------------------------------------------

    def feed(self, readings: Iterable[Reading]) -> None:
        """Judge ``readings`` (strictly after the last one seen, in device time order).

        A mark with sequence number :data:`HOLD_SEQ` instead of a reading closes the record at its time: the
        last reading's values hold until then exactly as they would until a next reading (the same credit, gap
        and MKT window code), but no value is taken and nothing is counted as a reading; it ends the feed.

        The inner loop works on local variables: a reading that is valid and within every threshold while
        nothing is open costs a few float operations (MKT sums and window) and no allocation.
        """
        temperature = self.channels[0]
        others = self.channels[1:]
        max_gap_s = self.max_gap_s
        every_s = self.checkpoint_every_s
        dh_over_r = self.dh_over_r
        kelvin = KELVIN_OFFSET
        exp = math.exp
        window_s = self.window_s
        windowed = window_s is not None
        span_s = window_s if window_s is not None else 0.0
        complete_after_s = self.complete_after_s or 0.0
        hold_seq = HOLD_SEQ
        # Loggers read at a fixed interval. A reading that follows the previous one by the same time as that one
        # followed its own predecessor is that many microseconds later: an addition of integers instead of
        # timestamp(), which is a good part of a quiet reading's cost. The float is then the microseconds divided
        # once, as timestamp() divides them, so the same (exact within _EXACT_US).
        previous: datetime | None = None
        step: timedelta | None = None
        step_us = 0
        last_us = 0
        quiet_low = temperature.quiet_low
        quiet_high = temperature.quiet_high

        count = self.readings
        first_s = self.first_s
        full_window_s = first_s + complete_after_s
        last_s = self.last_s
        last_seq = self.last_seq
        next_checkpoint_s = self.next_checkpoint_s
        prev_valid = temperature.current.prev_valid
        prev_c = temperature.current.prev_value
        busy = temperature.busy
        mkt = self.mkt
        prev_weight = mkt.prev_weight
        weighted_sum = mkt.weighted_sum
        credited_min = mkt.credited_min
        celsius_min_sum = mkt.celsius_min_sum
        min_c = math.inf if mkt.min_c is None else mkt.min_c
        max_c = -math.inf if mkt.max_c is None else mkt.max_c
        window_sum = mkt.window_weighted_sum
        window_min = mkt.window_credited_min
        worst_ratio = -1.0 if mkt.worst_ratio is None else mkt.worst_ratio
        worst_end_s = mkt.worst_end_s
        worst_min = mkt.worst_min
        ends = self.mkt_end_s
        credits = self.mkt_credit
        helds = self.mkt_held_min
        head = mkt.head - self.mkt_offset
        size = len(ends)

        for reading in readings:
            moment = reading.device_time
            if moment.tzinfo is None:
                raise ValueError(f"reading seq {reading.seq}: device_time must be timezone-aware (UTC)")
            if step is not None and previous is not None and moment - previous == step:
                micros = last_us + step_us
            else:
                micros = (moment - _EPOCH) // _MICROSECOND
                step = None if previous is None else moment - previous
                step_us = micros - last_us
            time_s = float(micros) / 1e6 if -_EXACT_US < micros < _EXACT_US else moment.timestamp()
            last_us = micros
            previous = moment
            seq = reading.seq
            holding = seq == hold_seq
            if count:
                if holding:
                    seq = last_seq
                elif time_s <= last_s and (time_s < last_s or seq <= last_seq):
                    raise OutOfOrderError(
                        f"reading seq {seq} at {moment.isoformat()} is not after the last reading evaluated "
                        f"(seq {last_seq} at {from_epoch_s(last_s).isoformat()}): rewind first"
                    )
                elif time_s >= next_checkpoint_s:
                    self._sync(
                        count, first_s, last_s, last_seq, next_checkpoint_s, prev_valid, prev_c,
                        MktMemory(
                            weighted_sum=weighted_sum, credited_min=credited_min,
                            celsius_min_sum=celsius_min_sum,
                            min_c=None if min_c == math.inf else min_c,
                            max_c=None if max_c == -math.inf else max_c,
                            prev_weight=prev_weight, window_weighted_sum=window_sum,
                            window_credited_min=window_min, head=head + self.mkt_offset,
                            length=size + self.mkt_offset,
                            worst_ratio=None if worst_ratio < 0 else worst_ratio, worst_end_s=worst_end_s,
                            worst_min=worst_min,
                        ),
                    )  # fmt: skip
                    self._checkpoint()
                    next_checkpoint_s = (math.floor(time_s / every_s) + 1) * every_s
                    head = self.mkt.head - self.mkt_offset
                    size = len(ends)
                held_s = time_s - last_s
                gap = held_s > max_gap_s
                if gap:
                    self.gaps.append(DataGap(start=from_epoch_s(last_s), end=moment, duration_min=held_s / 60.0))
                elif prev_valid:
                    held_min = held_s / 60.0
                    credit = prev_weight * held_min
                    weighted_sum += credit
                    credited_min += held_min
                    celsius_min_sum += prev_c * held_min
                    if windowed:
                        ends.append(time_s)
                        credits.append(credit)
                        helds.append(held_min)
                        size += 1
                        window_sum += credit
                        window_min += held_min
            else:
                first_s = time_s
                full_window_s = first_s + complete_after_s
                gap = False
                next_checkpoint_s = (math.floor(time_s / every_s) + 1) * every_s

            value = reading.temperature_c
            if holding:
                temperature.current.prev_valid = prev_valid
                temperature.current.prev_value = prev_c
                for channel in self.channels:
                    channel.hold(last_s, last_seq, time_s, gap)
            elif not busy and value is not None and quiet_low < value < quiet_high:
                # Valid, beyond no threshold, nothing open: no rule can change.
                if value != prev_c or not prev_valid:
                    prev_weight = exp(-dh_over_r / (value + kelvin))
                    prev_c = value
                    prev_valid = True
                if value < min_c:
                    min_c = value
                if value > max_c:
                    max_c = value
            else:
                temperature.current.prev_valid = prev_valid
                temperature.current.prev_value = prev_c
                busy = temperature.step(last_s if count else None, last_seq, time_s, seq, gap, value)
                if temperature.current.prev_valid:
                    valid_c = temperature.current.prev_value
                    if valid_c != prev_c or not prev_valid:
                        prev_weight = exp(-dh_over_r / (valid_c + kelvin))
                        prev_c = valid_c
                    if valid_c < min_c:
                        min_c = valid_c
                    if valid_c > max_c:
                        max_c = valid_c
                    prev_valid = True
                else:
                    prev_valid = False

            if windowed:
                # The window of the profile's length ending at this reading: drop the intervals that ended
                # before it starts, cut the one it starts in, compare Σ weight·Δt / Σ Δt with the worst so
                # far.
                window_start_s = time_s - span_s
                while head < size and ends[head] <= window_start_s:
                    window_sum -= credits[head]
                    window_min -= helds[head]
                    head += 1
                if head == size:
                    window_sum = 0.0
                    window_min = 0.0
                elif time_s >= full_window_s:
                    outside_min = helds[head] - (ends[head] - window_start_s) / 60.0
                    if outside_min > 0:
                        ratio_sum = window_sum - credits[head] * (outside_min / helds[head])
                        ratio_min = window_min - outside_min
                    else:
                        ratio_sum = window_sum
                        ratio_min = window_min
                    if ratio_min > 0 and ratio_sum > worst_ratio * ratio_min:
                        worst_ratio = ratio_sum / ratio_min
                        worst_end_s = time_s
                        worst_min = ratio_min

            if holding:
                break
            if others:
                for channel in others:
                    channel.step(last_s if count else None, last_seq, time_s, seq, gap, getattr(reading, channel.field))

            last_s = time_s
            last_seq = seq
            count += 1

        self._sync(
            count, first_s, last_s, last_seq, next_checkpoint_s, prev_valid, prev_c,
            MktMemory(
                weighted_sum=weighted_sum, credited_min=credited_min, celsius_min_sum=celsius_min_sum,
                min_c=None if min_c == math.inf else min_c, max_c=None if max_c == -math.inf else max_c,
                prev_weight=prev_weight, window_weighted_sum=window_sum, window_credited_min=window_min,
                head=head + self.mkt_offset, length=size + self.mkt_offset,
                worst_ratio=None if worst_ratio < 0 else worst_ratio, worst_end_s=worst_end_s,
                worst_min=worst_min,
            ),
        )  # fmt: skip
        self._compact(fully=True)

    def _sync(
        self,
        count: int,
        first_s: float,
        last_s: float,
        last_seq: int,
        next_checkpoint_s: float,
        prev_valid: bool,
        prev_c: float,
        mkt: MktMemory,
    ) -> None:
        self.readings = count
        self.first_s = first_s
        self.last_s = last_s
        self.last_seq = last_seq
        self.next_checkpoint_s = next_checkpoint_s
        self.channels[0].current.prev_valid = prev_valid
        self.channels[0].current.prev_value = prev_c
        self.mkt = mkt

    # -- checkpoints -----------------------------------------------------------------------------------------

    def memory(self) -> MachineMemory:
        return MachineMemory(
            readings=self.readings,
            first_s=self.first_s,
            last_s=self.last_s,
            last_seq=self.last_seq,
            next_checkpoint_s=self.next_checkpoint_s,
            channels=tuple(channel.memory() for channel in self.channels),
            rules=tuple(tracker.memory() for tracker in self.trackers),
            mkt=self.mkt,
        )

    def _checkpoint(self) -> None:
        self.checkpoints.append(
            Checkpoint(
                machine=self.memory(),
                excursions=self.excursions_offset + len(self.excursions),
                alarms=self.alarms_offset + len(self.alarms),
                gaps=len(self.gaps),
                faults=len(self.faults),
            )
        )
        excess = len(self.checkpoints) - self.state.checkpoints_kept
        if excess > 0:
            del self.checkpoints[:excess]
        if len(self.mkt_end_s) > _COMPACT_AT:
            self._compact()

    def _compact(self, *, fully: bool = False) -> None:
        """Drop buffer entries no window and no retained checkpoint can reach again.

        Inside a long feed only when at least half the buffer goes (amortised: each entry is moved a bounded
        number of times); ``fully`` at the end of a feed, since the state is encoded and stored whole after every
        batch anyway: what a stream stores is then bounded by the MKT window and the retained checkpoints, not
        by the readings since the buffer was last halved (at one reading a minute, a 24 h window and a day of
        checkpoints, about 2,900 entries instead of up to twice that)."""
        oldest = [checkpoint.machine for checkpoint in self.checkpoints[:1]]
        keep = min([self.mkt.head] + [machine.mkt.head for machine in oldest])
        drop = keep - self.mkt_offset
        if drop > 0 and (fully or drop * 2 >= len(self.mkt_end_s)):
            del self.mkt_end_s[:drop], self.mkt_credit[:drop], self.mkt_held_min[:drop]
            self.mkt_offset += drop
        for index, tracker in enumerate(self.trackers):
            keep = min([tracker.roll_head + tracker.roll_offset] + [m.rules[index].roll_head for m in oldest])
            drop = keep - tracker.roll_offset
            if drop > 0 and (fully or drop * 2 >= len(tracker.roll_start_s)):
                del tracker.roll_start_s[:drop], tracker.roll_end_s[:drop], tracker.roll_start_seq[:drop]
                tracker.roll_offset += drop
                tracker.roll_head -= drop

    def hold_until(self, until: datetime) -> None:
        """Close the record at ``until``: the last reading's values hold until then, as they would until a
        next reading (not across a gap, which is reported). Used on a copy, for a final evaluation."""
        if not self.readings:
            return
        if to_epoch_s(until) < self.last_s:
            raise ValueError("until is before the last reading")
        self.feed((Reading(seq=HOLD_SEQ, device_time=until),))

    # -- results ---------------------------------------------------------------------------------------------

    def to_state(self) -> EvaluationState:
        """The state to store: closed excursions and alarms settled before the oldest retained checkpoint leave
        it (see :class:`EvaluationState`); nothing does while no checkpoint is kept."""
        excursions, excursions_offset = self.excursions, self.excursions_offset
        alarms, alarms_offset = self.alarms, self.alarms_offset
        if self.checkpoints:
            oldest = self.checkpoints[0]
            excursions = excursions[oldest.excursions - excursions_offset :]
            excursions_offset = oldest.excursions
            alarms = alarms[oldest.alarms - alarms_offset :]
            alarms_offset = oldest.alarms
        return msgspec.structs.replace(
            self.state,
            machine=self.memory(),
            excursions=excursions,
            alarms=alarms,
            excursions_offset=excursions_offset,
            alarms_offset=alarms_offset,
            gaps=self.gaps,
            faults=self.faults,
            mkt_end_s=self.mkt_end_s,
            mkt_credit=self.mkt_credit,
            mkt_held_min=self.mkt_held_min,
            mkt_offset=self.mkt_offset,
            roll_start_s=[tracker.roll_start_s for tracker in self.trackers],
            roll_end_s=[tracker.roll_end_s for tracker in self.trackers],
            roll_start_seq=[tracker.roll_start_seq for tracker in self.trackers],
            roll_offset=[tracker.roll_offset for tracker in self.trackers],
            checkpoints=self.checkpoints,
        )

    def open_results(self) -> list[Event]:
        opened: list[Event] = []
        for tracker in self.trackers:
            excursion = tracker.open_excursion()
            if excursion is not None:
                opened.append(excursion)
        for channel in self.channels:
            fault = channel.open_fault()
            if fault is not None:
                opened.append(fault)
        return opened

    def mkt_result(self) -> MktResult:
        mkt = self.mkt
        worst: CompleteWindow | None = None
        if self.window_s is not None and mkt.worst_ratio is not None and mkt.worst_end_s is not None:
            end = from_epoch_s(mkt.worst_end_s)
            worst = CompleteWindow(
                mkt_c=self.dh_over_r / -math.log(mkt.worst_ratio) - KELVIN_OFFSET,
                start=end - timedelta(seconds=self.window_s),
                end=end,
                covered_min=mkt.worst_min,
            )
        return judge_mkt(
            self.profile,
            weighted_sum=mkt.weighted_sum,
            credited_min=mkt.credited_min,
            first=from_epoch_s(self.first_s) if self.readings else None,
            last=from_epoch_s(self.last_s) if self.readings else None,
            worst=worst,
        )

    def evaluation(self, *, left: Sequence[Excursion] = (), left_alarms: Sequence[Alarm] = ()) -> Evaluation:
        """Where the stream stands; ``left`` and ``left_alarms`` are the closed excursions and alarms that left
        the state (:class:`EvaluationState`)."""
        profile = self.profile
        mkt = self.mkt
        excursions = [*left, *self.excursions]
        excursions += [excursion for tracker in self.trackers if (excursion := tracker.open_excursion()) is not None]
        excursions.sort(key=lambda excursion: (excursion.start, excursion.start_seq, excursion.rule))
        faults = self.faults + [fault for channel in self.channels if (fault := channel.open_fault()) is not None]
        faults.sort(key=lambda fault: (fault.start, fault.start_seq, fault.metric))
        return Evaluation(
            profile_id=profile.id,
            profile_version=profile.version,
            readings=self.readings,
            first_reading_at=from_epoch_s(self.first_s) if self.readings else None,
            last_reading_at=from_epoch_s(self.last_s) if self.readings else None,
            temperature_min_c=mkt.min_c,
            temperature_max_c=mkt.max_c,
            temperature_mean_c=mkt.celsius_min_sum / mkt.credited_min if mkt.credited_min > 0 else None,
            rules=[tracker.summary(self.last_s) for tracker in self.trackers],
            excursions=excursions,
            alarms=[*left_alarms, *self.alarms],
            gaps=list(self.gaps),
            faults=faults,
            mkt=self.mkt_result(),
            budgets=[],
        )

    def spendings(self, *, stream_id: int, shipment_id: int) -> list[Spending]:
        """This stream's spending of each lifetime rule (its intervals in device time)."""
        return [
            Spending.of(
                stream_id=stream_id,
                shipment_id=shipment_id,
                rule=tracker.rule.name,
                spent_min=tracker.current.total_min,
                intervals=tracker.spending(),
            )
            for tracker in self.trackers
            if tracker.rule.scope == "lifetime"
        ]
