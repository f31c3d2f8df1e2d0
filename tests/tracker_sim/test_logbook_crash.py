from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracker_sim.logbook import LoggedReading, Measurement, open_logbook

ROOT = Path(__file__).resolve().parents[2]

# Logs readings as fast as it can and reports each seq on stdout only after log() returned.
WRITER = """
import asyncio, sys
from datetime import datetime, timedelta, timezone
from tracker_sim.logbook import Logbook, Measurement

async def main():
    logbook = await Logbook.open(sys.argv[1])
    start = datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=2)))
    i = 0
    while True:
        seq = await logbook.log(Measurement(device_time=start + timedelta(seconds=i), temperature_c=i / 8))
        print(seq, flush=True)
        i += 1

asyncio.run(main())
"""


async def _read_back(path: Path) -> tuple[list[LoggedReading], int]:
    async with open_logbook(path) as logbook:
        readings = await logbook.retained()
        next_seq = await logbook.log(Measurement(device_time=datetime(2026, 3, 2, tzinfo=UTC)))
    return readings, next_seq


@pytest.mark.slow
def test_every_reading_reported_as_logged_survives_a_kill_9_of_the_process(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    reported: list[int] = []
    try:
        for line in writer.stdout:
            reported.append(int(line))
            if len(reported) >= 300:
                break
        os.kill(writer.pid, signal.SIGKILL)
        # Whatever was printed before the kill was reported as logged too.
        reported.extend(int(line) for line in writer.stdout.read().split())
    finally:
        writer.kill()
        writer.wait(timeout=10)
        writer.stdout.close()
        assert writer.stderr is not None
        writer.stderr.close()
    assert writer.returncode == -signal.SIGKILL
    assert reported[:300] == list(range(1, 301))

    readings, next_seq = asyncio.run(_read_back(path))

    by_seq = {reading.seq: reading for reading in readings}
    for seq in reported:
        assert seq in by_seq, f"seq {seq} was reported as logged but is gone"
        assert by_seq[seq].temperature_c == (seq - 1) / 8
    assert [reading.seq for reading in readings] == list(range(1, len(readings) + 1))
    assert next_seq == len(readings) + 1 > max(reported)
