"""What an evaluation reports: the :class:`Evaluation` of a stream or a shipment, its MKT verdict, and the
lifetime rules judged on the lot's timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from coldchain.domain.budget import StabilityBudget
from coldchain.domain.excursions import DataGap, Excursion, SensorFault
from coldchain.domain.lot_budget import Spending, find_crossing, lot_alarm, shipment_budget
from coldchain.domain.mkt import arrhenius_weight, dh_over_r_k, mkt_from_sums
from coldchain.domain.profiles import DEFAULT_ACTIVATION_ENERGY_KJ_MOL, MktWindow, Profile
from coldchain.domain.rules import Alarm, RuleSummary

__all__ = [
    "CompleteWindow",
    "Evaluation",
    "Event",
    "MktBasis",
    "MktResult",
    "MktVerdict",
    "alarm_order",
    "judge_lifetime_rules",
    "judge_mkt",
]

#: What ``advance`` reports: every result created or changed by the readings it was given.
Event = Excursion | Alarm | DataGap | SensorFault

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
