"""The backends' fingerprints follow the code that computes their results: any change to it (or to the
package version) makes new cache keys; comments, docstrings and unrelated modules do not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import deepfrack
import deepfrack._version
from deepfrack.benchmark import provenance
from deepfrack.benchmark.builtin import CODE_ROOTS, builtin_code_digest, make_builtin_backend
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.timeloop import timeloop_code_digest
from deepfrack.residency import VARIANTS
from tests.benchmark.conftest import ARCH, CONSTRAINTS
from tests.paths import ROOT

#: the modules that determine the built-in backend's results
RESULT_MODULES = (
    "deepfrack.cost.model",
    "deepfrack.cost.mapper",
    "deepfrack.cost.mapspace",
    "deepfrack.cost.fastmodel",
    "deepfrack.cost.timeloop_post",
    "deepfrack.cost.analytic",
    "deepfrack.cost.nest",
    "deepfrack.cost.nest_sim",
    "deepfrack.cost.mapping",
    "deepfrack.arch.energy",
    "deepfrack.arch.ert",
    "deepfrack.arch.constraints",
    "deepfrack.benchmark.builtin",
    "deepfrack.benchmark.energy_gaps",
)


@pytest.fixture(scope="module")
def inputs():
    return load_inputs(ARCH, constraints=CONSTRAINTS)


def _patch_source(monkeypatch: pytest.MonkeyPatch, module: str, edit) -> None:
    original = provenance._source

    def patched(name: str):
        found = original(name)
        if name == module:
            assert found is not None, f"{module} not found"
            return edit(found[0]), found[1]
        return found

    monkeypatch.setattr(provenance, "_source", patched)


def _fingerprints(inputs) -> dict:
    backend = make_builtin_backend(inputs)
    return {v: backend.fingerprint(v) for v in VARIANTS}


def test_the_result_modules_are_hashed():
    assert set(RESULT_MODULES) <= set(provenance.module_closure(CODE_ROOTS))
    # the plumbing and the search do not compute a result
    closure = provenance.module_closure(CODE_ROOTS)
    assert not any(m.startswith(("deepfrack.search", "deepfrack.cli")) for m in closure)
    assert not {"deepfrack.benchmark.runner", "deepfrack.benchmark.cache", "deepfrack.benchmark.jobs"} & set(
        closure
    )


def test_fingerprint_is_stable(inputs):
    assert _fingerprints(inputs) == _fingerprints(inputs)
    assert len(set(_fingerprints(inputs).values())) == len(VARIANTS)


@pytest.mark.parametrize("module", RESULT_MODULES)
def test_a_code_change_changes_the_fingerprint(inputs, monkeypatch: pytest.MonkeyPatch, module: str):
    before = _fingerprints(inputs)
    _patch_source(monkeypatch, module, lambda text: text + "\n_CHANGED = 1\n")
    after = _fingerprints(inputs)
    assert all(after[v] != before[v] for v in VARIANTS)


def test_a_changed_constant_changes_the_digest(monkeypatch: pytest.MonkeyPatch):
    # one number in the energy model's code (no new statement): a different digest
    before = builtin_code_digest()
    assert "v *= 1000.0" in provenance._source("deepfrack.arch.energy")[0]
    _patch_source(
        monkeypatch, "deepfrack.arch.energy", lambda text: text.replace("v *= 1000.0", "v *= 1000.5")
    )
    assert builtin_code_digest() != before


@pytest.mark.parametrize(
    "module, edit",
    [
        ("deepfrack.cost.mapper", lambda text: "# a comment\n\n" + text.replace("\n", "  # trailing\n", 3)),
        (
            "deepfrack.cost.analytic",
            lambda text: text.replace('"""', '"""More words. ', 1),
        ),  # the module docstring
        ("deepfrack.search.optimizer", lambda text: text + "\n_CHANGED = 1\n"),  # not a result module
        ("deepfrack.benchmark.runner", lambda text: text + "\n_CHANGED = 1\n"),
    ],
)
def test_what_does_not_change_results_keeps_the_fingerprint(
    inputs, monkeypatch: pytest.MonkeyPatch, module, edit
):
    before = _fingerprints(inputs)
    _patch_source(monkeypatch, module, edit)
    assert _fingerprints(inputs) == before


def test_the_package_version_counts(inputs, monkeypatch: pytest.MonkeyPatch):
    before = _fingerprints(inputs)
    monkeypatch.setattr(deepfrack._version, "__version__", deepfrack.__version__ + ".post1")
    assert all(a != b for a, b in zip(_fingerprints(inputs).values(), before.values()))


def test_timeloop_digest_follows_its_parsers(monkeypatch: pytest.MonkeyPatch):
    before = timeloop_code_digest()
    _patch_source(monkeypatch, "deepfrack.cost.mapper", lambda text: text + "\n_CHANGED = 1\n")
    assert timeloop_code_digest() == before  # the built-in mapper does not touch Timeloop's results
    _patch_source(
        monkeypatch,
        "deepfrack.benchmark.timeloop",
        lambda text: text.replace('OUT_PREFIX = "timeloop-mapper"', 'OUT_PREFIX = "tl"'),
    )
    assert timeloop_code_digest() != before


def test_the_digest_is_the_same_in_every_process():
    # string hashing differs per process (sets of strings in the code): the digest must not
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    cmd = [
        sys.executable,
        "-c",
        "from deepfrack.benchmark.builtin import builtin_code_digest; print(builtin_code_digest())",
    ]
    got = {
        subprocess.run(
            cmd, env={**env, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert got == {builtin_code_digest()}
