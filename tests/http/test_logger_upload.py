"""Logger files into a shipment's evidence, on each engine: the six real Berlinger exports through the upload
endpoint (raw body and multipart) and through ``coldchain import-logger``; malformed files refused whole with the
line number of the problem."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.cli import main
from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.http.app import create_app
from coldchain.settings import load_settings
from coldchain.storage import Store, open_store
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN, bearer, make_org, make_token
from tests.http.test_sync_api import assert_error
from tests.paths import BERLINGER
from tests.services.test_evaluation_ingest import World, make_world

QTAG = "qtag_clm_doc_lr_RCPJ00010_03_202304201359.txt"
FRIDGE_TAG_2L = "fridgetag2l_130500109088_202206081014.txt"
SUMMARY_ONLY = "fridgetag2_130400191544_202304201514.txt"

# What each export holds: readings (Data rows) and days (Hist blocks), counted on the files.
EXPORTS = {
    "fridgetag2_130400191542_202302140605.txt": (0, 60),
    SUMMARY_ONLY: (0, 4),
    FRIDGE_TAG_2L: (10_653, 38),
    "fridgetagul_100800001215_202304201410.txt": (841, 4),
    "qtag_clm_doc_lr_RCPJ00010_02_202211090128.txt": (124, 0),
    QTAG: (424, 0),
}

# The Fridge-tag 2 L's own limits (exclusive, 60 min single event) and the Q-tag's ΔH, logging every 5 min.
LOGGER_PROFILE = Profile(
    id="berlinger-fridge",
    name="2-8 °C as Berlinger devices judge it",
    label_range_c=(2.0, 8.0),
    logging_interval_max_min=5.0,
    mkt=MktSettings(activation_energy_kj_mol=83.0, window="shipment"),
    rules=(
        AlarmRule(name="hot", direction="above", threshold=8.0, inclusive=False, mode="consecutive",
                  delay_min=60, action="quarantine"),
        AlarmRule(name="cold", direction="below", threshold=2.0, inclusive=False, mode="consecutive",
                  delay_min=60, action="quarantine"),
    ),
)  # fmt: skip

Client = AsyncTestClient[Litestar]


@dataclass
class Api:
    client: Client
    world: World

    def call(self, function: Any, *args: Any) -> Any:
        return self.client.blocking_portal.call(function, self.client.app.state.store, *args)

    @property
    def upload_path(self) -> str:
        return f"/v1/shipments/{self.world.shipment.id}/logger-files"

    def token(self, organisation_id: int, role: Any) -> dict[str, str]:
        return bearer(self.call(make_token, organisation_id, role))


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN))
    async with AsyncTestClient(app) as client:
        world: World = client.blocking_portal.call(make_world, app.state.store, LOGGER_PROFILE)
        yield Api(client=client, world=world)


async def _held(store: Store, shipment_id: int, serial: str) -> dict[str, Any]:
    """What the store holds of a logger and the shipment's evidence."""
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        return {
            "files": await tx.logger_files(shipment_id),
            "tracker": tracker,
            "readings": await tx.count_readings(),
            "streams": await tx.evaluation_streams(shipment_id),
        }


def held(api: Api, serial: str) -> dict[str, Any]:
    result: dict[str, Any] = api.call(_held, api.world.shipment.id, serial)
    return result


def export(name: str) -> bytes:
    return (BERLINGER / name).read_bytes()


@pytest.mark.parametrize("name", sorted(EXPORTS))
async def test_each_real_export_becomes_readings_or_per_day_evidence_of_the_shipment(api: Api, name: str) -> None:
    readings, days = EXPORTS[name]
    logistics = api.token(api.world.shipper, "logistics")

    response = await api.client.post(
        f"{api.upload_path}?file_name={name}", content=export(name), headers={**logistics, "Content-Type": "text/plain"}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["new"], body["readings_new"], len(body["days"])) == (True, readings, days)
    assert (body["file"]["readings"], body["file"]["file_name"]) == (readings, name)
    status = (await api.client.get(f"/v1/shipments/{api.world.shipment.id}/status", headers=logistics)).json()
    assert (status["readings"], status["streams"]) == (readings, 1 if readings else 0)
    assert (body["file"]["tracker_serial"] is None) == (readings == 0)


