"""capacity_spec: home levels and their words."""

from __future__ import annotations

import pytest

from deepfrack.arch import Constraints, capacity_spec, load_architecture, load_constraints
from deepfrack.errors import InputError
from tests.arch.conftest import GEMMINI, SIMBA, SYSTOLIC, V04_DESIGNS, v04_paths
from tests.paths import EXERCISES

VARIANTS = ("SLC", "Start", "LBLC", "ELBLC", "WCC", "EWCC", "OutWCC")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("root", [SIMBA, SYSTOLIC], ids=["simba_like", "SystolicSimba"])
def test_simba_home_levels(root, variant):
    arch = load_architecture(root / "arch")
    cap = capacity_spec(arch, load_constraints(root / f"constraints/{variant}.yaml"))
    assert dict(cap.home) == {
        "Weights": "PEWeightBuffer",
        "Inputs": "GlobalBuffer",
        "Outputs": "GlobalBuffer",
    }
    # 512 x (128 / 16) words x 16 PEs x 8 buffers; 2048 x (512 / 16) x 1
    assert dict(cap.words) == {"PEWeightBuffer": 524_288, "GlobalBuffer": 65_536}
    assert cap.capacity_of("Weights") == 524_288


@pytest.mark.parametrize("variant", VARIANTS)
def test_gemmini_home_levels(gemmini, variant):
    cap = capacity_spec(gemmini, load_constraints(GEMMINI / f"constraints/{variant}.yaml"))
    # the Scratchpad bypasses Outputs: they live in the 16 accumulators (1024 words each)
    assert dict(cap.home) == {"Weights": "Scratchpad", "Inputs": "Scratchpad", "Outputs": "Accumulator"}
    assert dict(cap.words) == {"Scratchpad": 262_144, "Accumulator": 16_384}


def test_unconstrained_levels_keep_everything(simba):
    cap = capacity_spec(simba, Constraints())
    assert dict(cap.home) == {t: "GlobalBuffer" for t in ("Weights", "Inputs", "Outputs")}


def test_a_tensor_no_level_keeps_has_no_home(simba, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "architecture_constraints:\n  targets:\n"
        + "".join(
            f"  - {{target: {lv}, type: datatype, bypass: [Weights]}}\n"
            for lv in ("GlobalBuffer", "PEInputBuffer", "PEWeightBuffer", "PEAccuBuffer", "PEWeightRegs")
        )
    )
    cap = capacity_spec(simba, load_constraints(f))
    assert "Weights" not in cap.home and cap.capacity_of("Weights") == 0


@pytest.mark.parametrize(
    "design,home",
    [
        (
            "simba_like",
            {
                "Weights": ("PEWeightBuffer", 64 * 32768),
                "Inputs": ("GlobalBuffer", 65536),
                "Outputs": ("GlobalBuffer", 65536),
            },
        ),
        (
            "eyeriss_like",
            {
                "Weights": ("weights_spad", 168 * 384),
                "Inputs": ("shared_glb", 131072),
                "Outputs": ("shared_glb", 131072),
            },
        ),
        ("simple_weight_stationary", {t: ("shared_glb", 65536) for t in ("Weights", "Inputs", "Outputs")}),
    ],
)
def test_v04_home_levels_skip_placeholders(design, home):
    arch = load_architecture(*v04_paths(design))
    cap = capacity_spec(arch, Constraints())  # the node constraints travel with the architecture
    assert {t: (lv, cap.words[lv]) for t, lv in cap.home.items()} == home
    assert all(not arch.level(lv).is_dummy for lv in cap.home.values())


def test_constraints_for_another_architecture_are_an_error(gemmini):
    with pytest.raises(InputError, match="PEWeightRegs is not a storage level of architecture System") as e:
        capacity_spec(gemmini, load_constraints(SIMBA / "constraints/SLC.yaml"))
    assert str(SIMBA / "constraints/SLC.yaml") == e.value.path
    assert e.value.field == "architecture_constraints.targets[0].target"


def test_v04_designs_have_capacity(tmp_path):
    for d in V04_DESIGNS:
        arch = load_architecture(EXERCISES / d / "arch.yaml")
        assert set(capacity_spec(arch, Constraints()).home) == {"Weights", "Inputs", "Outputs"}
