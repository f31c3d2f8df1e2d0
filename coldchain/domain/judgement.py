"""The judgement of a shipment: its streams combined, the lot's budget timeline, and the recommendation.

A shipment is judged as streams, one per tracker assignment (:mod:`coldchain.domain.evaluation`). Its judgement
combines them: times beyond a rule, excursion and alarm counts add up, a rule's status is its worst in any stream,
MKT is taken over the credited time of all streams (a window is judged within one stream: the worst complete
window of any stream stands for the shipment; with none complete, the bounds of :func:`judge_mkt` over all the
credited time). Streams are meant to follow each other (a tracker replaced on the way); two trackers watching the
same time both count, which errs on the side of caution.

Lifetime rules are judged on the lot's timeline (:mod:`coldchain.domain.lot_budget`): the budget as the shipment
sees it (what the lot had spent by its last reading, and the lot's total now), and the alarm when the lot's
budget ran out on one of this shipment's streams. Readings quarantined at ingest count as faults. Each cumulative
rule shows the allowance it has left, and an alarm detected long after its condition was met is late
(:func:`is_late_detection`). Everything here is pure: the service loads the streams' states, the lot's spending
and the quarantined readings, calls :func:`judge_shipment`, and shows or saves the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.disposition import Disposition, recommend_disposition
from coldchain.domain.evaluation import (
    CompleteWindow,
    Evaluation,
    MktResult,
    alarm_order,
    judge_lifetime_rules,
    judge_mkt,
    new_state,
    stream_evaluation,
)
from coldchain.domain.lot_budget import Spending
from coldchain.domain.mkt import KELVIN_OFFSET, dh_over_r_k
from coldchain.domain.profiles import Profile
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.rules import Alarm, RuleStatus, RuleSummary

__all__ = ["LATE_AFTER", "Judgement", "allowances_left", "combine_streams", "is_late_detection", "judge_shipment"]

#: Detection more than this after the condition was met marks an alarm late. Trackers log every 1 to 15 minutes
#: and sync at least as often while they have a network: a quarter of an hour tells a live alarm from one read out
#: of a buffer. The condition's *met* time is the measure rather than its start: a consecutive 10 h rule is met
#: 10 h after its excursion began, and detecting it at that moment is on time.
LATE_AFTER = timedelta(minutes=15)

_STATUS_RANK: dict[RuleStatus, int] = {"ok": 0, "pending": 1, "alarmed": 2}


class Judgement(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment's evaluation (streams combined, lot budgets judged), the allowance each cumulative rule has
    left (``None`` for other rules), its quarantine faults and the recommendation."""

    evaluation: Evaluation
    allowances: dict[str, float | None]
    quarantined: list[QuarantineFault]
    disposition: Disposition


def is_late_detection(alarm: Alarm, detected_at: datetime) -> bool:
    """Whether an alarm detected at ``detected_at`` (service time) came long after its condition was met
    (device time): buffered data after an outage, to be shown as an account of the past, not as live."""
    return detected_at - alarm.met_at > LATE_AFTER


def allowances_left(profile: Profile, evaluation: Evaluation) -> dict[str, float | None]:
    """Minutes each cumulative rule may still spend beyond its threshold before its alarm, never below 0: a
    lifetime rule's from the lot's budget as the shipment sees it, a shipment rule's from the shipment's time
    beyond; ``None`` for rules without an allowance (instant, consecutive, rolling)."""
    budgets = {budget.rule: budget for budget in evaluation.budgets}
    left: dict[str, float | None] = {}
    for rule, summary in zip(profile.rules, evaluation.rules, strict=True):
        if rule.scope == "lifetime":
            left[rule.name] = budgets[rule.name].remaining_min
        elif rule.mode == "cumulative" and rule.scope == "shipment":
            left[rule.name] = max(0.0, rule.delay_min - summary.beyond_min)
        else:
            left[rule.name] = None
    return left


def judge_shipment(
    profile: Profile,
    *,
    shipment_id: int,
    streams: Sequence[Evaluation],
    lot_spendings: Sequence[Spending],
    quarantined: Sequence[QuarantineFault] = (),
) -> Judgement:
    """Judge a shipment from its streams' evaluations (:func:`coldchain.domain.evaluation.stream_evaluation`),
    the spending of every stream of its lot (this shipment's included; its own streams' alone when it belongs
    to no lot) and the faults of its quarantined readings."""
    combined = combine_streams(profile, streams)
    evaluation = judge_lifetime_rules(profile, combined, shipment_id=shipment_id, spendings=lot_spendings)
    return Judgement(
        evaluation=evaluation,
        allowances=allowances_left(profile, evaluation),
        quarantined=list(quarantined),
        disposition=recommend_disposition(evaluation, quarantined=quarantined),
    )


