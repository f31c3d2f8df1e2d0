"""Builders shared by the domain tests: readings at minute offsets, rules and profiles with defaults."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from coldchain.domain.profiles import AlarmRule, MktSettings, Profile, load_profiles
from coldchain.domain.readings import Reading
from tests.paths import BERLINGER, EXAMPLE_PROFILES, FIXTURES

__all__ = [
    "BERLINGER",
    "EXAMPLE_PROFILES",
    "FIXTURES",
    "T0",
    "at",
    "profile",
    "readings",
    "rule",
    "shared_profile",
]

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """The device time ``minutes`` after :data:`T0`."""
    return T0 + timedelta(minutes=minutes)


def readings(points: Iterable[tuple[float, float | None]], **sensors: Any) -> list[Reading]:
    """Readings at (minutes after T0, temperature °C), seq 1..n."""
    return [
        Reading(seq=seq, device_time=at(minutes), temperature_c=temperature_c, **sensors)
        for seq, (minutes, temperature_c) in enumerate(points, start=1)
    ]


def rule(**fields: Any) -> AlarmRule:
    """A temperature rule, above 8 °C inclusive, consecutive 60 min, scope shipment, quarantine."""
    values: dict[str, Any] = {
        "name": "heat",
        "direction": "above",
        "threshold": 8.0,
        "inclusive": True,
        "mode": "consecutive",
        "delay_min": 60.0,
        "action": "quarantine",
    }
    values.update(fields)
    return AlarmRule(**values)


def profile(*rules: AlarmRule, mkt: MktSettings | None = None, max_gap_min: float = 60.0) -> Profile:
    return Profile(
        id="test",
        name="test profile",
        label_range_c=(2.0, 8.0),
        rules=rules,
        mkt=mkt,
        max_gap_min=max_gap_min,
    )


def shared_profile(profile_id: str) -> Profile:
    """One of the example profiles in coldchain/examples/profiles.json."""
    for candidate in load_profiles(EXAMPLE_PROFILES.read_bytes()):
        if candidate.id == profile_id:
            return candidate
    raise KeyError(profile_id)
