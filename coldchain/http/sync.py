"""``POST /v1/trackers/{serial}/sync``: a tracker delivers a batch of its log.

The order of checks is the order of cost: the address's recent failed authentications, size, signature (over
the body as sent), decompression (bounded, one gzip member), decoding and validation, then one transaction. The
answer comes only after the commit. An unknown tracker, an OsmAnd tracker's serial and a signature that does not
match all get the same 401, so the answers tell no one which serials exist. A process draining for a stop
refuses new batches with 503 and Retry-After (:mod:`coldchain.http.lifecycle`).

Metrics (:mod:`coldchain.metrics`) are recorded here, at the edge: each stored batch's readings by outcome and its
time, each refusal by its status, the batches in flight.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import msgspec
from litestar import Request, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from coldchain.http.auth import SIGNATURE_HEADER, signature_digest, verify_signature
from coldchain.http.deps import Ingest, IngestDep
from coldchain.http.errors import ApiError
from coldchain.http.judging import hand_over, room_to_judge
from coldchain.http.lifecycle import Lifecycle
from coldchain.http.limits import AuthFailures, client_address
from coldchain.http.openapi import BUSY, SIGNED, errors
from coldchain.http.wire import BatchIn, CheckedBatchIn, SyncAckOut, sent_at_of, to_readings
from coldchain.metrics import (
    SYNC_BATCH_SECONDS,
    SYNC_BATCHES,
    SYNC_BATCHES_REFUSED,
    SYNC_INFLIGHT_BATCHES,
    SYNC_READINGS,
)
from coldchain.services.sync import BatchOutcome, record_batch

__all__ = ["IngestGate", "sync_batch"]

_JSON_TYPES = {"application/json"}
_MSGPACK_TYPES = {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
_json_decoder = msgspec.json.Decoder(BatchIn)
_msgpack_decoder = msgspec.msgpack.Decoder(BatchIn)
_checked_json_decoder = msgspec.json.Decoder(CheckedBatchIn)
_checked_msgpack_decoder = msgspec.msgpack.Decoder(CheckedBatchIn)


class _TimeAsSent(msgspec.Struct):
    device_time: str


class _TimesAsSent(msgspec.Struct):
    readings: list[_TimeAsSent]


# MessagePack has a timestamp type, and msgspec reads it into an aware datetime in UTC: the device's own offset,
# which the record keeps (ALCOA+: original), would be lost without a word. Such a batch is refused instead.
_msgpack_times = msgspec.msgpack.Decoder(_TimesAsSent)


class IngestGate:
    """Bounds the batches in progress in this process; beyond the bound the caller is told to come back."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0

    def __enter__(self) -> None:
        self.in_progress += 1
        SYNC_INFLIGHT_BATCHES.inc()

    def __exit__(self, *_: object) -> None:
        self.in_progress -= 1
        SYNC_INFLIGHT_BATCHES.dec()

    @property
    def full(self) -> bool:
        return self.in_progress >= self.limit


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise ApiError(400, "bad_request", f"Content-Encoding is gzip but the body is not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise ApiError(413, "payload_too_large", f"the body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise ApiError(400, "bad_request", "the gzip body is truncated")
    if inflater.unused_data:
        # Bytes after the first gzip member would be signed but never read: refuse rather than ignore them.
        raise ApiError(400, "bad_request", "the body has data after the end of its gzip stream; send one member")
    return data


def _decode(body: bytes, content_type: str) -> BatchIn | CheckedBatchIn:
    """The batch in the body. Decoded first as a :class:`CheckedBatchIn`, whose quantities the decoder checks
    against their physical ranges as it reads them (nearly every batch), which spares ingest those checks; a body
    that decoding refuses is decoded as a plain :class:`BatchIn`, which quarantines impossible values or refuses
    the body with its own reason."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    checked: msgspec.json.Decoder[CheckedBatchIn] | msgspec.msgpack.Decoder[CheckedBatchIn]
    if media_type in _JSON_TYPES:
        decoder: msgspec.json.Decoder[BatchIn] | msgspec.msgpack.Decoder[BatchIn] = _json_decoder
        checked = _checked_json_decoder
    elif media_type in _MSGPACK_TYPES:
        decoder, checked = _msgpack_decoder, _checked_msgpack_decoder
    else:
        raise ApiError(415, "unsupported_media_type", "send the batch as application/json or application/msgpack")
    batch: BatchIn | CheckedBatchIn
    try:
        batch = checked.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        batch = _decode_plain(body, decoder, media_type)
    if decoder is _msgpack_decoder:
        _refuse_msgpack_timestamps(body)
    return batch


def _decode_plain(
    body: bytes, decoder: msgspec.json.Decoder[BatchIn] | msgspec.msgpack.Decoder[BatchIn], media_type: str
) -> BatchIn:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid", f"the batch was refused whole: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"the body is not valid {media_type}: {exc}") from None


def _refuse_msgpack_timestamps(body: bytes) -> None:
    try:
        _msgpack_times.decode(body)
    except msgspec.ValidationError as exc:
        _, _, where = str(exc).rpartition(" - at ")
        raise ApiError(
            422,
            "invalid",
            f"the batch was refused whole: {where.strip('`')} is a MessagePack timestamp, which carries no UTC"
            " offset; send device_time as an RFC 3339 string with the device's offset",
        ) from None


@post(
    "/v1/trackers/{serial:str}/sync",
    status_code=200,
    summary="Deliver a batch of a tracker's log",
    tags=["sync"],
    security=SIGNED,
    responses=errors(
        401,
        413,
        415,
        422,
        429,
        503,
        why={
            503: "The service is stopping: send the batch again after the delay in Retry-After (to this address or"
            " another); nothing of it was stored. Or: " + BUSY,
        },
    ),
)
async def sync_batch(request: Request[Any, Any, Any], serial: FromPath[str], ingest: IngestDep) -> SyncAckOut:
    started = time.perf_counter()
    try:
        outcome = await _store_batch(request, serial, ingest)
    except HTTPException as exc:
        SYNC_BATCHES_REFUSED.labels(status=str(exc.status_code)).inc()
        raise
    SYNC_BATCH_SECONDS.observe(time.perf_counter() - started)
    SYNC_BATCHES.inc()
    SYNC_READINGS.labels(outcome="new").inc(outcome.new)
    SYNC_READINGS.labels(outcome="duplicate").inc(outcome.duplicates)
    SYNC_READINGS.labels(outcome="quarantined").inc(outcome.quarantined)
    SYNC_READINGS.labels(outcome="conflicting").inc(outcome.conflicts)
    return SyncAckOut(
        acked_through=outcome.acked_through,
        missing=outcome.missing,
        new=outcome.new,
        duplicates=outcome.duplicates,
        quarantined=outcome.quarantined,
        conflicts=outcome.conflicts,
        server_time=outcome.server_time,
    )


async def _store_batch(request: Request[Any, Any, Any], serial: str, ingest: Ingest) -> BatchOutcome:
    store, settings, trackers, policy, now = ingest.store, ingest.settings, ingest.trackers, ingest.policy, ingest.now
    lifecycle: Lifecycle = request.app.state.lifecycle
    if lifecycle.draining:
        raise ApiError(
            503,
            "unavailable",
            "the service is stopping; send the batch again after the delay in Retry-After",
            headers={"Retry-After": str(settings.retry_after_s), "Connection": "close"},
        )
    gate: IngestGate = request.app.state.ingest_gate
    if gate.full:
        raise ApiError(
            429,
            "too_many_requests",
            "the service is busy; retry after the delay in Retry-After",
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    with gate:
        failures: AuthFailures = request.app.state.auth_failures
        address = client_address(request)
        failures.check(address)
        body = await request.body()
        digest = signature_digest(request.headers.get(SIGNATURE_HEADER))
        try:
            tracker = verify_signature(body, digest, await trackers.find(store, serial))
        except ApiError:
            failures.record(address)
            raise
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            body = _inflate(body, settings.max_body_bytes)
        elif encoding not in ("identity", ""):
            raise ApiError(415, "unsupported_media_type", f"Content-Encoding {encoding!r}: use gzip or none")
        batch = _decode(body, request.headers.get("content-type", ""))
        if len(batch.readings) > settings.max_batch_readings:
            raise ApiError(
                413,
                "payload_too_large",
                f"{len(batch.readings)} readings in one batch; the limit is {settings.max_batch_readings}",
            )
        if not await room_to_judge(request, timeout_s=settings.judge_room_wait_s):
            raise ApiError(
                429,
                "too_many_requests",
                "the service is behind judging the readings it received; retry after the delay in Retry-After",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        return await record_batch(
            store,
            tracker.id,
            to_readings(batch),
            quantities_checked=isinstance(batch, CheckedBatchIn),
            now=now,
            sent_at=sent_at_of(batch),
            policy=policy,
            hand_over=hand_over(request),
        )
