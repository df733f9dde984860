"""Architecture parsing, checked against Timeloop's own view of the same files (stats.txt specs,
flattened_architecture.yaml, parsed-processed-input.yaml)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.arch import load_architecture
from deepfrack.errors import InputError
from tests.arch.conftest import GEMMINI, SIMBA, SYSTOLIC, V04_DESIGNS, v04_paths
from tests.arch.timeloop_stats import read_level_specs
from tests.paths import EXAMPLES, EXERCISES

V03_CASES = [
    # (arch files, a stats.txt of a run on that architecture)
    (
        (SIMBA / "arch/simba_like.yaml", SIMBA / "arch/components"),
        EXAMPLES / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.stats.txt",
    ),
    (
        (SYSTOLIC / "arch",),
        EXAMPLES / "AlexNet_SystolicSimba/timeloop-samples/SLC_Layer2_Tile28/timeloop-mapper.stats.txt",
    ),
]


def _check_against_stats(arch, stats_path: Path, with_dummies: bool) -> None:
    specs = read_level_specs(stats_path)
    arith, storage = specs[0], specs[1:]
    assert arith.number == 0 and arith.name == arch.arithmetic.name
    assert arch.arithmetic.instances == arith.int("Instances")
    assert (arch.arithmetic.mesh_x, arch.arithmetic.mesh_y) == arith.mesh()
    assert arch.arithmetic.word_bits == arith.int("Word bits")
    # stats.txt numbers storage levels innermost first; placeholder levels keep their number but print
    # no specs
    n = len(arch.levels)
    printed = {s.number: s for s in storage}
    for i, lv in enumerate(arch.levels):
        number = n - i
        if lv.is_dummy:
            assert with_dummies and number not in printed
            continue
        s = printed.pop(number)
        assert s.name == lv.name
        assert lv.size_words == s.int("Size")  # None for DRAM ("-")
        assert lv.word_bits == s.int("Word bits")
        assert lv.block_size == s.int("Block size")
        assert lv.cluster_size == s.int("Cluster size")
        assert lv.instances == s.int("Instances")
        assert (lv.mesh_x, lv.mesh_y) == s.mesh()
        assert lv.shared_bandwidth == s.float("Shared bandwidth")
        assert lv.read_bandwidth == s.float("Read bandwidth")
        assert lv.write_bandwidth == s.float("Write bandwidth")
        if "Multiple buffering" in s.specs:
            assert lv.multiple_buffering == s.float("Multiple buffering")
    assert not printed


@pytest.mark.parametrize("files,stats", V03_CASES, ids=["simba_like", "SystolicSimba"])
def test_v03_simba_matches_timeloop_stats(files, stats):
    arch = load_architecture(*files)
    assert arch.version == "0.3"
    _check_against_stats(arch, stats, with_dummies=False)
    # Timeloop's order, outermost first (stats Level 6..1)
    assert arch.level_names == (
        "DRAM",
        "GlobalBuffer",
        "PEInputBuffer",
        "PEWeightBuffer",
        "PEAccuBuffer",
        "PEWeightRegs",
    )


@pytest.mark.parametrize("files,stats", V03_CASES, ids=["simba_like", "SystolicSimba"])
def test_v03_paths_and_instances_match_flattened_architecture(files, stats):
    arch = load_architecture(*files)
    flat = yaml.safe_load((stats.parent / "timeloop-mapper.flattened_architecture.yaml").read_text())
    by_path = {n["name"]: n for n in flat["architecture"]["local"]}
    for comp in [*list(arch.levels), arch.arithmetic]:
        node = by_path.pop(comp.path)
        ranges = re.findall(r"\[(\d+)\.\.(\d+)\]", node["name"])
        assert comp.instances == math.prod(int(b) - int(a) + 1 for a, b in ranges)
        a = node["attributes"]
        assert comp.mesh_x == a.get("meshX", comp.instances)
        assert comp.word_bits == a["word-bits"]
        if "memory_depth" in a:
            assert comp.depth == a["memory_depth"]
            assert comp.block_size * comp.word_bits == a["memory_width"]
        assert comp.technology == a["technology"]
    assert not by_path


def test_vgg_simba_architecture_is_alexnet_simbas():
    vgg = EXAMPLES / "VGG_Simba/inputs/simba_like/arch"
    a = load_architecture(SIMBA / "arch/simba_like.yaml", SIMBA / "arch/components")
    b = load_architecture(vgg / "simba_like.yaml", vgg / "components")

    def strip(arch):
        return [
            (lv.name, lv.instances, lv.mesh_x, lv.mesh_y, lv.size_words, lv.block_size) for lv in arch.levels
        ]

    assert strip(a) == strip(b)


def test_component_classes_fill_attribute_defaults_under_own_attributes(simba):
    gb = simba.level("GlobalBuffer")
    assert gb.subclass == "smartbuffer_SRAM"
    assert "smartbuffer_SRAM" in simba.components
    assert gb.attributes["n_buffets"] == 1  # only in the class defaults
    assert gb.attributes["memory_depth"] == 2048  # own attribute beats the class default (12)
    assert gb.attributes["latency"] == "0.5ns"  # inherited from the System subtree
    assert simba.technology == "45nm"
    assert simba.arithmetic.cls == "compute" and simba.arithmetic.subclass == "lmac"


def test_gemmini_follows_timeloops_size_rules(gemmini):
    assert gemmini.level_names == ("DRAM", "Scratchpad", "Accumulator", "Input_Buffer", "Registers")
    sp = gemmini.level("Scratchpad")
    # entries (262144) take precedence over depth x block size; block = width / word bits = 512 / 32
    assert (sp.block_size, sp.size_words, sp.instances) == (16, 262144, 1)
    ib = gemmini.level("Input_Buffer")
    assert (ib.block_size, ib.entries, ib.size_words, ib.instances) == (16, 1024, 1024, 16)
    acc = gemmini.level("Accumulator")
    assert (acc.size_words, acc.instances, acc.mesh_x, acc.mesh_y) == (1024, 16, 16, 1)
    reg = gemmini.level("Registers")
    # no meshX given: Timeloop lays all 256 instances along X (BufferLevel::ValidateTopology)
    assert (reg.instances, reg.mesh_x, reg.mesh_y, reg.size_words) == (256, 256, 1, 1)
    dram = gemmini.level("DRAM")
    assert dram.is_dram and dram.size_words is None and dram.word_bits == 32 and dram.shared_bandwidth == 6
    assert gemmini.arithmetic.name == "MACC" and gemmini.arithmetic.instances == 256
    assert gemmini.arithmetic.word_bits == 32


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_designs_match_timeloop_stats(design):
    arch = load_architecture(*v04_paths(design))
    assert arch.version == "0.4"
    _check_against_stats(
        arch, EXERCISES / design / "ref_outputs/timeloop-mapper.stats.txt", with_dummies=True
    )


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_designs_match_flattened_architecture(design):
    arch = load_architecture(*v04_paths(design))
    flat = yaml.safe_load(
        (EXERCISES / design / "ref_outputs/timeloop-mapper.flattened_architecture.yaml").read_text()
    )
    nodes = flat["architecture"]["local"]
    comps = [*list(arch.levels), arch.arithmetic]
    assert [c.path for c in comps] == [n["name"] for n in nodes]
    for c, n in zip(comps, nodes):
        a = n["attributes"]
        assert (c.mesh_x, c.mesh_y) == (a["meshX"], a["meshY"])
        assert c.instances == a["meshX"] * a["meshY"]
        assert c.cls == n["class"] and c.subclass == n.get("subclass")
        if c is not arch.arithmetic and "depth" in a:
            assert c.depth == a["depth"]


def _timeloop_targets(design: str) -> list[dict]:
    doc = yaml.safe_load((EXERCISES / design / "ref_outputs/parsed-processed-input.yaml").read_text())
    return doc["architecture_constraints"]["targets"]


def _subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(c in it for c in short)


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_node_constraints_match_timeloops_processed_input(design):
    from deepfrack.arch import load_constraints
    from deepfrack.arch.constraints import parse_factors

    arch = load_architecture(*v04_paths(design))
    ours = load_constraints(EXERCISES / design / "arch.yaml")
    assert ours.key() == arch.constraints.key()
    theirs = _timeloop_targets(design)
    # keep/bypass per level
    want_dt = {
        t["target"]: (set(t.get("keep", [])), set(t.get("bypass", [])))
        for t in theirs
        if t["type"] == "bypass"
    }
    got_dt = {
        t.target: (set(t.keep or ()), set(t.bypass or ())) for t in ours.targets if t.type == "datatype"
    }
    assert got_dt == want_dt
    # factors and splits; permutations up to the size-1 dimensions timeloopfe's optimizer adds
    for kind in ("temporal", "spatial"):
        want = {t["target"]: t for t in theirs if t["type"] == kind}
        got = {t.target: t for t in ours.targets if t.type == kind}
        for target, t in want.items():
            if set(t) <= {"type", "target", "permutation"} and t.get("permutation") == "N":
                continue  # a permutation hint timeloopfe adds to every level
            g = got[target]
            assert g.factors == parse_factors(t.get("factors", ""), None, "factors")
            assert g.split == t.get("split")
            if g.permutation:
                assert _subsequence(g.permutation, t["permutation"])


def test_v04_parallel_branches_bypass_what_peers_keep():
    arch = load_architecture(*v04_paths("simple_output_stationary"))
    c = arch.constraints
    # weight_reg says only keep: [Weights]; the !Parallel makes it bypass the other two
    assert c.keeps("weight_reg", "Inputs") is False and c.keeps("weight_reg", "Outputs") is False
    assert c.keeps("weight_reg", "Weights") is True
    assert all(c.keeps("inter_PE_spatial", t) is False for t in ("Weights", "Inputs", "Outputs"))


def test_v04_container_attributes_are_inherited(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("""
architecture:
  version: 0.4
  nodes:
  - !Container {name: top, attributes: {datawidth: 8, technology: 7nm}}
  - !Component {name: DRAM, class: DRAM, attributes: {width: 64}}
  - !Container {name: PE, spatial: {meshX: 4, meshY: 2}}
  - !Component {name: buf, class: SRAM, attributes: {depth: 16, width: 32}}
  - !Component {name: mac, class: intmac}
