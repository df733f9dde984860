"""Constraint parsing and validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.arch import Constraints, FactorBound, check_constraints, load_architecture, load_constraints
from deepfrack.arch.constraints import as_yaml_data, parse_factors, parse_permutation, parse_target_list
from deepfrack.dims import DIMS
from deepfrack.errors import InputError
from tests.arch.conftest import GEMMINI, SIMBA, SYSTOLIC, V04_DESIGNS, v04_paths
from tests.paths import EXAMPLES, EXERCISES

VARIANT_NAMES = ("SLC", "Start", "LBLC", "ELBLC", "WCC", "EWCC", "OutWCC")
SIMBA_DIRS = [
    EXAMPLES / "AlexNet_Simba/inputs/simba_like",
    EXAMPLES / "VGG_Simba/inputs/simba_like",
    SYSTOLIC,
]


@pytest.mark.parametrize(
    "root", [*SIMBA_DIRS, GEMMINI], ids=["AlexNet_Simba", "VGG_Simba", "SystolicSimba", "Gemmini"]
)
def test_every_example_constraint_file_parses_and_fits_its_architecture(root: Path):
    arch = load_architecture(root / "arch")
    files = sorted((root / "constraints").glob("*.yaml"))
    assert {f.stem for f in files} >= set(VARIANT_NAMES)
    for f in files:
        c = load_constraints(f)
        assert c.targets, f
        check_constraints(arch, c)
    for v in VARIANT_NAMES:
        # a variant file and the folder's mapspace file together, as the benchmarker runs them
        extra = [f for f in files if f.stem not in VARIANT_NAMES and "map" in f.stem]
        check_constraints(arch, load_constraints(root / "constraints" / f"{v}.yaml", *extra))


def test_simba_slc_and_map_constraints_content():
    c = load_constraints(
        SIMBA / "constraints/SLC.yaml", SIMBA / "constraints/simba_like_map_constraints.yaml"
    )
    assert len(c.targets) == 16
    gb = c.for_target("GlobalBuffer", "datatype")[0]
    assert gb.keep == ("Inputs", "Outputs") and gb.bypass == ("Weights",)
    sp = c.for_target("PEAccuBuffer", "spatial")
    assert sp[0].factors == {d: FactorBound("=", 1) for d in "PQRSMN"} and sp[0].permutation == "CMQRSPN"
    assert sp[1].factors == {"C": FactorBound("=", 8)} and sp[1].source.endswith(
        "simba_like_map_constraints.yaml"
    )
    assert c.for_target("PEWeightBuffer", "temporal")[0].permutation == "PQMN"
    assert c.keeps("DRAM", "Weights") is None  # the SLC file says nothing about DRAM
    assert c.keeps("PEWeightRegs", "Inputs") is False


def test_gemmini_old_bypass_spelling_is_datatype():
    c = load_constraints(GEMMINI / "constraints/Start.yaml")
    assert {t.type for t in c.targets} == {"datatype"}
    assert c.keeps("DRAM", "Outputs") is False and c.keeps("DRAM", "Inputs") is True
    assert c.keeps("Scratchpad", "Weights") is True and c.keeps("Scratchpad", "Outputs") is False


def test_timeloop_map_yaml_reads_as_a_target_list():
    # a map.yaml uses the same entry syntax, with factors like "C1 M2"
    doc = yaml.safe_load((EXERCISES / "simba_like/ref_outputs/timeloop-mapper.map.yaml").read_text())
    ts = parse_target_list(doc["mapping"], "map.yaml", "mapping")
    acc = next(t for t in ts if t.target == "PEAccuBuffer" and t.type == "temporal")
    assert acc.factors["M"] == FactorBound("=", 2) and acc.factors["P"] == FactorBound("=", 7)
    assert acc.permutation == "PMCRSNQ"
    sp = next(t for t in ts if t.target == "inter_PE_spatial" and t.type == "spatial")
    assert sp.split == 2 and sp.factors["C"].value == 3
    assert next(t for t in ts if t.target == "inter_PE_spatial" and t.type == "datatype").keep == ()


@pytest.mark.parametrize(
    "text,want",
    [
        ("P=1 Q=1 C<=8 M>=2", {"P": ("=", 1), "Q": ("=", 1), "C": ("<=", 8), "M": (">=", 2)}),
        ("C1 M2 R1", {"C": ("=", 1), "M": ("=", 2), "R": ("=", 1)}),
        ("C=1,M=1, N = 0", {"C": ("=", 1), "M": ("=", 1), "N": ("=", 0)}),
        (["N=1", "C<=4"], {"N": ("=", 1), "C": ("<=", 4)}),
        ("P=1 # a comment", {"P": ("=", 1)}),
        ("", {}),
    ],
)
def test_factor_spellings(text, want):
    got = parse_factors(text, None, "factors")
    assert {k: (b.op, b.value) for k, b in got.items()} == want


@pytest.mark.parametrize(
    "text,message",
    [
        ("P=1 X=2", "unknown dimension 'X'"),
        ("P=x", "malformed factor"),
        ("P==1", "malformed factor"),
        ("C<=0", "must be positive"),
        ("M>=0", "must be positive"),
        ("P=-1", "must be positive"),
        ("P=1 P=2", "given twice"),
        ("=4", "malformed factor"),
        (5, "expected a string"),
    ],
)
def test_bad_factors(text, message):
    with pytest.raises(InputError, match=message) as e:
        parse_factors(text, "c.yaml", "targets[2].factors")
    assert e.value.path == "c.yaml" and e.value.field == "targets[2].factors"


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(DIMS), st.tuples(st.sampled_from(["=", "<=", ">="]), st.integers(1, 500)), max_size=7
    ),
    st.sampled_from([" ", ",", ", "]),
)
def test_factors_round_trip(bounds, sep):
    text = sep.join(f"{d}{op}{v}" for d, (op, v) in bounds.items())
    assert parse_factors(text, None, "f") == {d: FactorBound(op, v) for d, (op, v) in bounds.items()}


def test_permutations():
    assert parse_permutation("RS_CM", None, "p") == "RS_CM"
    assert parse_permutation(["M", "C", "R"], None, "p") == "MCR"
    with pytest.raises(InputError, match="unknown dimension 'X'"):
        parse_permutation("CXM", "f.yaml", "targets[0].permutation")
    with pytest.raises(InputError, match="given twice"):
        parse_permutation("CMC", "f.yaml", "targets[0].permutation")


def test_container_spellings(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("""
mapspace:
  constraints:
  - {target: GlobalBuffer, type: temporal, factors: R=1}
  - target: PEWeightBuffer
    constraints:
    - {type: temporal, attributes: {factors: P=1, permutation: PQ}}
    - {type: bypassing, keep: [Weights], bypass: [Inputs]}
  - {target: PEWeightRegs, type: utilization, min: 0.5}
