"""Settings, read once from ``COLDCHAIN_*`` environment variables and validated at start-up.

Every setting has a default that works on a fresh machine: the service runs on an embedded SQLite file in the
working directory. A bad value stops start-up with a message naming the variable and what was wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from coldchain.domain.retention import retention_refusal

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "load_settings", "metrics_listener"]

ENV_PREFIX = "COLDCHAIN_"

Port = Annotated[int, Meta(ge=1, le=65535)]
Positive = Annotated[int, Meta(ge=1)]
PositiveSeconds = Annotated[float, Meta(gt=0)]


class SettingsError(ValueError):
    """A setting is missing its right form; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Service configuration. Field ``x`` is read from the environment variable ``COLDCHAIN_X``."""

    database_url: str = "sqlite:///coldchain.db"
    host: str = "127.0.0.1"
    port: Port = 8000
    workers: Positive = 1
    log_level: str = "info"
    admin_token: str | None = None
    """Bearer token for the bootstrap admin API (tracker registration). Unset: the admin API refuses all."""
    db_pool_size: Positive = 10
    """PostgreSQL connections per service process."""
    max_batch_readings: Positive = 10_000
    """Largest sync batch accepted; larger batches get 413."""
    max_body_bytes: Positive = 16 * 1024 * 1024
    """Largest request body accepted, compressed or not; larger bodies get 413."""
    max_inflight_batches: Positive = 64
    """Sync batches processed at once per process; more get 429 with Retry-After."""
    retry_after_s: Positive = 1
    auth_failure_limit: Positive = 20
    """Failed authentications (tracker signature, OsmAnd device id, API token) a client address may make within
    ``auth_failure_window_s``; beyond it the address gets 429 with Retry-After until the oldest failure ages out."""
    auth_failure_window_s: PositiveSeconds = 60.0
    tracker_cache_s: Annotated[float, Meta(ge=0)] = 30.0
    """How long a process keeps a tracker's key in memory between sync batches (0: look it up every time)."""
    clock_drift_limit_s: PositiveSeconds = 300.0
    """A tracker whose clock differs from the service's by more than this is flagged."""
    max_future_s: PositiveSeconds = 86_400.0
    """A reading whose device time is further ahead of the service's clock than this is quarantined."""
    sync_max_seq_jump: Positive = 1_000_000
    """How far past the highest sequence number held one sync batch may reach; readings further out (and above
    the ceiling 2**62) are kept in quarantine with the reason and do not extend the tracker's log."""
    osmand_timezone: str = "UTC"
    """The zone of OsmAnd timestamps sent as local 'yyyy-MM-dd HH:mm:ss' (an IANA name)."""
    jobs_enabled: bool = True
    """Run the background jobs (silent trackers, ETA refresh, alarm escalation, webhook delivery, session
    retention) in every service process; each tick of a job runs in one process only."""
    job_interval_s: PositiveSeconds = 60.0
    """How often the silent-tracker, ETA-refresh and alarm-escalation jobs run."""
    silent_tracker_s: PositiveSeconds = 3600.0
    """A tracker on duty that has not synced for this long is reported silent (once per silence)."""
    escalate_after_s: PositiveSeconds = 1800.0
    """An alarm still unacknowledged this long after it was raised is escalated."""
    webhook_interval_s: PositiveSeconds = 5.0
    """How often due webhook deliveries are sent."""
    webhook_timeout_s: PositiveSeconds = 10.0
    """How long one webhook attempt may take (connect, send, answer)."""
    webhook_max_attempts: Positive = 8
    """Attempts per delivery before it is given up as failed."""
    webhook_retry_s: PositiveSeconds = 30.0
    """Delay before the first retry; it doubles with each failed attempt (with jitter), up to the next setting."""
    webhook_retry_max_s: PositiveSeconds = 3600.0
    webhook_allow_private: bool = False
    """Let webhooks reach loopback, private, link-local and other non-public addresses (an on-premise receiver).
    Off: such targets are refused at registration and, after resolving the name, at every delivery."""
    events_poll_s: PositiveSeconds = 1.0
    """How often an open event stream (GET /v1/events) looks for new notifications."""
    events_keepalive_s: PositiveSeconds = 15.0
    """An idle event stream sends a comment this often, so proxies keep it open."""
    events_stream_max_s: PositiveSeconds = 20.0
    """An event stream ends after this long and the client resumes from its last event id (a graceful shutdown
    waits for open streams, so keep this below the service manager's stop timeout)."""

    session_idle_s: PositiveSeconds = 1800.0
    """A portal session ends after this long without a request (30 minutes)."""
    session_lifetime_s: PositiveSeconds = 43_200.0
    """A portal session ends this long after sign-in however busy it is (12 hours: one shift)."""
    session_retention_s: PositiveSeconds = 2_592_000.0
    """Ended portal sessions (signed out, idle, past their lifetime) are deleted this long after they ended (30
    days); failed sign-ins are deleted once they leave the lock-out window. The audit trail keeps every one."""
    login_max_failures: Positive = 5
    """Failed sign-ins for one email within the window before sign-in is refused for it."""
    login_max_failures_per_client: Positive = 20
    """Failed sign-ins from one client address within the window before sign-in is refused from it."""
    login_failure_window_s: PositiveSeconds = 900.0
    """The window failed sign-ins are counted in (15 minutes): a lock-out lifts as failures leave it."""
    signing_key_file: str | None = None
    """The Ed25519 private key (PEM, PKCS#8) that signs certificates' JSON form (``coldchain keys generate``
    writes one). Unset: certificates are refused with 503, saying so."""
    published_keys_file: str | None = None
    """A JWKS file of the public keys certificates may be verified with, the current one and retired ones (key
    rotation keeps old certificates verifiable); ``coldchain keys generate`` keeps it. Unset: the current key."""
    pdf_signer_file: str | None = None
    """A PKCS#12 file (certificate and key) that signs certificates' PDF form (PAdES); ``coldchain keys generate``
    writes a self-signed one for pilots. Unset: certificates are refused with 503, saying so."""
    pdf_signer_passphrase: str | None = None
    timestamp_url: str | None = None
    """An RFC 3161 time-stamping service: PDF signatures become PAdES B-T instead of B-B."""
    public_url: str | None = None
    """The service's address as people reach it (``https://coldchain.example.org``): links in emails start with it.
    Needed when email is on."""
    smtp_host: str | None = None
    """The SMTP server that sends notification emails. Unset: no email is planned or sent."""
    smtp_port: Port = 587
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587), ``tls`` (port 465), or ``none`` (a relay on this host or a closed network only)."""
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    """The From of every email, e.g. ``coldchain <alerts@example.org>``. Needed when email is on."""
    smtp_timeout_s: PositiveSeconds = 30.0
    """How long one SMTP conversation (connect, send, answer) may take."""
    email_interval_s: PositiveSeconds = 10.0
    """How often new notifications are planned into emails and due emails are sent."""
    email_max_attempts: Positive = 8
    """Attempts per email before it is given up as failed (a permanent refusal, 5xx, fails it at once)."""
    email_retry_s: PositiveSeconds = 60.0
    """Delay before the first retry of an email; it doubles with each failed attempt (with jitter)."""
    email_retry_max_s: PositiveSeconds = 3600.0
    readings_partitions_ahead: Positive = 3
    """PostgreSQL: monthly partitions of readings are made this many months ahead of the current one, at start-up
    and every hour (readings of a month without one wait in the default partition)."""
    readings_retention_days: Positive | None = None
    """Readings are removed by whole UTC months of device time once the month ended this many days ago (a
    partition dropped on PostgreSQL), each shipment's readings digest sealed first. Unset: kept for ever. Fewer
    than 1826 days (EU GDP's five years) is refused unless ``readings_retention_below_gdp`` is set."""
    readings_retention_below_gdp: bool = False
    """Allow a readings retention shorter than EU GDP's five years."""
    map_tiles_url: str | None = None
    """A tile server for the portal's maps (``https://tiles.example.org/{z}/{x}/{y}.png``); unset, the maps draw
    the world basemap the service ships, which works on a closed network."""
    metrics_token: str | None = None
    """Bearer token that ``GET /metrics`` (Prometheus text format) asks for on the service's own address. Unset:
    ``/metrics`` there answers 404."""
    metrics_address: str | None = None
    """``host:port`` of a separate listener that serves the metrics without a token, for an internal network only
    (``127.0.0.1:9464``). Started by ``coldchain serve``; unset, there is none."""
    stop_timeout_s: PositiveSeconds = 20.0
    """How long a stop (SIGTERM) may take: sync batches in flight finish within it; requests still running after
    it are cancelled (their transactions roll back). Keep it below the service manager's stop timeout."""
    drain_s: Annotated[float, Meta(ge=0)] = 0.0
    """After SIGTERM, keep listening this long (part of ``stop_timeout_s``) while ``/health/ready`` answers 503 and
    new sync batches get 503 with Retry-After, so a load balancer takes the process out of rotation first."""
    judge_after_commit: bool = True
    """Judge a batch's readings right after it commits, by the process's judge (:mod:`coldchain.services.judging`):
    what waits is committed with the readings, and reads that must be exact judge it first; alarms come when the
    judge reaches the tracker, a fraction of a second after the batch's answer on a quiet service. ``false``
    judges inside the batch's transaction: alarms atomic with the readings and told with the answer, at about
    twice the service's CPU per reading on an eventful log (see the README's performance figures)."""
    judge_linger_s: Annotated[float, Meta(ge=0, le=60)] = 0.2
    """Judging after commit: how long the judge lets a tracker's first waiting batch wait for more of the same
    tracker, so a tracker catching up (batches one after the other) is judged in one pass over several batches.
    Added to the time until its alarms are raised."""
    judge_concurrency: Annotated[int, Meta(ge=1, le=64)] = 2
    """Judging after commit: how many trackers a process judges at once (each in a transaction of its own, so
    one's database work overlaps another's computing)."""
    judge_max_held_readings: Positive = 300_000
    """Judging after commit: how many waiting readings a process may hold in memory for its judge (about 330 bytes
    each: 300,000 is about 100 MB); while it holds that many, a new sync batch waits for room (see
    ``judge_room_wait_s``)."""
    judge_room_wait_s: Annotated[float, Meta(ge=0, le=60)] = 5.0
    """Judging after commit: how long a sync batch waits for the judge to make room before it gets 429 with
    Retry-After (it waits before its transaction, holding no lock)."""
    judge_sweep_s: PositiveSeconds = 5.0
    """Judging after commit: how often the judge looks in the database for trackers left waiting (by a process
    that stopped, or one that cannot keep up)."""
    judge_orphaned_after_s: PositiveSeconds = 30.0
    """Judging after commit: how long a tracker may wait to be judged before any process's sweep takes it. The
    process it was handed to judges it sooner while it runs, even behind a backlog; a sweep that took it earlier
    would make both read its readings back. At start a process takes every tracker waiting."""

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise SettingsError(
                f"{ENV_PREFIX}DATABASE_URL: expected sqlite:///PATH or postgresql://..., got {self.database_url!r}"
            )
        try:
            ZoneInfo(self.osmand_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"{ENV_PREFIX}OSMAND_TIMEZONE: unknown time zone {self.osmand_timezone!r} (use an IANA name)"
            ) from None
        if self.webhook_retry_max_s < self.webhook_retry_s:
            raise SettingsError(
                f"{ENV_PREFIX}WEBHOOK_RETRY_MAX_S: must be at least"
                f" {ENV_PREFIX}WEBHOOK_RETRY_S ({self.webhook_retry_s:g})"
            )
        if self.map_tiles_url is not None and not (
            self.map_tiles_url.startswith(("https://", "http://")) and "{z}" in self.map_tiles_url
        ):
            raise SettingsError(f"{ENV_PREFIX}MAP_TILES_URL: expected an http(s) URL template with {{z}}, {{x}}, {{y}}")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise SettingsError(f"{ENV_PREFIX}METRICS_TOKEN: use at least 16 characters")
        if self.metrics_address is not None:
            metrics_listener(self.metrics_address)
        if self.drain_s >= self.stop_timeout_s:
            raise SettingsError(
                f"{ENV_PREFIX}DRAIN_S: must be shorter than {ENV_PREFIX}STOP_TIMEOUT_S ({self.stop_timeout_s:g})"
            )
        self._check_email()
        refusal = retention_refusal(self.readings_retention_days, below_gdp=self.readings_retention_below_gdp)
        if refusal is not None:
            raise SettingsError(
                f"{ENV_PREFIX}READINGS_RETENTION_DAYS: {refusal} ({ENV_PREFIX}READINGS_RETENTION_BELOW_GDP=true)"
            )
        if self.log_level not in {"critical", "error", "warning", "info", "debug"}:
            raise SettingsError(f"{ENV_PREFIX}LOG_LEVEL: expected one of critical, error, warning, info, debug")

    def _check_email(self) -> None:
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                raise SettingsError(
                    f"{ENV_PREFIX}PUBLIC_URL: expected http(s)://host[:port][/path], got {self.public_url!r}"
                )
        if self.email_retry_max_s < self.email_retry_s:
            raise SettingsError(
                f"{ENV_PREFIX}EMAIL_RETRY_MAX_S: must be at least {ENV_PREFIX}EMAIL_RETRY_S ({self.email_retry_s:g})"
            )
        if self.smtp_host is None:
            return
        if not self.smtp_from or "@" not in self.smtp_from:
            raise SettingsError(f"{ENV_PREFIX}SMTP_FROM: the From address of emails, like alerts@example.org")
        if self.public_url is None:
            raise SettingsError(
                f"{ENV_PREFIX}PUBLIC_URL: emails link to the portal; set the address people reach it at"
            )
        if self.smtp_password is not None and self.smtp_username is None:
            raise SettingsError(f"{ENV_PREFIX}SMTP_USERNAME: a password needs the user name it belongs to")
        if self.smtp_password is not None and self.smtp_tls == "none":
            raise SettingsError(
                f"{ENV_PREFIX}SMTP_TLS: none would send {ENV_PREFIX}SMTP_PASSWORD in clear; use starttls or tls"
            )

    @property
    def email_enabled(self) -> bool:
        """Whether notification emails are planned and sent (an SMTP server is set)."""
        return self.smtp_host is not None

    @property
    def links_base(self) -> str:
        """:attr:`public_url` without a trailing slash (empty when unset)."""
        return (self.public_url or "").rstrip("/")

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``, from the database URL."""
        return "sqlite" if self.database_url.startswith("sqlite://") else "postgresql"


def metrics_listener(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) as the host and port to listen on; ``SettingsError`` otherwise."""
    host, colon, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"{ENV_PREFIX}METRICS_ADDRESS: expected host:port (127.0.0.1:9464), got {address!r}")
    return host, int(port)


_FIELDS = {name.upper(): name for name in Settings.__struct_fields__}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``COLDCHAIN_*`` variables (``os.environ`` by default), then ``overrides``.

    Unknown ``COLDCHAIN_*`` variables are refused, so a typo cannot silently fall back to a default.
    ``COLDCHAIN_TEST_*`` variables belong to the test suite and are ignored here.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key.startswith(ENV_PREFIX + "TEST_"):
            continue
        name = _FIELDS.get(key.removeprefix(ENV_PREFIX))
        if name is None:
            known = ", ".join(ENV_PREFIX + k for k in sorted(_FIELDS))
            raise SettingsError(f"unknown setting {key}; known settings: {known}")
        raw[name] = value
    raw.update(overrides)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_the_variable(str(exc))) from None


def _name_the_variable(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.port`"; speak of the variable instead.
    text, found, where = message.rpartition(" - at `$.")
    if not found:
        return message
    return f"{ENV_PREFIX}{where.rstrip('`').upper()}: {text}"
