"""The ``coldchain`` command, run as a real process where it serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from coldchain import __version__
from coldchain.cli import main
from coldchain.storage.migrations import discover_migrations


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"coldchain {__version__}"


def test_migrate_applies_once_then_reports_up_to_date(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "the database is up to date"


def test_migrate_on_a_fresh_sqlite_file_names_the_migrations_it_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert main(["migrate"]) == 0
    labels = [m.label for m in discover_migrations("sqlite")]
    assert labels[:2] == ["0001_initial", "0002_sync"]
    assert capsys.readouterr().out.strip() == "applied: " + ", ".join(labels)


def test_a_bad_setting_stops_the_command_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLDCHAIN_PORT", "eighty")
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err.strip() == "coldchain: COLDCHAIN_PORT: Expected `int`, got `str`"


def test_an_unreachable_database_is_reported_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", f"postgresql://app:hunter2@127.0.0.1:{port}/coldchain")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert f"cannot use the database at postgresql://app:***@127.0.0.1:{port}/coldchain" in err
    assert "hunter2" not in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_health_over_a_real_socket(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "COLDCHAIN_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "coldchain", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.monotonic() < deadline, "the service did not start within 30 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM)
    assert f"http://127.0.0.1:{port}" in output.decode()
    assert "Application shutdown complete" in output.decode()
