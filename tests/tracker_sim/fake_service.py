"""A small stand-in for the coldchain service, speaking the sync contract through ``httpx.MockTransport``.

It checks what a strict service would check (signature over the exact body, content type and encoding,
device times as RFC 3339 strings with an offset, seq >= 1), stores readings by seq, and answers with the
contiguous acknowledgement and the missing ranges. Faults are injected per request with :attr:`faults`:

- ``"lost"``: store the batch, then lose the answer (``httpx.ReadTimeout``)
- ``"duplicate"``: the request arrives twice (the service processes it twice)
- ``"429"``: refuse with Retry-After before reading the batch
- ``"503"``: fail before reading the batch
- ``"reject"``: refuse the batch as malformed (422)
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
import secrets
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

__all__ = ["Batch", "FakeService", "StoredReading"]

_SYNC = re.compile(r"^/v1/trackers/([^/]+)/sync$")


class StoredReading(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seq: int
    device_time: str
    temperature_c: float | None = None
    humidity_pct: float | None = None
    pressure_kpa: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    battery_pct: float | None = None


class _BatchIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sent_at: str
    readings: list[StoredReading]


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    tracker_id: str
    content_type: str
    content_encoding: str | None
    sent_at: datetime
    seqs: list[int]


class _TrackerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    serial: str
    model: str | None = None


def _error(status: int, code: str, detail: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "detail": detail}, headers=headers)


def _aware(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


class FakeService:
    def __init__(
        self,
        *,
        secrets_by_tracker: dict[str, str] | None = None,
        admin_token: str = "admin-token",
        max_batch: int | None = None,
        retry_after_s: float = 7.0,
    ) -> None:
        self.secrets = dict(secrets_by_tracker or {})
        self.admin_token = admin_token
        self.max_batch = max_batch
        self.retry_after_s = retry_after_s
        self.readings: dict[str, dict[int, StoredReading]] = {}
        self.faults: deque[str | None] = deque()
        self.batches: list[Batch] = []
        """Every batch processed, in order."""
        self.duplicates_seen = 0
        self.stored_new = 0
        """How many readings were stored for the first time (each reading must be, exactly once)."""
        self.lose_on_store: set[int] = set()
        """Seqs the next stored batch silently loses (as after a restore from backup), once."""

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport(), base_url="http://service.test")

    def held(self, tracker_id: str) -> dict[int, StoredReading]:
        return self.readings.get(tracker_id, {})

    def acked_through(self, tracker_id: str) -> int:
        held = self.held(tracker_id)
        n = 0
        while n + 1 in held:
            n += 1
        return n

    def missing(self, tracker_id: str) -> list[list[int]]:
        held = self.held(tracker_id)
        ranges: list[list[int]] = []
        for seq in range(1, max(held, default=0)):
            if seq in held:
                continue
            if ranges and ranges[-1][1] == seq - 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
        return ranges

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/trackers":
            return self._register(request)
        match = _SYNC.match(request.url.path)
        if request.method != "POST" or match is None:
            return _error(404, "not_found")
        fault = self.faults.popleft() if self.faults else None
        if fault == "429":
            return _error(429, "overloaded", headers={"Retry-After": f"{self.retry_after_s:g}"})
        if fault == "503":
            return _error(503, "unavailable")
        response = self._sync(match.group(1), request, reject=fault == "reject")
        if fault == "duplicate":
            response = self._sync(match.group(1), request, reject=False)
        if fault == "lost":
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    def _register(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.admin_token}":
            return _error(401, "unauthorized")
        body = msgspec.json.decode(request.content, type=_TrackerIn)
        if body.serial in self.secrets:
            return _error(409, "exists", body.serial)
        self.secrets[body.serial] = secrets.token_urlsafe(16)
        return httpx.Response(201, json={"tracker_id": body.serial, "secret": self.secrets[body.serial]})

    def _sync(self, tracker_id: str, request: httpx.Request, *, reject: bool) -> httpx.Response:
        secret = self.secrets.get(tracker_id)
        body = request.content
        if secret is None:
            return _error(401, "unknown_tracker")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Signature", ""), expected):
            return _error(401, "bad_signature")
        if reject:
            return _error(422, "malformed_batch", "rejected on purpose")
        encoding = request.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        content_type = request.headers.get("Content-Type", "")
        try:
            if content_type == "application/json":
                batch = msgspec.json.decode(body, type=_BatchIn)
            elif content_type == "application/msgpack":
                batch = msgspec.msgpack.decode(body, type=_BatchIn)
            else:
                return _error(415, "unsupported_media_type", content_type)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            return _error(422, "malformed_batch", str(exc))
        bad = [r.seq for r in batch.readings if r.seq < 1 or not _aware(r.device_time)]
        if bad or not _aware(batch.sent_at):
            return _error(422, "malformed_batch", f"bad seq or naive time in {bad}")
        if self.max_batch is not None and len(batch.readings) > self.max_batch:
            return _error(413, "batch_too_large", f"at most {self.max_batch}")
        store = self.readings.setdefault(tracker_id, {})
        new = duplicates = 0
        for reading in batch.readings:
            if reading.seq in store:
                duplicates += 1
                self.duplicates_seen += 1
                if store[reading.seq] != reading:
                    raise AssertionError(f"seq {reading.seq} came back different: {reading} != {store[reading.seq]}")
            else:
                store[reading.seq] = reading
                new += 1
                self.stored_new += 1
        for seq in self.lose_on_store:
            store.pop(seq, None)
        self.lose_on_store = set()
        self.batches.append(
            Batch(
                tracker_id=tracker_id,
                content_type=content_type,
                content_encoding=encoding,
                sent_at=datetime.fromisoformat(batch.sent_at),
                seqs=[r.seq for r in batch.readings],
            )
        )
        answer: dict[str, Any] = {
            "acked_through": self.acked_through(tracker_id),
            "missing": self.missing(tracker_id),
            "new": new,
            "duplicates": duplicates,
            "quarantined": 0,
            "conflicts": 0,
            "server_time": datetime.now(UTC).isoformat(),
        }
        return httpx.Response(200, json=answer)
