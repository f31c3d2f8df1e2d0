"""The ``coldchain`` command, run as a real process where it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from coldchain import __version__
from coldchain.cli import main
from coldchain.storage.migrations import discover_migrations
from tests.paths import EXAMPLE_PROFILES
from tests.served import free_port, served


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


def test_load_profiles_stores_each_profile_once_and_reports_unchanged_ones_after(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles_json = EXAMPLE_PROFILES
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", database_url)

    assert main(["load-profiles", str(profiles_json)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert main(["load-profiles", str(profiles_json)]) == 0
    second = capsys.readouterr().out.splitlines()

    assert len(first) == 10
    assert all(line.endswith(" v1 stored") for line in first)
    assert second == [line.replace("stored", "unchanged") for line in first]


def test_load_profiles_refuses_an_invalid_file_naming_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    bad = tmp_path / "profiles.json"
    bad.write_text('{"profiles": [{"id": "x", "name": "x", "label_range_c": [8, 2]}]}')

    assert main(["load-profiles", str(bad)]) == 1
    assert main(["load-profiles", str(tmp_path / "missing.json")]) == 1

    err = capsys.readouterr().err.splitlines()
    assert "label_range_c must be [low, high]" in err[0]
    assert err[1].startswith(f"coldchain: cannot read {tmp_path / 'missing.json'}")


def test_a_bad_setting_stops_the_command_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLDCHAIN_PORT", "eighty")
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err.strip() == "coldchain: COLDCHAIN_PORT: Expected `int`, got `str`"


def test_an_unreachable_database_is_reported_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # a port nothing listens on
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", f"postgresql://app:hunter2@127.0.0.1:{port}/coldchain")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert f"cannot use the database at postgresql://app:***@127.0.0.1:{port}/coldchain" in err
    assert "hunter2" not in err


async def test_serve_answers_health_over_a_real_socket(database_url: str, tmp_path: Path) -> None:
    async with (
        httpx.AsyncClient() as http,
        served(database_url, tmp_path, http=http, log_level="info") as service,
    ):
        response = await http.get(f"{service.url}/health", timeout=2)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    output = service.output()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert service.process is not None
    assert service.process.returncode in (0, -signal.SIGTERM)
    assert service.url in output
    assert "Application shutdown complete" in output


def test_a_serving_worker_freezes_what_it_made_to_start_and_collects_the_young_generation_less_often(
    tmp_path: Path,
) -> None:
    """What ``coldchain serve`` runs in each worker (``service_app``), in a process of its own: the collector
    afterwards has the start-up heap frozen out of its collections and a higher first threshold."""
    probe = (
        "import gc\n"
        "from coldchain.cli import service_app\n"
        "before = gc.get_threshold()\n"
        "service_app()\n"
        "print(gc.get_freeze_count(), *before, *gc.get_threshold())\n"
    )
    env = {**os.environ, "COLDCHAIN_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    frozen, *before, young, middle, oldest = (int(word) for word in done.stdout.split())
    assert frozen > 10_000  # modules, routes and types of a fresh worker
    assert (young, middle, oldest) == (10_000, before[1], before[2])
    assert before[0] < young
