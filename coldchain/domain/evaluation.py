"""The evaluation engine: a shipment's readings judged against its stability profile, incrementally.

Time accounting, the one convention everything here follows: each reading's value holds from its own device
time until the next reading (left rectangle, sample and hold), never across a data gap longer than the
profile's ``max_gap_min``; a reading without a valid value (missing, NaN, physically impossible) credits
nothing and is a sensor fault, kept apart from excursions. Excursions, cumulative and longest time beyond each
rule, degree-minutes, alarms, MKT and budgets all follow from it (see :mod:`coldchain.domain.rules` for the
rule semantics, :func:`coldchain.domain.mkt.mean_kinetic_temperature` for MKT).

An excursion across a data gap: when the readings on both sides of the gap are beyond a rule's threshold the
excursion continues (same identity), but the gap's time is not credited to it (it shows as ``uncredited_min``)
and a consecutive counter neither resets nor advances; the gap itself is a :class:`DataGap` event. Nothing is
interpolated, and no excursion is hidden by splitting it at a gap.

Incremental protocol (what the service does per batch of one shipment, after storing the batch and keeping
only the readings it did not have yet)::

    state = decode_state(stored_bytes) if stored_bytes else new_state(profile, lot_spent_before_min=...)
    new = sorted(new_readings, key=lambda r: (r.device_time, r.seq))
    if is_late(state, new[0]):                               # not after the last reading judged
        rewound = rewind(profile, state, ReadingKey.of(new[0]))
        replay = store.readings_after(rewound.replay_after)  # (device_time, seq) > key, in order; all if None
        state, events = advance(profile, rewound.state, replay)
        withdrawn = set(rewound.superseded) - {event.key for event in events}   # delete or mark these
    else:
        state, events = advance(profile, state, new)
    save encode_state(state); upsert every event by its key (a key already stored is an update: an alarm
    already raised is not raised again; an excursion's end and figures may have changed)

``advance`` costs time proportional to the readings given: the state carries running sums, open excursions and
bounded window buffers, never the readings. It records a checkpoint each time device time enters a new
``checkpoint_every_min`` period and keeps the last ``checkpoints_kept``; ``rewind`` restores the last
checkpoint strictly before the given reading (or the initial state when the late reading is older than every
checkpoint) and says from which reading to replay. After any delivery order, the final results equal one pass
over the complete log in time order: replay repeats exactly the arithmetic of that one pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from coldchain.domain._epoch import from_epoch_s, to_epoch_s
from coldchain.domain.budget import StabilityBudget
from coldchain.domain.excursions import (
    PHYSICAL_RANGES,
    DataGap,
    Excursion,
    FaultReason,
    SensorFault,
    classify_fault,
)
from coldchain.domain.lot_budget import Spending, find_crossing, lot_alarm, shipment_budget
from coldchain.domain.mkt import KELVIN_OFFSET, arrhenius_weight, dh_over_r_k, mkt_from_sums
from coldchain.domain.profiles import (
    DEFAULT_ACTIVATION_ENERGY_KJ_MOL,
    Metric,
    MktWindow,
    Profile,
)
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm, RuleMemory, RuleSummary, RuleTracker

__all__ = [
    "ChannelMemory",
    "Checkpoint",
    "CompleteWindow",
    "Evaluation",
    "EvaluationState",
    "Event",
    "MachineMemory",
    "MktBasis",
    "MktMemory",
    "MktResult",
    "MktVerdict",
    "OutOfOrderError",
    "ReadingKey",
    "Rewound",
    "advance",
    "alarm_order",
    "decode_state",
    "encode_state",
    "evaluate",
    "is_late",
    "judge_lifetime_rules",
    "judge_mkt",
    "new_state",
    "rewind",
    "stream_evaluation",
    "stream_spendings",
    "summarise",
]

#: What ``advance`` reports: every result created or changed by the readings it was given.
Event = Excursion | Alarm | DataGap | SensorFault

#: Buffer length beyond which a long ``advance`` compacts at a checkpoint (it always compacts at its end).
_COMPACT_AT = 1 << 16

_READING_FIELD: dict[Metric, str] = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "pressure": "pressure_kpa",
}


class OutOfOrderError(ValueError):
    """``advance`` was given a reading not after the last one the state has seen: rewind first."""


class ReadingKey(msgspec.Struct, frozen=True, kw_only=True):
    """The position of a reading in the evaluation order: device time, then the tracker's sequence number."""

    device_time: datetime
    seq: int

    @classmethod
    def of(cls, reading: Reading) -> ReadingKey:
        return cls(device_time=reading.device_time, seq=reading.seq)


