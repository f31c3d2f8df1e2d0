"""The compiled engine (mypyc, ``ops/compile-engine``) and its source judge alike: the same state and the same
events for any log fed in any batches, compared field by field; and the package runs the build only while it was
made from the current source."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import coldchain.domain.evaluation.engine as running
from coldchain.domain.evaluation import _compiled, new_state
from coldchain.domain.readings import Reading
from tests.domain.test_order_independence import PROFILE, reading_logs

SOURCE = Path(_compiled.__file__).with_name("engine.py")


def _source_engine() -> ModuleType:
    """``engine.py`` loaded as plain Python under a name of its own, beside whatever the package runs."""
    spec = importlib.util.spec_from_file_location("coldchain_engine_as_source", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


AS_SOURCE = _source_engine()


def test_the_package_runs_the_compiled_engine_where_a_c_compiler_built_it() -> None:
    """``make`` builds it on a machine with a C compiler: there, the tests (and the benchmarks) run the build."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        assert running.__file__ == str(SOURCE)
        return
    assert _compiled.compiled_engine() == _compiled.BUILD, "run `make` (ops/compile-engine) to build it"
    assert Path(running.__file__).parent == _compiled.BUILD
    assert Path(running.__file__).suffix == ".so"


def test_a_build_of_another_source_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "engine.sha256").write_text(hashlib.sha256(b"an older engine.py").hexdigest())
    monkeypatch.setattr(_compiled, "BUILD", tmp_path)
    assert _compiled.compiled_engine() is None
    (tmp_path / "engine.sha256").write_text(hashlib.sha256(SOURCE.read_bytes()).hexdigest())
    assert _compiled.compiled_engine() == tmp_path
    monkeypatch.setenv("COLDCHAIN_ENGINE", "python")
    assert _compiled.compiled_engine() is None


def _judged(module: ModuleType, batches: list[list[Reading]]) -> tuple[object, list[object]]:
    state = new_state(PROFILE, checkpoint_every_min=60.0, checkpoints_kept=3)
    events: list[object] = []
    for batch in batches:
        engine = module.Engine(PROFILE, state)
        engine.feed(batch)
        events += [*engine.excursions, *engine.alarms, *engine.gaps, *engine.faults, *engine.open_results()]
        state = engine.to_state()
    return state, events


@settings(max_examples=150, deadline=None)
@given(log=reading_logs(), cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6))
def test_the_running_engine_and_its_source_find_the_same(log: list[Reading], cuts: list[int]) -> None:
    bounds = sorted({0, len(log), *(cut for cut in cuts if cut < len(log))})
    batches = [log[start:end] for start, end in itertools.pairwise(bounds)]
    assert _judged(running, batches) == _judged(AS_SOURCE, batches)
