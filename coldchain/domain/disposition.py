"""Disposition recommendation: release, quarantine or reject, with every reason (REFERENCE §4–§6).

The recommendation is the strictest outcome any reason calls for; a pharmacist decides and signs. Reasons:

- an alarm calls for its rule's action (``reject``, ``quarantine``; ``warn`` is recorded and releases);
- the MKT of the profile's window above its limit calls for quarantine: a shipment can stay inside its budget
  and still fail the MKT criterion, so both are checked (USP <1079.2>, REFERENCE §4);
- a data gap or a sensor fault calls for quarantine: conditions during that time cannot be demonstrated
  (EU GDP 2013/C 343/01 ch. 9), and the engine never interpolates them;
- an excursion still open at the last reading calls for quarantine: its outcome is not known yet;
- no reading at all calls for quarantine;
- excursions of rules that raised no alarm are recorded and release (they stayed within the rule's allowance).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from coldchain.domain.evaluation import Evaluation

__all__ = ["Disposition", "DispositionReason", "Recommendation", "recommend_disposition"]

Recommendation = Literal["release", "quarantine", "reject"]

_SEVERITY: dict[Recommendation, int] = {"release": 0, "quarantine": 1, "reject": 2}


class DispositionReason(msgspec.Struct, frozen=True, kw_only=True):
    """One reason behind a recommendation: what it calls for, a code, a sentence, and what it is about."""

    calls_for: Recommendation
    code: Literal[
        "alarm",
        "mkt_above_limit",
        "data_gap",
        "sensor_fault",
        "open_excursion",
        "no_data",
        "excursion",
        "warning",
    ]
    message: str
    rule: str | None = None
    at: datetime | None = None


class Disposition(msgspec.Struct, frozen=True, kw_only=True):
    """The recommendation and its reasons, strictest first."""

    recommendation: Recommendation
    reasons: list[DispositionReason]


def recommend_disposition(evaluation: Evaluation) -> Disposition:
    """Recommend release, quarantine or reject for an evaluated shipment."""
    reasons: list[DispositionReason] = []
    if evaluation.readings == 0:
        reasons.append(DispositionReason(calls_for="quarantine", code="no_data", message="no readings"))
    for alarm in evaluation.alarms:
        sentence = (
            f"{alarm.rule}: {alarm.mode} {alarm.metric} {alarm.direction} {alarm.threshold:g}"
            f" (delay {alarm.delay_min:g} min, scope {alarm.scope}) met at {alarm.met_at.isoformat()}"
        )
        if alarm.action == "warn":
            reasons.append(
                DispositionReason(
                    calls_for="release", code="warning", message=sentence, rule=alarm.rule, at=alarm.began_at
                )
            )
        else:
            reasons.append(
                DispositionReason(
                    calls_for=alarm.action, code="alarm", message=sentence, rule=alarm.rule, at=alarm.began_at
                )
            )
    mkt = evaluation.mkt
    if mkt.passes is False and mkt.window_mkt_c is not None and mkt.limit_c is not None:
        reasons.append(
            DispositionReason(
                calls_for="quarantine",
                code="mkt_above_limit",
                message=(
                    f"MKT {mkt.window_mkt_c:.2f} °C over window {mkt.window} exceeds {mkt.limit_c:g} °C "
                    f"(ΔH {mkt.activation_energy_kj_mol:g} kJ/mol)"
                ),
                at=mkt.window_start,
            )
        )
    for gap in evaluation.gaps:
        reasons.append(
            DispositionReason(
                calls_for="quarantine",
                code="data_gap",
                message=f"no readings for {gap.duration_min:.0f} min",
                at=gap.start,
            )
        )
    for fault in evaluation.faults:
        reasons.append(
            DispositionReason(
                calls_for="quarantine",
                code="sensor_fault",
                message=f"{fault.readings} reading(s) with {fault.metric} {fault.reason.replace('_', ' ')}",
                at=fault.start,
            )
        )
    alarmed_rules = {alarm.rule for alarm in evaluation.alarms}
    for excursion in evaluation.excursions:
        if excursion.end is None:
            reasons.append(
                DispositionReason(
                    calls_for="quarantine",
                    code="open_excursion",
                    message=f"{excursion.rule}: excursion still open after {excursion.duration_min:.0f} min",
                    rule=excursion.rule,
                    at=excursion.start,
                )
            )
        elif excursion.rule not in alarmed_rules:
            reasons.append(
                DispositionReason(
                    calls_for="release",
                    code="excursion",
                    message=(
                        f"{excursion.rule}: {excursion.duration_min:.0f} min beyond {excursion.threshold:g}, "
                        f"peak {excursion.peak:g}, within the rule's allowance"
                    ),
                    rule=excursion.rule,
                    at=excursion.start,
                )
            )
    reasons.sort(key=lambda reason: -_SEVERITY[reason.calls_for])
    recommendation: Recommendation = reasons[0].calls_for if reasons else "release"
    return Disposition(recommendation=recommendation, reasons=reasons)
