"""Spellings and formats Timeloop and its front end accept: the ``dataspace`` directive type, an ERT whose
storage actions are one ``access``, expressions (with ``len(spec.problem.instance)``) as a spatial split,
and a v0.4 Container with a spatial fan-out as a mapping target."""

from __future__ import annotations

import copy

import pytest
import yaml

from deepfrack.arch.constraints import Names, parse_target
from deepfrack.arch.ert import check_energy_table, ert_from_data
from deepfrack.arch.expressions import evaluate_expression
from deepfrack.cost.mapping import mapping_from_directives
from deepfrack.cost.model import LayerModel
from deepfrack.cost.model_io import load_model_inputs
from deepfrack.errors import InputError
from tests.cost.helpers import golden_arch, golden_lines, layer_of
from tests.paths import EXERCISES

SPATIAL = EXERCISES / "ispass2020-conv1d/04-model-conv1d+oc-3levelspatial"


def test_dataspace_is_datatype():
    arch = golden_arch("AlexNet_Simba")
    d = golden_lines("AlexNet_Simba")[0]
    layer = layer_of(d["problem"])
    spelled = copy.deepcopy(d["mapping"])
    for x in spelled:
        if x["type"] == "datatype":
            x["type"] = "dataspace"
    a = mapping_from_directives(d["mapping"], arch, layer)
    b = mapping_from_directives(spelled, arch, layer)
    assert a.levels == b.levels
    assert any(lv.keep != (True, True, True) for lv in b.levels)


def _access_only(data: dict) -> dict:
    """The ERT with every storage component's read/write/update replaced by one 'access' of the
    read energy."""
    out = copy.deepcopy(data)
    for t in out["ERT"]["tables"]:
        names = {a["name"] for a in t["actions"]}
        if "read" in names:
            read = next(a for a in t["actions"] if a["name"] == "read")
            t["actions"] = [a for a in t["actions"] if a["name"] not in ("read", "write", "update")]
            t["actions"].append({**read, "name": "access"})
    return out


def test_ert_access_serves_reads_fills_and_updates():
    ref = SPATIAL / "ref-output/cp/timeloop-model.ERT.yaml"
    data = yaml.safe_load(ref.read_text())
    inputs = load_model_inputs(
        SPATIAL / "arch", SPATIAL / "map/conv1d+oc+ic-3levelspatial-cp-ws.map.yaml", SPATIAL / "prob", ref
    )
    table = ert_from_data(_access_only(data), "access.yaml")
    check_energy_table(table, inputs.arch, "access.yaml")
    for op in ("read", "fill", "update"):
        assert table.op_energy("GlobalBuffer", op) == inputs.energy.op_energy("GlobalBuffer", "read")
    # where read/write exist, 'access' does not override them
    both = copy.deepcopy(data)
    for t in both["ERT"]["tables"]:
        t["actions"].append({"name": "access", "arguments": None, "energy": 999.0})
    table2 = ert_from_data(both, "both.yaml")
    assert table2.op_energy("GlobalBuffer", "fill") == inputs.energy.op_energy("GlobalBuffer", "fill")
    res = LayerModel(inputs.arch, table, inputs.layer, inputs.rules).evaluate(inputs.mapping)
    assert res.valid and res.energy_pJ > 0


def test_split_expression_with_problem_instance():
    names = {"spec.problem.instance": {"C": 1, "M": 2, "G": 1}, "n": 3}
    [t] = parse_target(
        {"target": "PE", "type": "spatial", "split": "len(spec.problem.instance) - n + 1"},
        "a.yaml",
        "c",
        names=Names(symbols=names),
    )
    assert t.split == 1
    with pytest.raises(InputError, match="not a list or mapping"):
        parse_target(
            {"target": "PE", "type": "spatial", "split": "len(spec.problem.instance)"}, "a.yaml", "c"
        )
    with pytest.raises(InputError, match="is not allowed"):
        evaluate_expression("len(spec.problem.instance)[0]", names, "a.yaml", "split")


def test_container_split_expression_in_a_model_run(tmp_path):
    """A v0.4 architecture whose PE container writes its split as ``len(spec.problem.instance)`` (the
    2024 exercise's spelling) is read with the problem's instance at hand."""
    text = (SPATIAL / "arch/3levelspatial.arch.yaml").read_text()
    assert "spatial: {meshX: 16}" in text
    text = text.replace(
        "spatial: {meshX: 16}",
        "spatial: {meshX: 16}\n    constraints: {spatial: {split: len(spec.problem.instance)}}",
    )
    (tmp_path / "arch.yaml").write_text(text)
    inputs = load_model_inputs(
        tmp_path / "arch.yaml", SPATIAL / "map/conv1d+oc+ic-3levelspatial-cp-ws.map.yaml", SPATIAL / "prob"
    )
    [c] = [t for t in inputs.arch.constraints.targets if t.type == "spatial"]
    assert c.split == 4  # C, K, R, P


def test_container_target_is_its_fan_out():
    inputs = load_model_inputs(
        SPATIAL / "arch", SPATIAL / "map/conv1d+oc+ic-3levelspatial-cp-ws.map.yaml", SPATIAL / "prob"
    )
    lv = inputs.mapping.level("inter_PE_spatial")
    assert max(lv.spatial) == 16 and lv.keep == (False, False, False)


def test_spatial_directive_on_a_container_without_fan_out_is_refused(tmp_path):
    text = (
        (SPATIAL / "map/conv1d+oc+ic-3levelspatial-cp-ws.map.yaml")
        .read_text()
        .replace("target: PE", "target: System")
    )
    (tmp_path / "map.yaml").write_text(text)
    with pytest.raises(InputError, match="'System' is not a storage level"):
        load_model_inputs(SPATIAL / "arch", tmp_path / "map.yaml", SPATIAL / "prob")


def test_architecture_constraints_use_the_problems_names(tmp_path):
    """With a declared shape, the architecture's constraints name its dimensions (K) and data spaces;
    the CNN layer's names are then unknown there, as in Timeloop."""
    text = (SPATIAL / "arch/3levelspatial.arch.yaml").read_text()
    cons = "constraints: {spatial: {factors: K=1, permutation: [C, K, R, P]}, dataspace: {keep: [Weights]}}"
    (tmp_path / "arch.yaml").write_text(
        text.replace("spatial: {meshX: 16}", "spatial: {meshX: 16}\n    " + cons)
    )
    files = (SPATIAL / "map/conv1d+oc+ic-3levelspatial-cp-ws.map.yaml", SPATIAL / "prob")
    inputs = load_model_inputs(tmp_path / "arch.yaml", *files)
    [c] = [t for t in inputs.arch.constraints.targets if t.type == "spatial"]
    assert set(c.factors) == {"K"} and c.permutation == "CKRP"
    (tmp_path / "arch.yaml").write_text(
        text.replace("spatial: {meshX: 16}", "spatial: {meshX: 16}\n    " + cons.replace("K=1", "M=1"))
    )
    with pytest.raises(InputError, match="unknown dimension 'M'"):
        load_model_inputs(tmp_path / "arch.yaml", *files)
