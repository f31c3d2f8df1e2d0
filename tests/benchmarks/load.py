"""The sync benchmark's lean load generator and its durable COPY reference (``bench_sync.py --load lean``).

The lean generator measures the service rather than a simulator: every tracker's batches are built, encoded and
signed before the clock starts (no logbooks, no sensor models), and each tracker sends its batches in order on a
keep-alive connection of its own, as raw HTTP/1.1 bytes; only the answers' status and counts are read. A tracker
never has two batches in flight, as a real tracker does not. 429 and 503 answers are waited out (``Retry-After``)
and the batch sent again. Trackers are registered through the admin API (:func:`register_trackers`), or by the
caller in any other way (the evaluation-on mode of ``bench_sync.py`` creates them on shipments in the database):
:func:`prepare_trackers` builds the requests from a serial and a secret either way.

Every reading carries what a reefer's logger sends: its sequence number, its device time in the device's own
offset (UTC+1), temperature, humidity, pressure, position and battery. Two logs, one reading a minute, ending an
hour before now:

- quiet (the lean load's own, and its default): 4.0–6.9 °C, inside a 2–8 °C label range throughout;
- eventful: the temperatures and device times of ``bench_engine.make_readings`` (a warm excursion every 10 h, a
  longer one every three days, a freeze dip a day, a spike above 25 °C a week, a few gaps in the minutes): about
  four excursions and one alarm per 1,000 readings against ``bench_engine.PROFILE``. Every tracker sends the
  same temperatures.

Humidity, pressure, position and battery are the same in both logs.

The COPY reference is what PostgreSQL itself takes durably on the same machine, through the same number of
readings: binary COPY of the readings in batches of ``batch_size`` into a plain table keyed like readings
(tracker, seq), each batch its own committed transaction (the server's ``synchronous_commit`` applies), over
``connections`` connections at once. The service's sustained ingest is reported as a share of it.

Both work on the public surfaces only (the HTTP API, and a table of their own), so they measure whatever the
service's insert path is.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import asyncpg
import httpx
import msgspec

from coldchain.domain.readings import Reading
from tests.benchmarks.bench_engine import make_readings as eventful_log

__all__ = [
    "CopyReference",
    "LeanResult",
    "Log",
    "PreparedTracker",
    "copy_reference",
    "cpu_seconds",
    "postgres_backends_cpu_s",
    "prepare_trackers",
    "push",
    "register_trackers",
]

Log = Literal["quiet", "eventful"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_ZONE = timezone(timedelta(hours=1))
_READING_COLUMNS = (
    "tracker_id",
    "seq",
    "device_time",
    "utc_offset_min",
    "received_at",
    "temperature_c",
    "humidity_pct",
    "pressure_kpa",
    "latitude",
    "longitude",
    "battery_pct",
)


class _ReadingOut(msgspec.Struct, kw_only=True):
    seq: int
    device_time: str
    temperature_c: float | None
    humidity_pct: float
    pressure_kpa: float
    latitude: float
    longitude: float
    battery_pct: float


class _BatchOut(msgspec.Struct, kw_only=True):
    sent_at: str
    readings: list[_ReadingOut]


class _AckIn(msgspec.Struct):
    new: int
    duplicates: int


class _CreatedIn(msgspec.Struct):
    secret: str


_ack = msgspec.json.Decoder(_AckIn)


def _reading(tracker: int, seq: int, device_time: datetime, temperature_c: float | None) -> _ReadingOut:
    """A reading in the device's own offset; the values besides temperature vary a little, like a reefer's."""
    return _ReadingOut(
        seq=seq,
        device_time=device_time.astimezone(_ZONE).isoformat(),
        temperature_c=temperature_c,
        humidity_pct=50.0 + seq % 9,
        pressure_kpa=101.3,
        latitude=52.5 + seq / 100_000,
        longitude=13.4 + tracker / 1_000,
        battery_pct=100.0 - seq / 1_000,
    )


def _quiet_readings(tracker: int, count: int, start: datetime) -> list[_ReadingOut]:
    """One reading a minute from ``start``, 4.0–6.9 °C."""
    return [
        _reading(tracker, seq, start + timedelta(minutes=seq), 4.0 + (seq * 7 + tracker) % 30 / 10)
        for seq in range(1, count + 1)
    ]


def _eventful_readings(tracker: int, log: Sequence[Reading], end: datetime) -> list[_ReadingOut]:
    """The eventful log's temperatures and device times, moved so its last reading is at ``end``."""
    shift = end - log[-1].device_time
    return [_reading(tracker, r.seq, r.device_time + shift, r.temperature_c) for r in log]


