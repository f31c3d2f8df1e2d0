"""Where the files the tests read live: all inside the repository (see tests/fixtures/README.md for their origins)."""

from __future__ import annotations

from pathlib import Path

import coldchain

__all__ = ["BERLINGER", "CITUS_PLAN", "EXAMPLE_PROFILES", "FIXTURES", "MKT_VECTORS", "OSMAND_VECTORS"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BERLINGER = FIXTURES / "loggers" / "berlinger"
OSMAND_VECTORS = FIXTURES / "osmand" / "vectors.json"
MKT_VECTORS = FIXTURES / "domain" / "mkt_vectors.json"
# How every table is placed on Citus (the operator's statements, which the schema check reads).
CITUS_PLAN = Path(__file__).resolve().parents[1] / "ops" / "citus" / "distribution.sql"
# The example stability profiles ship with the package (the demo loads them too).
EXAMPLE_PROFILES = Path(coldchain.__file__).resolve().parent / "examples" / "profiles.json"
