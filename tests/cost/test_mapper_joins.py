"""How the mapper costs the layers of branching networks: adds of n operands, concatenations (a view,
or a copy where inputs and output live apart) and grouped convolutions, each checked with the model."""

from __future__ import annotations

import dataclasses

import pytest

from deepfrack.cost.mapper import map_tile, tile_problem
from deepfrack.workload.layer import Layer
from tests.cost.test_mapper import DELAY_ENERGY, _simba


@pytest.mark.parametrize("n", [2, 3, 4])
def test_an_add_of_n_operands_reads_n_words_per_output_word(n: int):
    arch, ert, variants = _simba()
    add = Layer("add", C=16, M=16, P=7, Q=5, kind="add", n_inputs=n)
    prob = tile_problem(add)
    assert (prob.layer.C, prob.layer.M, prob.layer.R, prob.repeats, prob.drop_weights) == (n, 1, 1, 16, True)
    out = map_tile(arch, ert, add, variants, DELAY_ENERGY)
    words = 16 * 7 * 5
    slc, start, elblc, lblc = (out[v] for v in ("SLC", "Start", "ELBLC", "LBLC"))
    assert slc.accesses["DRAM"]["reads"]["Inputs"] == start.accesses["DRAM"]["reads"]["Inputs"] == n * words
    assert slc.accesses["DRAM"]["updates"]["Outputs"] == elblc.accesses["DRAM"]["updates"]["Outputs"] == words
    assert "DRAM" not in lblc.accesses or not lblc.accesses["DRAM"]["reads"]
    assert all(r.macs == 0 and r.level_energy_pJ["LMAC"] == 0 for r in out.values())
    if n > 2:  # one operand more costs more
        fewer = map_tile(arch, ert, dataclasses.replace(add, n_inputs=n - 1), variants, DELAY_ENERGY)["SLC"]
        assert slc.energy_pJ > fewer.energy_pJ


def test_a_concat_is_free_where_inputs_and_output_live_together_else_a_copy():
    arch, ert, variants = _simba()
    cat = Layer("cat", C=24, M=24, P=6, Q=4, kind="concat", n_inputs=3)
    out = map_tile(arch, ert, cat, variants, DELAY_ENERGY)
    # SLC: all in DRAM; LBLC and WCC: all on chip -- a view, nothing moves
    for v in ("SLC", "LBLC", "WCC"):
        r = out[v]
        assert r.ok and r.energy_pJ == 0 and r.cycles == 0 and r.macs == 0
        assert set(r.level_energy_pJ.values()) == {0.0}
    # Start, OutWCC: DRAM -> chip; ELBLC, EWCC: chip -> DRAM -- a copy of the 24 channels, costed as
    # a pool with a 1x1 window (the same problem: one channel, 1x1, run 24 times, no weights, no MACs)
    copy = Layer("copy", C=24, M=24, P=6, Q=4, kind="pool", pool="max")
    ref = map_tile(arch, ert, copy, variants, DELAY_ENERGY)
    words = 24 * 6 * 4
    for v in ("Start", "OutWCC", "ELBLC", "EWCC"):
        assert out[v].energy_pJ == pytest.approx(ref[v].energy_pJ, rel=1e-12) and out[v].energy_pJ > 0
        assert out[v].cycles == ref[v].cycles > 0 and out[v].macs == 0
    assert out["Start"].accesses["DRAM"]["reads"]["Inputs"] == words
    assert out["ELBLC"].accesses["DRAM"]["updates"]["Outputs"] == words
    assert out["Start"].to_record().mapping[-1] == {"type": "repeats", "count": 24}
    assert out["SLC"].to_record().mapping is None


def test_a_grouped_conv_is_groups_runs_of_its_per_group_problem():
    arch, ert, variants = _simba()
    grouped = Layer("g", C=32, M=64, R=3, S=3, P=6, Q=6, groups=4)
    one = Layer("one", C=8, M=16, R=3, S=3, P=6, Q=6)
    out = map_tile(arch, ert, grouped, variants, DELAY_ENERGY)
    ref = map_tile(arch, ert, one, variants, DELAY_ENERGY)
    for v, r in out.items():
        assert r.energy_pJ == pytest.approx(4 * ref[v].energy_pJ, rel=1e-12)
        assert r.cycles == 4 * ref[v].cycles
        assert r.macs == grouped.macs == 4 * one.macs
