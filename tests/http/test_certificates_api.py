"""Shipment certificates through the real app, on each storage engine: the JSON form signed with Ed25519 over its
RFC 8785 bytes and verified offline (by our code, by `coldchain verify` as a process, and by the openssl command
line), key rotation, drafts, tampering, and who may read a certificate."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pypdf
import pytest
import rfc8785
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.documents.signing import make_pilot_signer
from coldchain.domain.access import Role
from coldchain.http.app import create_app
from coldchain.keys import generate_keys, public_keys_from, verify_signed_json
from coldchain.settings import load_settings
from tests.factories import OPERATOR_TOKEN, bearer, make_token
from tests.http.test_status_api import _serial, synced
from tests.http.test_sync_api import assert_error
from tests.services.test_evaluation_ingest import TRIP, World, log, make_world

Client = AsyncTestClient[Litestar]


@dataclass
class Office:
    client: Client
    world: World
    serial: str
    keys: Path

    def token(self, organisation_id: int, role: Role) -> dict[str, str]:
        store = self.client.app.state.store
        return bearer(self.client.blocking_portal.call(make_token, store, organisation_id, role))


def app_with_keys(database_url: str, keys: Path) -> Litestar:
    signing = sorted(keys.glob("signing-*.pem"), key=lambda path: path.stat().st_mtime)[-1]
    return create_app(
        load_settings(
            {},
            database_url=database_url,
            admin_token=OPERATOR_TOKEN,
            signing_key_file=str(signing),
            published_keys_file=str(keys / "published-keys.json"),
            pdf_signer_file=str(keys / "pdf-signer.p12"),
        )
    )


@pytest.fixture
async def office(database_url: str, tmp_path: Path) -> AsyncIterator[Office]:
    keys = tmp_path / "keys"
    generate_keys(keys, pdf_signer=make_pilot_signer("coldchain tests", "Pharmacy QA"))
    app = app_with_keys(database_url, keys)
    async with AsyncTestClient(app) as client:
        world: World = client.blocking_portal.call(make_world, app.state.store)
        serial: str = client.blocking_portal.call(_serial, app.state.store, world.tracker_id)
        office = Office(client=client, world=world, serial=serial, keys=keys)
        await synced(office, log(TRIP))  # type: ignore[arg-type]
        yield office


async def deliver(office: Office) -> None:
    logistics = office.token(office.world.shipper, "logistics")
    for status in ("in_transit", "delivered"):
        moved = await office.client.post(
            f"/v1/shipments/{office.world.shipment.id}/status", json={"status": status}, headers=logistics
        )
        assert moved.status_code == 200, moved.text


async def certificate_of(office: Office, role: Role = "auditor") -> bytes:
    response = await office.client.get(
        f"/v1/shipments/{office.world.shipment.id}/certificate", headers=office.token(office.world.receiver, role)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.content


async def test_an_auditor_gets_a_certificate_that_verifies_with_the_published_keys(office: Office) -> None:
    await deliver(office)
    data = await certificate_of(office)
    jwks = (await office.client.get("/.well-known/coldchain-keys")).content

    verdict = verify_signed_json(data, public_keys_from(jwks))

    assert verdict.valid, verdict.statement
    certificate = json.loads(data)["certificate"]
    assert certificate["draft"] is False
    assert certificate["identification"]["shipment_id"] == office.world.shipment.id
    assert certificate["integrity"]["readings"] == len(TRIP)
    assert certificate["integrity"]["key_id"] == verdict.kid
    assert certificate["recommendation"]["recommendation"] == "reject"
    assert [rule["rule"] for rule in certificate["rules"]] == ["above 25", "heat", "budget"]


async def test_a_shipment_in_transit_gets_a_draft_only(office: Office) -> None:
    certificate = json.loads(await certificate_of(office))["certificate"]

    assert certificate["draft"] is True


async def test_one_changed_byte_the_wrong_key_and_an_unknown_key_id_are_each_refused(
    office: Office, tmp_path: Path
) -> None:
    await deliver(office)
    data = await certificate_of(office)
    keys = public_keys_from((office.keys / "published-keys.json").read_bytes())
    document = json.loads(data)
    document["certificate"]["integrity"]["readings"] += 1
    altered = json.dumps(document).encode()
    other = tmp_path / "other"
    generate_keys(other, pdf_signer=None)
    other_keys = public_keys_from((other / "published-keys.json").read_bytes())
    [(kid, _)] = keys.items()
    [(other_kid, (other_key, _))] = other_keys.items()

    assert not verify_signed_json(altered, keys).valid
    assert "altered" in verify_signed_json(altered, keys).statement
    unknown = verify_signed_json(data, other_keys)
    assert not unknown.valid and kid in unknown.statement and "not among the keys" in unknown.statement
    wrong_key = verify_signed_json(data, {kid: (other_key, "current")})
    assert not wrong_key.valid, "the right key id with another key's bytes"
    assert other_kid != kid


async def test_after_a_rotation_a_certificate_signed_with_the_retired_key_still_verifies(
    office: Office, database_url: str
) -> None:
    await deliver(office)
    before = await certificate_of(office)
    generate_keys(office.keys, pdf_signer=None)  # a new current key; the old one stays published, retired

    async with AsyncTestClient(app_with_keys(database_url, office.keys)) as rotated:
        jwks = (await rotated.get("/.well-known/coldchain-keys")).json()
        statuses = sorted(key["status"] for key in jwks["keys"])
        keys = public_keys_from(json.dumps(jwks).encode())
        verdict = verify_signed_json(before, keys)

    assert statuses == ["current", "retired"]
    assert verdict.valid and verdict.key_status == "retired", verdict.statement


async def test_another_organisation_gets_404_and_no_key_configured_gives_503(office: Office, database_url: str) -> None:
    path = f"/v1/shipments/{office.world.shipment.id}/certificate"
    store = office.client.app.state.store

    async def stranger() -> int:
        from tests.factories import make_org

        return (await make_org(store)).id

    stranger_id = office.client.blocking_portal.call(stranger)
    assert_error(await office.client.get(path, headers=office.token(stranger_id, "auditor")), 404, "not_found")
    async with AsyncTestClient(create_app(load_settings({}, database_url=database_url))) as keyless:
        token = bearer(
            keyless.blocking_portal.call(make_token, keyless.app.state.store, office.world.receiver, "auditor")
        )
        assert_error(await keyless.get(path, headers=token), 503, "unavailable", "COLDCHAIN_SIGNING_KEY_FILE")


async def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=False)


def _split(data: bytes, folder: Path) -> tuple[Path, Path, Path]:
    """The canonical bytes, the raw signature and the public key as PEM, as files for another tool."""
    document = json.loads(data)
    canonical = folder / "certificate.jcs"
    canonical.write_bytes(rfc8785.dumps(document["certificate"]))
    value = document["signature"]["value"]
    signature = folder / "certificate.sig"
    signature.write_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return canonical, signature, folder / "public.pem"


async def test_the_openssl_command_line_verifies_the_json_certificate_as_the_readme_shows(
    office: Office, tmp_path: Path
) -> None:
    await deliver(office)
    data = await certificate_of(office)
    canonical, signature, public_pem = _split(data, tmp_path)
    [(_, (key, _))] = public_keys_from((office.keys / "published-keys.json").read_bytes()).items()
    from cryptography.hazmat.primitives import serialization

    public_pem.write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public_pem), "-rawin"]

    good = await run([*command, "-in", str(canonical), "-sigfile", str(signature)])
    canonical.write_bytes(canonical.read_bytes().replace(b'"draft":false', b'"draft":true'))
    bad = await run([*command, "-in", str(canonical), "-sigfile", str(signature)])

    assert good.returncode == 0 and "Signature Verified Successfully" in good.stdout, good.stdout + good.stderr
    assert bad.returncode != 0


async def test_coldchain_verify_as_a_process_says_what_it_verified_and_exits_by_the_verdict(
    office: Office, tmp_path: Path
) -> None:
    await deliver(office)
    good = tmp_path / "certificate.json"
    good.write_bytes(await certificate_of(office))
    bad = tmp_path / "altered.json"
    bad.write_bytes(good.read_bytes().replace(b'"draft": false', b'"draft": true'))
    jwks = tmp_path / "keys.json"
    jwks.write_bytes((await office.client.get("/.well-known/coldchain-keys")).content)

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "coldchain", "verify", *args], capture_output=True, text=True)

    verified, altered, keyless = (
        verify(str(good), "--key", str(jwks)),
        verify(str(bad), "--key", str(jwks)),
        verify(str(good)),
    )

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("VERIFIED") and "Ed25519 signature over its RFC 8785 bytes" in verified.stdout
    assert altered.returncode == 1 and altered.stdout.startswith("NOT VERIFIED") and "altered" in altered.stdout
    assert keyless.returncode == 1 and "--key" in keyless.stdout


async def test_the_signed_pdf_verifies_as_a_process_and_a_byte_appended_or_changed_is_caught(
    office: Office, tmp_path: Path
) -> None:
    await deliver(office)
    response = await office.client.get(
        f"/v1/shipments/{office.world.shipment.id}/certificate.pdf",
        headers=office.token(office.world.receiver, "auditor"),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    signed = tmp_path / "certificate.pdf"
    signed.write_bytes(response.content)
    appended = tmp_path / "appended.pdf"
    appended.write_bytes(response.content + b"\n% added after signing\n")
    changed = tmp_path / "changed.pdf"
    at = response.content.index(b"/Type /Page") if b"/Type /Page" in response.content else len(response.content) // 3
    changed.write_bytes(response.content[:at] + response.content[at:].replace(b"/Type /Page", b"/Type /Pagf", 1))
    jwks = tmp_path / "keys.json"
    jwks.write_bytes((await office.client.get("/.well-known/coldchain-keys")).content)

    def verify(path: Path) -> list[str]:
        return [sys.executable, "-m", "coldchain", "verify", str(path), "--key", str(jwks)]

    good, added, altered = await run(verify(signed)), await run(verify(appended)), await run(verify(changed))

    assert good.returncode == 0, good.stdout + good.stderr
    assert "covering the whole file" in good.stdout and "coldchain tests" in good.stdout
    assert "attached JSON form certificate-" in good.stdout and "verified" in good.stdout
    assert added.returncode == 1 and "does not hold" in added.stdout, added.stdout
    assert altered.returncode == 1 and altered.stdout.startswith("NOT VERIFIED"), altered.stdout
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages)
    assert "Shipment certificate" in text and "DRAFT" not in text
