"""The tracker's side of the sync protocol: push the logbook to the service until it holds everything.

Each batch carries the oldest pending readings (capped at the batch size), is encoded as JSON or MessagePack,
optionally gzip-compressed, and signed: ``X-Signature: sha256=<hex HMAC-SHA256 of the body bytes as sent>``
with the tracker's secret. The service answers, after commit, with its contiguous acknowledgement and the
ranges it still misses; the logbook records both, so the next batch is whatever the service still lacks.

What happens on each answer:

==========================  ===========================================================================
200                          acknowledge in the logbook, measure the clock offset, go on
413                          halve the batch size and send again at once (permanent at one reading)
429 with Retry-After         wait at least that long (plus a little jitter against a thundering herd)
408, 5xx, network failures   exponential backoff with full jitter, then again
other 4xx (400, 401, 422..)  permanent for this batch: :class:`BatchRejected`; nothing is deleted
==========================  ===========================================================================

Backoff is "full jitter" (M. Brooker, Exponential Backoff And Jitter, AWS Architecture Blog, 2015): the
n-th consecutive failure waits uniform(0, min(cap, base·2^(n-1))) seconds, drawn from a seeded generator.

Exceptions::

    SyncError
    ├── BatchRejected   the service refused a batch for good (4xx other than 408/413/429)
    └── SyncStalled     the service answers 200 but keeps missing what it was just sent
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

import httpx
import msgspec
from msgspec import Meta

from tracker_sim.logbook import Logbook, LoggedReading
from tracker_sim.wire import AckIn, BatchOut, ErrorIn, ReadingOut, WireFormat, encode_batch, rfc3339

__all__ = [
    "BatchRejected",
    "SyncClient",
    "SyncError",
    "SyncReport",
    "SyncSettings",
    "SyncStalled",
    "TrackerCredentials",
    "sign",
]

logger = logging.getLogger(__name__)

PositiveInt = Annotated[int, Meta(ge=1)]
Positive = Annotated[float, Meta(gt=0)]

_TRANSIENT_4XX = frozenset({408})
_STALLS_BEFORE_GIVING_UP = 3
_MAX_RETRY_AFTER_S = 3600.0
_MAX_DOUBLINGS = 64
_ack_decoder = msgspec.json.Decoder(AckIn)
_error_decoder = msgspec.json.Decoder(ErrorIn)


class SyncError(Exception):
    """Base of the sync client's errors."""


class BatchRejected(SyncError):
    """The service refused a batch with a 4xx that retrying will not cure. The readings stay pending."""

    def __init__(self, *, status_code: int, error: str, detail: str, first_seq: int, last_seq: int) -> None:
        super().__init__(
            f"the service refused readings {first_seq}..{last_seq} with HTTP {status_code} {error}: {detail}"
        )
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.first_seq = first_seq
        self.last_seq = last_seq


class SyncStalled(SyncError):
    """The service keeps answering 200 without holding what it was sent: retrying cannot help."""


@dataclass(frozen=True)
class TrackerCredentials:
    """A tracker's identity at the service and the key it signs with (kept out of reprs and logs)."""

    tracker_id: str
    secret: str = field(repr=False)


class SyncSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    wire_format: WireFormat = "json"
    gzip: bool = False
    batch_size: PositiveInt = 500
    backoff_base_s: Positive = 1.0
    backoff_cap_s: Positive = 300.0
    timeout_s: Positive = 30.0


class SyncReport(msgspec.Struct, kw_only=True):
    """What one :meth:`SyncClient.sync` call achieved."""

    batches: int = 0
    readings_sent: int = 0
    acked_through: int = 0
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    conflicts: int = 0
    """Readings the service already held with other values (a logbook that changed a reading after sending it)."""
    failures: int = 0
    throttled: int = 0
    latencies_s: list[float] = msgspec.field(default_factory=list)
    """Round-trip time of every batch the service stored, in real seconds."""
    clock_offset_s: float | None = None
    """Device clock minus service clock at the last answer (positive: the device runs ahead)."""
    complete: bool = False
    """Nothing was pending when the call returned."""
    gave_up: bool = False
    last_error: str | None = None


