"""``coldchain verify FILE [--key KEY]``: check a certificate offline, with nothing but a public key.

- A JSON certificate: the Ed25519 signature over the RFC 8785 bytes of its ``certificate`` member, with the key
  its ``kid`` names among the keys given (a PEM public key, or a JWKS such as ``/.well-known/coldchain-keys``).
- A PDF certificate: its PAdES signature is intact and covers the whole file (nothing added after signing), the
  signer is named, and the JSON form attached to it verifies as above and names the same certificate.

Each check is one line of the statement; the exit status is 0 when every check holds, else 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coldchain.keys import KeyFileError, KeyStatus, public_keys_from, verify_signed_json

__all__ = ["verify_file"]


def verify_file(path: Path, key: Path | None) -> tuple[bool, list[str]]:
    """Whether the certificate in ``path`` verifies, and what was checked, one statement per line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return False, [f"cannot read {path}: {exc.strerror}"]
    keys = None
    if key is not None:
        try:
            keys = public_keys_from(key.read_bytes())
        except OSError as exc:
            return False, [f"cannot read the key {key}: {exc.strerror}"]
        except KeyFileError as exc:
            return False, [f"the key {key} is not usable: {exc}"]
    if data.startswith(b"%PDF-"):
        return _verify_pdf(data, keys)
    if keys is None:
        return False, ["a JSON certificate is verified with a public key: give --key (a PEM public key or a JWKS)"]
    verdict = verify_signed_json(data, keys)
    return verdict.valid, [verdict.statement]


def _verify_pdf(data: bytes, keys: dict[str, tuple[Ed25519PublicKey, KeyStatus]] | None) -> tuple[bool, list[str]]:
    from coldchain.documents.signing import verify_pdf

    verdict = verify_pdf(data)
    lines: list[str] = []
    if verdict.ok:
        signer = ", ".join(part for part in (verdict.signer_common_name, verdict.signer_organisation) if part)
        when = "an unstated time" if verdict.signed_at is None else verdict.signed_at.isoformat()
        lines.append(
            f"PDF signature intact and valid, covering the whole file; signed by {signer or 'an unnamed signer'}"
            f" at {when} (signing certificate SHA-256 {verdict.certificate_sha256})"
            + ("" if verdict.trusted else "; that certificate is not from an authority given as trusted")
        )
    else:
        problem = verdict.problem or (
            f"{verdict.signatures} signature(s), intact {verdict.intact}, valid {verdict.valid},"
            f" coverage {verdict.coverage}"
        )
        lines.append(f"the PDF signature does not hold: {problem}")
    forms = {name: body for name, body in verdict.attachments.items() if name.endswith(".json")}
    if len(forms) != 1:
        return False, [*lines, f"expected one attached JSON form, found {len(forms)}"]
    [(name, attachment)] = forms.items()
    if keys is None:
        return False, [*lines, "the attached JSON form is verified with a public key: give --key"]
    json_verdict = verify_signed_json(attachment, keys)
    lines.append(f"attached JSON form {name}: {json_verdict.statement}")
    named = certificate_id_of(attachment)
    matches = named is not None and name == f"certificate-{named}.json"
    if not matches:
        lines.append(f"the attached JSON form names certificate {named}, not the one {name} names")
    return verdict.ok and json_verdict.valid and matches, lines


def certificate_id_of(data: bytes) -> str | None:
    try:
        value = json.loads(data)["certificate"]["certificate_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None
