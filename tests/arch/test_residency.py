"""Residency variants derived from constraints equal the original's seven files."""

from __future__ import annotations

import shutil

import pytest

from deepfrack.arch import (
    Constraints,
    capacity_spec,
    effective_keep,
    load_architecture,
    load_constraints,
    load_variant_folder,
    variant_constraints,
)
from deepfrack.arch.residency import all_variant_constraints
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS, Variant
from tests.arch.conftest import GEMMINI, SIMBA, SYSTOLIC, v04_paths
from tests.paths import EXAMPLES

ROOTS = {
    "simba_like": SIMBA,
    "VGG_simba_like": EXAMPLES / "VGG_Simba/inputs/simba_like",
    "SystolicSimba": SYSTOLIC,
    "Gemmini": GEMMINI,
}


def _meaning(arch, cons: Constraints):
    """What a constraint set means to Timeloop: the keep/bypass of every level (with Timeloop's
    default at the outermost level) and every other constraint."""
    return effective_keep(arch, cons), tuple(sorted(t.key() for t in cons.targets if t.type != "datatype"))


@pytest.mark.parametrize("name", list(ROOTS))
def test_derived_variants_equal_the_seven_original_files(name):
    root = ROOTS[name]
    arch = load_architecture(root / "arch")
    originals = {v: load_constraints(root / f"constraints/{v.value}.yaml") for v in VARIANTS}
    for base in originals.values():  # derive from any one of them
        derived = all_variant_constraints(base, arch)
        for v in VARIANTS:
            assert _meaning(arch, derived[v]) == _meaning(arch, originals[v]), (base.source, v)
    # literally the same targets, apart from the SLC file of Simba, which leaves DRAM to Timeloop's default
    for v in VARIANTS:
        got = variant_constraints(originals[Variant.SLC], arch, v)
        if name == "Gemmini" or v is not Variant.SLC:
            assert got.key() == originals[v].key()
        assert got.targets[0].target == "DRAM" and set(got.targets[0].keep) == set(v.dram_keeps)


def test_only_dram_changes(simba):
    base = load_constraints(
        SIMBA / "constraints/SLC.yaml", SIMBA / "constraints/simba_like_map_constraints.yaml"
    )
    for v in VARIANTS:
        got = variant_constraints(base, simba, v)
        assert [t for t in got.targets if t.target != "DRAM" or t.type != "datatype"] == [
            t for t in base.targets if t.target != "DRAM" or t.type != "datatype"
        ]
        assert capacity_spec(simba, got).home == capacity_spec(simba, base).home


def test_v04_variants_keep_node_constraints():
    arch = load_architecture(*v04_paths("simba_like"))
    got = variant_constraints(Constraints(), arch, "WCC")
    assert got.keeps("DRAM", "Weights") is False and got.keeps("DRAM", "Inputs") is False
    merged = effective_keep(arch, got)
    assert merged["PEWeightBuffer"]["Weights"] is True and merged["inter_PE_spatial"]["Weights"] is False


def test_variant_without_a_home_level_is_an_error(simba, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "architecture_constraints:\n  targets:\n"
        + "".join(
            f"  - {{target: {lv}, type: datatype, bypass: [Weights]}}\n"
            for lv in ("GlobalBuffer", "PEInputBuffer", "PEWeightBuffer", "PEAccuBuffer", "PEWeightRegs")
        )
    )
    c = load_constraints(f)
    variant_constraints(c, simba, "LBLC")  # weights stay in DRAM: fine
    with pytest.raises(InputError, match="variant WCC keeps Weights on chip, but no on-chip level"):
        variant_constraints(c, simba, "WCC")
    with pytest.raises(ValueError, match="unknown variant"):
        variant_constraints(c, simba, "XYZ")


@pytest.mark.parametrize("name", list(ROOTS))
def test_load_variant_folder(name):
    root = ROOTS[name]
    arch = load_architecture(root / "arch")
    got = load_variant_folder(root / "constraints", arch)
    assert set(got) == set(VARIANTS)
    shared = [f for f in (root / "constraints").glob("*.yaml") if f.stem not in {v.value for v in VARIANTS}]
    for v in VARIANTS:
        want = load_constraints(root / f"constraints/{v.value}.yaml", *shared)
        assert got[v].key() == want.key()
    if name == "simba_like":
        # the map constraints reach every variant
        assert all(got[v].for_target("PEWeightBuffer", "temporal") for v in VARIANTS)


def test_variant_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_variant_folder(tmp_path / "nope")
    d = tmp_path / "c"
    shutil.copytree(SIMBA / "constraints", d)
    (d / "EWCC.yaml").unlink()
    (d / "wcc.yaml").write_text((d / "WCC.yaml").read_text())
    (d / "WCC.yaml").unlink()
    with pytest.raises(InputError, match=r"missing variant files: EWCC.yaml") as e:
        load_variant_folder(d)
    assert e.value.path == d
