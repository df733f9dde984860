"""Architecture variations (``deepfrack.arch.vary``): parsing ``LEVEL.ATTRIBUTE=v1,v2``, the grid of
points, and applying a point to a copy of the parsed architecture document."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepfrack.arch import builtin_energy_table
from deepfrack.arch.presets import presets
from deepfrack.arch.vary import Variation, parse_variation, sweep_points, vary_document
from deepfrack.arch.yamlio import load_yaml
from deepfrack.benchmark.inputs import load_inputs, with_architecture
from deepfrack.errors import InputError


@pytest.fixture(scope="module")
def simba():
    return load_inputs("simba-like")


@pytest.fixture(scope="module")
def eyeriss():
    return load_inputs("eyeriss-like")


def _levels(inputs, point):
    arch = with_architecture(inputs, vary_document(inputs.arch.doc, point)).architecture
    return arch, {lv.name: lv for lv in arch.levels}


# --------------------------------------------------------------------------------------------- #
# parsing and points
# --------------------------------------------------------------------------------------------- #
def test_parse_variation_reads_values_as_yaml_scalars():
    v = parse_variation("GlobalBuffer.memory_depth=512, 1024,2048")
    assert (v.level, v.attribute, v.values, v.target) == (
        "GlobalBuffer",
        "memory_depth",
        (512, 1024, 2048),
        "GlobalBuffer.memory_depth",
    )
    assert parse_variation("DRAM.type=LPDDR4,HBM2").values == ("LPDDR4", "HBM2")
    assert parse_variation("System.ws.Buf.bandwidth=1.5").level == "System.ws.Buf"


@pytest.mark.parametrize(
    "spec, words",
    [
        ("GlobalBuffer.memory_depth", "write LEVEL.ATTRIBUTE=v1,v2"),
        ("memory_depth=1,2", "write LEVEL.ATTRIBUTE=v1,v2"),
        ("GlobalBuffer.memory_depth=", "write LEVEL.ATTRIBUTE=v1,v2"),
        ("GlobalBuffer.memory_depth=1,,2", "is not a single value"),
        ("GlobalBuffer.memory_depth=[1, 2]", "is not a single value"),
        ("DRAM.type=a: b", "is not a single value"),
        ("DRAM.type=HBM2,HBM2", "listed twice"),
    ],
)
def test_parse_variation_errors_name_the_option(spec: str, words: str):
    with pytest.raises(InputError, match=words) as err:
        parse_variation(spec)
    assert err.value.field == "vary" and err.value.path is None


def test_points_are_the_cartesian_product_last_attribute_fastest():
    a, b = parse_variation("A.x=1,2"), parse_variation("B.y=p,q,r")
    assert sweep_points([a, b]) == [{"A.x": x, "B.y": y} for x in (1, 2) for y in ("p", "q", "r")]
    with pytest.raises(InputError, match="as many values"):
        sweep_points([a, b], zipped=True)
    c = parse_variation("C.z=7,8")
    assert sweep_points([a, c], zipped=True) == [{"A.x": 1, "C.z": 7}, {"A.x": 2, "C.z": 8}]
    with pytest.raises(InputError, match="varied twice"):
        sweep_points([a, parse_variation("A.x=3")])
    with pytest.raises(InputError, match="nothing to vary"):
        sweep_points([])


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_every_combination_once(lengths: list[int]):
    variations = [Variation(f"L{i}", "a", tuple(range(n))) for i, n in enumerate(lengths)]
    points = sweep_points(variations)
    assert len(points) == math.prod(lengths)
    assert len({tuple(p.values()) for p in points}) == len(points)
    assert all(list(p) == [v.target for v in variations] for p in points)


# --------------------------------------------------------------------------------------------- #
# applying a point
# --------------------------------------------------------------------------------------------- #
def test_buffer_depth_and_dram_type_change_a_copy(simba):
    before = copy.deepcopy(simba.arch.doc)
    arch, lv = _levels(simba, {"GlobalBuffer.memory_depth": 8192, "DRAM.type": "HBM2"})
    assert simba.arch.doc == before  # the inputs' document is untouched
    assert lv["GlobalBuffer"].size_words == 8192 * 32  # memory_width 512 / 16-bit words
    assert simba.architecture.levels[1].size_words == 2048 * 32
    dram = builtin_energy_table(arch).op_energy("DRAM", "read")
    assert dram == pytest.approx(3.9 * 16)  # HBM2, pJ per bit x 16-bit word
    # the file on disk is not touched either
    assert load_yaml(presets()["simba-like"].arch) == before


def test_attribute_names_match_with_hyphens_or_underscores(simba):
    doc = vary_document(simba.arch.doc, {"GlobalBuffer.word_bits": 8})
    gb = doc["architecture"]["subtree"][0]["subtree"][0]["local"][0]["attributes"]
    assert gb["word-bits"] == 8 and "word_bits" not in gb  # the file's spelling is kept


def test_pe_instances_scale_the_meshes_below(simba):
    arch, lv = _levels(simba, {"PE.instances": 4})
    assert lv["PEInputBuffer"].instances == 4 and (
        lv["PEInputBuffer"].mesh_x,
        lv["PEInputBuffer"].mesh_y,
    ) == (
        4,
        1,
    )
    assert (lv["PEWeightBuffer"].instances, lv["PEWeightBuffer"].mesh_x, lv["PEWeightBuffer"].mesh_y) == (
        32,
        4,
        8,
    )
    assert (arch.arithmetic.instances, arch.arithmetic.mesh_x) == (256, 4)
    assert "PE[0..3]" in lv["PEWeightBuffer"].path
    assert arch.fanout("GlobalBuffer") == (4, 1)


def test_a_mesh_varied_in_the_same_point_has_the_last_word(simba):
    _, lv = _levels(simba, {"PEInputBuffer.meshX": 4, "PE.instances": 8})
    assert (lv["PEInputBuffer"].mesh_x, lv["PEInputBuffer"].mesh_y) == (4, 2)
    assert lv["PEWeightBuffer"].mesh_x == 8


def test_instances_of_a_component_fill_the_axis_its_mesh_leaves(simba):
    arch, _ = _levels(simba, {"LMAC.instances": 32})  # meshX 16 counts the PEs, not the MACs
    assert (arch.arithmetic.instances, arch.arithmetic.mesh_x, arch.arithmetic.mesh_y) == (512, 16, 32)


def test_v04_pe_array_is_a_containers_spatial_mesh(eyeriss):
    _, before = _levels(eyeriss, {})
    _, lv = _levels(eyeriss, {"PE_column.meshX": 7})
    assert lv["weights_spad"].instances * 2 == before["weights_spad"].instances == 14 * 12
    with pytest.raises(InputError, match=r"no attribute instances.*meshX"):
        vary_document(eyeriss.arch.doc, {"PE_column.instances": 7})


@pytest.mark.parametrize(
    "point, words",
    [
        ({"GlobalBufer.memory_depth": 1}, "no level named GlobalBufer .*GlobalBuffer"),
        ({"GlobalBuffer.depth": 1}, "GlobalBuffer has no attribute depth .*memory_depth"),
        ({"GlobalBuffer.memory_depth": "big"}, "memory_depth='big': expected an integer"),
        ({"GlobalBuffer.memory_depth": 2048.5}, "expected an integer"),
        ({"GlobalBuffer.memory_depth": True}, "expected an integer"),
        ({"DRAM.type": 5}, "DRAM.type=5: expected a name"),
        ({"PE.instances": 0}, "positive integer"),
        ({"PE.instances": "many"}, "positive integer"),
    ],
)
def test_bad_points_name_the_target(simba, point, words):
    with pytest.raises(InputError, match=words) as err:
        vary_document(simba.arch.doc, point)
    assert err.value.field == "vary"


def _doc(**attrs):
    comp = {"name": "Buf", "class": "SRAM", "attributes": attrs}
    return {"architecture": {"version": 0.3, "subtree": [{"name": "S", "local": [comp]}]}}


def test_value_types_follow_the_file():
    assert vary_document(_doc(bw=1.5), {"Buf.bw": 2})  # a number for a number
    assert vary_document(_doc(depth="2048*4"), {"Buf.depth": 1024})  # an expression takes a number
    assert vary_document(_doc(flag=True), {"Buf.flag": False})
    with pytest.raises(InputError, match="expected a name"):
        vary_document(_doc(technology="45nm"), {"Buf.technology": 32})
    with pytest.raises(InputError, match="expected true or false"):
        vary_document(_doc(flag=True), {"Buf.flag": 1})
    with pytest.raises(InputError, match="expected a number"):
        vary_document(_doc(bw=1.5), {"Buf.bw": "fast"})


def test_a_name_used_twice_is_ambiguous():
    doc = _doc(depth=4)
    doc["architecture"]["subtree"][0]["subtree"] = [
        {"name": "T", "local": [{"name": "Buf[0..1]", "class": "SRAM"}]}
    ]
    with pytest.raises(InputError, match="several nodes have this name"):
        vary_document(doc, {"Buf.depth": 8})
