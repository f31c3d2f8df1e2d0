"""Where the files the tests read live: all inside the repository (see tests/fixtures/README.md for their origins)."""

from __future__ import annotations

from pathlib import Path

import coldchain

__all__ = ["BERLINGER", "EXAMPLE_PROFILES", "FIXTURES", "MKT_VECTORS", "OSMAND_VECTORS"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BERLINGER = FIXTURES / "loggers" / "berlinger"
OSMAND_VECTORS = FIXTURES / "osmand" / "vectors.json"
MKT_VECTORS = FIXTURES / "domain" / "mkt_vectors.json"
# The example stability profiles ship with the package (the demo loads them too).
EXAMPLE_PROFILES = Path(coldchain.__file__).resolve().parent / "examples" / "profiles.json"
