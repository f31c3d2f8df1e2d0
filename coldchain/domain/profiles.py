"""Stability profiles: what a product tolerates, as alarm rules, an MKT criterion and a data-gap tolerance.

A profile is versioned; a shipment pins the version it was judged against. Rules follow REFERENCE §3: every
rule is a metric, a direction, a threshold, inclusive or not, a mode (instant, consecutive, cumulative), an
allowed delay, a scope (shipment, rolling 24 h, lot lifetime) and the action its alarm calls for.

Errors: every invalid profile raises :class:`ProfileError` (a ``ValueError``) naming the profile, the rule and
what is wrong; :func:`load_profiles` raises it for a malformed document as well.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

__all__ = [
    "DEFAULT_ACTIVATION_ENERGY_KJ_MOL",
    "DEFAULT_MAX_GAP_MIN",
    "ROLLING_WINDOW_MIN",
    "Action",
    "AlarmRule",
    "Direction",
    "IncompleteWindow",
    "Metric",
    "MktSettings",
    "MktWindow",
    "Mode",
    "Profile",
    "ProfileError",
    "ProfileSyntaxError",
    "Scope",
    "load_profile",
    "load_profiles",
]

Metric = Literal["temperature", "humidity", "pressure"]
Direction = Literal["above", "below"]
Mode = Literal["instant", "consecutive", "cumulative"]
Scope = Literal["shipment", "rolling_24h", "lifetime"]
Action = Literal["warn", "quarantine", "reject"]
MktWindow = Literal["24h", "30d", "shipment"]
IncompleteWindow = Literal["bound", "covered"]

#: ΔH = 83.144 kJ/mol with R = 8.3144 J/(mol·K) gives ΔH/R = 10 000 K exactly (USP <1079.2>, REFERENCE §1).
DEFAULT_ACTIVATION_ENERGY_KJ_MOL = 83.144

#: Gap tolerance when the profile names no logging interval. Trackers commonly log every 5–15 min, so an hour
#: without any reading means several readings were lost, not one late.
DEFAULT_MAX_GAP_MIN = 60.0

#: Length of the ``rolling_24h`` scope.
ROLLING_WINDOW_MIN = 24 * 60.0


class ProfileError(ValueError):
    """A stability profile (or a document of profiles) is not valid."""


class ProfileSyntaxError(ProfileError):
    """The document is not JSON at all: not UTF-8, malformed, or nested deeper than the decoder goes."""


class AlarmRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One alarm rule of a stability profile (REFERENCE §3).

    ``threshold`` is in the metric's unit: °C for temperature, % RH for humidity, kPa for pressure.
    ``inclusive`` says whether a value exactly on the threshold counts as beyond it (WHO PQS E006 devices are
    inclusive: with +30.0 °C, a reading of 30.0 counts).

    - ``instant``: one reading beyond the threshold raises the alarm; no delay.
    - ``consecutive`` ("single event", Berlinger Fridge-tag, WHO E006/TR06): beyond the threshold for
      ``delay_min`` without interruption; the counter resets when the value comes back.
    - ``cumulative`` (Controlant, WHO E006/TR07): total time beyond the threshold reaches ``delay_min``; never
      reset within the scope.

    Scope ``rolling_24h`` counts cumulative time within any 24 h window; ``lifetime`` counts across every
    shipment of the lot, which makes the rule a stability budget (REFERENCE §4).
    """

    name: str
    metric: Metric = "temperature"
    direction: Direction
    threshold: float
    inclusive: bool
    mode: Mode
    delay_min: float = 0.0
    scope: Scope = "shipment"
    action: Action

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if not self.name.strip():
            raise ProfileError("a rule needs a name")
        if not math.isfinite(self.threshold):
            raise ProfileError(f"{where}: threshold must be a finite number")
        if not math.isfinite(self.delay_min) or self.delay_min < 0:
            raise ProfileError(f"{where}: delay_min must be a finite number >= 0, got {self.delay_min}")
        if self.mode == "instant" and self.delay_min != 0:
            raise ProfileError(f"{where}: an instant rule takes no delay (delay_min must be 0)")
        if self.scope == "lifetime" and self.mode != "cumulative":
            raise ProfileError(f"{where}: scope 'lifetime' is a stability budget and needs mode 'cumulative'")
        if self.scope == "rolling_24h":
            if self.mode != "cumulative":
                raise ProfileError(f"{where}: scope 'rolling_24h' applies to cumulative rules only")
            if self.delay_min == 0:
                raise ProfileError(f"{where}: a rolling_24h rule needs a delay (use mode 'instant' for none)")
            if self.delay_min > ROLLING_WINDOW_MIN:
                raise ProfileError(f"{where}: delay_min {self.delay_min} can never be reached in a 24 h window")

    def is_beyond(self, value: float) -> bool:
        """Whether ``value`` is beyond this rule's threshold (on the threshold counts only when inclusive)."""
        if self.direction == "above":
            return value >= self.threshold if self.inclusive else value > self.threshold
        return value <= self.threshold if self.inclusive else value < self.threshold


class MktSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The mean kinetic temperature criterion of a profile (USP <1079.2>, REFERENCE §1).

    ``window``: ``24h`` for controlled cold products, ``30d`` for controlled room temperature products (the
    worst window of that length is judged), ``shipment`` for the whole shipment. ``limit_c`` is the highest
    MKT allowed.

    ``incomplete_window`` says how a window the data covers only in part is judged (USP <1079.2> asks for the
    whole window including the excursion): ``bound`` (default) bounds the full window's MKT with the unrecorded
    time at the label range's lower and upper ends, and fails, passes or asks for review accordingly;
    ``covered`` judges the MKT over the data covered, labelled as such. See
    :func:`coldchain.domain.evaluation.judge_mkt`.
    """

    activation_energy_kj_mol: float = DEFAULT_ACTIVATION_ENERGY_KJ_MOL
    window: MktWindow = "shipment"
    limit_c: float | None = None
    incomplete_window: IncompleteWindow = "bound"

    def __post_init__(self) -> None:
        if not math.isfinite(self.activation_energy_kj_mol) or self.activation_energy_kj_mol <= 0:
            raise ProfileError(f"mkt: activation_energy_kj_mol must be > 0, got {self.activation_energy_kj_mol}")
        if self.limit_c is not None and not math.isfinite(self.limit_c):
            raise ProfileError("mkt: limit_c must be a finite number")

    @property
    def window_min(self) -> float | None:
        """The window length in minutes, or ``None`` for the whole shipment."""
        if self.window == "24h":
            return 24 * 60.0
        if self.window == "30d":
            return 30 * 24 * 60.0
        return None


class Profile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A versioned stability profile of a product.

    ``max_gap_min`` is the longest time between two readings that is still credited to the earlier reading; a
    longer silence is a data gap, reported as an event of its own and never interpolated (REFERENCE §1). When
    not given it is twice ``logging_interval_max_min`` (one missed reading is tolerated, two are a gap) or
    :data:`DEFAULT_MAX_GAP_MIN`.
    """

    id: str
    name: str
    version: int = 1
    label_range_c: tuple[float, float]
    rules: tuple[AlarmRule, ...] = ()
    mkt: MktSettings | None = None
    logging_interval_max_min: float | None = None
    max_gap_min: float | None = None
    shelf_life_at_label_range_days: float | None = None

    def __post_init__(self) -> None:
        where = f"profile {self.id!r}"
        if not self.id.strip():
            raise ProfileError("a profile needs an id")
        if self.version < 1:
            raise ProfileError(f"{where}: version must be >= 1, got {self.version}")
        low_c, high_c = self.label_range_c
        if not (math.isfinite(low_c) and math.isfinite(high_c) and low_c < high_c):
            raise ProfileError(f"{where}: label_range_c must be [low, high] with low < high")
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ProfileError(f"{where}: rule names must be unique, repeated: {', '.join(duplicates)}")
        interval = self.logging_interval_max_min
        if interval is not None and (not math.isfinite(interval) or interval <= 0):
            raise ProfileError(f"{where}: logging_interval_max_min must be > 0")
        if self.max_gap_min is None:
            default = DEFAULT_MAX_GAP_MIN if interval is None else 2 * interval
            msgspec.structs.force_setattr(self, "max_gap_min", default)
        elif not math.isfinite(self.max_gap_min) or self.max_gap_min <= 0:
            raise ProfileError(f"{where}: max_gap_min must be > 0, got {self.max_gap_min}")

    @property
    def gap_tolerance_min(self) -> float:
        """``max_gap_min`` after defaults (always set once the profile exists)."""
        assert self.max_gap_min is not None  # set in __post_init__
        return self.max_gap_min

    def rule(self, name: str) -> AlarmRule:
        """The rule called ``name``; ``KeyError`` when there is none."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


class _ProfileDocument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    about: str = ""
    profiles: tuple[Profile, ...]


def _require_json(document: str | bytes, what: str) -> None:
    """A typed decode stops at the first value of the wrong type: ``[[[[...`` fails as "not an object" before the
    decoder sees that it never closes. A document that is not JSON at all is a syntax error, whatever it holds."""
    try:
        msgspec.json.decode(document)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ProfileSyntaxError(f"{what} is not valid JSON: {error}") from error


def load_profile(document: str | bytes) -> Profile:
    """One profile from a JSON object shaped like an entry of ``profiles.json``'s ``profiles`` list.

    Raises :class:`ProfileError` naming the offending path (``$.rules[1]``) and the problem.
    """
    try:
        return msgspec.json.decode(document, type=Profile)
    except msgspec.ValidationError as error:
        _require_json(document, "profile")
        raise ProfileError(f"invalid profile: {error}") from error
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ProfileSyntaxError(f"profile is not valid JSON: {error}") from error


def load_profiles(document: str | bytes) -> list[Profile]:
    """Profiles from a JSON document shaped like ``coldchain/examples/profiles.json``: ``{"profiles": [...]}``.

    Raises :class:`ProfileError` naming the offending path (``$.profiles[3].rules[1]``) and the problem.
    """
    try:
        parsed = msgspec.json.decode(document, type=_ProfileDocument)
    except msgspec.ValidationError as error:
        _require_json(document, "profile document")
        raise ProfileError(f"invalid profile document: {error}") from error
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ProfileSyntaxError(f"profile document is not valid JSON: {error}") from error
    ids = [(profile.id, profile.version) for profile in parsed.profiles]
    repeated = sorted({f"{pid} v{version}" for pid, version in ids if ids.count((pid, version)) > 1})
    if repeated:
        raise ProfileError(f"profile ids must be unique per version, repeated: {', '.join(repeated)}")
    return list(parsed.profiles)
