"""`deepfrack model`: text output, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deepfrack.cli import main
from tests.cost.helpers import exercise_files


def _invoke(*args):
    return CliRunner().invoke(main, ["model", *map(str, args)])


def test_text_summary():
    res = _invoke(*exercise_files("simple_weight_stationary"))
    assert res.exit_code == 0, res.output
    assert "Energy: 151.67 uJ" in res.output and "Cycles: 903168" in res.output
    assert "shared_glb" in res.output and "Valid: yes" in res.output


def test_builtin_energy_without_ert():
    res = _invoke(*exercise_files("eyeriss_like", with_ert=False), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["sources"]["energy"].startswith("builtin:")
    assert out["cycles"] == 86016 and out["energy_pJ"] > 0


def test_rules_option():
    res = _invoke(*exercise_files("eyeriss_like"), "--json", "--rules", "timeloop-2023")
    out = json.loads(res.output)
    assert out["rules"] == "timeloop-2023"
    assert all(lv["leakage_pJ"] == 0 for lv in out["levels"])


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            ("timeloop-mapper.map.yaml", "M4 R1 S1 N1 P8 Q2", "M4 R1 S1 N1 P9 Q2"),
            "mapping.factors.P: factors of P multiply to 126",
        ),
        (("timeloop-mapper.map.yaml", "target: DRAM", "target: DRAMX"), "'DRAMX' is not a storage level"),
        (("timeloop-mapper.ERT.yaml", "name: compute", "name: computeX"), "no compute action"),
        (("arch.yaml", "!Component # MAC unit", "!Componentz # MAC unit"), "unknown YAML tag !Componentz"),
        (
            ("timeloop-mapper.map.yaml", "  - target: DRAM", "  - !Foo\n    target: DRAM"),
            "unknown YAML tag !Foo",
        ),
        (
            ("default_problem.yaml", "instance:", "instance: !Bogus"),
            "problem.instance: unknown YAML tag !Bogus",
        ),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, edit, expected):
    fname, old, new = edit
    files = exercise_files("eyeriss_like")
    out = []
    for f in files:
        if f.name == fname:
            text = f.read_text()
            assert old in text
            f = _write(tmp_path, fname, text.replace(old, new, 1))
        out.append(f)
    res = _invoke(*out)
    assert res.exit_code == 2
    assert (
        expected in res.output and res.output.count("\n") == 1 and res.output.startswith("deepfrack: error: ")
    )


def test_missing_parts(tmp_path):
    files = exercise_files("eyeriss_like")
    no_map = [f for f in files if "map" not in f.name]
    res = _invoke(*no_map[:2])
    assert res.exit_code == 2 and "none of the 2 files given defines a problem" in res.output
    res = _invoke(*files, files[3])
    assert res.exit_code == 2 and "a second mapping" in res.output
    bad = _write(tmp_path, "x.yaml", "weird_key: 1\n")
    res = _invoke(*files, bad)
    assert res.exit_code == 2 and "unknown top-level key" in res.output
