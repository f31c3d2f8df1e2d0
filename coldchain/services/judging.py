"""Judging after commit: readings judged right after their batch commits, by a judge of the process, instead of
inside the batch's transaction (``COLDCHAIN_JUDGE_AFTER_COMMIT``; on by default).

Inside the transaction (``COLDCHAIN_JUDGE_AFTER_COMMIT=false``), an alarm is stored atomically with the readings
that raised it, and a tracker's answer means its readings are judged. Its cost is paid per batch: the stream's state
read and written, the findings, the lot's budget, a dozen statements, whatever the batch holds. After commit, the
batch only notes in the tracker's sync state (the row it already locks and writes) the span and the count of what
waits to be judged, and hands its readings to the judge in memory. The judge takes one tracker at a time in a
transaction of its own, and judges every batch that waited for it in one pass: when batches come faster than they
are judged (a fleet catching up after an outage), several batches of a tracker share one state read and write and
one set of statements, so judging gets cheaper per reading as the load rises. Each tracker is judged with exactly
the code and the results of judging inside the transaction (:func:`~coldchain.services.evaluation.judge_readings`):
any split of a log into batches ends with what one pass finds.

Nothing waits in memory only. What waits is in the database with the readings, committed with them, and the
readings handed over are used only when they are exactly what the database says waits (the same round of the
tracker's judgements, and as many readings); otherwise they are read back. The judge looks in the database for
trackers left waiting by a process that stopped, at start and every ``sweep_s`` seconds (then those waiting longer
than ``orphaned_s``: a process busy with a backlog is not robbed of what it holds), and a
read that must be exact (a shipment's judgement, its excursions and alarms, a decision, a certificate) first
settles the shipment's waiting trackers (:meth:`Judge.settle`). Alarms are raised, and told, when the judge reaches
the tracker: milliseconds after the batch's answer on a quiet service, longer under load.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.readings import Reading
from coldchain.domain.sync import SyncState
from coldchain.metrics import EVALUATION_SECONDS, JUDGED_AFTER_COMMIT, JUDGEMENTS_AFTER_COMMIT
from coldchain.services.custody import notice_arrival
from coldchain.services.decisions import recheck_decisions
from coldchain.services.evaluation import judge_readings
from coldchain.storage import Store

__all__ = ["Judge", "Waiting", "judge_waiting", "wait_for_judgement"]

log = logging.getLogger("coldchain.judging")

#: How many waiting trackers one look in the database takes.
_SWEEP_TRACKERS = 100


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    """A batch's new readings as they wait to be judged: of ``tracker_id``, for its judgement number ``round``."""

    tracker_id: int
    round: int
    readings: tuple[Reading, ...]


def wait_for_judgement(
    state: SyncState, tracker_id: int, readings: Sequence[Reading], span: tuple[datetime, datetime], *, now: datetime
) -> Waiting:
    """Note in ``state`` (saved with the batch received ``now``) that ``readings`` and the device time ``span``
    wait to be judged; the readings as handed to the judge."""
    earliest, latest = span
    if state.judge_since is None:
        state.judge_since = now
    state.judge_from = earliest if state.judge_from is None else min(state.judge_from, earliest)
    state.judge_until = latest if state.judge_until is None else max(state.judge_until, latest)
    state.judge_count += len(readings)
    return Waiting(tracker_id=tracker_id, round=state.judge_round, readings=tuple(readings))


async def judge_waiting(
    store: Store, tracker_id: int, *, now: datetime, take: Callable[[], Sequence[Waiting]] = tuple
) -> int:
    """Judge what waits of ``tracker_id`` in one transaction, under the tracker's lock (so no batch of it
    commits meanwhile): its waiting readings, the arrival they may show, and the signed decisions of the span;
    returns how many readings were judged. ``take`` gives, once the lock is held, the batches this process was
    handed over; they are judged instead of reading the readings back when they are all that waits."""
    async with store.transaction() as tx:
        state, watched = await tx.sync_state_watched(tracker_id)
        handed = take()
        if state.judge_from is None or state.judge_until is None:
            return 0  # judged meanwhile, by another process or a reader settling the shipment
        current = [waiting for waiting in handed if waiting.round == state.judge_round]
        readings: Sequence[Reading]
        if sum(len(waiting.readings) for waiting in current) == state.judge_count:
            readings, source = list(itertools.chain.from_iterable(waiting.readings for waiting in current)), "handed"
        else:  # some of it came through another process, or before this one started: read it back
            readings = await tx.readings_after(tracker_id, None, starts_at=state.judge_from, ends_at=None)
            source = "read_back"
        if readings:
            with EVALUATION_SECONDS.time():
                await judge_readings(tx, tracker_id, readings, now=now)
            await notice_arrival(tx, tracker_id, readings, now=now)
        if watched is not None and watched.decided:
            await recheck_decisions(tx, tracker_id, earliest=state.judge_from, latest=state.judge_until, now=now)
        state.judge_from = state.judge_until = state.judge_since = None
        state.judge_count = 0
        state.judge_round += 1
        await tx.save_sync_state(state)
    JUDGEMENTS_AFTER_COMMIT.inc()
    JUDGED_AFTER_COMMIT.labels(source=source).inc(len(readings))
    return len(readings)


