"""Bundled accelerators: their files are the reference designs', they load, they cost a layer with the
built-in mapper and energy table under all seven variants, and names resolve (or list the known ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfrack.arch import all_variant_constraints, builtin_energy_table, capacity_spec, load_variant_folder
from deepfrack.arch.presets import preset_names, preset_summary, presets, resolve_arch
from deepfrack.arch.spec import Constraints
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.cost.mapper import map_tile
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS
from deepfrack.workload.layer import Layer
from tests.paths import EXAMPLES, EXERCISES

SIMBA = EXAMPLES / "AlexNet_Simba/inputs/simba_like"
GEMMINI = EXAMPLES / "GAN_Gemmini/inputs/FP32_Gemmini"

# preset file -> the reference file it was taken from
SOURCES = {
    "simba-like": {
        "arch.yaml": SIMBA / "arch/simba_like.yaml",
        **{f"components/{f.name}": f for f in (SIMBA / "arch/components").glob("*.yaml")},
        **{f"constraints/{f.name}": f for f in (SIMBA / "constraints").glob("*.yaml")},
    },
    "gemmini-like": {
        "arch.yaml": GEMMINI / "arch/gemini_like.yaml",
        **{f"constraints/{f.name}": f for f in (GEMMINI / "constraints").glob("*.yaml")},
    },
    "eyeriss-like": {
        "arch.yaml": EXERCISES / "eyeriss_like/arch.yaml",
        **{f"components/{n}.yaml": EXERCISES / f"_components/{n}.yaml" for n in ("intmac", "regfile")},
        **{
            f"components/{n}.yaml": EXERCISES / f"_components/{n}.yaml"
            for n in ("smartbuffer_RF", "smartbuffer_SRAM")
        },
    },
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_preset_files_are_the_reference_designs(name: str):
    folder = presets()[name].folder
    for rel, src in SOURCES[name].items():
        assert (folder / rel).read_bytes() == src.read_bytes(), rel
    shipped = {str(p.relative_to(folder)) for p in folder.rglob("*.yaml")}
    own = {f"constraints/{v.value}.yaml" for v in VARIANTS} if name == "eyeriss-like" else set()
    assert shipped == set(SOURCES[name]) | own


def test_eyeriss_variant_files_change_only_what_dram_keeps():
    pre = presets()["eyeriss-like"]
    arch = load_inputs("eyeriss-like").architecture
    shipped = load_variant_folder(pre.constraints, arch)
    derived = all_variant_constraints(Constraints(), arch)
    for v in VARIANTS:
        for t in ("Weights", "Inputs", "Outputs"):
            assert shipped[v].keeps("DRAM", t) == derived[v].keeps("DRAM", t) == (t in v.dram_keeps)


CAPACITY = {
    "simba-like": {"PEWeightBuffer": 524_288, "GlobalBuffer": 65_536},
    "gemmini-like": {"Scratchpad": 262_144, "Accumulator": 16_384},
    "eyeriss-like": {"weights_spad": 64_512, "shared_glb": 131_072},
}


@pytest.mark.parametrize("name", preset_names())
def test_each_preset_loads_and_costs_a_layer_under_every_variant(name: str):
    inputs = load_inputs(name)  # the name alone: arch, components and the seven variant files
    assert inputs.variant_files and set(inputs.variant_files) == set(VARIANTS)
    arch = inputs.architecture
    assert capacity_spec(arch, inputs.constraints_for(VARIANTS[0])).words == CAPACITY[name]
    sets = {v.value: inputs.constraints_for(v) for v in VARIANTS}
    layer = Layer("c", C=16, M=32, R=3, S=3, P=8, Q=8)
    out = map_tile(arch, builtin_energy_table(arch), layer, sets, "energy")
    assert all(r.ok and r.energy_pJ > 0 and r.macs == layer.macs for r in out.values()), name
    # keeping a tensor on chip saves its DRAM traffic: every on-chip variant costs less than SLC
    assert all(out[v].energy_pJ < out["SLC"].energy_pJ for v in sets if v != "SLC")


def test_summary_gives_dram_energy_from_the_builtin_table():
    info = {n: preset_summary(p) for n, p in presets().items()}
    # DDR4 15 pJ/bit x 16 bits; LPDDR4 8 pJ/bit x 8 bits; HBM2 3.9 pJ/bit x 32 bits (docs/arch.md)
    assert info["simba-like"]["dram_pJ_per_word"] == pytest.approx(240)
    assert info["eyeriss-like"]["dram_pJ_per_word"] == pytest.approx(64)
    assert info["gemmini-like"]["dram_pJ_per_word"] == pytest.approx(124.8)
    assert {n: i["dram_type"] for n, i in info.items()} == {
        "simba-like": "DDR4",
        "eyeriss-like": "LPDDR4",
        "gemmini-like": "HBM2",
    }


def test_resolve_arch(tmp_path: Path):
    arch, comps, cons = resolve_arch("simba-like")
    assert arch.name == "arch.yaml" and comps is not None and cons is not None and cons.is_dir()
    assert resolve_arch(SIMBA / "arch/simba_like.yaml") == (SIMBA / "arch/simba_like.yaml", None, None)
    with pytest.raises(InputError) as err:
        resolve_arch("simba")
    text = str(err.value)
    assert text.startswith("simba: ") and all(n in text for n in preset_names()) and "\n" not in text
    # a path that does not exist is left to the loaders (they say the file is missing)
    assert resolve_arch(tmp_path / "none.yaml") == (tmp_path / "none.yaml", None, None)
