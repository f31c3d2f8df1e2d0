"""The ``coldchain`` command: ``serve``, ``migrate``, ``load-profiles``, ``import-logger``, ``user add``, ``demo``,
``--version``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from coldchain import __version__
from coldchain.domain.access import OPERATOR, ROLES
from coldchain.domain.profiles import ProfileError
from coldchain.metrics import MULTIPROCESS_DIR_VARIABLE, exposition_registry, forget_process
from coldchain.services.errors import ServiceError
from coldchain.services.loggers import import_logger_file
from coldchain.services.products import load_example_profiles
from coldchain.services.users import create_user
from coldchain.settings import ENV_PREFIX, Settings, SettingsError, load_settings, metrics_listener
from coldchain.storage import AlreadyExists, StorageError, open_store

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["main", "service_app"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coldchain", description="Monitoring service for temperature-sensitive medicines in transit."
    )
    parser.add_argument("--version", action="version", version=f"coldchain {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help=f"address to listen on (default {ENV_PREFIX}HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help=f"port to listen on (default {ENV_PREFIX}PORT or 8000)")
    serve.add_argument("--workers", type=int, help=f"service processes (default {ENV_PREFIX}WORKERS or 1)")

    commands.add_parser("migrate", help="apply pending database migrations and exit")

    load = commands.add_parser("load-profiles", help="store the stability profiles of a profiles.json file")
    load.add_argument("file", type=Path, help='a JSON document {"profiles": [...]}')

    logger = commands.add_parser("import-logger", help="import a logger export (Berlinger) into a shipment's evidence")
    logger.add_argument("file", type=Path, help="the text file the logger wrote over USB")
    logger.add_argument("--shipment", type=int, required=True, help="the shipment's id")
    logger.add_argument(
        "--utc-offset-min", type=int, default=0, help="the offset of the logger's clock from UTC in minutes (default 0)"
    )

    user = commands.add_parser("user", help="manage portal users (the first admin of an organisation)")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser(
        "add",
        help="add a user to an organisation",
        description=(
            "Add a portal user to an organisation, as the platform operator. The password is asked for at the"
            " terminal, or read from the first line of standard input with --password-stdin. Later users are"
            " added by the organisation's admins in the portal or through the API."
        ),
    )
    add.add_argument("--organisation", type=int, required=True, help="the organisation's id")
    add.add_argument("--role", choices=ROLES, default="admin", help="the user's role (default admin)")
    add.add_argument("--name", required=True, help="the user's display name")
    add.add_argument("--email", required=True, help="the user's email (their sign-in name)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    keys = commands.add_parser("keys", help="manage the keys that sign certificates")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    generate = key_commands.add_parser(
        "generate",
        help="make a new signing key (earlier ones stay published, retired) and a pilot's PDF signer",
        description=(
            "Write DIR/signing-<kid>.pem (an Ed25519 private key, mode 0600) and add its public key to"
            " DIR/published-keys.json (a JWKS; keys already there stay, marked retired, so certificates they signed"
            " still verify). Unless DIR/pdf-signer.p12 exists, also write a self-signed PDF signing certificate for"
            " pilots (mode 0600); production uses a PKCS#12 from a certificate authority."
        ),
    )
    generate.add_argument("--dir", type=Path, required=True, help="the folder to keep the keys in")
    generate.add_argument(
        "--name", default="coldchain certificate signing", help="the PDF signer's common name (pilot certificate)"
    )
    generate.add_argument("--organisation", default="coldchain", help="the PDF signer's organisation")

    verify = commands.add_parser(
        "verify",
        help="verify a certificate (JSON or PDF) offline with a public key",
        description=(
            "JSON: the Ed25519 signature over the RFC 8785 bytes of its certificate member, with the key its kid"
            " names. PDF: the PAdES signature is intact and covers the whole file, the signer is named, and the"
            " attached JSON form verifies. Exit 0 when everything holds, else 1."
        ),
    )
    verify.add_argument("file", type=Path, help="the certificate, .json or .pdf")
    verify.add_argument("--key", type=Path, help="a PEM public key, or a JWKS (/.well-known/coldchain-keys)")

    demo = commands.add_parser(
        "demo",
        help="run the live service on a demo SQLite file with simulated trackers",
        description=(
            "Set up a distributor's world through the service's own API (profiles, three organisations, a token per"
            " role, two products, five shipments placed around now) and let simulated trackers log and sync on a"
            " demo clock that runs faster than real time, until Ctrl-C. The demo only ever creates, uses or"
            " deletes its own database file; COLDCHAIN_DATABASE_URL is not used."
        ),
    )
    demo.add_argument("--host", help=f"address to listen on (default {ENV_PREFIX}HOST or 127.0.0.1)")
    demo.add_argument("--port", type=int, help=f"port to listen on (default {ENV_PREFIX}PORT or 8000)")
    demo.add_argument(
        "--database",
        type=Path,
        default=None,
        help="the demo's SQLite file: a new file, or one an earlier demo created (default coldchain-demo.db)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=None,
        help="demo seconds per real second (default 60: one demo minute per second)",
    )
    return parser


def _serve(settings: Settings) -> int:
    import uvicorn

    # SIGTERM ends `coldchain serve` with 0: the server re-raises the signal once it has stopped gracefully, and
    # before it runs (migrating) there is nothing to drain.
    signal.signal(signal.SIGTERM, _stopped)
    # Apply migrations once, before any worker starts, so a bad database fails here with a clear message.
    asyncio.run(_migrate(settings))
    with ExitStack() as serving:
        if settings.workers > 1:
            serving.enter_context(_shared_metrics_folder())
        if settings.metrics_address is not None:
            try:
                serving.enter_context(_metrics_listener(settings.metrics_address))
            except OSError as exc:
                print(f"coldchain: cannot serve metrics on {settings.metrics_address}: {exc.strerror}", file=sys.stderr)
                return 1
        print(f"coldchain {__version__} on {settings.engine}: http://{settings.host}:{settings.port}", flush=True)
        uvicorn.run(
            "coldchain.cli:service_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            proxy_headers=False,
            # Draining (COLDCHAIN_DRAIN_S) comes out of the stop timeout; then the server waits for requests still
            # running for the rest of it, and cancels what is left.
            timeout_graceful_shutdown=max(1, math.ceil(settings.stop_timeout_s - settings.drain_s)),
        )
    return 0


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextmanager
def _shared_metrics_folder() -> Iterator[str]:
    """A fresh folder through which the workers about to start share their metrics (prometheus-client reads
    ``PROMETHEUS_MULTIPROC_DIR`` when a worker first imports it), removed when the service ends. While it runs,
    the live gauges of a worker that ended without saying so (killed) are dropped, a few seconds later."""
    folder = tempfile.mkdtemp(prefix="coldchain-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = folder
    stop = threading.Event()

    def forget_the_dead() -> None:
        while not stop.wait(_REAP_S):
            for pid in _pids_with_live_gauges(folder):
                if not _alive(pid):
                    forget_process(pid)

    reaper = threading.Thread(target=forget_the_dead, name="metrics-reaper", daemon=True)
    reaper.start()
    try:
        yield folder
    finally:
        stop.set()
        reaper.join()
        os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


_REAP_S = 2.0


def _pids_with_live_gauges(folder: str) -> set[int]:
    """The processes that left live-gauge files (``gauge_livesum_<pid>.db``) in ``folder``."""
    pids = set()
    for path in Path(folder).glob("gauge_live*_*.db"):
        number = path.stem.rpartition("_")[2]
        if number.isdigit():
            pids.add(int(number))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _metrics_listener(address: str) -> Iterator[None]:
    """Serve the metrics without a token on ``address`` (an internal one), from this process, for every worker."""
    from prometheus_client import start_http_server

    host, port = metrics_listener(address)
    server, thread = start_http_server(port, host, registry=exposition_registry())
    print(f"metrics on http://{address}/metrics", flush=True)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def service_app() -> Litestar:
    """What each ``coldchain serve`` worker runs: the HTTP service, and the background jobs unless
    ``COLDCHAIN_JOBS_ENABLED=false``. Composed here: the HTTP edge and the jobs may not import each other. SIGTERM
    drains the worker before it stops (:mod:`coldchain.http.lifecycle`)."""
    from coldchain.http.app import create_app
    from coldchain.jobs import running_jobs

    settings = load_settings()
    background = [lambda store: running_jobs(store, settings)] if settings.jobs_enabled else []
    app = create_app(settings, background=background, drain_on_signals=True)
    _tune_collector()
    return app


#: A serving worker's first collector threshold: allocations of container objects, less those freed, between two
#: collections of the youngest generation (CPython's default is 700). A sync batch of 1,000 readings decodes
#: 1,000 of them, freed with the batch, so the default ran a collection and more per batch.
_YOUNG_COLLECTION_THRESHOLD = 10_000


def _tune_collector() -> None:
    """The garbage collector of a process about to serve: what the process made to get here (modules, routes,
    types, about the whole heap of a fresh worker) lives as long as the process, so it is frozen out of every
    later collection (``gc.freeze``) instead of being walked again by each full one; and the youngest generation
    is collected every ``_YOUNG_COLLECTION_THRESHOLD`` allocations. Served PostgreSQL ingest then took 6 to 18 %
    less of the service's CPU per reading with evaluation off, 11 to 15 % less with it on (README, "Performance")."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, middle, oldest)