""")
    a = load_architecture(f)
    assert a.level_names == ("DRAM", "inter_PE_spatial", "buf")
    buf = a.level("buf")
    assert (buf.word_bits, buf.block_size, buf.size_words, buf.instances, buf.mesh_x, buf.mesh_y) == (
        8,
        4,
        64,
        8,
        4,
        2,
    )
    assert buf.technology == "7nm" and a.level("DRAM").block_size == 8
    assert a.arithmetic.word_bits == 8 and a.arithmetic.instances == 8
    assert a.fanout("inter_PE_spatial") == (4, 2)


def test_v03_word_bits_come_from_enclosing_subtrees(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("""
architecture:
  version: 0.3
  subtree:
  - name: S
    attributes: {word-bits: 8, meshX: 99}
    local:
    - {name: DRAM, class: DRAM, attributes: {width: 64}}
    subtree:
    - name: PE[0..3]
      local:
      - {name: "buf[0..1]", class: storage, attributes: {memory_depth: 10, memory_width: 32, meshX: 4}}
      - {name: mac, class: intmac}
""")
    a = load_architecture(f)
    buf = a.level("buf")
    assert (buf.word_bits, buf.block_size, buf.size_words, buf.instances, buf.mesh_x, buf.mesh_y) == (
        8,
        4,
        40,
        8,
        4,
        2,
    )
    assert a.level("DRAM").block_size == 8
    # meshX is not inherited (Timeloop reads only a component's own topology attributes)
    assert (a.arithmetic.instances, a.arithmetic.mesh_x, a.arithmetic.mesh_y) == (4, 4, 1)
    assert "meshX" not in a.arithmetic.attributes and a.arithmetic.attributes["word_bits"] == 8


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    local=st.integers(1, 8),
    depth=st.integers(1, 4096),
    words=st.sampled_from([1, 2, 4, 8]),
    bits=st.sampled_from([8, 16, 32]),
)
def test_v03_instances_multiply_down_the_tree(tmp_path_factory, sizes, local, depth, words, bits):
    subtree: dict = {
        "name": "leaf",
        "local": [
            {
                "name": f"buf[0..{local - 1}]",
                "class": "SRAM",
                "attributes": {"memory_depth": depth, "memory_width": words * bits, "word-bits": bits},
            },
            {"name": "mac", "class": "mac"},
        ],
    }
    for i, s in enumerate(reversed(sizes)):
        subtree = {"name": f"n{i}[0..{s - 1}]", "subtree": [subtree]}
    doc = {
        "architecture": {
            "version": 0.3,
            "subtree": [
                {
                    "name": "top",
                    "local": [
                        {"name": "DRAM", "class": "DRAM", "attributes": {"width": bits, "word-bits": bits}}
                    ],
                    "subtree": [subtree],
                }
            ],
        }
    }
    f = tmp_path_factory.mktemp("a") / "a.yaml"
    f.write_text(yaml.safe_dump(doc))
    a = load_architecture(f)
    buf = a.level("buf")
    assert buf.instances == math.prod(sizes) * local
    assert (buf.mesh_x, buf.mesh_y) == (buf.instances, 1)
    assert buf.total_words == depth * words * buf.instances
    assert a.arithmetic.instances == math.prod(sizes)


# ------------------------------------------------------------------------------------------------ #
# bad input
# ------------------------------------------------------------------------------------------------ #
V03_BASE = """
architecture:
  version: 0.3
  subtree:
  - name: S
    local:
    - {name: DRAM, class: DRAM, attributes: {width: 16, word-bits: 16}}
    subtree:
    - name: PE[0..3]
      local:
      - name: buf
        class: storage
        attributes: {memory_depth: 8, memory_width: 64, word-bits: 16, meshX: MESH}
      - {name: mac, class: compute}
