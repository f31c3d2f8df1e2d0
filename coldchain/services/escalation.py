"""Use cases of escalation chains: an organisation names who is told, person by person, when an alarm of a
shipment it takes part in stays unacknowledged, and a job walks the chain.

A chain is a list of steps (a user of the organisation and a delay in minutes after the alarm was raised), in
order; its admin saves it whole (an audit entry keeps the chain before and after). The job
(:func:`walk_escalation_chains`) tells each step's person once, when the step's time has come and the alarm is
still standing and unacknowledged: it records the step (``escalation_notices``, keyed by alarm, organisation and
step, so a step is never walked twice, also by two processes at once), writes an audit entry, and publishes an
``alarm.escalation_step`` notification to the organisation naming the person (``payload.user_id``), which the
email planner sends to that person whatever their preferences, at once. An acknowledgement ends the walk. The
organisation-wide ``alarm.escalated`` (after ``COLDCHAIN_ESCALATE_AFTER_S``) goes on as before, beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.emails import (
    DIRECT_KIND,
    MAX_CHAIN_DELAY_MIN,
    EscalationChain,
    EscalationStep,
    chain_problem,
    due_steps,
)
from coldchain.services.access import require
from coldchain.services.alarms import alarm_payload
from coldchain.services.errors import Invalid, NotFound
from coldchain.storage import Store, Transaction

__all__ = ["JOB_ACTOR", "escalation_chain", "save_escalation_chain", "walk_escalation_chains"]

JOB_ACTOR = "coldchain:jobs"


def _check_manages(principal: Principal, organisation_id: int) -> None:
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")


async def escalation_chain(store: Store, principal: Principal, organisation_id: int) -> EscalationChain:
    _check_manages(principal, organisation_id)
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        return await tx.escalation_chain(organisation_id)


def _described(chain: EscalationChain) -> list[dict[str, int]]:
    return [{"user_id": s.user_id, "delay_min": s.delay_min} for s in chain.steps]


async def save_escalation_chain(
    store: Store, principal: Principal, organisation_id: int, steps: Sequence[tuple[int, int]], *, now: datetime
) -> EscalationChain:
    """Replace the organisation's chain by ``steps`` (user id, delay in minutes), in the order given; an empty list
    ends escalation to people. Steps whose time came before now are not sent for alarms already standing."""
    _check_manages(principal, organisation_id)
    chain = [EscalationStep(step_no=n, user_id=u, delay_min=d) for n, (u, d) in enumerate(steps, start=1)]
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        problem = chain_problem(chain, await tx.users_of_organisation(organisation_id))
        if problem is not None:
            raise Invalid(problem)
        before = await tx.escalation_chain(organisation_id)
        await tx.save_escalation_chain(organisation_id, chain, by=principal.actor, now=now)
        after = await tx.escalation_chain(organisation_id)
        detail = {"before": _described(before), "after": _described(after)}
        await tx.append_audit(
            actor=principal.actor,
            action="organisation.escalation_chain",
            subject=f"organisation:{organisation_id}",
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
    return after


async def _walk(tx: Transaction, chain: EscalationChain, *, now: datetime) -> int:
    assert chain.saved_at is not None
    # An alarm detected earlier than this has no step whose time comes after the chain was saved.
    since = chain.saved_at - timedelta(minutes=max((s.delay_min for s in chain.steps), default=MAX_CHAIN_DELAY_MIN))
    walked = 0
    for open_alarm in await tx.open_alarms_of_party(chain.organisation_id, since=since):
        done = [
            n.step_no
            for n in await tx.escalation_notices(open_alarm.alarm_id)
            if n.organisation_id == chain.organisation_id
        ]
        steps = due_steps(chain, detected_at=open_alarm.detected_at, done=done, now=now)
        if not steps:
            continue
        stored = await tx.get_alarm(open_alarm.alarm_id)
        assert stored is not None
        for step in steps:
            if not await tx.record_escalation_notice(stored.id, chain.organisation_id, step, now=now):
                continue  # walked by another process just now
            user = await tx.get_user(step.user_id)
            payload = {
                **alarm_payload(stored),
                "step_no": step.step_no,
                "delay_min": step.delay_min,
                "user_id": step.user_id,
                "user_name": None if user is None else user.name,
            }
            [notification_id] = await tx.publish(
                DIRECT_KIND,
                organisation_ids=[chain.organisation_id],
                subject=f"alarm:{stored.id}",
                payload=payload,
                now=now,
                shipment_id=stored.shipment_id,
            )
            await tx.link_escalation_notification(stored.id, chain.organisation_id, step.step_no, notification_id)
            detail = {
                "shipment": stored.shipment_id,
                "rule": stored.alarm.rule,
                "organisation": chain.organisation_id,
                "step": step.step_no,
                "user": step.user_id,
                "delay_min": step.delay_min,
                "unacknowledged_for_s": (now - stored.detected_at).total_seconds(),
            }
            await tx.append_audit(
                actor=JOB_ACTOR,
                action="alarm.escalation_step",
                subject=f"alarm:{stored.id}",
                detail=msgspec.json.encode(detail).decode(),
                now=now,
            )
            walked += 1
    return walked


async def walk_escalation_chains(store: Store, *, now: datetime) -> int:
    """Walk every organisation's chain for its standing unacknowledged alarms; how many steps were walked."""
    async with store.transaction() as tx:
        organisations = await tx.organisations_with_chains()
    walked = 0
    for organisation_id in organisations:
        async with store.transaction() as tx:
            chain = await tx.escalation_chain(organisation_id)
            if chain.steps and chain.saved_at is not None:
                walked += await _walk(tx, chain, now=now)
    return walked