async def _migrate(settings: Settings) -> list[str]:
    store = await open_store(settings.database_url, pool_size=1, migrate=False)
    try:
        return await store.migrate()
    finally:
        await store.close()


async def _load_profiles(settings: Settings, document: bytes) -> list[str]:
    """Store every profile of ``document``; one line per profile saying which version it is held as."""
    store = await open_store(settings.database_url, pool_size=1)
    try:
        saved = await load_example_profiles(store, document, actor="cli", now=datetime.now(UTC))
    finally:
        await store.close()
    return [f"{p.id} v{p.version} {'stored' if new else 'unchanged'}" for p, new in saved]


async def _import_logger(settings: Settings, path: Path, content: bytes, shipment_id: int, utc_offset_min: int) -> str:
    """Import the file as the operator; one line saying what was stored."""
    store = await open_store(settings.database_url, pool_size=1)
    try:
        result = await import_logger_file(
            store,
            OPERATOR,
            shipment_id,
            content,
            file_name=path.name,
            utc_offset_min=utc_offset_min,
            now=datetime.now(UTC),
        )
    finally:
        await store.close()
    held = result.logger_file
    if not result.new:
        return f"shipment {shipment_id} already holds this file (logger file {held.id}); nothing changed"
    return (
        f"logger file {held.id}: {held.model} {held.serial}, {held.readings} readings"
        f" ({result.readings_new} new), {len(result.days)} days of summaries, into shipment {shipment_id}"
    )