class ChannelMemory(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What the engine remembers of one metric: the last reading's value and an open sensor-fault run."""

    metric: Metric
    prev_valid: bool = False
    prev_value: float = 0.0
    fault_open: bool = False
    fault_reason: FaultReason = "missing"
    fault_start_s: float = 0.0
    fault_start_seq: int = 0
    fault_readings: int = 0
    fault_first_value: float | None = None


class MktMemory(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Running MKT sums: over the shipment, over the current window, and the worst full window so far.

    ``head`` and ``length`` are absolute indices into the window buffer (entries are dropped from its front).
    """

    weighted_sum: float = 0.0
    credited_min: float = 0.0
    celsius_min_sum: float = 0.0
    min_c: float | None = None
    max_c: float | None = None
    prev_weight: float = 0.0
    window_weighted_sum: float = 0.0
    window_credited_min: float = 0.0
    head: int = 0
    length: int = 0
    worst_ratio: float | None = None
    worst_end_s: float | None = None
    worst_min: float = 0.0


class MachineMemory(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Everything the engine remembers between readings, as plain values: what a checkpoint restores."""

    readings: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    last_seq: int = 0
    next_checkpoint_s: float = math.inf
    channels: tuple[ChannelMemory, ...] = ()
    rules: tuple[RuleMemory, ...] = ()
    mkt: MktMemory = msgspec.field(default_factory=MktMemory)


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """The engine before the first reading of a new checkpoint period, and how long each result list was."""

    machine: MachineMemory
    excursions: int
    alarms: int
    gaps: int
    faults: int


class EvaluationState(msgspec.Struct, frozen=True, kw_only=True):
    """The evaluation of one shipment so far; store it with :func:`encode_state` (MessagePack bytes).

    Holds the closed results (excursions, alarms, gaps, fault runs, in the order they were settled), the
    engine's memory, the MKT window buffer and the rolling-rule buffers (bounded by their windows and the
    oldest retained checkpoint), and the checkpoints. ``lot_spent_before_min`` maps each lifetime rule to the
    minutes the lot spent beyond its threshold before this shipment (an input: the stability budget spent
    elsewhere).
    """

    profile_id: str
    profile_version: int
    lot_spent_before_min: dict[str, float]
    checkpoint_every_min: float
    checkpoints_kept: int
    machine: MachineMemory
    excursions: list[Excursion] = []
    alarms: list[Alarm] = []
    gaps: list[DataGap] = []
    faults: list[SensorFault] = []
    mkt_end_s: list[float] = []
    mkt_credit: list[float] = []
    mkt_held_min: list[float] = []
    mkt_offset: int = 0
    roll_start_s: list[list[float]] = []
    roll_end_s: list[list[float]] = []
    roll_start_seq: list[list[int]] = []
    roll_offset: list[int] = []
    checkpoints: list[Checkpoint] = []

    @property
    def readings(self) -> int:
        return self.machine.readings

    @property
    def last_key(self) -> ReadingKey | None:
        """The last reading the state has seen, or ``None`` before the first."""
        if not self.machine.readings:
            return None
        return ReadingKey(device_time=from_epoch_s(self.machine.last_s), seq=self.machine.last_seq)


class Rewound(msgspec.Struct, frozen=True, kw_only=True):
    """The result of :func:`rewind`.

    ``state`` is the evaluation as of ``replay_after``: feed it every stored reading after that key (all of
    them when ``None``), in order. ``superseded`` are the keys of results the replay will judge again; those
    the replay does not report again were withdrawn by the late data.
    """

    state: EvaluationState
    replay_after: ReadingKey | None
    superseded: list[str]


MktVerdict = Literal["pass", "fail", "review"]
MktBasis = Literal["complete_window", "bounds", "covered_data", "shipment"]


class MktResult(msgspec.Struct, frozen=True, kw_only=True):
    """Mean kinetic temperature of the shipment and of the profile's window (USP <1079.2>, REFERENCE §1).

    ``shipment_mkt_c`` covers all credited time. With a window of the profile's length (24 h, 30 d) that the data
    covers (``window_complete``: covered to within one logging interval), ``window_mkt_c`` is the worst (highest)
    MKT of the windows ending at a reading, between ``window_start`` and ``window_end``, and the verdict rests on
    it (``rests_on`` ``complete_window``). While the data covers less than one window, ``window_mkt_c`` is the MKT
    over the data covered (``covered_min``, ``coverage`` of the window) and the verdict follows the profile's
    ``incomplete_window`` setting (:func:`judge_mkt`): ``bounds`` (the full window's MKT lies between
    ``best_case_mkt_c`` and ``worst_case_mkt_c``) or ``covered_data``. Window ``shipment`` judges the shipment's
    MKT. ``verdict`` is ``pass``, ``fail`` or ``review`` (``None`` without a limit or without data); ``passes``
    is true for pass, false for fail, ``None`` otherwise.
    """

    activation_energy_kj_mol: float
    window: MktWindow
    limit_c: float | None
    shipment_mkt_c: float | None
    window_mkt_c: float | None
    window_start: datetime | None
    window_end: datetime | None
    window_complete: bool
    credited_min: float
    passes: bool | None
    window_min: float | None = None
    covered_min: float = 0.0
    coverage: float | None = None
    best_case_mkt_c: float | None = None
    worst_case_mkt_c: float | None = None
    verdict: MktVerdict | None = None
    rests_on: MktBasis | None = None


class CompleteWindow(msgspec.Struct, frozen=True, kw_only=True):
    """The worst complete MKT window of a stream: its MKT, where it lies and the minutes credited in it."""

    mkt_c: float
    start: datetime
    end: datetime
    covered_min: float


def judge_mkt(
    profile: Profile,
    *,
    weighted_sum: float,
    credited_min: float,
    first: datetime | None,
    last: datetime | None,
    worst: CompleteWindow | None,
) -> MktResult:
    """The MKT verdict from the shipment's Arrhenius sums (``weighted_sum`` = Σ exp(-ΔH/RT)·Δt over
    ``credited_min``) and its worst complete window, if any.

    USP <1079.2> judges the MKT of 24 consecutive hours (controlled cold) or 30 consecutive days (controlled
    room temperature) including the excursion (REFERENCE §1). When the data covers less than that window, the
    unrecorded hours are not known to have been at the recorded temperatures, so judging the covered data as if
    it were the window overstates or understates the MKT. The profile's ``incomplete_window`` setting decides:

    - ``bound`` (default): bound the full window's MKT by taking the unrecorded time (the window's minutes not
      credited to any reading, gaps included) at the label range's lower end (best case) and at its upper end
      (worst case). It fails only when even the best case exceeds the limit, passes when even the worst case
      stays within it, and otherwise asks a pharmacist to review (a quarantine-style recommendation). The label
      range is what the product is stored at when nobody is watching it, so the bounds are what the label
      allows, never a guess below or above it; the verdict never claims more than the data and the label say.
    - ``covered``: judge the MKT over the data covered, labelled as such (how some devices print it).
    """
    settings = profile.mkt
    dh_over_r = dh_over_r_k(settings.activation_energy_kj_mol if settings else DEFAULT_ACTIVATION_ENERGY_KJ_MOL)
    shipment_c = mkt_from_sums(weighted_sum, credited_min, dh_over_r) if credited_min > 0 else None
    limit_c = settings.limit_c if settings else None
    window_min = settings.window_min if settings else None
    activation = settings.activation_energy_kj_mol if settings else DEFAULT_ACTIVATION_ENERGY_KJ_MOL
    window: MktWindow = settings.window if settings else "shipment"

    def verdict_of(value: float | None) -> MktVerdict | None:
        return None if value is None or limit_c is None else ("pass" if value <= limit_c else "fail")

    if window_min is None or shipment_c is None:
        plain = verdict_of(shipment_c)
        return MktResult(
            activation_energy_kj_mol=activation,
            window=window,
            limit_c=limit_c,
            shipment_mkt_c=shipment_c,
            window_mkt_c=shipment_c,
            window_start=first if shipment_c is not None else None,
            window_end=last if shipment_c is not None else None,
            window_complete=False,
            credited_min=credited_min,
            passes=None if plain is None else plain == "pass",
            window_min=window_min,
            covered_min=credited_min,
            coverage=None if window_min is None else 0.0,
            verdict=plain,
            rests_on=None if shipment_c is None else "shipment",
        )
    if worst is not None:
        complete = verdict_of(worst.mkt_c)
        return MktResult(
            activation_energy_kj_mol=activation,
            window=window,
            limit_c=limit_c,
            shipment_mkt_c=shipment_c,
            window_mkt_c=worst.mkt_c,
            window_start=worst.start,
            window_end=worst.end,
            window_complete=True,
            credited_min=credited_min,
            passes=None if complete is None else complete == "pass",
            window_min=window_min,
            covered_min=worst.covered_min,
            coverage=min(1.0, worst.covered_min / window_min),
            verdict=complete,
            rests_on="complete_window",
        )
    covered_min = min(credited_min, window_min)
    unrecorded_min = window_min - covered_min
    low_c, high_c = profile.label_range_c
    best_c = mkt_from_sums(weighted_sum + unrecorded_min * arrhenius_weight(low_c, dh_over_r),
                           credited_min + unrecorded_min, dh_over_r)  # fmt: skip
    worst_c = mkt_from_sums(weighted_sum + unrecorded_min * arrhenius_weight(high_c, dh_over_r),
                            credited_min + unrecorded_min, dh_over_r)  # fmt: skip
    bounding = settings is not None and settings.incomplete_window == "bound"
    verdict: MktVerdict | None
    if limit_c is None:
        verdict = None
    elif not bounding:
        verdict = verdict_of(shipment_c)
    elif best_c > limit_c:
        verdict = "fail"
    elif worst_c <= limit_c:
        verdict = "pass"
    else:
        verdict = "review"
    return MktResult(
        activation_energy_kj_mol=activation,
        window=window,
        limit_c=limit_c,
        shipment_mkt_c=shipment_c,
        window_mkt_c=shipment_c,
        window_start=first,
        window_end=last,
        window_complete=False,
        credited_min=credited_min,
        passes=None if verdict in (None, "review") else verdict == "pass",
        window_min=window_min,
        covered_min=covered_min,
        coverage=covered_min / window_min,
        best_case_mkt_c=best_c,
        worst_case_mkt_c=worst_c,
        verdict=verdict,
        rests_on="bounds" if bounding else "covered_data",
    )


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    """Where a shipment stands against its profile: the report's data summary and evaluation (REFERENCE
    §6)."""

    profile_id: str
    profile_version: int
    readings: int
    first_reading_at: datetime | None
    last_reading_at: datetime | None
    temperature_min_c: float | None
    temperature_max_c: float | None
    temperature_mean_c: float | None
    rules: list[RuleSummary]
    excursions: list[Excursion]
    alarms: list[Alarm]
    gaps: list[DataGap]
    faults: list[SensorFault]
    mkt: MktResult
    budgets: list[StabilityBudget]


# -- state construction and storage ----------------------------------------------------------------------


def _channel_metrics(profile: Profile) -> list[Metric]:
    used = {rule.metric for rule in profile.rules}
    extra: tuple[Metric, ...] = ("humidity", "pressure")
    return ["temperature", *(metric for metric in extra if metric in used)]


def new_state(
    profile: Profile,
    *,
    lot_spent_before_min: Mapping[str, float] | None = None,
    checkpoint_every_min: float = 60.0,
    checkpoints_kept: int = 48,
) -> EvaluationState:
    """The evaluation of a shipment before its first reading.

    ``lot_spent_before_min`` gives, per lifetime rule, the minutes the lot already spent beyond the rule's
    threshold (other shipments, earlier life); unknown or non-lifetime rule names are refused.
    """
    spent = dict(lot_spent_before_min or {})
    lifetime = {rule.name for rule in profile.rules if rule.scope == "lifetime"}
    for name, minutes in spent.items():
        if name not in lifetime:
            raise ValueError(f"{name!r} is not a lifetime rule of profile {profile.id!r}")
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"lot_spent_before_min[{name!r}] must be a finite number >= 0, got {minutes}")
    if not math.isfinite(checkpoint_every_min) or checkpoint_every_min <= 0:
        raise ValueError("checkpoint_every_min must be > 0")
    if checkpoints_kept < 1:
        raise ValueError("checkpoints_kept must be >= 1")
    rule_count = len(profile.rules)
    return EvaluationState(
        profile_id=profile.id,
        profile_version=profile.version,
        lot_spent_before_min={name: float(minutes) for name, minutes in spent.items()},
        checkpoint_every_min=float(checkpoint_every_min),
        checkpoints_kept=checkpoints_kept,
        machine=MachineMemory(
            channels=tuple(ChannelMemory(metric=metric) for metric in _channel_metrics(profile)),
            rules=tuple(RuleMemory() for _ in range(rule_count)),
        ),
        roll_start_s=[[] for _ in range(rule_count)],
        roll_end_s=[[] for _ in range(rule_count)],
        roll_start_seq=[[] for _ in range(rule_count)],
        roll_offset=[0] * rule_count,
    )


_STATE_ENCODER = msgspec.msgpack.Encoder()
_STATE_DECODER = msgspec.msgpack.Decoder(EvaluationState)


def encode_state(state: EvaluationState) -> bytes:
    """MessagePack bytes of a state, for storage."""
    return _STATE_ENCODER.encode(state)


def decode_state(data: bytes) -> EvaluationState:
    """A state from :func:`encode_state` bytes."""
    return _STATE_DECODER.decode(data)


def is_late(state: EvaluationState, reading: Reading) -> bool:
    """Whether ``reading`` is not after the last reading the state has seen (so a rewind is needed)."""
    machine = state.machine
    if not machine.readings:
        return False
    time_s = to_epoch_s(reading.device_time)
    return time_s < machine.last_s or (time_s == machine.last_s and reading.seq <= machine.last_seq)


def _check_profile(profile: Profile, state: EvaluationState) -> None:
    if (profile.id, profile.version) != (state.profile_id, state.profile_version):
        raise ValueError(
            f"state was made for profile {state.profile_id!r} v{state.profile_version}, "
            f"not {profile.id!r} v{profile.version}"
        )


# -- the engine ------------------------------------------------------------------------------------------


class _Hold(msgspec.Struct, frozen=True):
    """Fed to :meth:`_Engine.feed` after the readings: the record closes at ``until_s``."""

    until_s: float


class _Channel:
    """One metric's readings fed to the trackers of the rules on that metric, with sensor-fault runs."""

    __slots__ = (
        "fault_first_value",
        "fault_open",
        "fault_readings",
        "fault_reason",
        "fault_start_s",
        "fault_start_seq",
        "faults",
        "field",
        "metric",
        "prev_valid",
        "prev_value",
        "quiet_high",
        "quiet_low",
        "trackers",
    )

    def __init__(self, memory: ChannelMemory, trackers: list[RuleTracker], faults: list[SensorFault]) -> None:
        self.metric = memory.metric
        self.field = _READING_FIELD[memory.metric]
        self.trackers = trackers
        self.faults = faults
        self.prev_valid = memory.prev_valid
        self.prev_value = memory.prev_value
        self.fault_open = memory.fault_open
        self.fault_reason: FaultReason = memory.fault_reason
        self.fault_start_s = memory.fault_start_s
        self.fault_start_seq = memory.fault_start_seq
        self.fault_readings = memory.fault_readings
        self.fault_first_value = memory.fault_first_value
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
        return self.fault_open or any(tracker.open for tracker in self.trackers)

    def step(
        self, prev_s: float | None, prev_seq: int, time_s: float, seq: int, gap: bool, value: float | None
    ) -> bool:
        """Credit the time since the previous reading, then take ``value``; returns :attr:`busy`.

        Only trackers with an open excursion care about the time since the previous reading (the previous
        value was beyond their threshold exactly when their excursion is open).
        """
        trackers = self.trackers
        if prev_s is not None:
            if self.prev_valid and not gap:
                prev_value = self.prev_value
                for tracker in trackers:
                    if tracker.open:
                        tracker.credit(prev_s, time_s, prev_value, prev_seq)
            else:
                for tracker in trackers:
                    if tracker.open:
                        tracker.uncredited(prev_s, time_s)
        reason = classify_fault(self.metric, value)
        if reason is None:
            assert value is not None
            if self.fault_open:
                self._close_fault(time_s)
            busy = False
            for tracker in trackers:
                if tracker.open or tracker.is_beyond(value):
                    tracker.observe(time_s, seq, value)
                    busy = busy or tracker.open
            self.prev_valid = True
            self.prev_value = value
            return busy
        if self.fault_open and self.fault_reason != reason:
            self._close_fault(time_s)
        if self.fault_open:
            self.fault_readings += 1
        else:
            self.fault_open = True
            self.fault_reason = reason
            self.fault_start_s = time_s
            self.fault_start_seq = seq
            self.fault_readings = 1
            self.fault_first_value = value if reason == "out_of_range" else None
        self.prev_valid = False
        return True

    def hold(self, prev_s: float, prev_seq: int, until_s: float, gap: bool) -> None:
        """The last reading's value holds until ``until_s`` (the end of the record), as before a next
        reading."""
        for tracker in self.trackers:
            if tracker.open:
                if self.prev_valid and not gap:
                    tracker.credit(prev_s, until_s, self.prev_value, prev_seq)
                else:
                    tracker.uncredited(prev_s, until_s)

    def open_fault(self) -> SensorFault | None:
        return self._fault(end_s=None) if self.fault_open else None

    def memory(self) -> ChannelMemory:
        return ChannelMemory(
            metric=self.metric,
            prev_valid=self.prev_valid,
            prev_value=self.prev_value,
            fault_open=self.fault_open,
            fault_reason=self.fault_reason,
            fault_start_s=self.fault_start_s,
            fault_start_seq=self.fault_start_seq,
            fault_readings=self.fault_readings,
            fault_first_value=self.fault_first_value,
        )

    def _close_fault(self, end_s: float) -> None:
        self.faults.append(self._fault(end_s=end_s))
        self.fault_open = False

    def _fault(self, *, end_s: float | None) -> SensorFault:
        return SensorFault(
            metric=self.metric,
            reason=self.fault_reason,
            start=from_epoch_s(self.fault_start_s),
            start_seq=self.fault_start_seq,
            end=None if end_s is None else from_epoch_s(end_s),
            readings=self.fault_readings,
            first_value=self.fault_first_value,
        )


class _Engine:
    """A working copy of an :class:`EvaluationState`: fed readings, then turned back into a new state."""

    def __init__(self, profile: Profile, state: EvaluationState) -> None:
        self.profile = profile
        self.state = state
        machine = state.machine
        self.excursions = list(state.excursions)
        self.alarms = list(state.alarms)
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
            _Channel(
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

    def feed(self, readings: Iterable[Reading | _Hold]) -> None:
        """Judge ``readings`` (strictly after the last one seen, in device time order).

        A :class:`_Hold` instead of a reading closes the record at its time: the last reading's values hold
        until then exactly as they would until a next reading (the same credit, gap and MKT window code), but
        no value is taken and nothing is counted as a reading; it ends the feed.

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
        quiet_low = temperature.quiet_low
        quiet_high = temperature.quiet_high

        count = self.readings
        first_s = self.first_s
        full_window_s = first_s + complete_after_s
        last_s = self.last_s
        last_seq = self.last_seq
        next_checkpoint_s = self.next_checkpoint_s
        prev_valid = temperature.prev_valid
        prev_c = temperature.prev_value
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
            if isinstance(reading, _Hold):
                holding = True
                time_s = reading.until_s
                moment = from_epoch_s(time_s)
                seq = last_seq
                value = None
            else:
                holding = False
                moment = reading.device_time
                if moment.tzinfo is None:
                    raise ValueError(f"reading seq {reading.seq}: device_time must be timezone-aware (UTC)")
                time_s = moment.timestamp()
                seq = reading.seq
                value = reading.temperature_c
            if count:
                if holding:
                    pass
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

            if holding:
                temperature.prev_valid = prev_valid
                temperature.prev_value = prev_c
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
                temperature.prev_valid = prev_valid
                temperature.prev_value = prev_c
                busy = temperature.step(last_s if count else None, last_seq, time_s, seq, gap, value)
                if temperature.prev_valid:
                    valid_c = temperature.prev_value
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
        self._compact()

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
        self.channels[0].prev_valid = prev_valid
        self.channels[0].prev_value = prev_c
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
                excursions=len(self.excursions),
                alarms=len(self.alarms),
                gaps=len(self.gaps),
                faults=len(self.faults),
            )
        )
        excess = len(self.checkpoints) - self.state.checkpoints_kept
        if excess > 0:
            del self.checkpoints[:excess]
        if len(self.mkt_end_s) > _COMPACT_AT:
            self._compact()

    def _compact(self) -> None:
        """Drop buffer entries no window and no retained checkpoint can reach again."""
        oldest = [checkpoint.machine for checkpoint in self.checkpoints[:1]]
        keep = min([self.mkt.head] + [machine.mkt.head for machine in oldest])
        drop = keep - self.mkt_offset
        if drop > 0 and drop * 2 >= len(self.mkt_end_s):
            del self.mkt_end_s[:drop], self.mkt_credit[:drop], self.mkt_held_min[:drop]
            self.mkt_offset += drop
        for index, tracker in enumerate(self.trackers):
            keep = min([tracker.roll_head + tracker.roll_offset] + [m.rules[index].roll_head for m in oldest])
            drop = keep - tracker.roll_offset
            if drop > 0 and drop * 2 >= len(tracker.roll_start_s):
                del tracker.roll_start_s[:drop], tracker.roll_end_s[:drop], tracker.roll_start_seq[:drop]
                tracker.roll_offset += drop
                tracker.roll_head -= drop

    def hold_until(self, until_s: float) -> None:
        """Close the record at ``until_s``: the last reading's values hold until then, as they would until a
        next reading (not across a gap, which is reported). Used on a copy, for a final evaluation."""
        if not self.readings:
            return
        if until_s < self.last_s:
            raise ValueError("until is before the last reading")
        self.feed((_Hold(until_s=until_s),))

    # -- results ---------------------------------------------------------------------------------------------

    def to_state(self) -> EvaluationState:
        return msgspec.structs.replace(
            self.state,
            machine=self.memory(),
            excursions=self.excursions,
            alarms=self.alarms,
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

    def evaluation(self) -> Evaluation:
        profile = self.profile
        mkt = self.mkt
        excursions = self.excursions + [
            excursion for tracker in self.trackers if (excursion := tracker.open_excursion()) is not None
        ]
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
            alarms=list(self.alarms),
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
                spent_min=tracker.total_min,
                intervals=tracker.spending(),
            )
            for tracker in self.trackers
            if tracker.rule.scope == "lifetime"
        ]


# -- the public operations -------------------------------------------------------------------------------


def advance(
    profile: Profile, state: EvaluationState, readings: Iterable[Reading]
) -> tuple[EvaluationState, list[Event]]:
    """Judge new readings (device time order, all after ``state``'s last reading) and return the new state
    with the events: every excursion, alarm, gap and fault run created or changed by these readings (open
    excursions and fault runs included, with ``end`` ``None``). The given state is not modified.

    Raises :class:`OutOfOrderError` for a reading not after the previous one: :func:`rewind` first.
    """
    _check_profile(profile, state)
    engine = _Engine(profile, state)
    marks = (len(engine.excursions), len(engine.alarms), len(engine.gaps), len(engine.faults))
    before = engine.readings
    engine.feed(readings)
    if engine.readings == before:
        return state, []
    events: list[Event] = [
        *engine.excursions[marks[0] :],
        *engine.alarms[marks[1] :],
        *engine.gaps[marks[2] :],
        *engine.faults[marks[3] :],
        *engine.open_results(),
    ]
    return engine.to_state(), events


def _keys(*results: Sequence[Event]) -> list[str]:
    return [result.key for group in results for result in group]


def rewind(profile: Profile, state: EvaluationState, earliest: ReadingKey) -> Rewound:
    """The state to re-judge from when a reading at ``earliest`` arrives late (not after the state's last).

    Restores the last checkpoint strictly before ``earliest``, or the initial state when every retained
    checkpoint is later. The service then feeds :func:`advance` every stored reading after
    ``Rewound.replay_after``, the late ones included.
    """
    _check_profile(profile, state)
    target = (to_epoch_s(earliest.device_time), earliest.seq)
    engine = _Engine(profile, state)
    open_keys = [result.key for result in engine.open_results()]
    chosen = None
    for index in range(len(state.checkpoints) - 1, -1, -1):
        machine = state.checkpoints[index].machine
        if (machine.last_s, machine.last_seq) < target:
            chosen = index
            break
    if chosen is None:
        fresh = new_state(
            profile,
            lot_spent_before_min=state.lot_spent_before_min,
            checkpoint_every_min=state.checkpoint_every_min,
            checkpoints_kept=state.checkpoints_kept,
        )
        superseded = _keys(state.excursions, state.alarms, state.gaps, state.faults)
        return Rewound(state=fresh, replay_after=None, superseded=superseded + open_keys)
    checkpoint = state.checkpoints[chosen]
    machine = checkpoint.machine
    mkt_length = machine.mkt.length - state.mkt_offset
    roll_start_s: list[list[float]] = []
    roll_end_s: list[list[float]] = []
    roll_start_seq: list[list[int]] = []
    for index, memory in enumerate(machine.rules):
        length = memory.roll_len - state.roll_offset[index]
        starts = state.roll_start_s[index][:length]
        ends = state.roll_end_s[index][:length]
        roll_start_seq.append(state.roll_start_seq[index][:length])
        if ends and memory.roll_last_end_s is not None:
            ends[-1] = memory.roll_last_end_s  # the last period may have been extended after the checkpoint
        roll_start_s.append(starts)
        roll_end_s.append(ends)
    superseded = _keys(
        state.excursions[checkpoint.excursions :],
        state.alarms[checkpoint.alarms :],
        state.gaps[checkpoint.gaps :],
        state.faults[checkpoint.faults :],
    )
    restored = msgspec.structs.replace(
        state,
        machine=machine,
        excursions=state.excursions[: checkpoint.excursions],
        alarms=state.alarms[: checkpoint.alarms],
        gaps=state.gaps[: checkpoint.gaps],
        faults=state.faults[: checkpoint.faults],
        mkt_end_s=state.mkt_end_s[:mkt_length],
        mkt_credit=state.mkt_credit[:mkt_length],
        mkt_held_min=state.mkt_held_min[:mkt_length],
        roll_start_s=roll_start_s,
        roll_end_s=roll_end_s,
        roll_start_seq=roll_start_seq,
        checkpoints=state.checkpoints[:chosen],
    )
    replay_after = ReadingKey(device_time=from_epoch_s(machine.last_s), seq=machine.last_seq)
    return Rewound(state=restored, replay_after=replay_after, superseded=superseded + open_keys)


def stream_evaluation(profile: Profile, state: EvaluationState, *, until: datetime | None = None) -> Evaluation:
    """One stream's evaluation before the lot's budget is judged: lifetime rules show their spending and status
    but no alarm, and there are no budgets (see :func:`judge_lifetime_rules`). ``until`` as in
    :func:`summarise`."""
    _check_profile(profile, state)
    engine = _Engine(profile, state)
    if until is not None:
        engine.hold_until(to_epoch_s(until))
    return engine.evaluation()


def stream_spendings(profile: Profile, state: EvaluationState, *, stream_id: int, shipment_id: int) -> list[Spending]:
    """What the stream spent of each lifetime rule, as intervals in device time (the lot budget's input)."""
    _check_profile(profile, state)
    return _Engine(profile, state).spendings(stream_id=stream_id, shipment_id=shipment_id)


def alarm_order(alarm: Alarm) -> tuple[datetime, datetime, int, str]:
    """The order alarms are listed in: when their condition was met, then began, then by rule."""
    return (alarm.met_at, alarm.began_at, alarm.began_seq, alarm.rule)


def judge_lifetime_rules(
    profile: Profile, evaluation: Evaluation, *, shipment_id: int, spendings: Sequence[Spending]
) -> Evaluation:
    """Judge each lifetime rule of a shipment's ``evaluation`` on the lot's timeline (``spendings`` of every
    stream of the lot, this shipment's included): its budget as the shipment sees it and, when the lot's budget
    ran out on this shipment, the alarm (:mod:`coldchain.domain.lot_budget`)."""
    budgets: list[StabilityBudget] = []
    alarms = list(evaluation.alarms)
    rules = list(evaluation.rules)
    for index, rule in enumerate(profile.rules):
        if rule.scope != "lifetime":
            continue
        crossing = find_crossing(rule, spendings)
        budgets.append(
            shipment_budget(rule, shipment_id, spendings, shipment_end=evaluation.last_reading_at, crossing=crossing)
        )
        if crossing is not None and crossing.shipment_id == shipment_id:
            alarm = lot_alarm(rule, crossing)
            alarms.append(alarm)
            rules[index] = msgspec.structs.replace(
                rules[index], status="alarmed", since=alarm.began_at, alarms=rules[index].alarms + 1
            )
    alarms.sort(key=alarm_order)
    return msgspec.structs.replace(evaluation, rules=rules, alarms=alarms, budgets=budgets)


def summarise(profile: Profile, state: EvaluationState, *, until: datetime | None = None) -> Evaluation:
    """The evaluation of one stream judged alone as of ``state``: rules, excursions (open ones included), alarms,
    gaps, faults, MKT and stability budgets, the lot's budget taken as ``state.lot_spent_before_min`` spent
    before this stream's first reading.

    ``until`` closes the record for a final evaluation (delivery, a logger's stop time): the last reading's
    values hold until then, as they would until a next reading. The state itself is not changed.
    """
    _check_profile(profile, state)
    engine = _Engine(profile, state)
    if until is not None:
        engine.hold_until(to_epoch_s(until))
    prior = [
        Spending(stream_id=-1, shipment_id=-1, rule=rule, unplaced_min=minutes)
        for rule, minutes in sorted(state.lot_spent_before_min.items())
    ]
    return judge_lifetime_rules(
        profile,
        engine.evaluation(),
        shipment_id=0,
        spendings=[*engine.spendings(stream_id=0, shipment_id=0), *prior],
    )


def evaluate(
    profile: Profile,
    readings: Sequence[Reading],
    *,
    lot_spent_before_min: Mapping[str, float] | None = None,
) -> Evaluation:
    """One pass over a complete reading log, each reading once (sorted here by device time, then sequence
    number)."""
    ordered = sorted(readings, key=lambda reading: (reading.device_time, reading.seq))
    state, _ = advance(profile, new_state(profile, lot_spent_before_min=lot_spent_before_min), ordered)
    return summarise(profile, state)
