"""Use case: record a batch of readings from one tracker, in one transaction, and say what is now held."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.readings import Reading
from coldchain.domain.sync import (
    SEQ_CEILING,
    SyncConflict,
    SyncState,
    Watched,
    acknowledge,
    all_acceptable,
    clock_offset_s,
    conflicts_with,
    extend_acknowledgement,
    is_fresh,
    quarantine_reason,
    sequence_refusal,
)
from coldchain.metrics import EVALUATION_SECONDS
from coldchain.services.custody import notice_arrival
from coldchain.services.decisions import recheck_decisions, touched_span
from coldchain.services.evaluation import judge_readings
from coldchain.services.judging import Waiting, wait_for_judgement
from coldchain.storage import Store

__all__ = ["BatchOutcome", "SyncPolicy", "record_batch"]


class SyncPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_future: timedelta = timedelta(hours=24)
    clock_drift_limit_s: float = 300.0
    max_seq_jump: int = 1_000_000
    """How far past the highest sequence number held one batch may reach; further readings go to quarantine."""
    evaluate: bool = True
    """Judge new readings against their shipments (off only to measure its cost)."""
    judge_after_commit: bool = False
    """Judge them after the batch commits, not inside its transaction: the batch notes in the tracker's sync state
    what waits to be judged and hands its readings to ``record_batch``'s ``hand_over``
    (:mod:`coldchain.services.judging`)."""


DEFAULT_POLICY = SyncPolicy()


class BatchOutcome(msgspec.Struct, frozen=True, kw_only=True):
    acked_through: int
    missing: list[tuple[int, int]]
    new: int
    duplicates: int
    quarantined: int
    conflicts: int
    server_time: datetime
    clock_offset_s: float | None
    clock_flagged: bool


_reading_json = msgspec.json.Encoder()
_DEVICE_TIME = operator.attrgetter("device_time")


def _continues_the_log(readings: Sequence[Reading], state: SyncState, policy: SyncPolicy) -> bool:
    """Whether every reading of a sequenced batch is new for certain and may extend the log: numbered above
    everything held or acknowledged, each number once, none beyond what :func:`sequence_refusal` allows. Such a
    batch (a tracker's next batch: nearly every one) needs no look-up and no decision per reading."""
    if not readings:
        return False
    seqs = [reading.seq for reading in readings]
    lowest, highest = min(seqs), max(seqs)
    return (
        lowest > max(state.max_seq, state.max_refused_seq, state.acked_through)
        and highest <= min(SEQ_CEILING, state.max_seq + policy.max_seq_jump)
        and len(set(seqs)) == len(seqs)
    )


def _watched(watched: Watched | None, accepted: Sequence[datetime], refused: Sequence[tuple[Reading, str]]) -> bool:
    """Whether the batch (``accepted``: the device times of the readings it accepted) may hold a reading of a
    shipment: judgement, arrival and the re-check of signed decisions all start from the tracker's assignments, so
    a batch of a tracker never assigned, or whose readings all lie outside the span its assignments cover, has
    nothing to judge and skips their three look-ups. A batch with a refused reading is not asked (its device time
    may have no UTC form to compare). The re-check of signed decisions is skipped besides when no shipment of the
    tracker's assignments has a decision a batch could change (:attr:`Watched.decided`, read in the same
    statement)."""
    if watched is None:
        return False
    if refused or not accepted:
        return True
    return watched.meets(min(accepted), max(accepted))


async def record_batch(
    store: Store,
    tracker_id: int,
    readings: Sequence[Reading],
    *,
    now: datetime,
    sent_at: datetime | None = None,
    policy: SyncPolicy = DEFAULT_POLICY,
    sequenced: bool = True,
    hand_over: Callable[[Waiting], object] | None = None,
    quantities_checked: bool = False,
) -> BatchOutcome:
    """Store ``readings`` (valid ones as readings, invalid ones in quarantine) and advance the tracker's state.

    Idempotent: a copy of a reading already held is counted as a duplicate and changes nothing; a copy that
    disagrees with it is a conflict, kept beside it (and in the audit trail). The first copy of a sequence number
    is the one held, also within one batch. An empty batch asks what the service lacks: the answer carries the
    true missing ranges. A batch that is no contact of the tracker's (see :func:`is_fresh`) leaves its counters,
    ``last_sync_at`` and clock offset alone. ``sequenced`` is false for sources whose sequence numbers are not a
    gap-free count (OsmAnd devices use the time as the number): they get no acknowledgement ranges.

    New, duplicate or conflict is decided here, in code, under the tracker's lock (:meth:`sync_state`), and not
    by the database: on PostgreSQL readings are partitioned by device time, so a copy of a held number with
    another device time would land in another partition, where no key could refuse it. Only the numbers that can
    already be held are looked up, in one statement per table across every partition: in a sequenced log those
    up to the highest number held (a replay, a retry, a late reading filling a hole); a number above it is new for
    certain. Every reading found new then goes straight in with COPY (:meth:`append_readings`), a constant
    number of statements per batch. Looking the numbers up was chosen over a per-tracker ledger of held numbers,
    which would be a second write of every reading on the hottest path, for the rare batch that repeats.

    A number at or below ``acked_through`` that is no longer held was removed by retention
    (:mod:`coldchain.domain.retention`): the tracker forgot it long ago, and a copy of it is counted a duplicate
    rather than stored again.

    ``quantities_checked`` says the caller already found every quantity of ``readings`` finite and within its
    physical range (the sync route's decoder does, as it reads the numbers); only the rest of the checks is then
    made here (:func:`~coldchain.domain.sync.all_acceptable`).

    Judging after commit (:attr:`SyncPolicy.judge_after_commit`), what waits to be judged is given to
    ``hand_over`` before the transaction commits: a judge cannot take the tracker before the commit (it waits for
    the tracker's lock), and one that finds the batch rolled back reads what waits from the database instead.
    """
    async with store.transaction() as tx:
        state, watched = await tx.sync_state_watched(tracker_id)
        # In a sequenced log nothing above max_seq is held, but for what went to quarantine for its number alone
        # (up to max_refused_seq). Unsequenced sources (numbered by time) keep no such bound.
        bound = max(state.max_seq, state.max_refused_seq)
        clean = all_acceptable(readings, now=now, max_future=policy.max_future, quantities_checked=quantities_checked)
        accepted: list[Reading] = []
        refused: list[tuple[Reading, str]] = []
        refused_for_number: set[int] = set()
        conflicts: list[SyncConflict] = []
        duplicates = 0
        if sequenced and clean and _continues_the_log(readings, state, policy):
            accepted = list(readings)
        else:
            maybe_held = sorted({r.seq for r in readings if not sequenced or r.seq <= bound})
            known = await tx.held_readings(tracker_id, maybe_held) if maybe_held else {}
            retired = state.acked_through if sequenced else 0
            for reading in readings:
                number_reason = sequence_refusal(
                    reading.seq, max_seq=state.max_seq if sequenced else None, max_jump=policy.max_seq_jump
                )
                reason = number_reason or (
                    None if clean else quarantine_reason(reading, now=now, max_future=policy.max_future)
                )
                held = known.get(reading.seq)
                if held is None and reading.seq <= retired:
                    duplicates += 1
                    continue
                if held is not None:
                    held_reading, held_reason = held
                    if conflicts_with(held_reading, held_reason, reading, reason):
                        conflicts.append(
                            SyncConflict(
                                seq=reading.seq,
                                received_at=now,
                                held_as="reading" if held_reason is None else "quarantined",
                                held=held_reading,
                                sent=reading,
                                sent_reason=reason,
                            )
                        )
                    else:
                        duplicates += 1
                    continue
                known[reading.seq] = (reading, reason)
                if reason is None:
                    accepted.append(reading)
                else:
                    refused.append((reading, reason))
                    if number_reason is not None:
                        refused_for_number.add(reading.seq)

        if accepted:
            await tx.append_readings(tracker_id, accepted, received_at=now)
        new = len(accepted)
        accepted_times = list(map(_DEVICE_TIME, accepted)) if watched is not None else []
        judged = policy.evaluate and _watched(watched, accepted_times, refused)
        later = judged and policy.judge_after_commit
        if new and judged and not later:
            with EVALUATION_SECONDS.time():
                await judge_readings(tx, tracker_id, accepted, now=now)
            await notice_arrival(tx, tracker_id, accepted, now=now)
        quarantined = len(await tx.quarantine_readings(tracker_id, refused, received_at=now)) if refused else 0
        decided = watched is not None and watched.decided
        if (new or quarantined) and judged and (decided or later):
            # Signed decisions are re-checked over the span of every reading of the batch, quarantined ones too.
            span = touched_span(accepted_times + ([r.device_time for r, _ in refused] if decided else []))
            if span is not None and later:
                waiting = wait_for_judgement(state, tracker_id, accepted, span, now=now)
                if hand_over is not None:
                    hand_over(waiting)
            elif span is not None:
                await recheck_decisions(tx, tracker_id, earliest=span[0], latest=span[1], now=now)
        recorded = 0
        for conflict in conflicts:
            if await tx.record_sync_conflict(tracker_id, conflict):
                recorded += 1
                await tx.append_audit(
                    actor=f"tracker:{tracker_id}",
                    action="reading.conflict",
                    subject=f"tracker:{tracker_id}",
                    detail=_reading_json.encode(
                        {
                            "seq": conflict.seq,
                            "held_as": conflict.held_as,
                            "held": conflict.held,
                            "sent": conflict.sent,
                            "sent_reason": conflict.sent_reason,
                        }
                    ).decode(),
                    now=now,
                )
            else:  # the same conflicting copy, recorded before
                duplicates += 1

        missing: list[tuple[int, int]] = []
        if sequenced:
            # Only what this batch adds to the log moves max_seq: never a number refused for being too far out.
            extending = [r.seq for r in accepted] + [r.seq for r, _ in refused if r.seq not in refused_for_number]
            extended = extend_acknowledgement(state.acked_through, state.max_seq, extending)
            if extended is not None:  # the usual case, without a query: the batch continues a log with no hole
                state.acked_through = state.max_seq = extended
            else:
                state.max_seq = max(state.max_seq, *extending) if extending else state.max_seq
                held_seqs = await tx.held_seqs(tracker_id, after_seq=state.acked_through, up_to_seq=state.max_seq)
                ack = acknowledge(state.acked_through, held_seqs)
                state.acked_through, missing = ack.acked_through, ack.missing
            state.max_refused_seq = max(state.max_refused_seq, *refused_for_number, 0)
        brought = new + quarantined + recorded
        state.readings_new += new
        state.readings_quarantined += quarantined
        state.readings_conflicting += recorded
        fresh = is_fresh(sent_at, state.last_sent_at, brought_anything=brought > 0)
        if fresh or brought:
            state.batches += 1
            state.readings_duplicate += duplicates
        if fresh:
            state.last_sync_at = now
            if sent_at is not None:
                state.last_sent_at = sent_at
                state.clock_offset_s = clock_offset_s(sent_at, now)
                state.clock_flagged = abs(state.clock_offset_s) > policy.clock_drift_limit_s
        await tx.save_sync_state(state)

    return BatchOutcome(
        acked_through=state.acked_through,
        missing=missing,
        new=new,
        duplicates=duplicates,
        quarantined=quarantined,
        conflicts=recorded,
        server_time=now,
        clock_offset_s=state.clock_offset_s,
        clock_flagged=state.clock_flagged,
    )
