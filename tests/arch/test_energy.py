"""The built-in 45 nm energy table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepfrack.arch import builtin_energy_table, check_energy_table, load_architecture, load_ert
from deepfrack.arch.energy import (
    DRAM_PJ_PER_BIT,
    REGISTER_PJ_PER_BIT,
    fp_mac_pj,
    int_mac_pj,
    sram_pj_per_bit,
    technology_nm,
)
from deepfrack.errors import InputError
from tests.arch.conftest import SIMBA, SYSTOLIC, V04_DESIGNS, v04_paths
from tests.paths import EXAMPLES, EXERCISES


def test_horowitz_points_are_reproduced():
    # ISSCC 2014, 45 nm: 64-bit access to 8 KB / 32 KB / 1 MB SRAM = 10 / 20 / 100 pJ
    for kb, pj in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        assert sram_pj_per_bit(kb * 1024) * 64 == pytest.approx(pj)
    # halfway (log) between 8 and 32 KB: sqrt scaling
    assert sram_pj_per_bit(16 * 1024) * 64 == pytest.approx(10 * 2**0.5)
    assert sram_pj_per_bit(1) == REGISTER_PJ_PER_BIT


@given(st.floats(1, 1e9), st.floats(1, 1e9))
def test_sram_energy_per_bit_grows_with_capacity(a, b):
    lo, hi = sorted((a, b))
    assert sram_pj_per_bit(lo) <= sram_pj_per_bit(hi)


def test_mac_energies():
    assert int_mac_pj(16) == pytest.approx(0.9)
    assert int_mac_pj(8) == pytest.approx(0.25)
    assert int_mac_pj(32) == pytest.approx(3.4)
    assert fp_mac_pj(16) == pytest.approx(1.5) and fp_mac_pj(32) == pytest.approx(4.6)
    assert [int_mac_pj(b) for b in (4, 8, 16, 32)] == sorted(int_mac_pj(b) for b in (4, 8, 16, 32))


def test_technology_parsing():
    assert technology_nm("45nm") == 45 and technology_nm("65 nm") == 65 and technology_nm(32) == 32
    assert technology_nm("0.045um") == pytest.approx(45)
    assert technology_nm("SET ME") is None and technology_nm(-1) is None and technology_nm(None) is None


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_lpddr4_matches_accelergys_dram_model(design):
    arch = load_architecture(*v04_paths(design))
    ours = builtin_energy_table(arch)
    ert = load_ert(EXERCISES / design / "ref_outputs/timeloop-mapper.ERT.yaml", arch)
    # 8 pJ/bit x 64-bit block: exactly what Accelergy's CactiDRAM estimator gave these runs
    assert ours.op_energy("DRAM", "read") == ert.op_energy("DRAM", "read") == 512.0
    check_energy_table(ours, arch)
    for lv in arch.levels:
        if lv.is_dummy:
            assert ours.op_energy(lv.name, "read") == 0.0


def test_dram_types(simba, gemmini):
    assert builtin_energy_table(simba).op_energy("DRAM", "read") == 15.0 * 16  # DDR4, 16-bit words, block 1
    assert builtin_energy_table(gemmini).op_energy("DRAM", "fill") == pytest.approx(3.9 * 32)  # HBM2
    assert DRAM_PJ_PER_BIT["LPDDR4"] == 8 and DRAM_PJ_PER_BIT["GDDR5"] == 14


def test_unknown_dram_type_names_the_field(tmp_path):
    text = (SIMBA / "arch/simba_like.yaml").read_text().replace("type: DDR4", "type: DDR9")
    f = tmp_path / "a.yaml"
    f.write_text(text)
    with pytest.raises(InputError, match="unknown DRAM type 'DDR9'") as e:
        builtin_energy_table(load_architecture(f))
    assert e.value.field == "DRAM.attributes.type" and e.value.path == str(f)


def test_technology_scales_on_chip_energy(tmp_path):
    text = (SIMBA / "arch/simba_like.yaml").read_text().replace("technology: 45nm", "technology: 90nm")
    f = tmp_path / "a.yaml"
    f.write_text(text)
    a90 = builtin_energy_table(load_architecture(f))
    a45 = builtin_energy_table(load_architecture(SIMBA / "arch/simba_like.yaml"))
    assert a90.op_energy("GlobalBuffer", "read") == pytest.approx(2 * a45.op_energy("GlobalBuffer", "read"))
    assert a90.op_energy("LMAC", "compute") == pytest.approx(2 * a45.op_energy("LMAC", "compute"))
    assert a90.op_energy("DRAM", "read") == a45.op_energy("DRAM", "read")


@pytest.mark.parametrize(
    "root,sample",
    [
        (SIMBA, EXAMPLES / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27"),
        (SYSTOLIC, EXAMPLES / "AlexNet_SystolicSimba/timeloop-samples/SLC_Layer2_Tile28"),
    ],
)
def test_same_order_of_magnitude_as_the_simba_ert(root, sample):
    """Sanity check against Accelergy/CACTI at 45 nm (docs/arch.md gives the ratios). DRAM is left
    out: the reference ERT prices it with a 1 pJ placeholder."""
    arch = load_architecture(root / "arch")
    ert = load_ert(sample / "timeloop-mapper.ERT.yaml", arch)
    ours = builtin_energy_table(arch)
    for lv in arch.levels[1:]:
        for op in ("read", "fill"):
            ratio = ours.op_energy(lv.name, op) / ert.op_energy(lv.name, op)
            assert 1 / 3 < ratio < 3, (lv.name, op, ratio)
    ratio = ours.op_energy("LMAC", "compute") / ert.op_energy("LMAC", "compute")
    assert (
        0.1 < ratio < 1
    )  # Accelergy's lmac (2.20 pJ; 6.22 pJ summing four actions) is dearer than Horowitz's


def test_gemmini_table_is_complete(gemmini):
    t = builtin_energy_table(gemmini)
    check_energy_table(t, gemmini)
    assert t.op_energy("MACC", "compute") == pytest.approx(int_mac_pj(32))
    assert t.op_energy("Registers", "read") == pytest.approx(REGISTER_PJ_PER_BIT * 32)
    assert t.origin.startswith("builtin:45nm")
