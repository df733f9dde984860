"""Fuzzing every input kind: mutated network YAML, problem folders, architecture, constraints, ERT,
mapper.yaml, JSON and CSV tables, schedule.json, ``model`` inputs and options. Each case must end with
exit 0 and valid outputs, or exit 2 with one line naming the file (or option) and nothing written --
never a traceback, a hang, a partial output or a message of several lines.

``DEEPFRACK_FUZZ_CASES`` sets the cases per kind (default 100: 1,100 cases, about two minutes of CPU,
most of it drawing the pictures of the accepted cases); ``benchmarks/fuzz.py`` runs the same cases with a
larger budget and prints the table by kind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.fuzz.kinds import KINDS, build_seeds, describe, make_case
from tests.fuzz.runner import DEFECTS, Result, run_cases

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="cases run in forked children")

CASES = int(os.environ.get("DEEPFRACK_FUZZ_CASES", "100"))
#: seconds before a case counts as a hang (a case takes well under a second; the machine may be busy)
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.mark.parametrize("kind", list(KINDS))
def test_mutated_inputs_are_accepted_or_refused_in_one_line(kind: str, seeds: Path, tmp_path: Path):
    sys.stdout.flush()
    cases = (make_case(kind, i, seeds) for i in range(CASES))
    results = list(run_cases(cases, seeds, tmp_path, timeout=TIMEOUT))
    assert len(results) == CASES
    bad = [r for r in results if r.outcome in DEFECTS and not _known(r)]
    assert not bad, "\n".join(f"{r.outcome}: {r.detail}\n    {describe(r.case)}" for r in bad[:10])
    outcomes = {r.outcome for r in results}
    assert "error" in outcomes and "accepted" in outcomes  # the mutations reach the checks, and not all fail
    known = [r for r in results if r.outcome in DEFECTS]
    if known:
        pytest.xfail(f"{len(known)} known defect(s): {_known(known[0])}")


def _known(result: Result) -> str:
    """Why a defect is known and left to another change ('' when it is not known)."""
    if result.outcome == "partial" and result.case.argv[0] == "run":
        return (
            "`deepfrack run` writes tables/ before the search, which may then fail (not yet all-or-nothing)"
        )
    return ""