@dataclass(frozen=True)
class PreparedTracker:
    serial: str
    requests: tuple[bytes, ...]
    """Each batch as the exact bytes of its HTTP request, signed."""
    readings: int


async def register_trackers(url: str, *, admin_token: str, count: int, prefix: str = "lean") -> list[tuple[str, bytes]]:
    """Register ``count`` trackers through the admin API: each one's serial and secret."""
    registered = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for n in range(count):
            serial = f"{prefix}-{n:04d}"
            response = await http.post(
                "/v1/trackers",
                json={"serial": serial, "model": "lean-load"},
                headers={"Authorization": f"Bearer {admin_token}"},
            )
            if response.status_code != 201:
                raise RuntimeError(f"registering {serial}: {response.status_code} {response.text}")
            registered.append((serial, msgspec.json.decode(response.content, type=_CreatedIn).secret.encode()))
    return registered


def prepare_trackers(
    url: str,
    trackers: Sequence[tuple[str, bytes]],
    *,
    readings_per_tracker: int,
    batch_size: int,
    wire_format: str = "json",
    compress: bool = False,
    log: Log = "quiet",
) -> list[PreparedTracker]:
    """Build every batch of each tracker (serial, secret) as signed request bytes for the service at ``url``."""
    start = datetime.now(UTC) - timedelta(minutes=readings_per_tracker + 60)
    eventful = eventful_log(readings_per_tracker) if log == "eventful" else []
    host = httpx.URL(url).netloc.decode()
    content_type = "application/json" if wire_format == "json" else "application/msgpack"
    encode = msgspec.json.encode if wire_format == "json" else msgspec.msgpack.encode
    prepared = []
    for n, (serial, secret) in enumerate(trackers):
        if eventful:
            readings = _eventful_readings(n, eventful, end=start + timedelta(minutes=readings_per_tracker))
        else:
            readings = _quiet_readings(n, readings_per_tracker, start)
        requests = []
        for first in range(0, len(readings), batch_size):
            chunk = readings[first : first + batch_size]
            body = encode(_BatchOut(sent_at=datetime.now(UTC).isoformat(), readings=chunk))
            headers = [
                f"POST /v1/trackers/{serial}/sync HTTP/1.1",
                f"Host: {host}",
                f"Content-Type: {content_type}",
            ]
            if compress:
                body = gzip.compress(body, compresslevel=6)
                headers.append("Content-Encoding: gzip")
            signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
            headers += [f"X-Signature: sha256={signature}", f"Content-Length: {len(body)}", "", ""]
            requests.append("\r\n".join(headers).encode() + body)
        prepared.append(PreparedTracker(serial=serial, requests=tuple(requests), readings=len(readings)))
    return prepared


