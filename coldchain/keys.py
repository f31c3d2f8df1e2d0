"""The keys that sign certificates, and the signed JSON form.

- **JSON form:** Ed25519 (RFC 8032). A key is named by its key id, the RFC 7638 thumbprint of its public key as a
  JWK (``{"crv":"Ed25519","kty":"OKP","x":"..."}``, SHA-256, base64url). The signature covers the RFC 8785 (JCS)
  canonical bytes of the document's ``certificate`` member. Public keys are published as a JWKS
  (``/.well-known/coldchain-keys``), the current one and every retired one, so a rotation never makes an issued
  certificate unverifiable.
- **PDF form:** a PAdES signature made with a PKCS#12 file (certificate and key); for pilots,
  ``coldchain keys generate`` writes a self-signed one.

``coldchain keys generate --dir DIR`` writes ``DIR/signing-<kid>.pem`` (the private key, mode 0600),
``DIR/pdf-signer.p12`` (mode 0600, unless one is there) and ``DIR/published-keys.json`` (the JWKS; an existing file
keeps its keys, marked retired). Verifying needs only a public key: :func:`verify_signed_json`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coldchain.domain.certificate import SIGNATURE_ALGORITHM, b64url, b64url_decode, signing_input
from coldchain.settings import Settings

__all__ = [
    "JsonVerdict",
    "KeyFileError",
    "KeyRing",
    "KeyStatus",
    "generate_keys",
    "jwk_of",
    "key_id",
    "load_keyring",
    "public_keys_from",
    "sign_json",
    "verify_signed_json",
]

KeyStatus = Literal["current", "retired"]


class KeyFileError(ValueError):
    """A key file that cannot be read, or a key set that holds no usable key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint of an Ed25519 public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(members.encode()).digest())


def jwk_of(public_key: Ed25519PublicKey, status: KeyStatus = "current") -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(raw),
        "kid": key_id(public_key),
        "use": "sig",
        "alg": SIGNATURE_ALGORITHM,
        "status": status,
    }


@dataclass(frozen=True)
class KeyRing:
    """The service's signing key (``None`` without one) and every published public key by key id."""

    signing_key: Ed25519PrivateKey | None
    published: dict[str, tuple[Ed25519PublicKey, KeyStatus]]

    @property
    def current_kid(self) -> str | None:
        return None if self.signing_key is None else key_id(self.signing_key.public_key())

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [jwk_of(key, status) for key, status in self.published.values()]}


def _private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: an Ed25519 private key is needed, this is {type(key).__name__}")
    return key


def public_keys_from(data: bytes) -> dict[str, tuple[Ed25519PublicKey, KeyStatus]]:
    """Public keys by key id from a JWKS document or a PEM public key."""
    text = data.decode(errors="replace").strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"an Ed25519 public key is needed, this is {type(key).__name__}")
        return {key_id(key): (key, "current")}
    try:
        document = json.loads(text)
        entries = document["keys"] if isinstance(document, dict) and "keys" in document else [document]
        keys: dict[str, tuple[Ed25519PublicKey, KeyStatus]] = {}
        for entry in entries:
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                continue
            key = Ed25519PublicKey.from_public_bytes(b64url_decode(entry["x"]))
            status: KeyStatus = "retired" if entry.get("status") == "retired" else "current"
            keys[key_id(key)] = (key, status)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"not a JWKS document or a JWK ({exc})") from None
    if not keys:
        raise KeyFileError("the key set holds no Ed25519 key")
    return keys


def load_keyring(settings: Settings) -> KeyRing:
    """The keys the settings name; an unreadable file stops start-up with a message naming it."""
    signing = None if settings.signing_key_file is None else _private_key(Path(settings.signing_key_file))
    published: dict[str, tuple[Ed25519PublicKey, KeyStatus]] = {}
    if settings.published_keys_file is not None:
        path = Path(settings.published_keys_file)
        try:
            published = public_keys_from(path.read_bytes())
        except OSError as exc:
            raise KeyFileError(f"{path}: {exc.strerror}") from None
    if signing is not None:
        published = {kid: (key, "retired") for kid, (key, _) in published.items()}
        published[key_id(signing.public_key())] = (signing.public_key(), "current")
    return KeyRing(signing_key=signing, published=published)