class Judge:
    """The process's judge: judges the trackers whose batches were handed over, the one waiting longest first,
    ``concurrency`` trackers at a time, each ``linger_s`` seconds after its first waiting batch was handed over
    (so the batches of a tracker catching up, sent one after the other, are judged in one pass); and every
    ``sweep_s`` seconds the trackers the database says wait longer than ``orphaned_s`` (at start, every one that
    waits). Holding ``max_held`` readings
    handed over or more, it is :attr:`behind`: new batches then wait for room (:meth:`room`), which bounds both
    its memory and how late alarms come. Run it with :meth:`running`."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        linger_s: float = 0.2,
        sweep_s: float = 5.0,
        orphaned_s: float = 30.0,
        concurrency: int = 2,
        max_held: int = 300_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._linger_s = linger_s
        self._sweep_s = sweep_s
        self._orphaned_s = orphaned_s
        self._concurrency = concurrency
        self._max_held = max_held
        self._held = 0  # readings handed over and kept
        self._room = asyncio.Event()  # set while the judge holds fewer than max_held readings
        self._room.set()
        self._handed: dict[int, list[Waiting]] = {}  # insertion order: the tracker waiting longest first
        self._since: dict[int, float] = {}  # when each tracker's first waiting batch was handed over
        self._judging: set[int] = set()  # trackers this process is judging now
        self._wake = asyncio.Event()
        self._swept_at = -float("inf")

    @property
    def waiting(self) -> int:
        """Trackers handed over and not judged yet."""
        return len(self._handed)

    @property
    def held(self) -> int:
        """Readings handed over and kept in memory until their tracker is judged."""
        return self._held

    @property
    def behind(self) -> bool:
        """Whether the judge holds as many readings as it may: new batches should wait."""
        return self._held >= self._max_held

    async def room(self, *, timeout_s: float) -> bool:
        """Wait until the judge is no longer :attr:`behind`, for at most ``timeout_s``; whether it is not."""
        deadline = time.monotonic() + timeout_s
        while self.behind:  # another batch let in at the same moment may have filled it again
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), timeout=left)
        return True

    def hand_over(self, waiting: Waiting) -> None:
        """Take a batch's readings that wait to be judged (before the batch commits: see ``record_batch``)."""
        self._handed.setdefault(waiting.tracker_id, []).append(waiting)
        self._held += len(waiting.readings)
        if self.behind:
            self._room.clear()
        self._since.setdefault(waiting.tracker_id, time.monotonic())
        self._wake.set()

    async def judge(self, tracker_id: int) -> int:
        """Judge what waits of ``tracker_id`` now, with what was handed over of it. A failure is logged and the
        readings go on waiting in the database, for the next sweep."""

        def take() -> list[Waiting]:
            self._since.pop(tracker_id, None)
            handed = self._handed.pop(tracker_id, [])
            self._held -= sum(len(waiting.readings) for waiting in handed)
            if not self.behind:
                self._room.set()
            return handed

        self._judging.add(tracker_id)
        try:
            return await judge_waiting(self._store, tracker_id, now=self._clock(), take=take)
        except Exception:
            log.exception("judging the waiting readings of tracker %s failed; the next sweep tries again", tracker_id)
            return 0
        finally:
            self._judging.discard(tracker_id)

    async def settle(self, shipment_id: int | None = None) -> None:
        """Judge every tracker that waits, of ``shipment_id``'s assignments (``None``: of every shipment), before a
        read that must see all stored readings judged."""
        await self._judge_waiting(shipment_id=shipment_id)

    async def drain(self) -> None:
        """Judge every tracker handed over."""
        while (tracker_id := self._next()) is not None:
            await self.judge(tracker_id)

    async def _judge_waiting(self, *, shipment_id: int | None = None, since: datetime | None = None) -> None:
        """Judge the trackers the database says wait (of ``shipment_id``, since before ``since``), a page at a
        time, each once: one whose judging failed waits for the next sweep."""
        tried: set[int] = set()
        while True:
            async with self._store.transaction() as tx:
                page = await tx.trackers_waiting_for_judgement(
                    shipment_id=shipment_id, since=since, limit=_SWEEP_TRACKERS
                )
            waiting = [tracker_id for tracker_id in page if tracker_id not in tried]
            for tracker_id in waiting:
                tried.add(tracker_id)
                await self.judge(tracker_id)
            if len(page) < _SWEEP_TRACKERS or not waiting:
                return

    async def _sweep(self) -> None:
        """Judge the trackers left waiting: at start every one (what a stopped process left), then those waiting
        longer than ``orphaned_s``. Another process that is alive judges what it was handed sooner than that, even
        behind a backlog; taking its trackers earlier would make it drop what it holds and both read it back."""
        first = self._swept_at == -float("inf")
        self._swept_at = time.monotonic()
        try:
            await self._judge_waiting(since=None if first else self._clock() - timedelta(seconds=self._orphaned_s))
        except Exception:
            log.exception("looking for trackers waiting to be judged failed; trying again in %s s", self._sweep_s)

    def _next(self) -> int | None:
        """The tracker handed over longest ago that no task of this judge is judging now."""
        return next((tracker_id for tracker_id in self._handed if tracker_id not in self._judging), None)

    async def _run(self, *, sweeping: bool) -> None:
        while True:
            if sweeping and time.monotonic() - self._swept_at >= self._sweep_s:
                await self._sweep()
            tracker_id = self._next()
            if tracker_id is None:
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._sweep_s)
                continue
            due_in = self._since[tracker_id] + self._linger_s - time.monotonic()
            if due_in > 0:
                await asyncio.sleep(min(due_in, self._sweep_s))
                continue
            await self.judge(tracker_id)

    @asynccontextmanager
    async def running(self, *, stop_s: float = 10.0) -> AsyncIterator[Judge]:
        """Judge in the background while the block runs; at its end, judge what was handed over, for at most
        ``stop_s`` seconds (what is left waits in the database for the next start)."""
        tasks = [
            asyncio.create_task(self._run(sweeping=number == 0), name=f"coldchain-judge-{number}")
            for number in range(self._concurrency)
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            with suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), timeout=stop_s)