@dataclass
class LeanResult:
    trackers: int
    readings_sent: int
    readings_acked: int = 0
    batches: int = 0
    push_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    waited: int = 0
    """Answers 429 or 503 that were waited out (Retry-After) and sent again."""
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    generator_cpu_s: float = 0.0

    @property
    def readings_per_s(self) -> float:
        return self.readings_acked / self.push_s if self.push_s else 0.0

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes]:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _send_tracker(host: str, port: int, tracker: PreparedTracker, result: LeanResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in tracker.requests:
            while True:
                started = time.perf_counter()
                try:
                    status, headers, body = await _exchange(reader, writer, request)
                except (asyncio.IncompleteReadError, ConnectionError):
                    result.reconnects += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                if status == 200:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    result.readings_acked += _ack.decode(body).new
                    result.batches += 1
                    break
                if status in (429, 503):
                    result.waited += 1
                    await asyncio.sleep(float(headers.get("retry-after", "1")))
                    continue
                result.errors.append(f"{tracker.serial}: {status} {body[:200]!r}")
                return
    finally:
        writer.close()


async def push(url: str, trackers: Sequence[PreparedTracker]) -> LeanResult:
    """Every tracker sends all its batches at once with the others; timed from the first byte to the last answer."""
    parsed = httpx.URL(url)
    assert parsed.host and parsed.port
    result = LeanResult(trackers=len(trackers), readings_sent=sum(t.readings for t in trackers))
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(_send_tracker(parsed.host, parsed.port, t, result) for t in trackers))
    result.push_s = time.perf_counter() - started
    result.generator_cpu_s = time.process_time() - cpu
    return result


# --- CPU of the other processes --------------------------------------------------------------------------------


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU time of ``pids`` so far (processes gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def postgres_backends_cpu_s(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``database`` (found by its process title,
    ``postgres: [cluster:] user database host(port) state``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        words = title.split()
        if words[1:2] and words[1].endswith(":"):  # a cluster name first (Debian: "postgres: 15/main: ...")
            del words[1]
        if len(words) >= 3 and words[0] == "postgres:" and words[2] == database:
            found[int(entry.name)] = cpu_seconds([int(entry.name)])
    return found


# --- The durable COPY reference ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyReference:
    readings: int
    connections: int
    batch_size: int
    seconds: float
    synchronous_commit: str

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds


_TABLE = """
CREATE TABLE copy_reference (
    tracker_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    device_time TIMESTAMPTZ NOT NULL,
    utc_offset_min SMALLINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    temperature_c DOUBLE PRECISION,
    humidity_pct DOUBLE PRECISION,
    pressure_kpa DOUBLE PRECISION,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    battery_pct DOUBLE PRECISION,
    PRIMARY KEY (tracker_id, seq)
)
"""


async def copy_reference(
    database_url: str, *, trackers: int, readings_per_tracker: int, batch_size: int = 1_000, connections: int = 8
) -> CopyReference:
    """COPY the same number of readings as the load, ``batch_size`` per committed transaction, over
    ``connections`` connections, into a fresh keyed table of the (scratch) database ``database_url`` names."""
    start = datetime.now(UTC) - timedelta(minutes=readings_per_tracker + 60)
    received = datetime.now(UTC)
    batches: list[list[tuple[object, ...]]] = []
    for tracker in range(1, trackers + 1):
        rows: list[tuple[object, ...]] = [
            (
                tracker,
                seq,
                start + timedelta(minutes=seq),
                60,
                received,
                4.0 + seq % 30 / 10,
                50.0,
                101.3,
                52.5,
                13.4,
                99.0,
            )
            for seq in range(1, readings_per_tracker + 1)
        ]
        batches += [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("DROP TABLE IF EXISTS copy_reference")
        await admin.execute(_TABLE)
        synchronous_commit = str(await admin.fetchval("SHOW synchronous_commit"))
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(database_url, min_size=connections, max_size=connections)
    try:
        queue: asyncio.Queue[list[tuple[object, ...]]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)

        async def copy_batches() -> None:
            async with pool.acquire() as conn:
                while not queue.empty():
                    batch = queue.get_nowait()
                    async with conn.transaction():
                        await conn.copy_records_to_table("copy_reference", records=batch, columns=_READING_COLUMNS)

        started = time.perf_counter()
        await asyncio.gather(*(copy_batches() for _ in range(connections)))
        seconds = time.perf_counter() - started
        async with pool.acquire() as conn:
            held = await conn.fetchval("SELECT count(*) FROM copy_reference")
        assert held == trackers * readings_per_tracker, held
    finally:
        await pool.close()
    return CopyReference(
        readings=trackers * readings_per_tracker,
        connections=connections,
        batch_size=batch_size,
        seconds=seconds,
        synchronous_commit=synchronous_commit,
    )