"""


def _write(tmp_path, text, name="arch.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text,field,message",
    [
        (
            V03_BASE.replace("MESH", "3"),
            "architecture.subtree[0].subtree[0].local[0].attributes.meshX",
            "does not divide",
        ),
        (
            V03_BASE.replace("MESH", "2").replace("memory_width: 64", "memory_width: 40"),
            "architecture.subtree[0].subtree[0].local[0].attributes.width",
            "not a multiple",
        ),
        (
            V03_BASE.replace("MESH", "2").replace("memory_depth: 8", "memory_depth: lots"),
            "architecture.subtree[0].subtree[0].local[0].attributes.memory_depth",
            "expected a number",
        ),
        (
            V03_BASE.replace("MESH", "2").replace("class: compute", "class: network_thing"),
            "architecture",
            "no compute component",
        ),
        (
            V03_BASE.replace("MESH", "2").replace("name: PE[0..3]", "name: PE[3..0]"),
            "architecture.subtree[0].subtree[0].name",
            "empty range",
        ),
        (
            V03_BASE.replace("MESH", "2").replace(
                "    subtree:\n    - name: PE", "    subtree:\n    - {name: X}\n    - name: PE"
            ),
            "architecture.subtree[0].subtree",
            "exactly one subtree",
        ),
    ],
)
def test_bad_v03_input_names_file_and_field(tmp_path, text, field, message):
    f = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_architecture(f)
    assert e.value.path == f and e.value.field == field
    assert message in str(e.value)


def test_bad_v04_tag_and_parallel(tmp_path):
    text = (EXERCISES / "simba_like/arch.yaml").read_text()
    f = _write(tmp_path, text.replace("!Container # Each PE", "!Contianer # Each PE"))
    with pytest.raises(InputError, match=r"unknown YAML tag !Contianer") as e:
        load_architecture(f)
    assert e.value.field == "architecture.nodes[3]"
    g = _write(
        tmp_path,
        text.replace(
            "- !Nothing {constraints: {dataspace: {keep: [Inputs]}}}",
            "- !Nothing {constraints: {dataspace: {keep: [Weights]}}}",
        ),
        "b.yaml",
    )
    with pytest.raises(InputError, match="kept in two branches") as e:
        load_architecture(g)
    assert e.value.field == "architecture.nodes[6]"


def test_two_architectures_and_none_are_errors(tmp_path):
    a = SIMBA / "arch/simba_like.yaml"
    with pytest.raises(InputError, match="a second architecture"):
        load_architecture(a, GEMMINI / "arch/gemini_like.yaml")
    with pytest.raises(InputError, match="no file defines an architecture"):
        load_architecture(SIMBA / "arch/components")
    with pytest.raises(InputError, match="malformed YAML"):
        load_architecture(_write(tmp_path, "architecture: [\n"))
    with pytest.raises(InputError, match="file not found"):
        load_architecture(tmp_path / "missing.yaml")


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_equals_what_timeloop_read_after_timeloopfe(design):
    """parsed-processed-input.yaml is the v0.3-style tree timeloopfe handed to Timeloop: parsing it
    (as v0.3) must give the same levels as parsing the v0.4 file."""
    ours = load_architecture(*v04_paths(design))
    fed = load_architecture(EXERCISES / design / "ref_outputs/parsed-processed-input.yaml")

    def fields(lv):
        return (
            lv.name,
            lv.cls,
            lv.instances,
            lv.mesh_x,
            lv.mesh_y,
            lv.word_bits,
            lv.block_size,
            lv.cluster_size,
            lv.size_words,
            lv.read_bandwidth,
            lv.write_bandwidth,
            lv.shared_bandwidth,
            lv.multiple_buffering,
            lv.is_dummy,
        )

    assert [fields(lv) for lv in ours.levels] == [fields(lv) for lv in fed.levels]
    a, b = ours.arithmetic, fed.arithmetic
    assert (a.name, a.instances, a.mesh_x, a.mesh_y, a.word_bits) == (
        b.name,
        b.instances,
        b.mesh_x,
        b.mesh_y,
        b.word_bits,
    )