""")
    c = load_constraints(f)
    assert [(t.target, t.type) for t in c.targets] == [
        ("GlobalBuffer", "temporal"),
        ("PEWeightBuffer", "temporal"),
        ("PEWeightBuffer", "datatype"),
        ("PEWeightRegs", "utilization"),
    ]
    assert c.targets[1].permutation == "PQ" and c.targets[1].factors == {"P": FactorBound("=", 1)}
    assert c.targets[3].min_utilization == 0.5
    g = tmp_path / "d.yaml"
    g.write_text("mapspace_constraints: [{target: DRAM, type: temporal, factors: R=1}]\n")
    assert load_constraints(g).targets[0].target == "DRAM"
    h = tmp_path / "e.yaml"  # the v0.4 front end's top-level constraints
    h.write_text(
        "constraints:\n  version: 0.4\n  targets: [{target: DRAM, type: dataspace, keep: [Inputs]}]\n"
    )
    assert load_constraints(h).targets[0].keep == ("Inputs",)
    # a Constraints object and a parsed document are accepted too, and round-trip through as_yaml_data
    again = load_constraints(as_yaml_data(c))
    assert again.key() == c.key()
    assert load_constraints(c, again).key() == c.key()


@pytest.mark.parametrize(
    "body,field,message",
    [
        (
            "{target: GlobalBuffer, type: temporal, factors: P=1 Z=1}",
            "architecture_constraints.targets[0].factors",
            "unknown dimension 'Z'",
        ),
        (
            "{target: GlobalBuffer, type: temporal, factors: P=one}",
            "architecture_constraints.targets[0].factors",
            "malformed factor",
        ),
        (
            "{target: GlobalBuffer, type: tempral}",
            "architecture_constraints.targets[0].type",
            "unknown constraint type",
        ),
        (
            "{target: GlobalBuffer, type: datatype, keep: [Weight]}",
            "architecture_constraints.targets[0].keep",
            "unknown data space 'Weight'",
        ),
        ("{type: datatype, keep: [Weights]}", "architecture_constraints.targets[0]", "no target"),
        (
            "{target: GlobalBuffer, type: spatial, split: -1}",
            "architecture_constraints.targets[0].split",
            "integer >= 0",
        ),
        (
            "{target: GlobalBuffer, type: utilization, min: 2}",
            "architecture_constraints.targets[0].min",
            "between 0 and 1",
        ),
    ],
)
def test_bad_constraint_files_name_file_and_field(tmp_path, body, field, message):
    f = tmp_path / "bad.yaml"
    f.write_text(f"architecture_constraints:\n  targets:\n  - {body}\n")
    with pytest.raises(InputError, match=message) as e:
        load_constraints(f)
    assert e.value.path == f and e.value.field == field


def test_target_not_in_architecture(simba, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "architecture_constraints:\n  targets:\n  - {target: GlobalBufer, type: datatype, keep: [Inputs]}\n"
    )
    with pytest.raises(InputError, match="not a storage level of architecture System") as e:
        check_constraints(simba, load_constraints(f))
    assert e.value.path == str(f) and e.value.field == "architecture_constraints.targets[0].target"
    assert "GlobalBufer is not a storage level" in str(e.value)


def test_spatial_constraint_needs_a_fanout(simba, tmp_path):
    f = tmp_path / "c.yaml"
    # PEWeightBuffer and PEAccuBuffer both have 128 instances: no fanout between them (Timeloop errors too)
    f.write_text(
        "architecture_constraints: [{target: PEAccuBuffer, type: spatial, factors: C=1},"
        " {target: PEWeightBuffer, type: spatial, factors: C=1}]\n"
    )
    with pytest.raises(InputError, match="no spatial fanout") as e:
        check_constraints(simba, load_constraints(f))
    assert e.value.field == "architecture_constraints[1].target" and "on PEWeightBuffer" in str(e.value)


def test_contradicting_constraints_across_files(simba):
    # the seven variant files together contradict each other at DRAM
    with pytest.raises(InputError, match="both kept and bypassed at DRAM") as e:
        check_constraints(simba, load_constraints(SIMBA / "constraints"))
    assert e.value.field == "architecture_constraints.targets[0].bypass"
    a = Constraints(
        parse_target_list([{"target": "GlobalBuffer", "type": "temporal", "factors": "R=1"}], "a.yaml", "x")
    )
    b = Constraints(
        parse_target_list([{"target": "GlobalBuffer", "type": "temporal", "factors": "R=3"}], "b.yaml", "x")
    )
    with pytest.raises(InputError, match=re.escape("contradicts R=1 from a.yaml")) as e:
        check_constraints(simba, a.merged(b))
    assert e.value.path == "b.yaml" and e.value.field == "x[0].factors"


def test_a_file_without_constraints_is_an_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("something: else\n")
    with pytest.raises(InputError, match="no constraints found"):
        load_constraints(f)


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_arch_constraints_check_against_their_architecture(design):
    arch = load_architecture(*v04_paths(design))
    check_constraints(arch, load_constraints(EXERCISES / design / "arch.yaml"))
