"""Where the engine module comes from: compiled by mypyc when a build of the current source exists, else the source.

``ops/compile-engine`` (run by ``make``) compiles :mod:`coldchain.domain.evaluation.engine` into ``.build/engine/``
at the repository's root, with the SHA-256 of the source it was made from. The package then looks there first for
its modules, but only while that digest is the source's: an edited ``engine.py`` is used as it is until it is
compiled again, never an older build. The build is the same code, about twice as fast (the sync benchmarks judge
every reading with it); ``COLDCHAIN_ENGINE=python`` keeps the source.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["BUILD", "compiled_engine"]

_PACKAGE = Path(__file__).resolve().parent
BUILD = _PACKAGE.parents[2] / ".build" / "engine"
"""The compiled engine's folder: ``.build/engine`` beside ``coldchain/`` (a checkout has it, an installed wheel
does not)."""


def compiled_engine() -> Path | None:
    """The folder of a compiled engine made from the current ``engine.py``, if there is one and it may be used."""
    if os.environ.get("COLDCHAIN_ENGINE", "").strip().lower() == "python":
        return None
    digest = BUILD / "engine.sha256"
    if not digest.is_file():
        return None
    source = hashlib.sha256((_PACKAGE / "engine.py").read_bytes()).hexdigest()
    return BUILD if digest.read_text().strip() == source else None
