"""Component rows: they add up to the schedule's totals, carry mixes of entries, and the CSVs say what
the tables cannot tell."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.cost.table import CostRecord, CostTable
from deepfrack.residency import Variant
from deepfrack.search import optimize
from deepfrack.stats.components import FUSED, LAYER_BY_LAYER, component_rows, layer_rows
from deepfrack.stats.summary import (
    DRAM_UNAVAILABLE,
    SPLIT_UNAVAILABLE,
    components_csv,
    summarize,
    summary_csv,
    summary_lines,
)
from deepfrack.workload.layer import Layer, Network
from tests.search.nets import random_network
from tests.stats.helpers import LEVELS, split_table
from tests.synthetic import synthetic_table


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def check_sums(rows, schedule) -> None:
    for name, totals in ((FUSED, schedule.total), (LAYER_BY_LAYER, schedule.layer_by_layer)):
        mine = [r for r in rows if r.schedule == name]
        assert close(sum(r.energy_pJ for r in mine), totals.energy_pJ)
        assert sum(r.macs for r in mine) == totals.macs
        if totals.cycles is None:
            assert any(r.cycles is None for r in mine)
        else:
            assert close(sum(r.cycles for r in mine), totals.cycles)
    for k, stack in enumerate(schedule.stacks):
        mine = [r for r in rows if r.schedule == FUSED and r.stack == k]
        assert close(sum(r.energy_pJ for r in mine), stack.energy_pJ)
        assert sum(r.tiles for r in mine) == len(stack.tiles) * stack.depth


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_rows_add_up_to_the_schedule(seed: int):
    net = random_network(np.random.default_rng(seed), max_layers=5, max_last=7)
    table = split_table(net, seed=seed)
    schedule, _ = optimize(net, table)
    rows = component_rows(schedule, net, table)
    check_sums(rows, schedule)
    summary = summarize(rows)
    assert summary.levels == LEVELS and summary.compute == "MAC"
    for totals in (summary.fused, summary.layer_by_layer):
        assert close(sum(totals.level_energy_pJ.values()), totals.energy_pJ)
    # every layer once in layer by layer, one tile, SLC on its whole plane
    lbl = [r for r in rows if r.schedule == LAYER_BY_LAYER]
    assert [r.layer for r in lbl] == list(range(len(net)))
    assert all(
        r.tiles == 1 and r.variants == "SLC" and r.region == net.layers[r.layer].out_plane for r in lbl
    )


def test_rows_group_tiles_by_shape_and_variant():
    net = Network.chain(
        "two",
        [
            Layer("a", C=2, M=3, P=9, Q=7, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("b", C=3, M=2, P=9, Q=7, R=3, S=3, pad=(1, 1, 1, 1)),
        ],
    )
    table = synthetic_table(net, seed=3)
    from deepfrack.search import evaluate
    from deepfrack.search.schedule import StackSpec

    schedule = evaluate(net, table, [StackSpec(0, 1, (3, 4), (0,))])
    rows = [r for r in component_rows(schedule, net, table) if r.schedule == FUSED]
    # 3 row bands (3, 3, 1) x 3 column bands (4, 4, 1) = 9 tiles; layer 1 is the last layer
    last = {(r.region, r.variants): r.tiles for r in rows if r.layer == 1}
    assert last == {((3, 4), "ELBLC"): 4, ((3, 1), "ELBLC"): 2, ((1, 4), "ELBLC"): 2, ((1, 1), "ELBLC"): 1}
    first = [(r.region, r.variants, r.tiles) for r in rows if r.layer == 0]
    assert first[0] == ((4, 5), "Start", 1)  # the top-left tile pays the weight loads
    assert {v for _, v, _ in first[1:]} == {"OutWCC"}
    assert sum(n for *_, n in first) == 9
    check_sums(component_rows(schedule, net, table), schedule)


def test_a_hand_made_mix_of_two_entries():
    """A join's cost on + f x (dram - on) as a row of two weighted entries."""
    net = Network.chain("j", [Layer("x", C=4, M=4, P=6, Q=6)])
    table = CostTable()
    on = CostRecord(100.0, 10.0, 0, {"DRAM": 40.0, "MAC": 60.0}, {"DRAM": {"reads": {"Inputs": 8}}})
    dram = CostRecord(300.0, 30.0, 0, {"DRAM": 200.0, "MAC": 100.0}, {"DRAM": {"reads": {"Inputs": 40}}})
    table.add(0, Variant.ELBLC, 2, 3, on)
    table.add(0, Variant.SLC, 2, 3, dram)
    f = 0.25
    terms = ((Variant.ELBLC, 1 - f), (Variant.SLC, f))
    [row] = layer_rows(net, table, 0, 0, [(2, 3)] * 5, [terms] * 5)
    assert row.tiles == 5 and row.variants == "ELBLC 0.75 + SLC 0.25"
    assert row.energy_pJ == pytest.approx(5 * (100 + f * (300 - 100)))
    assert row.cycles == pytest.approx(5 * (10 + f * 20))
    assert row.level_energy_pJ == pytest.approx({"DRAM": 5 * (40 + f * 160), "MAC": 5 * (60 + f * 40)})
    assert row.dram_words["reads"]["Inputs"] == pytest.approx(5 * (8 + f * 32))
    assert row.dram_words["updates"] == {"Weights": 0, "Inputs": 0, "Outputs": 0}
    # a different mix of the same entries is a row of its own
    other = ((Variant.ELBLC, 0.5), (Variant.SLC, 0.5))
    rows = layer_rows(net, table, 0, 0, [(2, 3)] * 3, [terms, other, terms])
    assert [r.tiles for r in rows] == [2, 1]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csvs_with_a_split():
    net = random_network(np.random.default_rng(7), max_layers=4)
    table = split_table(net, seed=7)
    schedule, _ = optimize(net, table)
    rows = component_rows(schedule, net, table)
    summary = summarize(rows)
    lines = _csv(components_csv(rows, summary))
    assert "note" not in lines[0]
    for line in lines:
        levels = sum(float(line[f"energy_pJ_{n}"]) for n in LEVELS)
        assert close(levels, float(line["energy_pJ_total"]))
        words = int(float(line["dram_reads_Weights"])) + int(float(line["dram_updates_Outputs"]))
        assert words >= 0
    fused = sum(float(x["energy_pJ_total"]) for x in lines if x["schedule"] == "fused")
    assert close(fused, schedule.total.energy_pJ)
    summ = {(x["quantity"], x["component"]): x for x in _csv(summary_csv(summary_lines(summary)))}
    shares = sum(float(summ[("share", n)]["fused"]) for n in LEVELS)
    assert shares == pytest.approx(100.0)
    assert close(float(summ[("energy", "total")]["layer_by_layer"]), schedule.layer_by_layer.energy_pJ)
    assert int(summ[("macs", "total")]["fused"]) == schedule.total.macs
    per_mac = float(summ[("energy_per_mac", "DRAM")]["fused"])
    assert close(per_mac, summary.fused.level_energy_pJ["DRAM"] / schedule.total.macs)