async def _add_user(settings: Settings, args: argparse.Namespace, password: str) -> str:
    store = await open_store(settings.database_url, pool_size=1)
    try:
        user = await create_user(
            store,
            OPERATOR,
            organisation_id=args.organisation,
            role=args.role,
            name=args.name,
            email=args.email,
            password=password,
            now=datetime.now(UTC),
        )
    finally:
        await store.close()
    return f"user {user.id}: {user.name} <{user.email}>, {user.role} of organisation {user.organisation_id}"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "verify":  # offline: no settings, no database
        from coldchain.verify import verify_file

        ok, statements = verify_file(args.file, args.key)
        print(("VERIFIED" if ok else "NOT VERIFIED") + f": {args.file}")
        for line in statements:
            print(f"  {line}")
        return 0 if ok else 1
    if args.command == "keys":
        return _generate_keys(args)
    overrides = {
        name: value for name in ("host", "port", "workers") if (value := getattr(args, name, None)) is not None
    }
    if args.command == "demo":
        # The demo never uses the configured database: it works on a file of its own (see coldchain.demo).
        overrides["database_url"] = "sqlite:///coldchain-demo.db"
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"coldchain: {exc}", file=sys.stderr)
        return 2
    # Worker processes read their settings from the environment: pass the command-line choices on.
    for name, value in overrides.items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)
    try:
        if args.command == "migrate":
            applied = asyncio.run(_migrate(settings))
            print("applied: " + ", ".join(applied) if applied else "the database is up to date")
        elif args.command == "load-profiles":
            try:
                document = args.file.read_bytes()
            except OSError as exc:
                print(f"coldchain: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
                return 1
            print("\n".join(asyncio.run(_load_profiles(settings, document))))
        elif args.command == "import-logger":
            try:
                content = args.file.read_bytes()
            except OSError as exc:
                print(f"coldchain: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
                return 1
            try:
                print(asyncio.run(_import_logger(settings, args.file, content, args.shipment, args.utc_offset_min)))
            except ServiceError as exc:
                print(f"coldchain: {args.file}: {exc}", file=sys.stderr)
                return 1
        elif args.command == "user":
            try:
                password = _read_password(args.password_stdin)
                print(asyncio.run(_add_user(settings, args, password)))
            except (ValueError, ServiceError, AlreadyExists) as exc:
                print(f"coldchain user add: {exc}", file=sys.stderr)
                return 1
        elif args.command == "serve":
            return _serve(settings)
        elif args.command == "demo":
            return _demo(settings, args)
    except KeyboardInterrupt:
        return 0
    except ProfileError as exc:
        print(f"coldchain: {args.file}: {exc}", file=sys.stderr)
        return 1
    except (StorageError, OSError) as exc:
        print(
            f"coldchain: cannot use the database at {_redacted(settings.database_url)}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from coldchain.demo import DEFAULT_DATABASE, DEFAULT_SPEED, DemoOptions, run_demo

    if args.speed is not None and not args.speed > 0:
        print("coldchain demo: --speed must be a positive number", file=sys.stderr)
        return 2
    options = DemoOptions(
        host=settings.host,
        port=settings.port,
        database=args.database or DEFAULT_DATABASE,
        speed=args.speed or DEFAULT_SPEED,
    )
    return asyncio.run(run_demo(settings, options))


def _generate_keys(args: argparse.Namespace) -> int:
    from coldchain.documents.signing import make_pilot_signer
    from coldchain.keys import KeyFileError, generate_keys

    pilot = None if (args.dir / "pdf-signer.p12").exists() else make_pilot_signer(args.name, args.organisation)
    try:
        made = generate_keys(args.dir, pdf_signer=pilot)
    except (OSError, KeyFileError) as exc:
        print(f"coldchain keys generate: {exc}", file=sys.stderr)
        return 1
    print(f"new signing key {made.kid}: {made.signing_key_file} (keep it secret)")
    print(f"published keys: {made.published_keys_file}")
    if made.pdf_signer_new:
        print(f"self-signed PDF signer for pilots: {made.pdf_signer_file}")
    print("settings for the service:")
    print(f"  {ENV_PREFIX}SIGNING_KEY_FILE={made.signing_key_file.resolve()}")
    print(f"  {ENV_PREFIX}PUBLISHED_KEYS_FILE={made.published_keys_file.resolve()}")
    print(f"  {ENV_PREFIX}PDF_SIGNER_FILE={made.pdf_signer_file.resolve()}")
    return 0


def _redacted(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
