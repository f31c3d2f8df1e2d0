"""The raw-data exports through the real app: the readings CSV is the bytes the investigation's digest covers,
the same on every export and on both engines; it streams a large shipment; quarantined readings carry reasons."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.access import OPERATOR
from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.services import exports
from coldchain.services.exports import READINGS_PAGE
from coldchain.settings import load_settings
from coldchain.storage import open_store
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.http.test_sync_api import sign
from tests.http.test_tenancy_api import new_org, new_token

Client = AsyncTestClient[Litestar]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=6)
CET = timezone(timedelta(hours=1))


async def delivered_shipment(client: Client) -> tuple[int, dict[str, str], dict[str, str]]:
    """A shipment of a fridge product with one tracker's readings synced, one of them quarantined; the shipper's
    logistics token and an auditor of another organisation."""
    fridge = next(
        p for p in json.loads(PROFILES_JSON.read_text(encoding="utf-8"))["profiles"] if p["id"] == FRIDGE_PROFILE
    )
    assert (await client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).status_code in (200, 201)
    shipper, carrier = await new_org(client, "Shipper"), await new_org(client, "Carrier", "carrier")
    outsider = await new_org(client, "Other shipper")
    logistics = bearer(await new_token(client, shipper, "logistics"))
    product = (
        await client.post("/v1/products", json={"name": "Vaccine", "profile_id": FRIDGE_PROFILE}, headers=logistics)
    ).json()
    shipment = {
        "reference": "SHP-1",
        "product_id": product["id"],
        "quantity": 10,
        "origin": {"name": "Berlin hub", "lat": 52.52, "lon": 13.405},
        "destination": {"name": "Munich pharmacy", "lat": 48.137, "lon": 11.575},
        "legs": [{"carrier_id": carrier, "mode": "road"}],
    }
    created = await client.post("/v1/shipments", json=shipment, headers=logistics)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    secret = (await client.post("/v1/trackers", json={"serial": "TRK-1"}, headers=logistics)).json()["secret"]
    assigned = await client.post(
        f"/v1/shipments/{sid}/trackers", json={"serial": "TRK-1", "starts_at": START.isoformat()}, headers=logistics
    )
    assert assigned.status_code == 201, assigned.text
    readings = [
        {
            "seq": n,
            "device_time": (START + timedelta(minutes=5 * n)).astimezone(CET).isoformat(),
            "temperature_c": round(4.0 + n / 7, 3),
            "humidity_pct": 40.5 if n % 2 else None,
            "latitude": round(52.52 - n * 0.01, 5),
            "longitude": round(13.405 - n * 0.001, 5),
            "battery_pct": round(99.0 - n / 10, 1),
        }
        for n in range(1, 61)
    ]
    readings[9]["latitude"] = 95.0  # impossible: quarantined
    body = json.dumps({"readings": readings}).encode()
    synced = await client.post(
        "/v1/trackers/TRK-1/sync",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": sign(body, secret)},
    )
    assert synced.status_code == 200, synced.text
    assert synced.json()["quarantined"] == 1
    return sid, logistics, bearer(await new_token(client, outsider, "auditor"))


async def app_client(url: str) -> AsyncIterator[Client]:
    app = create_app(load_settings({}, database_url=url, admin_token=OPERATOR_TOKEN), clock=lambda: NOW)
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async for client in app_client(database_url):
        yield client


async def test_the_readings_csv_is_what_the_investigation_digest_covers_and_the_same_on_every_export(
    client: Client,
) -> None:
    sid, logistics, outsider = await delivered_shipment(client)

    first = await client.get(f"/v1/shipments/{sid}/readings.csv", headers=logistics)
    again = await client.get(f"/v1/shipments/{sid}/readings.csv", headers=logistics)

    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="shipment-' in first.headers["content-disposition"]
    assert first.content == again.content
    digest = hashlib.sha256(first.content).hexdigest()
    investigation = (await client.get(f"/v1/shipments/{sid}/investigation", headers=logistics)).json()
    assert investigation["integrity"]["readings_sha256"] == digest
    assert investigation["snapshot"]["readings"]["sha256"] == digest
    published = await client.get(f"/v1/shipments/{sid}/readings.csv.sha256", headers=logistics)
    assert published.text == f"{digest}  shipment-{sid}-readings.csv\n"

    rows = list(csv.reader(io.StringIO(first.content.decode(), newline="")))
    assert rows[0][:6] == [
        "tracker",
        "seq",
        "device_time_utc",
        "utc_offset_min",
        "device_time_local",
        "received_at_utc",
    ]
    assert len(rows) == 1 + 59, "every stored reading once; the quarantined one is not among them"
    assert rows[1] == [
        "TRK-1", "1", "2026-03-01T06:05:00.000000Z", "60", "2026-03-01T07:05:00.000000+01:00",
        "2026-03-01T12:00:00.000000Z", "4.143", "40.5", "", "52.51", "13.404", "98.9",
    ]  # fmt: skip
    assert first.content.count(b"\r\n") == 60
    for path in ("readings.csv", "readings.csv.sha256", "quarantined.csv"):
        assert (await client.get(f"/v1/shipments/{sid}/{path}", headers=outsider)).status_code == 404


async def test_quarantined_readings_have_their_own_csv_with_the_reasons(client: Client) -> None:
    sid, logistics, _ = await delivered_shipment(client)

    found = await client.get(f"/v1/shipments/{sid}/quarantined.csv", headers=logistics)

    assert found.status_code == 200, found.text
    rows = list(csv.DictReader(io.StringIO(found.content.decode(), newline="")))
    assert [(row["tracker"], row["seq"], row["latitude"]) for row in rows] == [("TRK-1", "10", "95.0")]
    assert "latitude" in rows[0]["reason"]


async def test_the_same_readings_export_the_same_bytes_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_database: str
) -> None:
    exported = []
    for url in (f"sqlite:///{tmp_path / 'export.db'}", postgres_database):
        async for client in app_client(url):
            sid, logistics, _ = await delivered_shipment(client)
            exported.append(
                [
                    (await client.get(f"/v1/shipments/{sid}/{path}", headers=logistics)).content
                    for path in ("readings.csv", "quarantined.csv")
                ]
            )
    assert exported[0] == exported[1]
    assert exported[0][0].count(b"\r\n") == 60


async def test_a_large_shipment_streams_whole_in_pages(client: Client, database_url: str) -> None:
    sid, logistics, _ = await delivered_shipment(client)
    store = await open_store(database_url, pool_size=1)
    try:
        async with store.transaction() as tx:
            tracker = await tx.get_tracker("TRK-1")
            assert tracker is not None
            readings = [
                Reading(seq=n, device_time=START + timedelta(seconds=n), temperature_c=5.0 + (n % 7) / 8)
                for n in range(1_000, 21_000)
            ]
            await tx.insert_readings(tracker.id, readings, received_at=NOW)

        chunks = [len(chunk) async for chunk in await exports.readings_csv(store, OPERATOR, sid)]
    finally:
        await store.close()
    response = await client.get(f"/v1/shipments/{sid}/readings.csv", headers=logistics)
    published = (await client.get(f"/v1/shipments/{sid}/readings.csv.sha256", headers=logistics)).text

    assert len(chunks) == 1 + -(-(59 + 20_000) // READINGS_PAGE), "the header, then one chunk per page"
    assert max(chunks) < len(response.content) / 5
    assert "content-length" not in response.headers, "streamed, not built whole"
    assert response.content.count(b"\r\n") == 1 + 59 + 20_000
    assert published.split()[0] == hashlib.sha256(response.content).hexdigest()
