"""Use cases of the background jobs' bookkeeping: which process runs which tick of a job.

A tick is one fire time of a job on its interval grid. Every service process fires every job; only the process
whose transaction claims ``(job, tick)`` first runs it (``coldchain.storage.notifications``: a try-lock on the
job's name, then a row keyed by job and tick), so several processes on one database run each tick once.
"""

from __future__ import annotations

from datetime import datetime

from coldchain.domain.notifications import JobRun
from coldchain.storage import Store

__all__ = ["claim_tick", "finish_tick", "job_runs"]


async def claim_tick(store: Store, job: str, tick: datetime, *, worker: str, now: datetime) -> bool:
    """Whether ``worker`` is the one to run ``job`` for ``tick``."""
    async with store.transaction() as tx:
        return await tx.claim_job_run(job, tick, worker=worker, now=now)


async def finish_tick(store: Store, job: str, tick: datetime, *, now: datetime, error: str | None = None) -> None:
    """Record the end of a claimed run, and its error if it failed."""
    async with store.transaction() as tx:
        await tx.finish_job_run(job, tick, now=now, error=error)


async def job_runs(store: Store, job: str | None = None) -> list[JobRun]:
    async with store.transaction() as tx:
        return await tx.job_runs(job)
