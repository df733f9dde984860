"""Expressions in mappings and constraints, as timeloopfe evaluates them (factor values, ``split``, a
utilization's ``min``), through the bounded evaluator of ``deepfrack.arch.expressions``: an expression
gives what its value written out gives, and what the evaluator refuses is one line naming the field."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from deepfrack.arch.constraints import Names, parse_target
from deepfrack.arch.expressions import evaluate_factors
from deepfrack.cli import main
from deepfrack.errors import InputError
from tests.paths import EXERCISES

EX = EXERCISES / "ispass2020-conv1d" / "03-model-conv1d+oc-3level"
SYMBOLS = {"n": 4, "m": "n * 2", "spec.problem.instance": {"K": 32, "R": 3, "P": 16}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("C=2 M=n*2", ["C=2", "M=8"]),
        ("C=2, M=n + 1 , R<=m", ["C=2", "M=5", "R<=8"]),
        (["C=2", "M = n * m", "R=min(n, 3)"], ["C=2", "M=32", "R=3"]),
        ({"C": 2, "M": "m // 2"}, {"C": 2, "M": 4}),
        ("M=len(spec.problem.instance)", ["M=3"]),
    ],
)
def test_factor_values_are_evaluated(value, expected):
    assert evaluate_factors(value, SYMBOLS, "map.yaml", "mapping[0].factors") == expected


@pytest.mark.parametrize("value", ["C=2 M=4", "C2 M4", ["C=2", "M>=4"], {"C": 2, "M": "4"}, None])
def test_literal_factors_come_back_unchanged(value):
    assert evaluate_factors(value, SYMBOLS, None, "f") is value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("C=n/3", "mapping[0].factors: malformed factor 'C=n/3': 'n/3' is 1.333"),
        ("C=k*2", "unknown name 'k'"),
        ("C=9**9**9", "exponent"),
        ("C=__import__('os')", "mapping[0].factors: malformed factor"),
    ],
)
def test_bad_factor_expressions_are_one_line(value, message):
    with pytest.raises(InputError) as e:
        evaluate_factors(value, SYMBOLS, "map.yaml", "mapping[0].factors")
    assert message in str(e.value)
    assert "map.yaml" in str(e.value) and "\n" not in str(e.value)


def test_constraint_fields_take_expressions():
    names = Names(symbols=SYMBOLS)
    item = {"target": "PE", "type": "spatial", "factors": "M<=m C=n", "split": "n - 1"}
    (sp,) = parse_target(item, "c.yaml", "c", names=names)
    assert (sp.factors["M"].op, sp.factors["M"].value, sp.factors["C"].value, sp.split) == ("<=", 8, 4, 3)
    (ut,) = parse_target({"target": "PE", "type": "utilization", "min": "n / 8"}, "c.yaml", "c", names=names)
    assert ut.min_utilization == 0.5
    with pytest.raises(InputError, match=r"c\.split: 'n / 3' is 1\.333"):
        parse_target({"target": "PE", "type": "spatial", "split": "n / 3"}, "c.yaml", "c", names=names)


def _run(files) -> dict:
    r = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_a_mapping_written_with_expressions_models_as_written_out(tmp_path):
    """Timeloop's conv1d+oc three-level exercise, its mapping's factors written over variables and the
    problem's instance: the same counts, energy and cycles as the literal mapping."""
    literal = EX / "map" / "conv1d+oc-3level.map.yaml"
    doc = yaml.safe_load(literal.read_text())
    doc["mapping"][1]["factors"] = ["R=1", "P=tile", "K=tile"]
    doc["mapping"][2]["factors"] = {"R": "len(spec.problem.instance)", "P": 1, "K": "32 // tile"}
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "vars.yaml").write_text(yaml.safe_dump({"variables": {"tile": "2 ** 4"}}))
    a = _run([EX / "arch", literal, EX / "prob"])
    b = _run([EX / "arch", tmp_path / "map.yaml", tmp_path / "vars.yaml", EX / "prob"])
    a.pop("sources"), b.pop("sources")
    assert a == b
    doc["mapping"][2]["factors"] = {"R": "3", "P": 1, "K": "tile / 3"}
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(doc))
    files = [EX / "arch", tmp_path / "map.yaml", EX / "prob", tmp_path / "vars.yaml"]
    r = CliRunner().invoke(main, ["model", *map(str, files)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "mapping[2].factors.K" in r.output and "not an integer" in r.output
