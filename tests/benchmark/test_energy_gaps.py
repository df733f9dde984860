"""An energy table that lacks actions: which actions are missing (as the model looks them up), the
placeholders that let the mapper search, and which mappings need a missing action."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepfrack.arch import load_architecture, load_ert
from deepfrack.benchmark import energy_gaps
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.cost.model import default_rules
from deepfrack.cost.table import CostRecord
from deepfrack.cost.timeloop_post import arch_tables
from tests.benchmark.conftest import ARCH, COMPONENTS, ERT
from tests.ert_edit import ert_without


@pytest.fixture(scope="module")
def arch():
    return load_architecture(ARCH, COMPONENTS)


def _ert_without(tmp_path: Path, component: str, action: str | None) -> Path:
    return ert_without(ERT, tmp_path / "ERT.yaml", component, action)


def test_the_reference_ert_is_complete(arch):
    assert energy_gaps.missing_actions(load_ert(ERT), arch, default_rules(arch), ERT) == ()


@pytest.mark.parametrize(
    "component, action, gaps, field, words",
    [
        (
            "GlobalBuffer",
            "write",
            [("GlobalBuffer", "fill"), ("GlobalBuffer", "update")],
            "ERT.tables[System.ws.GlobalBuffer].actions",
            "no fill action (random_fill or write or access) for storage level GlobalBuffer "
            "(have: idle, read)",
        ),
        (
            "PEWeightBuffer",
            "read",
            [("PEWeightBuffer", "read")],
            "ERT.tables[System.ws.PE[0..15].PEWeightBuffer[0..7]].actions",
            "no read action (random_read or read or access)",
        ),
        (
            "LMAC",
            "compute",
            [("LMAC", "compute")],
            "ERT.tables[System.ws.PE[0..15].LMAC[0..63]].actions",
            "no compute action (mac_random or mult_random or mac or mult or compute) for LMAC",
        ),
        (
            "GlobalBuffer",
            None,
            [("GlobalBuffer", "read"), ("GlobalBuffer", "fill"), ("GlobalBuffer", "update")],
            "ERT.tables[System.ws.GlobalBuffer]",
            "no entry for storage level GlobalBuffer",
        ),
    ],
)
def test_missing_actions_name_the_file_and_field(tmp_path: Path, arch, component, action, gaps, field, words):
    ert = _ert_without(tmp_path, component, action)
    found = energy_gaps.missing_actions(load_ert(ert), arch, default_rules(arch), ert)
    assert [(g.level, g.op) for g in found] == gaps
    assert found[0].cause.startswith(f"{ert}: {field}: ") and words in found[0].cause
    # not an input error: the inputs load, the entries that need the action are infeasible
    assert load_inputs(ARCH, ert=ert).energy_table is not None


def test_placeholders_complete_the_table_for_the_model(tmp_path: Path, arch):
    rules = default_rules(arch)
    ert = _ert_without(tmp_path, "DRAM", None)
    table = load_ert(ert)
    gaps = energy_gaps.missing_actions(table, arch, rules, ert)
    assert {g.op for g in gaps} == {"read", "fill", "update"}
    before = arch_tables(arch, table, rules)
    assert np.isnan(before.e_read).any()  # the model would have no DRAM energies
    after = arch_tables(arch, energy_gaps.complete(table, gaps, rules), rules)
    for arr in (after.e_read, after.e_fill, after.e_update):
        assert not np.isnan(arr).any()
    d = after.names.index("DRAM")
    assert after.e_read[d] == after.e_fill[d] == after.e_update[d] == 0.0
    # the other levels keep their energies
    keep = [i for i, n in enumerate(after.names) if n != "DRAM"]
    assert np.array_equal(after.e_read[keep], before.e_read[keep]) and after.e_mac == before.e_mac
    assert energy_gaps.missing_actions(energy_gaps.complete(table, gaps, rules), arch, rules) == ()
    # nothing missing: the same table
    assert energy_gaps.complete(load_ert(ERT), (), rules) is not None


def test_a_user_given_vector_access_energy_stands_for_the_actions(tmp_path: Path, arch):
    import dataclasses

    ert = _ert_without(tmp_path, "DRAM", None)
    dram = dataclasses.replace(
        arch.levels[0], attributes={**arch.levels[0].attributes, "vector-access-energy": 64.0}
    )
    with_attr = dataclasses.replace(arch, levels=(dram, *arch.levels[1:]))
    assert energy_gaps.missing_actions(load_ert(ert), with_attr, default_rules(arch), ert) == ()


def test_which_mappings_need_a_missing_action():
    read = energy_gaps.MissingAction("DRAM", "read", "ERT.yaml: no read")
    update = energy_gaps.MissingAction("DRAM", "update", "ERT.yaml: no update")
    mac = energy_gaps.MissingAction("LMAC", "compute", "ERT.yaml: no compute")
    gaps = (read, update, mac)
    keeps_weights = CostRecord(
        1.0,
        macs=10,
        accesses={"DRAM": {"reads": {"Weights": 8}, "fills": {"Weights": 0}, "updates": {"Weights": 0}}},
    )
    assert energy_gaps.needed(keeps_weights, gaps) == [read, mac]
    bypassed = CostRecord(
        1.0, macs=0, accesses={"DRAM": {"reads": {}, "fills": {}, "updates": {}}}
    )  # a pool, DRAM keeps nothing
    assert energy_gaps.needed(bypassed, gaps) == []
    assert energy_gaps.needed(CostRecord(1.0, macs=5), gaps) == [mac]
    assert (
        energy_gaps.reason([read, update])
        == "its mapping needs an action the energy table lacks: ERT.yaml: no read; ERT.yaml: no update"
    )