def test_csvs_say_what_the_tables_cannot_tell():
    net = random_network(np.random.default_rng(8), max_layers=3)
    table = synthetic_table(net, seed=8)  # energy and cycles per entry only
    schedule, _ = optimize(net, table)
    rows = component_rows(schedule, net, table)
    summary = summarize(rows)
    assert not summary.split_known and not summary.dram_known
    lines = _csv(components_csv(rows, summary))
    assert not [c for c in lines[0] if c.startswith("energy_pJ_") and c != "energy_pJ_total"]
    assert not [c for c in lines[0] if c.startswith("dram_")]
    assert all(SPLIT_UNAVAILABLE in x["note"] and DRAM_UNAVAILABLE in x["note"] for x in lines)
    summ = _csv(summary_csv(summary_lines(summary)))
    assert [x["note"] for x in summ if x["component"] == "per level"] == [SPLIT_UNAVAILABLE]
    assert close(
        sum(float(x["energy_pJ_total"]) for x in lines if x["schedule"] == "layer_by_layer"),
        schedule.layer_by_layer.energy_pJ,
    )


def test_rows_of_graphs_add_up_and_carry_the_joins_mixes():
    """On residual and concat blocks, a join that reads from inside the stack and from DRAM is a row of
    two weighted entries, and the rows still add up to the schedule."""
    from deepfrack.search import StackSpec, evaluate
    from deepfrack.search.graph import single_exit_lowest
    from tests.search.nets import random_dag

    mixes = 0
    for seed in range(40):
        net = random_dag(np.random.default_rng(seed))
        table = synthetic_table(net, seed=seed)
        for last in range(1, len(net)):
            for first in range(single_exit_lowest(net, last), last):
                shape = tuple(max(1, x // 2) for x in net.layers[last].out_plane)
                alone = [StackSpec(i, i, net.layers[i].out_plane) for i in range(len(net))]
                specs = [*alone[:first], StackSpec(first, last, shape), *alone[last + 1 :]]
                schedule = evaluate(net, table, specs)
                rows = component_rows(schedule, net, table)
                check_sums(rows, schedule)
                mixed = [r for r in rows if len(r.terms) == 2]
                for r in mixed:
                    (on, w_on), (dram, w_dram) = r.terms
                    assert net.layers[r.layer].kind in ("add", "concat") and w_on + w_dram == pytest.approx(1)
                    assert (on, dram) in ((Variant.LBLC, Variant.Start), (Variant.ELBLC, Variant.SLC))
                mixes += len(mixed)
    assert mixes > 0
