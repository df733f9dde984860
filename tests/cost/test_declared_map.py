"""The built-in mapper on Timeloop inputs with declared problem shapes (`deepfrack model` without a
mapping): the map.yaml it writes, in the problem's names, re-evaluates to the same numbers, and on the
ISPASS 2020 mapper exercise it is checked against what Timeloop's mapper found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deepfrack.arch.spec import Constraints, FactorBound, TargetConstraint
from deepfrack.cli import main
from deepfrack.cost.declared_map import cnn_constraints, declared_directives
from deepfrack.workload.shapes import problem_from_doc
from tests.cost.helpers import read_stats
from tests.paths import EXERCISES

EX05 = EXERCISES / "ispass2020-conv1d" / "05-mapper-conv1d+oc-3level"
INTERFACE = EXERCISES / "interface2024" / "outputs"


def _model(*files) -> dict:
    res = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _mapped_and_rerun(tmp_path, *files) -> tuple[dict, dict, dict]:
    """The mapper's result, the map.yaml it wrote, and `deepfrack model` on that map.yaml."""
    out = tmp_path / "map.yaml"
    res = CliRunner().invoke(main, ["model", *map(str, files), "--json", "--map-out", str(out)])
    assert res.exit_code == 0, res.output
    found = json.loads(res.output)
    doc = yaml.safe_load(out.read_text())
    again = _model(*files, out)
    return found, doc, again


@pytest.mark.parametrize(
    ("constraints", "run"),
    [("conv1d+oc-3level-1mapping", "baked"), ("conv1d+oc-3level-freebypass", "freebypass"), ("null", "null")],
)
def test_ispass_mapper_exercise(tmp_path, constraints, run):
    ert = EX05 / "ref-output" / run / "timeloop-mapper.ERT.yaml"
    files = (
        EX05 / "arch" / "3level.arch.yaml",
        EX05 / "prob" / "conv1d+oc.prob.yaml",
        EX05 / "constraints" / f"{constraints}.constraints.yaml",
        EX05 / "mapper" / "exhaustive.mapper.yaml",
        ert,
    )
    found, doc, again = _mapped_and_rerun(tmp_path, *files)
    assert found["valid"]
    assert (again["energy_pJ"], again["cycles"]) == (found["energy_pJ"], found["cycles"])
    assert again["levels"] == found["levels"]
    assert doc["mapping"] == found["mapping"]
    for d in doc["mapping"]:  # in the problem's own names
        if "factors" in d:
            assert [f[0] for f in d["factors"].split()] == ["K", "R", "P"]
    _, summary = read_stats(EX05 / "ref-output" / run / "timeloop-mapper.stats.txt")
    if run == "baked":  # the constraints leave one mapping: Timeloop's
        assert found["cycles"] == summary["cycles"]
        assert abs(found["energy_pJ"] / 1e6 - summary["energy_uJ"]) <= 0.005 + 1e-9
    else:  # [delay, energy] over all factorizations: never slower than Timeloop's pick
        assert found["cycles"] <= summary["cycles"]


def test_interface_2024_mapper_run_is_valid(tmp_path):
    files = (INTERFACE / "parsed-processed-input.yaml", INTERFACE / "timeloop-mapper.ERT.yaml")
    found, doc, again = _mapped_and_rerun(tmp_path, *files)
    assert found["valid"]
    assert (again["energy_pJ"], again["cycles"]) == (found["energy_pJ"], found["cycles"])
    spatial = [d for d in doc["mapping"] if d["type"] == "spatial"]
    assert spatial and all(d["permutation"].endswith("G") for d in spatial)


def test_grouped_problem_is_refused_with_one_line(tmp_path):
    data = yaml.safe_load((INTERFACE / "parsed-processed-input.yaml").read_text())
    data["problem"]["instance"]["G"] = 2
    data["problem"]["instance"]["C"] = 2
    data["problem"]["instance"]["M"] = 2
    p = tmp_path / "in.yaml"
    p.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(main, ["model", str(p), str(INTERFACE / "timeloop-mapper.ERT.yaml")])
    assert res.exit_code == 2
    assert "embed in the CNN layer" in res.output and res.output.count("\n") == 1


