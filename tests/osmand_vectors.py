"""The shared OsmAnd test vectors (``tests/fixtures/osmand/vectors.json``), typed, loaded once.

Used by the decoder's tests (tests/domain/test_osmand.py) and the end-to-end ones (tests/http/test_osmand_api.py).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from tests.paths import OSMAND_VECTORS

__all__ = ["ALL_VECTORS", "VECTORS", "VECTORS_PATH", "VECTOR_IDS", "Vector", "Vectors"]

VECTORS_PATH = OSMAND_VECTORS


class Vector(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One case of vectors.json; an unknown key fails loudly rather than going unchecked."""

    expect: str
    request: str | None = None
    body: dict[str, object] | None = None
    device: str | None = None
    lat: float | None = None
    lon: float | None = None
    time_utc: datetime | None = None
    speed_kmh: float | None = None
    battery_pct: float | None = None
    temperature_c: float | None = None
    humidity_pct: float | None = None

    @property
    def accepted(self) -> bool:
        return self.expect.startswith("accepted")


class Vectors(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    about: str
    query: list[Vector]
    json: list[Vector]


VECTORS = msgspec.json.decode(VECTORS_PATH.read_bytes(), type=Vectors)

ALL_VECTORS = [*VECTORS.query, *VECTORS.json]
"""Every vector, the query form first; for ``pytest.mark.parametrize("vector", ALL_VECTORS, ids=VECTOR_IDS)``."""
VECTOR_IDS = [f"query-{index}" for index in range(len(VECTORS.query))] + [
    f"json-{index}" for index in range(len(VECTORS.json))
]