async def test_the_qtag_run_is_judged_at_the_mkt_the_device_printed(api: Api) -> None:
    await api.client.post(api.upload_path, content=export(QTAG), headers=OPERATOR_HEADERS)

    status = (await api.client.get(f"/v1/shipments/{api.world.shipment.id}/status", headers=OPERATOR_HEADERS)).json()

    mkt = status["mkt"]["shipment_mkt_c"]
    assert round(mkt, 3) == 10.479  # the README's figure for these Data rows at ΔH 83.0 kJ/mol
    assert math.floor(mkt * 10) / 10 == 10.4  # the device prints "MKT: 10.4": it truncates
    assert status["readings"] == 424


async def test_the_fridge_tag_2l_import_reports_its_gap_and_keeps_the_devices_daily_figures(api: Api) -> None:
    response = await api.client.post(api.upload_path, content=export(FRIDGE_TAG_2L), headers=OPERATOR_HEADERS)

    days = {day["day"]: day for day in response.json()["days"]}
    hot = {day: next(b for b in entry["beyond"] if b["direction"] == "above") for day, entry in days.items()}
    assert (hot["2022-05-02"]["minutes"], hot["2022-05-03"]["minutes"]) == (42.0, 84.0)  # the device's t Acc
    assert (hot["2022-05-03"]["threshold_c"], hot["2022-05-03"]["delay_min"]) == (8.0, 60.0)
    status = (await api.client.get(f"/v1/shipments/{api.world.shipment.id}/status", headers=OPERATOR_HEADERS)).json()
    assert [gap["duration_min"] for gap in status["gaps"] if gap["duration_min"] > 300] == [352.0]
    assert status["disposition"]["recommendation"] == "quarantine"


async def test_a_summary_only_file_keeps_each_day_as_the_device_summarised_it(api: Api) -> None:
    response = await api.client.post(api.upload_path, content=export(SUMMARY_ONLY), headers=OPERATOR_HEADERS)

    assert response.status_code == 201, response.text
    days = {day["day"]: day for day in response.json()["days"]}
    april_18 = days["2023-04-18"]
    assert (april_18["min_c"], april_18["max_c"], april_18["mean_c"]) == (1.9, 8.5, 4.0)
    assert [(b["limit"], b["minutes"]) for b in april_18["beyond"]] == [
        ("cold consecutive -0.5 °C", 0.0),
        ("hot consecutive +8.0 °C", 2.0),
    ]
    assert held(api, "berlinger-130400191544")["tracker"] is None


async def test_a_multipart_upload_is_imported_with_its_file_name(api: Api) -> None:
    response = await api.client.post(
        api.upload_path, files={"file": (QTAG, export(QTAG), "text/plain")}, headers=OPERATOR_HEADERS
    )

    assert response.status_code == 201, response.text
    assert (response.json()["file"]["file_name"], response.json()["readings_new"]) == (QTAG, 424)


async def test_the_same_file_again_changes_nothing(api: Api) -> None:
    first = await api.client.post(api.upload_path, content=export(FRIDGE_TAG_2L), headers=OPERATOR_HEADERS)
    again = await api.client.post(api.upload_path, content=export(FRIDGE_TAG_2L), headers=OPERATOR_HEADERS)

    assert (first.status_code, again.status_code) == (201, 200)
    assert (again.json()["new"], again.json()["readings_new"]) == (False, 0)
    assert again.json()["file"] == first.json()["file"]
    state = held(api, "berlinger-130500109088")
    assert (len(state["files"]), state["readings"]) == (1, 10_653)


def _with_line(data: bytes, number: int, text: str) -> bytes:
    lines = data.split(b"\r\n")
    lines[number - 1] = text.encode()
    return b"\r\n".join(lines)


