"""``coldchain demo`` as a user runs it: a real process on a real port, set up through its own API, judging five
simulated shipments."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.served import free_port

DEMO_TIMEOUT_S = 300


def _run_until_summary(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "coldchain", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "Press Ctrl-C to stop" in line:
            return process, lines
    process.kill()
    process.wait(timeout=30)
    process.stdout.close()
    raise AssertionError("the demo printed no summary:\n" + "\n".join(lines))


def test_the_demo_judges_five_shipments_and_keeps_serving(tmp_path: Path) -> None:
    port = free_port()
    process, lines = _run_until_summary(tmp_path, port)
    try:
        rows = {line.split()[1]: line.split() for line in lines if re.match(r"DEMO-\d-\d+ ", line)}
        shipper_token = next(line.split(": ")[1] for line in lines if line.startswith("shipper (logistics) token"))
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        listed = httpx.get(
            f"http://127.0.0.1:{port}/v1/shipments", headers={"Authorization": f"Bearer {shipper_token}"}, timeout=5
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()

    assert set(rows) == {"reefer-road", "air-freight", "multi-day-offline", "compressor-failure", "freeze"}
    for scenario, row in rows.items():
        logged, judged = int(row[2]), int(row[3])
        assert judged > 0.9 * logged, f"{scenario}: every valid reading synced and judged"
    assert rows["reefer-road"][-1] == "release"
    assert int(rows["compressor-failure"][4]) >= 1, "the compressor failure shows as an excursion"
    assert rows["freeze"][-1] == "reject", "a freezing episode rejects a 2-8 °C vaccine"
    assert health.status_code == 200
    assert len(listed.json()) == 5
    assert (tmp_path / "coldchain-demo.db").exists()
