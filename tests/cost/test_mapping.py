"""Mapping parsing (map.yaml directives, reference JSONL lists), validation and batches."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from deepfrack.cost.mapping import (
    DIMS,
    MappingBatch,
    load_map_yaml,
    mapping_from_directives,
    mapping_from_doc,
)
from deepfrack.errors import InputError
from deepfrack.workload.layer import Layer
from tests.cost.helpers import golden_arch, golden_lines, layer_of
from tests.paths import EXAMPLES

SAMPLE = EXAMPLES / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.map.yaml"
L2 = Layer("conv2", C=96, M=256, P=27, Q=27, R=5, S=5)


@pytest.fixture(scope="module")
def arch():
    return golden_arch("AlexNet_Simba")


def _line():
    d = golden_lines("AlexNet_Simba")[0]
    return copy.deepcopy(d["mapping"]), layer_of(d["problem"])


def test_map_yaml(arch):
    m = load_map_yaml(SAMPLE, arch, L2)
    assert [lv.target for lv in m.levels] == list(arch.level_names)
    dram = m.level("DRAM")
    assert dram.temporal == (2, 2, 1, 1, 1, 3, 1)
    assert dram.temporal_permutation == "CMPRSNQ"
    gb = m.level("GlobalBuffer")
    assert gb.spatial[DIMS.index("M")] == 16 and gb.split == 1 and gb.keep == (False, True, True)
    assert m.factor_products() == (96, 256, 5, 5, 1, 27, 27)


def test_yaml_round_trip(arch):
    m = load_map_yaml(SAMPLE, arch, L2)
    again = mapping_from_doc(m.to_yaml_doc(), arch, L2)
    assert again.levels == m.levels


def test_jsonl_list_and_batch_round_trip(arch):
    lines = [d for d in golden_lines("AlexNet_Simba") if d["layer"] == 3 and d["tile"] == 13][:5]
    layer = layer_of(lines[0]["problem"])
    maps = [mapping_from_directives(d["mapping"], arch, layer) for d in lines]
    batch = MappingBatch.from_mappings(maps)
    assert len(batch) == 5 and batch.temporal.shape == (5, 6, 7)
    for b, m in enumerate(maps):
        assert batch.mapping(b).levels == m.levels
    sub = batch.take(np.array([4, 0]))
    assert sub.mapping(0).levels == maps[4].levels


def test_zero_factor_means_full_dimension(arch):
    directives, layer = _line()
    for d in directives:
        if d["target"] == "PEWeightBuffer" and d["type"] == "temporal":
            d["factors"] = {**d["factors"], "R": 0}
    m = mapping_from_directives(directives, arch, layer)
    assert m.level("PEWeightBuffer").temporal[DIMS.index("R")] == layer.R


def test_missing_datatype_keeps(arch):
    directives, layer = _line()
    directives = [d for d in directives if d["type"] != "datatype"]
    m = mapping_from_directives(directives, arch, layer)
    assert all(lv.keep == (True, True, True) for lv in m.levels)


@pytest.mark.parametrize(
    "mutate, field, text",
    [
        (lambda ds: ds[-1]["factors"].update(M=5), "factors.M", "multiply to"),
        (lambda ds: ds[-1].update(target="DRAMX"), "target", "not a storage level"),
        (lambda ds: ds[-1].update(type="temporall"), "type", "unknown directive type"),
        (lambda ds: ds[-1].update(factors={"Z": 2}), "factors", "unknown dimension 'Z'"),
        (lambda ds: ds[-1].update(permutation="MCPRSNZ"), "permutation", "unknown dimension 'Z'"),
        (lambda ds: ds[-1].update(permutation="MMPRSNQ"), "permutation", "appears twice"),
        (lambda ds: ds[0].update(keep=["Weightz"]), "keep", "unknown tensor"),
        (lambda ds: ds[-1].update(factors="C2 M2 R1 S1 N1 P3 Q1 XX"), "factors", "cannot read"),
        (lambda ds: ds[-1].update(factors="C2,1 M2"), "factors", "imperfect"),
        (
            lambda ds: ds.append(
                {"target": "PEWeightBuffer", "type": "spatial", "factors": "C1", "permutation": "C"}
            ),
            "target",
            "no spatial fan-out",
        ),
        (lambda ds: ds[-1].update(factors={"C": -1}), "factors.C", "positive integer"),
        (lambda ds: ds[-1].update(no_temporal_reuse=["Inputs"]), "no_temporal_reuse", "not supported"),
        (lambda ds: ds[-1].update(type="skew"), "type", "skew directives are not supported"),
    ],
)
def test_bad_mappings(arch, mutate, field, text):
    directives, layer = _line()
    mutate(directives)
    with pytest.raises(InputError) as e:
        mapping_from_directives(directives, arch, layer, source="map.yaml")
    msg = str(e.value)
    assert msg.startswith("map.yaml: ") and field in msg and text in msg, msg
    assert "\n" not in msg


def test_not_a_list(arch):
    with pytest.raises(InputError, match="list of mapping directives"):
        mapping_from_directives({"target": "DRAM"}, arch, L2, source="m.yaml")
