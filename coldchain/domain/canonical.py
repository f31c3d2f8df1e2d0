"""The one canonical JSON form of the service: keys sorted, no whitespace, UTF-8 (msgspec's encoder with
``order="sorted"``). Hashes (custody events, the audit chain) and stored documents are computed over these bytes,
so equal content always gives equal bytes, whatever order its fields were built in.

It is not RFC 8785 (JCS) byte for byte: numbers keep msgspec's shortest round-trip form and non-ASCII text is not
escaped; signed certificates that promise JCS need their own encoder.
"""

from __future__ import annotations

import msgspec

__all__ = ["canonical_json", "canonical_text"]

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: object) -> bytes:
    """``value`` (builtins, msgspec Structs, datetimes) as canonical JSON bytes."""
    return _encoder.encode(value)


def canonical_text(value: object) -> str:
    """:func:`canonical_json` as text, for a text column."""
    return _encoder.encode(value).decode()