def sign_json(content: Any, signing_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed JSON form of ``content`` (plain JSON values): ``{"certificate": ..., "signature": {...}}``."""
    signature = signing_key.sign(signing_input(content))
    return {
        "certificate": content,
        "signature": {
            "alg": SIGNATURE_ALGORITHM,
            "crv": "Ed25519",
            "kid": key_id(signing_key.public_key()),
            "canonicalization": "RFC 8785",
            "value": b64url(signature),
        },
    }


class JsonVerdict(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    statement: str
    """What was verified, or why it failed, in one sentence a person reads."""
    kid: str | None = None
    key_status: KeyStatus | None = None


def verify_signed_json(data: bytes, keys: dict[str, tuple[Ed25519PublicKey, KeyStatus]]) -> JsonVerdict:
    """Verify a certificate's JSON form with the public keys given (by key id)."""
    try:
        document = json.loads(data)
        content, block = document["certificate"], document["signature"]
        kid, value = block["kid"], block["value"]
        if (block.get("alg"), block.get("crv"), block.get("canonicalization")) != (
            SIGNATURE_ALGORITHM,
            "Ed25519",
            "RFC 8785",
        ):
            return JsonVerdict(valid=False, statement=f"unsupported signature scheme {block!r}")
    except (ValueError, KeyError, TypeError):
        return JsonVerdict(valid=False, statement="not a signed certificate: no 'certificate' and 'signature' members")
    found = keys.get(kid)
    if found is None:
        return JsonVerdict(valid=False, statement=f"signed with key {kid}, which is not among the keys given", kid=kid)
    key, status = found
    try:
        key.verify(b64url_decode(value), signing_input(content))
    except (InvalidSignature, ValueError):
        return JsonVerdict(
            valid=False,
            statement=f"the signature does not match the content: the certificate was altered or not signed by {kid}",
            kid=kid,
            key_status=status,
        )
    subject = content.get("certificate_id", "?") if isinstance(content, dict) else "?"
    return JsonVerdict(
        valid=True,
        statement=f"certificate {subject} verified: Ed25519 signature over its RFC 8785 bytes by key {kid} ({status})",
        kid=kid,
        key_status=status,
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@dataclass(frozen=True)
class GeneratedKeys:
    signing_key_file: Path
    published_keys_file: Path
    pdf_signer_file: Path
    kid: str
    pdf_signer_new: bool


def generate_keys(folder: Path, *, pdf_signer: bytes | None) -> GeneratedKeys:
    """A new signing key in ``folder``; earlier published keys stay in the JWKS, retired. ``pdf_signer`` (a
    PKCS#12, e.g. a pilot's self-signed one) is written unless the folder has one."""
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())
    key_file = folder / f"signing-{kid}.pem"
    _write_private(
        key_file,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    jwks_file = folder / "published-keys.json"
    keys: dict[str, tuple[Ed25519PublicKey, KeyStatus]] = {}
    if jwks_file.exists():
        keys = {k: (v, "retired") for k, (v, _) in public_keys_from(jwks_file.read_bytes()).items()}
    keys[kid] = (key.public_key(), "current")
    document = {"keys": [jwk_of(public, status) for public, status in keys.values()]}
    jwks_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    pdf_file = folder / "pdf-signer.p12"
    new = not pdf_file.exists() and pdf_signer is not None
    if new and pdf_signer is not None:
        _write_private(pdf_file, pdf_signer)
    return GeneratedKeys(
        signing_key_file=key_file, published_keys_file=jwks_file, pdf_signer_file=pdf_file, kid=kid, pdf_signer_new=new
    )
