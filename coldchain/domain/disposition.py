"""Disposition recommendation: release, quarantine or reject, with every reason (REFERENCE §4–§6).

The recommendation is the strictest outcome any reason calls for; a pharmacist decides and signs. Reasons:

- an alarm calls for its rule's action (``reject``, ``quarantine``; ``warn`` is recorded and releases);
- the MKT of the profile's window above its limit calls for quarantine: a shipment can stay inside its budget
  and still fail the MKT criterion, so both are checked (USP <1079.2>, REFERENCE §4). A window the data covers
  only in part says so: the message names the hours recorded and the share of the window, never the window
  alone; when the bounds of the full window straddle the limit, it calls for a pharmacist's review
  (quarantine), see :func:`coldchain.domain.evaluation.judge_mkt`;
- a lot budget overrun on a shipment that did not run it out (its spending came after the lot's budget was
  gone) calls for the rule's action; the alarm stays with the shipment that ran it out;
- a data gap, a sensor fault or a reading quarantined at ingest calls for quarantine: conditions during that
  time cannot be demonstrated (EU GDP 2013/C 343/01 ch. 9), and the engine never interpolates them;
- an excursion still open at the last reading calls for quarantine: its outcome is not known yet;
- no reading at all calls for quarantine;
- excursions of rules that raised no alarm are recorded and release (they stayed within the rule's allowance).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from coldchain.domain.evaluation import Evaluation, MktResult
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.utc import utc_text

__all__ = ["SEVERITY", "Disposition", "DispositionReason", "Recommendation", "recommend_disposition"]

Recommendation = Literal["release", "quarantine", "reject"]

SEVERITY: dict[Recommendation, int] = {"release": 0, "quarantine": 1, "reject": 2}
"""How strict each outcome is: a recommendation is the strictest any reason calls for."""


class DispositionReason(msgspec.Struct, frozen=True, kw_only=True):
    """One reason behind a recommendation: what it calls for, a code, a sentence, and what it is about."""

    calls_for: Recommendation
    code: Literal[
        "alarm",
        "mkt_above_limit",
        "mkt_review",
        "budget_exhausted",
        "data_gap",
        "sensor_fault",
        "quarantined_readings",
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


def _mkt_reason(mkt: MktResult) -> DispositionReason | None:
    """The MKT's reason, worded by what the verdict rests on (no message claims a window the data lacks)."""
    if mkt.verdict not in ("fail", "review") or mkt.limit_c is None or mkt.window_mkt_c is None:
        return None
    energy = f"ΔH {mkt.activation_energy_kj_mol:g} kJ/mol"
    if mkt.rests_on in ("complete_window", "shipment"):
        where = f"over window {mkt.window}" if mkt.rests_on == "complete_window" else "over the shipment"
        message = f"MKT {mkt.window_mkt_c:.2f} °C {where} exceeds {mkt.limit_c:g} °C ({energy})"
        return DispositionReason(calls_for="quarantine", code="mkt_above_limit", message=message, at=mkt.window_start)
    recorded = f"{mkt.covered_min / 60:.1f} h recorded ({100 * (mkt.coverage or 0.0):.0f} % of a {mkt.window} window)"
    if mkt.rests_on == "covered_data":
        message = (
            f"MKT {mkt.window_mkt_c:.2f} °C over the {recorded}, judged on the recorded time as the profile sets, "
            f"exceeds {mkt.limit_c:g} °C ({energy})"
        )
        return DispositionReason(calls_for="quarantine", code="mkt_above_limit", message=message, at=mkt.window_start)
    if mkt.verdict == "fail":
        message = (
            f"MKT at least {mkt.best_case_mkt_c or 0.0:.2f} °C, above {mkt.limit_c:g} °C, even with the unrecorded "
            f"time at the label range's lower end (MKT {mkt.window_mkt_c:.2f} °C over the {recorded}; {energy})"
        )
        return DispositionReason(calls_for="quarantine", code="mkt_above_limit", message=message, at=mkt.window_start)
    message = (
        f"MKT {mkt.window_mkt_c:.2f} °C over the {recorded}: with the unrecorded time within the label range, the "
        f"full window's MKT lies between {mkt.best_case_mkt_c or 0.0:.2f} and {mkt.worst_case_mkt_c or 0.0:.2f} °C, "
        f"limit {mkt.limit_c:g} °C ({energy}): review"
    )
    return DispositionReason(calls_for="quarantine", code="mkt_review", message=message, at=mkt.window_start)


def recommend_disposition(evaluation: Evaluation, *, quarantined: Sequence[QuarantineFault] = ()) -> Disposition:
    """Recommend release, quarantine or reject for an evaluated shipment (``quarantined``: the faults of its
    trackers' readings quarantined at ingest)."""
    reasons: list[DispositionReason] = []
    if evaluation.readings == 0:
        reasons.append(DispositionReason(calls_for="quarantine", code="no_data", message="no readings"))
    for alarm in evaluation.alarms:
        sentence = (
            f"{alarm.rule}: {alarm.mode} {alarm.metric} {alarm.direction} {alarm.threshold:g}"
            f" (delay {alarm.delay_min:g} min, scope {alarm.scope}) met at {utc_text(alarm.met_at)}"
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
    mkt_reason = _mkt_reason(evaluation.mkt)
    if mkt_reason is not None:
        reasons.append(mkt_reason)
    alarmed = {alarm.rule for alarm in evaluation.alarms}
    for budget in evaluation.budgets:
        if budget.overrun_min > 0 and budget.rule not in alarmed and budget.spent_in_shipment_min > 0:
            reasons.append(
                DispositionReason(
                    calls_for=budget.action if budget.action != "warn" else "release",
                    code="budget_exhausted",
                    message=(
                        f"{budget.rule}: the lot's budget of {budget.allowed_min:g} min ran out before this "
                        f"shipment's spending; {budget.overrun_min:.0f} min beyond it by this shipment's end"
                    ),
                    rule=budget.rule,
                    at=budget.lot_exhausted_at,
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
    for held in quarantined:
        reasons.append(
            DispositionReason(
                calls_for="quarantine",
                code="quarantined_readings",
                message=(
                    f"{held.readings} reading(s) quarantined at ingest ({held.kind}) from "
                    f"{utc_text(held.first_at)} to {utc_text(held.last_at)}"
                ),
                at=held.first_at,
            )
        )
    alarmed_rules = alarmed
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
    reasons.sort(key=lambda reason: -SEVERITY[reason.calls_for])
    recommendation: Recommendation = reasons[0].calls_for if reasons else "release"
    return Disposition(recommendation=recommendation, reasons=reasons)
