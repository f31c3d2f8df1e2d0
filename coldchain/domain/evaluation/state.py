"""The state of a stream's evaluation between batches: plain values, stored as MessagePack bytes.

What a checkpoint restores (:class:`MachineMemory`), the closed results and bounded buffers
(:class:`EvaluationState`), and the position of a reading in the evaluation order (:class:`ReadingKey`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import msgspec

from coldchain.domain._epoch import from_epoch_s, to_epoch_s
from coldchain.domain.excursions import DataGap, Excursion, FaultReason, SensorFault
from coldchain.domain.profiles import Metric, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm, RuleMemory

__all__ = [
    "ChannelMemory",
    "Checkpoint",
    "EvaluationState",
    "FindingsMismatch",
    "MachineMemory",
    "MktMemory",
    "OutOfOrderError",
    "ReadingKey",
    "Rewound",
    "check_profile",
    "decode_state",
    "encode_state",
    "is_late",
    "new_state",
]


class OutOfOrderError(ValueError):
    """``advance`` was given a reading not after the last one the state has seen: rewind first."""


class FindingsMismatch(ValueError):
    """The stored findings given with a state do not complete it: they hold more or fewer of the results that left
    it than it counts (read at another moment than the state, or not this stream's)."""


class ReadingKey(msgspec.Struct, frozen=True, kw_only=True):
    """The position of a reading in the evaluation order: device time, then the tracker's sequence number."""

    device_time: datetime
    seq: int

    @classmethod
    def of(cls, reading: Reading) -> ReadingKey:
        return cls(device_time=reading.device_time, seq=reading.seq)


class ChannelMemory(msgspec.Struct, kw_only=True, array_like=True):
    """What the engine remembers of one metric: the last reading's value and an open sensor-fault run.

    Mutable: the engine's channel works on its own copy and hands out copies at checkpoints."""

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
    """The engine before the first reading of a new checkpoint period, and how long each result list was
    (counted from the stream's first result: the excursions and alarms that left the state count too)."""

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

    Closed excursions and alarms settled before the oldest retained checkpoint leave the state (``advance``
    drops them): no rewind to a checkpoint can take them back, and a rewind past every checkpoint replays the
    whole stream, which reports each of them again. ``excursions_offset`` and ``alarms_offset`` count those
    gone, so the checkpoints' counts keep meaning; the service has every one of them among its stored findings
    (each was an event of the ``advance`` that settled it), and hands them back to :func:`stream_evaluation`
    and :func:`summarise` (``stored``). What a stream stores then grows with the MKT window and the checkpoints
    kept, not with the shipment. Gaps and fault runs, few and stored nowhere else, stay.
    """

    profile_id: str
    profile_version: int
    lot_spent_before_min: dict[str, float]
    checkpoint_every_min: float
    checkpoints_kept: int
    machine: MachineMemory
    excursions: list[Excursion] = []
    alarms: list[Alarm] = []
    excursions_offset: int = 0
    alarms_offset: int = 0
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
    the replay does not report again were withdrawn by the late data. When ``supersedes_stored``, so are the
    excursions and alarms that had left the state (the replay starts from the first reading): their keys are
    the stream's stored ones.
    """

    state: EvaluationState
    replay_after: ReadingKey | None
    superseded: list[str]
    supersedes_stored: bool = False


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


def check_profile(profile: Profile, state: EvaluationState) -> None:
    if (profile.id, profile.version) != (state.profile_id, state.profile_version):
        raise ValueError(
            f"state was made for profile {state.profile_id!r} v{state.profile_version}, "
            f"not {profile.id!r} v{profile.version}"
        )
