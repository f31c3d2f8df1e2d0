"""``coldchain demo`` as a user runs it: a real process on a real port, live on a demo clock, that stops cleanly
and never touches a database it did not create."""

from __future__ import annotations

import hashlib
import mailbox
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from coldchain.demo import DemoError, own_database
from tests.epcis_check import expand, schema_errors
from tests.served import free_port

SUMMARY_TIMEOUT_S = 240
STOP_TIMEOUT_S = 10


class Demo:
    """A running ``coldchain demo`` process and every line it printed so far (read by a thread)."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coldchain", "demo", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = SUMMARY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"the demo never printed {text!r}:\n{self.output}")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> tuple[int, float]:
        """Send ``sig``; the exit status and how long the demo took to end."""
        sent = time.monotonic()
        self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT_S + 5)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return status, time.monotonic() - sent

    def close(self) -> None:
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def token(self, role: str) -> str:
        line = next(line for line in self.lines if line.strip().startswith(role + " "))
        return line.split()[-1]


@contextmanager
def running_demo(cwd: Path, *args: str) -> Iterator[Demo]:
    demo = Demo(cwd, *args)
    try:
        yield demo
    finally:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait()
        demo.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def poll(get: Any, until_s: float, check: Any) -> Any:
    """Call ``get`` until ``check`` holds on its answer, for at most ``until_s`` seconds; the last answer."""
    deadline = time.monotonic() + until_s
    while True:
        answer = get()
        if check(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(1.0)


@pytest.mark.slow
def test_the_live_demo_raises_a_live_alarm_and_an_at_risk_eta_soon_after_its_summary(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_demo(tmp_path, "--port", str(port)) as demo:
        demo.wait_for("Press Ctrl-C to stop")
        summary_at = time.monotonic()
        references = {line.split()[1]: line.split()[0] for line in demo.lines if re.match(r"DEMO-\d-\d+ ", line)}
        assert set(references) == {"delivered", "live-alarm", "at-risk", "silent", "in-flight"}, demo.output
        logistics = {"Authorization": f"Bearer {demo.token('shipper logistics')}"}
        shipments = {s["reference"]: s for s in httpx.get(f"{url}/v1/shipments", headers=logistics).json()}
        by_story = {story: shipments[reference]["id"] for story, reference in references.items()}

        # Every demo user printed can sign in to the portal, and the portal's board shows the shipments in transit.
        logins = [line.split() for line in demo.lines if re.match(r"^  \S+@\S+\.demo +password ", line)]
        assert len(logins) == 5, demo.output
        for login in logins:
            email, password = login[0], login[2]
            with httpx.Client(base_url=url) as browser:
                signed_in = browser.post("/v1/session", json={"email": email, "password": password})
                assert signed_in.status_code == 201, signed_in.text
                board = browser.get("/v1/board")
                assert board.status_code == 200
        assert f"{url}/portal" in demo.output
        in_transit = {s["reference"] for s in board.json()["shipments"]}
        assert {references["live-alarm"], references["at-risk"], references["in-flight"]} <= in_transit

        # The shipment delivered before the demo began holds a complete, intact custody chain.
        auditor = {"Authorization": f"Bearer {demo.token('auditor')}"}
        chain = httpx.get(f"{url}/v1/shipments/{by_story['delivered']}/custody", headers=auditor).json()
        kinds = [e["kind"] for e in chain["events"]]
        assert kinds == ["packed", "picked_up", "arrived", "delivered", "received"]
        verified = httpx.get(f"{url}/v1/shipments/{by_story['delivered']}/custody/verify", headers=auditor).json()
        assert verified["intact"] is True

        # Every demo shipment's EPCIS 2.0 export validates against GS1's schema and expands with GS1's context.
        for sid in by_story.values():
            for query in ("", "?sensor=intervals"):
                exported = httpx.get(f"{url}/v1/shipments/{sid}/epcis{query}", headers=auditor)
                assert exported.status_code == 200, exported.text
                assert schema_errors(exported.json()) == [], (sid, query)
                assert expand(exported.json())
                classes = {q["epcClass"] for e in exported.json()["epcisBody"]["eventList"] for q in e["quantityList"]}
                assert len(classes) == 1 and classes.pop().startswith("https://id.gs1.org/01/0401234500"), classes

        # Within a minute of the summary, the freeze alarm is raised live (not late), and the urgent shipment's
        # ETA is at risk.
        def live_alarms() -> list[dict[str, Any]]:
            answer = httpx.get(f"{url}/v1/shipments/{by_story['live-alarm']}/alarms", headers=logistics).json()
            return [a for a in answer if not a["late"] and a["withdrawn_at"] is None]

        raised = poll(live_alarms, until_s=60 - (time.monotonic() - summary_at), check=bool)
        assert raised, "no live alarm within a minute of the summary"
        assert raised[0]["rule"] == "freeze alarm"
        carrier = {"Authorization": f"Bearer {demo.token('carrier')}"}

        def eta() -> dict[str, Any]:
            answer: dict[str, Any] = httpx.get(f"{url}/v1/shipments/{by_story['at-risk']}/eta", headers=carrier).json()
            return answer

        forecast = poll(eta, until_s=60 - (time.monotonic() - summary_at), check=lambda e: e.get("at_risk"))
        assert forecast.get("at_risk") is True, forecast

        # The live alarm reaches the shipper's logistics desk by email, kept in the demo's Maildir as the summary
        # says; nobody acknowledges it, so the escalation chain tells the desk again, person to person.
        assert "coldchain-demo-mail/new/" in demo.output

        def mails() -> list[str]:
            box = mailbox.Maildir(tmp_path / "coldchain-demo-mail", create=False)
            return [" ".join(f"{m['To']} | {m['Subject']}".split()) for m in box.values()]  # headers unfolded

        live = references["live-alarm"]
        raised_mail = f"<logistics@pharma.demo> | [coldchain] Alarm raised on {live}: freeze alarm"
        chain_mail = f"<logistics@pharma.demo> | [coldchain] Alarm not acknowledged on {live}: freeze alarm"
        found = poll(mails, until_s=40, check=lambda got: any(raised_mail in m for m in got))
        assert any(raised_mail in m for m in found), found
        found = poll(mails, until_s=40, check=lambda got: any(chain_mail in m for m in got))
        assert any(chain_mail in m for m in found), found

        # A second demo in the same folder refuses, and the first one's database and service are untouched.
        second_port = free_port()
        with running_demo(tmp_path, "--port", str(second_port)) as second:
            assert second.process.wait(timeout=60) != 0
        assert "another demo is running" in second.output
        assert httpx.get(f"{url}/health").status_code == 200
        assert len(httpx.get(f"{url}/v1/shipments", headers=logistics).json()) == 5

        status, took_s = demo.stop(signal.SIGINT)
    assert status == 0, demo.output
    assert took_s < STOP_TIMEOUT_S
    assert "Traceback" not in demo.output


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    "moment",
    ["setting up organisations", "playing the trips", "Press Ctrl-C to stop"],
    ids=["during-set-up", "during-playback", "while-serving"],
)
def test_a_signal_at_any_moment_stops_the_demo_within_ten_seconds_without_a_traceback(
    tmp_path: Path, sig: signal.Signals, moment: str
) -> None:
    with running_demo(tmp_path, "--port", str(free_port())) as demo:
        demo.wait_for(moment)
        status, took_s = demo.stop(sig)
    assert took_s < STOP_TIMEOUT_S, demo.output
    assert status == 0, demo.output
    assert "Traceback" not in demo.output
    assert "stopping the service" in demo.output


def test_the_demo_refuses_a_database_it_did_not_create_and_leaves_it_unchanged(tmp_path: Path) -> None:
    foreign = tmp_path / "prod.db"
    with closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE precious (id INTEGER)")
        db.execute("INSERT INTO precious VALUES (42)")
        db.commit()
    before = sha256(foreign)
    with running_demo(tmp_path, "--database", str(foreign), "--port", str(free_port())) as demo:
        status = demo.process.wait(timeout=60)
    assert status != 0
    assert "is not a demo database" in demo.output
    assert sha256(foreign) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prod.db"]


def test_a_taken_port_exits_naming_the_port_and_deletes_nothing(tmp_path: Path) -> None:
    earlier = tmp_path / "coldchain-demo.db"
    with own_database(earlier):  # a database an earlier demo left behind
        pass
    before = sha256(earlier)
    with closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with running_demo(tmp_path, "--port", str(port)) as demo:
            status = demo.process.wait(timeout=60)
    assert status != 0
    assert f"port {port}" in demo.output
    assert f"make demo PORT={port + 10}" in demo.output
    assert "Traceback" not in demo.output
    assert sha256(earlier) == before


def test_the_demo_honours_coldchain_port_and_host(tmp_path: Path) -> None:
    with closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
        env |= {"COLDCHAIN_PORT": str(port), "COLDCHAIN_HOST": "127.0.0.1"}
        command = [sys.executable, "-m", "coldchain", "demo"]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stdout + done.stderr


def test_a_database_file_is_reused_only_when_a_demo_created_it_and_no_demo_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    with own_database(path) as url:
        assert url == f"sqlite:///{path}"
        with pytest.raises(DemoError, match="another demo is running"), own_database(path):
            pass
    with own_database(path):  # the stamp says a demo made it, and nobody holds it now: replaced
        pass
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    with pytest.raises(DemoError, match="not a demo database"), own_database(other):
        pass
    assert other.read_text() == "not a database"


def test_demo_help_explains_every_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coldchain", "demo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for option in ("--host", "--port", "--database", "--speed"):
        assert option in done.stdout