def _gkrp():
    doc = {
        "problem": {
            "shape": {
                "dimensions": ["G", "K", "R", "P"],
                "data_spaces": [
                    {"name": "W", "projection": [[["G"]], [["K"]], [["R"]]]},
                    {"name": "I", "projection": [[["G"]], [["R"], ["P"]]]},
                    {"name": "O", "projection": [[["G"]], [["K"]], [["P"]]], "read_write": True},
                ],
            },
            "instance": {"G": 1, "K": 4, "R": 3, "P": 8},
        }
    }
    return problem_from_doc(doc, Path("gkrp.yaml"))


def test_constraints_and_directives_translate_both_ways():
    problem = _gkrp()
    idx = problem.index
    assert idx["G"] is None
    t = TargetConstraint(
        target="Buf",
        type="spatial",
        factors={"G": FactorBound("=", 1), "K": FactorBound("<=", 2)},
        permutation="GKPR",
        split=2,
        keep=("W",),
    )
    (c,) = cnn_constraints(Constraints((t,)), problem).targets
    assert c.factors == {"M": FactorBound("<=", 2)}
    assert c.permutation == "MPR" and c.split == 1
    assert c.keep == ("Weights",)
    back = declared_directives(
        [
            {"target": "Buf", "type": "datatype", "keep": ["Weights"], "bypass": ["Inputs", "Outputs"]},
            {
                "target": "Buf",
                "type": "spatial",
                "factors": {"C": 1, "M": 2, "R": 1, "S": 1, "N": 1, "P": 4, "Q": 1},
                "permutation": "CMRSNPQ",
                "split": 2,
            },
        ],
        problem,
    )
    assert back[0]["keep"] == ["W"] and back[0]["bypass"] == ["I", "O"]
    assert back[1]["factors"] == "G1 K2 R1 P4"
    assert back[1]["permutation"] == "KRPG" and back[1]["split"] == 1


def test_eyeriss_mapper_exercise_cnn_layer(tmp_path):
    """Exercise 06 (a CNN layer, Timeloop's own names) with its mapper.yaml ([delay, energy])."""
    ex = EXERCISES / "ispass2020-conv1d" / "06-mapper-convlayer-eyeriss"
    ref = ex / "ref-output"
    found, doc, again = _mapped_and_rerun(
        tmp_path, ex / "arch", ex / "prob", ex / "mapper", ref / "timeloop-mapper.ERT.yaml"
    )
    assert found["valid"]
    assert (again["energy_pJ"], again["cycles"]) == (found["energy_pJ"], found["cycles"])
    assert doc["mapping"] == found["mapping"]
    _, summary = read_stats(ref / "timeloop-mapper.stats.txt")
    assert found["cycles"] <= summary["cycles"]


def test_dot_product_data_spaces_in_their_own_names(tmp_path):
    d = EXERCISES / "dot_product"
    files = (d / "arch.yaml", d / "problem.yaml", d / "ref_outputs" / "timeloop-mapper.ERT.yaml")
    found, doc, again = _mapped_and_rerun(tmp_path, *files)
    assert found["valid"] and found["macs"] == 16
    assert (again["energy_pJ"], again["cycles"]) == (found["energy_pJ"], found["cycles"])
    kept = {t for x in doc["mapping"] if x["type"] == "datatype" for t in x["keep"] + x["bypass"]}
    assert kept == {"A", "B", "Z"}


def test_unknown_mapper_metric_is_one_line(tmp_path):
    bad = tmp_path / "mapper.yaml"
    bad.write_text("mapper:\n  optimization_metrics: [ bogus ]\n")
    files = (EX05 / "arch", EX05 / "prob", EX05 / "constraints" / "null.constraints.yaml", bad)
    res = CliRunner().invoke(main, ["model", *map(str, files)])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "mapper.yaml: mapper.optimization_metrics: unknown objective metric 'bogus'" in res.output