def combine_streams(profile: Profile, parts: Sequence[Evaluation]) -> Evaluation:
    """One evaluation of a shipment from those of its streams, before its lifetime rules are judged."""
    if not parts:
        parts = [stream_evaluation(profile, new_state(profile))]
    if len(parts) == 1:
        return parts[0]
    rules = [_combine_rule([part.rules[index] for part in parts]) for index in range(len(profile.rules))]
    first = min((p.first_reading_at for p in parts if p.first_reading_at is not None), default=None)
    last = max((p.last_reading_at for p in parts if p.last_reading_at is not None), default=None)
    return Evaluation(
        profile_id=profile.id,
        profile_version=profile.version,
        readings=sum(part.readings for part in parts),
        first_reading_at=first,
        last_reading_at=last,
        temperature_min_c=min((p.temperature_min_c for p in parts if p.temperature_min_c is not None), default=None),
        temperature_max_c=max((p.temperature_max_c for p in parts if p.temperature_max_c is not None), default=None),
        temperature_mean_c=_time_weighted_mean(parts),
        rules=rules,
        excursions=sorted(
            (excursion for part in parts for excursion in part.excursions),
            key=lambda excursion: (excursion.start, excursion.start_seq, excursion.rule),
        ),
        alarms=sorted((alarm for part in parts for alarm in part.alarms), key=alarm_order),
        gaps=sorted((gap for part in parts for gap in part.gaps), key=lambda gap: (gap.start, gap.end)),
        faults=sorted(
            (fault for part in parts for fault in part.faults),
            key=lambda fault: (fault.start, fault.start_seq, fault.metric),
        ),
        mkt=_combine_mkt(profile, [part.mkt for part in parts]),
        budgets=[],
    )


def _time_weighted_mean(parts: Sequence[Evaluation]) -> float | None:
    weighted = [(p.temperature_mean_c, p.mkt.credited_min) for p in parts if p.temperature_mean_c is not None]
    total_min = sum(minutes for _, minutes in weighted)
    return sum(mean * minutes for mean, minutes in weighted) / total_min if total_min > 0 else None


def _combine_rule(summaries: list[RuleSummary]) -> RuleSummary:
    worst = max(summaries, key=lambda summary: _STATUS_RANK[summary.status]).status
    since = min((s.since for s in summaries if s.status == worst and s.since is not None), default=None)
    return RuleSummary(
        rule=summaries[0].rule,
        status=worst,
        since=since,
        beyond_now=any(summary.beyond_now for summary in summaries),
        beyond_min=sum(summary.beyond_min for summary in summaries),
        longest_min=max(summary.longest_min for summary in summaries),
        degree_min=sum(summary.degree_min for summary in summaries),
        excursions=sum(summary.excursions for summary in summaries),
        alarms=sum(summary.alarms for summary in summaries),
    )


def _combine_mkt(profile: Profile, results: list[MktResult]) -> MktResult:
    """The shipment MKT over all streams' credited time (each stream's Arrhenius mean weighted by its minutes);
    the worst complete window of any stream, else the bounds over all credited time."""
    dh_over_r = dh_over_r_k(results[0].activation_energy_kj_mol)
    weighted = [
        (result.credited_min * math.exp(-dh_over_r / (result.shipment_mkt_c + KELVIN_OFFSET)), result.credited_min)
        for result in results
        if result.shipment_mkt_c is not None and result.credited_min > 0
    ]
    complete = [r for r in results if r.window_complete and r.window_mkt_c is not None]
    worst: CompleteWindow | None = None
    if complete:
        chosen = max(complete, key=lambda result: result.window_mkt_c or -math.inf)
        assert chosen.window_mkt_c is not None and chosen.window_start is not None and chosen.window_end is not None
        worst = CompleteWindow(
            mkt_c=chosen.window_mkt_c, start=chosen.window_start, end=chosen.window_end, covered_min=chosen.covered_min
        )
    return judge_mkt(
        profile,
        weighted_sum=sum(weight for weight, _ in weighted),
        credited_min=sum(minutes for _, minutes in weighted),
        first=min((r.window_start for r in results if r.window_start is not None), default=None),
        last=max((r.window_end for r in results if r.window_end is not None), default=None),
        worst=worst,
    )
