"""The compiled engine (mypyc, ``ops/compile-engine``: the engine and the rules' state machine) and its sources
judge alike: the same state and the same events for any log fed in any batches, compared field by field; and the
package runs the build only while it was made from the current sources."""

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
import coldchain.domain.evaluation.rule_tracker as running_tracker
from coldchain.domain.evaluation import _compiled, new_state
from coldchain.domain.readings import Reading
from tests.domain.test_order_independence import PROFILE, reading_logs

SOURCE = Path(_compiled.__file__).with_name("engine.py")


def _as_source(name: str) -> ModuleType:
    """A compiled module's source loaded as plain Python under a name of its own, beside what the package runs."""
    spec = importlib.util.spec_from_file_location(f"coldchain_{name}_as_source", SOURCE.with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


AS_SOURCE = _as_source("engine")
AS_SOURCE.RuleTracker = _as_source("rule_tracker").RuleTracker  # type: ignore[attr-defined]  # its rules too


def test_the_package_runs_the_compiled_engine_where_a_c_compiler_built_it() -> None:
    """``make`` builds it on a machine with a C compiler: there, the tests (and the benchmarks) run the build."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        assert running.__file__ == str(SOURCE)
        return
    assert _compiled.compiled_engine() == _compiled.BUILD, "run `make` (ops/compile-engine) to build it"
    assert Path(running.__file__).parent == _compiled.BUILD
    for module in (running, running_tracker):
        assert Path(module.__file__ or "").suffix == ".so", module


def test_a_build_of_other_sources_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "engine.sha256").write_text(hashlib.sha256(SOURCE.read_bytes()).hexdigest())  # the engine alone
    monkeypatch.setattr(_compiled, "BUILD", tmp_path)
    assert _compiled.compiled_engine() is None
    (tmp_path / "engine.sha256").write_text(_compiled.source_digest())
    assert _compiled.compiled_engine() == tmp_path
    tracker = tmp_path / "rule_tracker.py"
    tracker.write_bytes(SOURCE.with_name("rule_tracker.py").read_bytes() + b"# edited\n")
    monkeypatch.setattr(_compiled, "_PACKAGE", tmp_path)
    (tmp_path / "engine.py").write_bytes(SOURCE.read_bytes())
    assert _compiled.compiled_engine() is None  # the state machine edited since the build
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
