"""Accelergy ERT loading."""

from __future__ import annotations

import csv

import pytest

from deepfrack.arch import load_architecture, load_ert
from deepfrack.arch.ert import component_name
from deepfrack.errors import InputError
from tests.arch.conftest import SIMBA, SYSTOLIC, V04_DESIGNS, v04_paths
from tests.arch.timeloop_stats import read_level_specs
from tests.ert_edit import ert_without
from tests.paths import EXAMPLES, EXERCISES

SAMPLES = {
    "simba_like": (SIMBA / "arch", EXAMPLES / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27"),
    "SystolicSimba": (
        SYSTOLIC / "arch",
        EXAMPLES / "AlexNet_SystolicSimba/timeloop-samples/SLC_Layer2_Tile28",
    ),
}


def _csv_rows(arch_name: str) -> list[dict]:
    with open(EXAMPLES / "ert-energy-per-action.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["arch"] == arch_name]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_ert_values_equal_the_reference_csv(name):
    arch_dir, sample = SAMPLES[name]
    arch = load_architecture(arch_dir)
    table = load_ert(sample / "timeloop-mapper.ERT.yaml", arch)
    rows = _csv_rows(name)
    assert len(rows) == 19  # 6 storage levels x (read, write, idle) + compute
    for r in rows:
        comp = component_name(r["component"])
        assert table.action_energy(comp, r["action"]) == pytest.approx(
            float(r["energy_pJ_per_action"]), abs=5e-6
        )
        if r["block_size_words"] and comp != arch.arithmetic.name:
            lv = arch.level(comp)
            assert lv.block_size == int(r["block_size_words"])
            if r["energy_pJ_per_word"]:
                per_word = table.action_energy(comp, r["action"]) / lv.block_size
                assert per_word == pytest.approx(float(r["energy_pJ_per_word"]), abs=6e-6)


def _check_stats_energies(arch, table, stats_path):
    for s in read_level_specs(stats_path):
        if s.number == 0:
            assert round(table.op_energy(s.name, "compute"), 2) == s.float("Compute energy")
            continue
        lv = arch.level(s.name)
        vae = table.max_energy(s.name) / lv.cluster_size
        assert round(vae, 2) == s.float("Vector access energy"), s.name


@pytest.mark.parametrize("name", list(SAMPLES))
def test_v03_ert_gives_timeloops_vector_access_energies(name):
    arch_dir, sample = SAMPLES[name]
    arch = load_architecture(arch_dir)
    _check_stats_energies(
        arch, load_ert(sample / "timeloop-mapper.ERT.yaml", arch), sample / "timeloop-mapper.stats.txt"
    )


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_ert_gives_timeloops_vector_access_energies(design):
    arch = load_architecture(*v04_paths(design))
    out = EXERCISES / design / "ref_outputs"
    table = load_ert(out / "timeloop-mapper.ERT.yaml", arch)
    assert table.origin.startswith("ert:")
    _check_stats_energies(arch, table, out / "timeloop-mapper.stats.txt")
    # the summary file carries the same per-action energies
    summary = load_ert(out / "timeloop-mapper.ERT_summary.yaml", arch)
    for comp in table.actions:
        for op in ("read", "fill", "update", "compute"):
            assert summary.op_energy(comp, op) == table.op_energy(comp, op)


def test_update_and_fill_fall_back_to_write_as_in_timeloop():
    _arch_dir, sample = SAMPLES["simba_like"]
    table = load_ert(sample / "timeloop-mapper.ERT.yaml")
    assert table.op_energy("GlobalBuffer", "fill") == table.op_energy("GlobalBuffer", "update") == 258.8848
    assert table.op_energy("GlobalBuffer", "read") == 131.8508
    assert table.op_energy("LMAC", "compute") == 2.20035
    assert component_name("System.ws.PE[0..15].PEWeightBuffer[0..7]") == "PEWeightBuffer"
    assert component_name("System_top_level.DRAM[1..1]") == "DRAM"


def _ert_without(tmp_path, component: str, action: str | None):
    arch_dir, sample = SAMPLES["simba_like"]
    f = ert_without(sample / "timeloop-mapper.ERT.yaml", tmp_path / "ert.yaml", component, action)
    return load_architecture(arch_dir), f


def test_missing_action_names_file_and_component(tmp_path):
    arch, f = _ert_without(tmp_path, "GlobalBuffer", "write")
    with pytest.raises(InputError, match="no fill action for storage level GlobalBuffer") as e:
        load_ert(f, arch)
    assert e.value.path == f and e.value.field == "ERT.tables[System.ws.GlobalBuffer].actions"
    arch, f = _ert_without(tmp_path, "LMAC", "compute")
    with pytest.raises(InputError, match="no compute action"):
        load_ert(f, arch)
    arch, f = _ert_without(tmp_path, "PEInputBuffer", None)
    with pytest.raises(InputError, match="no entry for storage level PEInputBuffer") as e:
        load_ert(f, arch)
    assert e.value.field == "ERT.tables[System.ws.PE[0..15].PEInputBuffer]"


def test_malformed_ert(tmp_path):
    f = tmp_path / "ert.yaml"
    f.write_text(
        "ERT:\n  version: 0.3\n  tables:\n  - name: System.DRAM\n"
        "    actions:\n    - {name: read, energy: lots}\n"
    )
    with pytest.raises(InputError, match="expected an energy in pJ") as e:
        load_ert(f)
    assert e.value.field == "ERT.tables[0].actions[0].energy"
    g = tmp_path / "not_ert.yaml"
    g.write_text("foo: 1\n")
    with pytest.raises(InputError, match="no Accelergy ERT found"):
        load_ert(g)


def test_v02_mapping_layout(tmp_path):
    f = tmp_path / "ert.yaml"
    f.write_text(
        "ERT:\n  version: 0.2\n  tables:\n    System.DRAM:\n      read: {energy: 2}\n"
        "      write: [{arguments: {a: 0}, energy: 1}, {arguments: {a: 1}, energy: 3}]\n"
    )
    t = load_ert(f)
    assert t.op_energy("DRAM", "read") == 2 and t.op_energy("DRAM", "fill") == 3