def sign(body: bytes, secret: str) -> str:
    """The ``X-Signature`` header value for ``body``: HMAC-SHA256 with the secret's UTF-8 bytes as key."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _http_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


def _retry_after_s(response: httpx.Response, device_now: datetime) -> float | None:
    """Seconds to wait per ``Retry-After`` (delta-seconds or HTTP-date, RFC 9110 §10.2.3), None if absent.

    An HTTP-date is measured against the answer's own ``Date`` when there is one: the device clock may be
    off by any amount. The wait is capped at an hour, whatever the date says.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(_MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        pass
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(response.headers.get("Date")) or device_now
    return min(_MAX_RETRY_AFTER_S, max(0.0, (when - now).total_seconds()))


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = _error_decoder.decode(response.content)
    except msgspec.DecodeError:
        return f"http_{response.status_code}", response.text[:200]
    return body.error, body.detail


def _wire(reading: LoggedReading) -> ReadingOut:
    return ReadingOut(
        seq=reading.seq,
        device_time=reading.device_time,
        temperature_c=reading.temperature_c,
        humidity_pct=reading.humidity_pct,
        pressure_kpa=reading.pressure_kpa,
        latitude=reading.latitude,
        longitude=reading.longitude,
        battery_pct=reading.battery_pct,
    )


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying after ``delay_s`` (None: backoff decides)."""

    def __init__(self, reason: str, delay_s: float | None = None, *, throttled: bool = False) -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.throttled = throttled


class SyncClient:
    """Pushes one tracker's logbook to the service over an injected ``httpx.AsyncClient``.

    ``url`` is the service's base URL ("" when ``http`` already has a ``base_url``). ``device_clock`` is the
    tracker's own clock (stamps ``sent_at``, dates acknowledgements). ``sleep`` waits between attempts:
    tests pass a recorder, the simulator passes simulated time. ``rng`` draws the backoff jitter.
    """

    def __init__(
        self,
        logbook: Logbook,
        credentials: TrackerCredentials,
        *,
        http: httpx.AsyncClient,
        device_clock: Callable[[], datetime],
        url: str = "",
        settings: SyncSettings | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.logbook = logbook
        self.settings = settings or SyncSettings()
        self.batch_size = self.settings.batch_size
        self._tracker_id = credentials.tracker_id
        self._secret = credentials.secret
        self._http = http
        self._endpoint = f"{url.rstrip('/')}/v1/trackers/{quote(credentials.tracker_id, safe='')}/sync"
        self._device_clock = device_clock
        self._sleep = sleep
        self._rng = rng or random.Random(f"backoff:{credentials.tracker_id}")
        self._monotonic = monotonic
        self._content_type = "application/json" if self.settings.wire_format == "json" else "application/msgpack"
        self.consecutive_failures = 0

    def backoff_s(self, failures: int) -> float:
        """Full-jitter delay before the next attempt after ``failures`` consecutive failures."""
        # The exponent stops growing long before the cap stops mattering: a tracker out of reach for weeks
        # (thousands of failures in a row) waits the cap, and 2.0 ** n never overflows.
        doublings = min(max(failures - 1, 0), _MAX_DOUBLINGS)
        ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2.0**doublings)
        return self._rng.uniform(0.0, ceiling)

    def encode(self, readings: list[LoggedReading], sent_at: datetime) -> bytes:
        """The exact body bytes for a batch (compressed when gzip is on): what gets signed and sent."""
        body = encode_batch(
            BatchOut(sent_at=rfc3339(sent_at), readings=[_wire(r) for r in readings]),
            self.settings.wire_format,
        )
        return gzip.compress(body, compresslevel=6, mtime=0) if self.settings.gzip else body

    async def sync(self, *, max_failures: int | None = 8, max_batches: int | None = None) -> SyncReport:
        """Send batches until nothing is pending, ``max_batches`` were stored, or ``max_failures``
        consecutive transient failures (a 429 counts as one) say the service is out of reach for now.

        Raises :class:`BatchRejected` or :class:`SyncStalled`; the logbook keeps every unacknowledged reading.
        """
        report = SyncReport(acked_through=(await self.logbook.status()).acked_through)
        stalls = failures_here = 0
        while max_batches is None or report.batches < max_batches:
            batch = await self.logbook.pending(self.batch_size)
            if not batch:
                report.complete = True
                break
            try:
                answer = await self._attempt(batch, report)
            except _Retry as retry:
                # The backoff exponent survives between calls (the link is still bad); the give-up count
                # is per call, so each call makes at least one attempt.
                self.consecutive_failures += 1
                failures_here += 1
                report.last_error = str(retry)
                if retry.throttled:
                    report.throttled += 1
                else:
                    report.failures += 1
                if max_failures is not None and failures_here >= max_failures:
                    report.gave_up = True
                    logger.warning("tracker %s: giving up for now after %s", self._tracker_id, retry)
                    break
                delay_s = retry.delay_s
                if delay_s is None:
                    delay_s = self.backoff_s(self.consecutive_failures)
                await self._sleep(delay_s)
                continue
            if answer is None:  # 413: batch size halved, send again at once
                continue
            self.consecutive_failures = failures_here = 0
            progressed = answer.acked_through != report.acked_through
            report.acked_through = answer.acked_through
            head = await self.logbook.pending(1)
            stalls = 0 if progressed or not head or head[0].seq != batch[0].seq else stalls + 1
            if stalls >= _STALLS_BEFORE_GIVING_UP:
                raise SyncStalled(
                    f"the service answered {stalls} times without holding seq {batch[0].seq} "
                    f"(acked_through={answer.acked_through}, missing={answer.missing})"
                )
        return report

    async def _attempt(self, batch: list[LoggedReading], report: SyncReport) -> AckIn | None:
        sent_at = self._device_clock()
        body = self.encode(batch, sent_at)
        headers = {
            "Content-Type": self._content_type,
            "X-Signature": sign(body, self._secret),
            "Accept": "application/json",
        }
        if self.settings.gzip:
            headers["Content-Encoding"] = "gzip"
        started = self._monotonic()
        try:
            response = await self._http.post(
                self._endpoint, content=body, headers=headers, timeout=self.settings.timeout_s
            )
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        latency_s = self._monotonic() - started
        status = response.status_code
        first, last = batch[0].seq, batch[-1].seq
        if status == 200:
            try:
                answer = _ack_decoder.decode(response.content)
            except msgspec.DecodeError as exc:
                raise _Retry(f"malformed answer to a stored batch: {exc}") from exc
            received_at = self._device_clock()
            await self.logbook.acknowledge(
                acked_through=answer.acked_through,
                missing=answer.missing,
                delivered=[r.seq for r in batch],
                now=received_at,
            )
            report.batches += 1
            report.readings_sent += len(batch)
            report.new += answer.new
            report.duplicates += answer.duplicates
            report.quarantined += answer.quarantined
            report.conflicts += answer.conflicts
            if answer.conflicts:
                logger.warning(
                    "tracker %s: the service holds other values for %d of seqs %d..%d",
                    self._tracker_id,
                    answer.conflicts,
                    first,
                    last,
                )
            report.latencies_s.append(latency_s)
            if answer.server_time is not None:
                # The service stamped its clock somewhere between our send and receipt: take the middle.
                device_mid = sent_at + (received_at - sent_at) / 2
                report.clock_offset_s = (device_mid - answer.server_time).total_seconds()
            logger.debug(
                "tracker %s: seqs %d..%d stored, acked through %d",
                self._tracker_id,
                first,
                last,
                answer.acked_through,
            )
            return answer
        if status == 413:
            if len(batch) == 1:
                error, detail = _error_of(response)
                raise BatchRejected(status_code=status, error=error, detail=detail, first_seq=first, last_seq=last)
            self.batch_size = max(1, len(batch) // 2)
            logger.info("tracker %s: batch too large, now sending %d", self._tracker_id, self.batch_size)
            return None
        if status == 429:
            wait_s = _retry_after_s(response, self._device_clock())
            if wait_s is None:
                raise _Retry("HTTP 429 without Retry-After", throttled=True)
            raise _Retry(
                f"HTTP 429, retry after {wait_s:g} s",
                wait_s + self._rng.uniform(0.0, self.settings.backoff_base_s),
                throttled=True,
            )
        if 400 <= status < 500 and status not in _TRANSIENT_4XX:
            error, detail = _error_of(response)
            logger.error(
                "tracker %s: readings %d..%d refused with HTTP %d %s: %s",
                self._tracker_id,
                first,
                last,
                status,
                error,
                detail,
            )
            raise BatchRejected(status_code=status, error=error, detail=detail, first_seq=first, last_seq=last)
        raise _Retry(f"HTTP {status}")
