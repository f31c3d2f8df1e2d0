"""What the service counts, in the Prometheus data model: every metric of the service is defined here, once.

The HTTP edge, the jobs and the services record; the domain and storage record nothing (import-linter keeps it
so). ``GET /metrics`` and the listener on ``COLDCHAIN_METRICS_ADDRESS`` expose them (:func:`exposition`).

=========================================  =========  ==============================================================
metric                                     type       what
=========================================  =========  ==============================================================
coldchain_sync_readings_total{outcome}     counter    readings of stored batches: new, duplicate, quarantined,
                                                      conflicting (as the batch's answer counts them)
coldchain_sync_batches_total               counter    sync batches stored (answered 200)
coldchain_sync_batch_seconds               histogram  time from the start of a stored batch's handling to its answer
coldchain_sync_batches_refused_total       counter    sync batches refused, by the status answered (400, 401, 413,
  {status}                                            415, 422, 429, 503)
coldchain_sync_inflight_batches            gauge      sync batches being handled now (summed over processes)
coldchain_evaluation_seconds               histogram  judging new readings: a batch's in its ingest transaction, or a
                                                      tracker's waiting ones after commit (one pass each)
coldchain_judged_after_commit_readings     counter    readings judged after commit, by where the judge took them:
  _total{source}                                      handed (in memory), read_back (from the database)
coldchain_judgements_after_commit_total    counter    passes of the judge after commit (readings per pass: the
                                                      readings counted above over these)
coldchain_job_runs_total{job,outcome}      counter    ticks of a background job run in this service: ok, failed
coldchain_job_seconds{job}                 histogram  duration of a job's run
coldchain_webhook_deliveries_total         counter    webhook attempts: delivered, retrying (failed, will retry),
  {outcome}                                           failed (gave up)
coldchain_db_pool_connections{state}       gauge      database connections in_use and idle (summed over processes)
coldchain_db_pool_max_connections          gauge      the most connections the processes may open
=========================================  =========  ==============================================================

Several processes (``coldchain serve --workers N``) share one view through prometheus-client's multi-process mode:
``coldchain serve`` makes a fresh folder for the workers' files before they start and names it in
``PROMETHEUS_MULTIPROC_DIR`` (read when prometheus-client is first imported); a scrape of any worker sums them.
Without that folder (one process, the tests, the demo) the figures live in this process's memory.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = [
    "CONTENT_TYPE",
    "DB_POOL_CONNECTIONS",
    "DB_POOL_MAX_CONNECTIONS",
    "EVALUATION_SECONDS",
    "JOB_RUNS",
    "JOB_SECONDS",
    "JUDGED_AFTER_COMMIT",
    "JUDGEMENTS_AFTER_COMMIT",
    "MULTIPROCESS_DIR_VARIABLE",
    "REGISTRY",
    "SYNC_BATCHES",
    "SYNC_BATCHES_REFUSED",
    "SYNC_BATCH_SECONDS",
    "SYNC_INFLIGHT_BATCHES",
    "SYNC_READINGS",
    "WEBHOOK_DELIVERIES",
    "exposition",
    "exposition_registry",
    "forget_process",
    "multiprocess_dir",
]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4"
"""The Prometheus text exposition format, version 0.0.4 (in UTF-8: the answer says so with ``charset``)."""

# No ``_created`` series: multi-process mode has none, and one process and several read alike.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)
"""The service's metrics in this process (nothing of the Python runtime: those are not summed across processes)."""

_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SYNC_READINGS = Counter(
    "coldchain_sync_readings",
    "Readings of stored sync batches, by what became of them.",
    ["outcome"],
    registry=REGISTRY,
)
SYNC_BATCHES = Counter("coldchain_sync_batches", "Sync batches stored and answered 200.", registry=REGISTRY)
SYNC_BATCH_SECONDS = Histogram(
    "coldchain_sync_batch_seconds",
    "Time from the start of a stored sync batch's handling to its answer.",
    buckets=_SECONDS_BUCKETS,
    registry=REGISTRY,
)
SYNC_BATCHES_REFUSED = Counter(
    "coldchain_sync_batches_refused",
    "Sync batches refused, by the HTTP status answered.",
    ["status"],
    registry=REGISTRY,
)
SYNC_INFLIGHT_BATCHES = Gauge(
    "coldchain_sync_inflight_batches",
    "Sync batches being handled now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
EVALUATION_SECONDS = Histogram(
    "coldchain_evaluation_seconds",
    "Time spent judging new readings: a batch's in its ingest transaction, or a tracker's waiting ones after commit.",
    buckets=_SECONDS_BUCKETS,
    registry=REGISTRY,
)
JUDGED_AFTER_COMMIT = Counter(
    "coldchain_judged_after_commit_readings",
    "Readings judged after commit, by where the judge took them from: handed (in memory), read_back (database).",
    ["source"],
    registry=REGISTRY,
)
JUDGEMENTS_AFTER_COMMIT = Counter(
    "coldchain_judgements_after_commit",
    "Passes of the judge after commit over a tracker's waiting readings (one transaction each).",
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "coldchain_job_runs",
    "Ticks of background jobs run by this service, by job and outcome (ok, failed).",
    ["job", "outcome"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "coldchain_job_seconds",
    "Duration of a background job's run.",
    ["job"],
    buckets=_SECONDS_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "coldchain_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered; retrying: failed, tried again later; failed: given up).",
    ["outcome"],
    registry=REGISTRY,
)
DB_POOL_CONNECTIONS = Gauge(
    "coldchain_db_pool_connections",
    "Database connections open, by state (in_use, idle).",
    ["state"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_MAX_CONNECTIONS = Gauge(
    "coldchain_db_pool_max_connections",
    "The most database connections the service's processes may open.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

# Every labelled series the service can record starts at 0, so a rate over a series that has not happened yet
# reads 0 rather than nothing.
for _outcome in ("new", "duplicate", "quarantined", "conflicting"):
    SYNC_READINGS.labels(outcome=_outcome)
for _outcome in ("delivered", "retrying", "failed"):
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)


def multiprocess_dir() -> str | None:
    """The folder the processes of this service share their figures through, if they do."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def exposition_registry() -> CollectorRegistry:
    """What a scrape reads: every process's files summed in multi-process mode, else this process's registry."""
    folder = multiprocess_dir()
    if folder is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> bytes:
    """The metrics in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(exposition_registry())


def forget_process(pid: int) -> None:
    """Drop the live gauges of a process that ended (its counters and histograms stay in the sums)."""
    folder = multiprocess_dir()
    if folder is not None:
        mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