def _line_of(data: bytes, fragment: str) -> int:
    return next(n for n, line in enumerate(data.split(b"\r\n"), start=1) if fragment.encode() in line)


async def test_a_malformed_data_row_is_refused_with_its_line_and_nothing_is_kept(api: Api) -> None:
    original = export(FRIDGE_TAG_2L)
    number = _line_of(original, "2022-05-20 12:01")
    broken = _with_line(original, number, "\t2022-05-20 12:01\t+25,1\tx")

    response = await api.client.post(api.upload_path, content=broken, headers=OPERATOR_HEADERS)

    assert_error(response, 422, "invalid", f"line {number}:", "not a number")
    state = held(api, "berlinger-130500109088")
    assert (state["files"], state["tracker"], state["readings"], state["streams"]) == ([], None, 0, [])


async def test_a_truncated_file_is_refused_and_nothing_is_kept(api: Api) -> None:
    original = export(QTAG)
    cut = b"\r\n".join(original.split(b"\r\n")[:300])

    response = await api.client.post(api.upload_path, content=cut, headers=OPERATOR_HEADERS)

    assert_error(response, 422, "invalid", "line 301:", "truncated")
    state = held(api, "berlinger-RCPJ00010")
    assert (state["files"], state["tracker"], state["readings"]) == ([], None, 0)


async def test_only_parties_that_handle_the_goods_import_files(api: Api) -> None:
    auditor = api.token(api.world.shipper, "auditor")
    outsider = api.token(api.call(make_org, None, "carrier").id, "admin")

    refused = await api.client.post(api.upload_path, content=export(QTAG), headers=auditor)
    hidden = await api.client.post(api.upload_path, content=export(QTAG), headers=outsider)
    hidden_broken = await api.client.post(api.upload_path, content=b"not a logger", headers=outsider)
    carrier = await api.client.post(
        api.upload_path, content=export(QTAG), headers=api.token(api.world.carrier, "carrier")
    )

    assert_error(refused, 403, "forbidden")
    assert_error(hidden, 404, "not_found")
    assert_error(hidden_broken, 404, "not_found")
    assert carrier.status_code == 201, carrier.text
    assert_error(await api.client.post(api.upload_path, content=export(QTAG)), 401, "unauthenticated")


async def test_a_clock_offset_beyond_fourteen_hours_is_refused(api: Api) -> None:
    response = await api.client.post(
        f"{api.upload_path}?utc_offset_min=900", content=export(QTAG), headers=OPERATOR_HEADERS
    )

    assert_error(response, 422, "invalid", "utc_offset_min")


# --- coldchain import-logger --------------------------------------------------------------------------------


async def _cli_world(database_url: str) -> World:
    store = await open_store(database_url, pool_size=1)
    try:
        return await make_world(store, LOGGER_PROFILE)
    finally:
        await store.close()


async def _cli_held(database_url: str, shipment_id: int) -> tuple[int, int]:
    store = await open_store(database_url, pool_size=1)
    try:
        async with store.transaction() as tx:
            return len(await tx.logger_files(shipment_id)), await tx.count_readings()
    finally:
        await store.close()


def test_the_cli_imports_a_real_file_and_refuses_a_broken_one_whole(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = asyncio.run(_cli_world(database_url))
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", database_url)
    broken = tmp_path / "broken.txt"
    broken.write_bytes(_with_line(export(QTAG), 3, "Fw Vers"))
    shipment = str(world.shipment.id)

    imported = main(["import-logger", str(BERLINGER / FRIDGE_TAG_2L), "--shipment", shipment])
    out = capsys.readouterr().out
    refused = main(["import-logger", str(broken), "--shipment", shipment])
    err = capsys.readouterr().err
    missing = main(["import-logger", str(BERLINGER / QTAG), "--shipment", "999999"])

    assert imported == 0
    assert "10653 readings (10653 new), 38 days" in out
    assert refused == 1
    assert f"{broken}: line 3:" in err
    assert missing == 1
    assert asyncio.run(_cli_held(database_url, world.shipment.id)) == (1, 10_653)
