"""Where the engine's modules come from: compiled by mypyc when a build of the current sources exists, else the
sources.

``ops/compile-engine`` (run by ``make``) compiles :mod:`~coldchain.domain.evaluation.engine` and the rules' state
machine it drives, :mod:`~coldchain.domain.evaluation.rule_tracker`, into ``.build/engine/`` at the repository's
root, with a SHA-256 of the sources it was made from (:func:`source_digest`). The package then looks there first
for its modules, but only while that digest is the sources': an edited module is used as it is until it is
compiled again, never an older build. The build is the same code, about twice as fast (the sync benchmarks judge
every reading with it); ``COLDCHAIN_ENGINE=python`` keeps the sources.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["BUILD", "COMPILED", "compiled_engine", "source_digest"]

_PACKAGE = Path(__file__).resolve().parent
BUILD = _PACKAGE.parents[2] / ".build" / "engine"
"""The compiled engine's folder: ``.build/engine`` beside ``coldchain/`` (a checkout has it, an installed wheel
does not)."""


COMPILED = ("engine", "rule_tracker")
"""The package's modules the build holds."""


def source_digest() -> str:
    """The SHA-256 of the compiled modules' sources: each one's file name and text in turn."""
    digest = hashlib.sha256()
    for name in COMPILED:
        digest.update(f"{name}.py\0".encode())
        digest.update((_PACKAGE / f"{name}.py").read_bytes())
    return digest.hexdigest()


def compiled_engine() -> Path | None:
    """The folder of a compiled engine made from the current sources, if there is one and it may be used."""
    if os.environ.get("COLDCHAIN_ENGINE", "").strip().lower() == "python":
        return None
    digest = BUILD / "engine.sha256"
    if not digest.is_file():
        return None
    return BUILD if digest.read_text().strip() == source_digest() else None
