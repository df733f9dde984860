"""The on-demand search equals the exhaustive one (``optimize`` on a table of every entry it may look up):
same stacks, tile shapes, cached layers and totals, on random chains with synthetic tables and loose
bounds, with and without capacity and a stack-depth limit, for energy and for cycles, and when values
tie; and it asks for fewer entries than the exhaustive search needs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from deepfrack.errors import MissingCostError
from deepfrack.residency import Variant
from deepfrack.search import optimize, required_shapes
from deepfrack.search.ondemand import optimize_on_demand
from deepfrack.search.source import TableSource
from deepfrack.workload.layer import Layer, Network
from tests.search.nets import random_capacity, random_network
from tests.synthetic import synthetic_table


def _signature(schedule):
    return [(s.first, s.last, s.tile_shape, s.cached_layers) for s in schedule.stacks]


def _loose(seed: int, low: float):
    """Bounds: every entry times a random factor in [low, 1) (an admissible bound, as loose as asked)."""
    rng = np.random.default_rng(seed)
    return lambda layer, variant, metric, grid: grid * rng.uniform(low, 1.0, size=grid.shape)


def _case(seed: int):
    rng = np.random.default_rng(seed)
    net = random_network(rng, max_layers=5, max_last=8)
    cap = random_capacity(rng, net) if seed % 4 else None
    depth = None if seed % 3 else 2
    objective = "cycles" if seed % 5 == 0 else "energy"
    keys = required_shapes(net, depth, cap)
    table = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)), keys=keys)
    return net, cap, depth, objective, keys, table


SEEDS = range(60)


@pytest.fixture(scope="module")
def results():
    out = []
    for seed in SEEDS:
        net, cap, depth, objective, keys, table = _case(seed)
        ref, _ = optimize(net, table, cap, max_stack_depth=depth, objective=objective)
        source = TableSource(net, table, parallelism=1, bound_of=_loose(seed, 0.6))
        got, stats = optimize_on_demand(net, source, cap, max_stack_depth=depth, objective=objective)
        out.append((seed, net, cap, depth, objective, keys, ref, got, stats))
    return out


def test_equals_exhaustive(results):
    for seed, _net, _cap, _depth, _objective, _keys, ref, got, _stats in results:
        assert _signature(got) == _signature(ref), seed
        assert got.total.energy_pJ == pytest.approx(ref.total.energy_pJ, rel=1e-9), seed
        assert got.total.cycles == pytest.approx(ref.total.cycles, rel=1e-9), seed
        assert got.objective == ref.objective
        assert got.layer_by_layer == ref.layer_by_layer


def test_the_sample_is_varied(results):
    """Capacity, depth limits, both objectives, fused stacks with several tiles and cached weights."""
    assert any(r[2] is not None for r in results) and any(r[2] is None for r in results)
    assert any(r[3] == 2 for r in results) and {r[4] for r in results} == {"energy", "cycles"}
    assert sum(any(s.depth > 1 and len(s.tiles) > 1 for s in r[6].stacks) for r in results) >= 20
    assert sum(any(s.cached_layers for s in r[6].stacks) for r in results) >= 10


def test_asks_for_fewer_entries(results):
    """Most cases ask for strictly fewer entries than ``required_shapes`` (what the exhaustive search
    costs): 51 of the 60, and 4,603 entries in all against 11,481, with bounds 0.6-1 of the entries;
    tiny networks, where nearly every entry is needed, make up the rest."""
    fewer = [r[8].entries_requested < len(r[5]) for r in results]
    assert all(r[8].entries_requested <= len(r[5]) for r in results)
    assert sum(fewer) >= 0.7 * len(results), sum(fewer)
    asked = sum(r[8].entries_requested for r in results)
    required = sum(len(r[5]) for r in results)
    assert asked < 0.75 * required, (asked, required)
    # what it costed is what the schedule and the baseline use
    for r in results:
        assert len(r[8].table.records) + len(r[8].table.infeasible) == r[8].entries_requested


@pytest.mark.parametrize("seed", range(300, 330))
def test_ties_resolve_as_exhaustive(seed):
    """Values on a coarse grid tie often; the canonical rule (lowest value, then the earlier option,
    then the lowest tiling index) gives the same schedule."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, max_layers=4, max_last=6)
    cap = random_capacity(rng, net) if seed % 2 else None
    table = synthetic_table(
        net, seed=seed, noise=0.0, dram_pJ_per_word=10.0, keys=required_shapes(net, None, cap)
    )
    for key, rec in list(table.records.items()):
        table.records[key] = dataclasses.replace(rec, energy_pJ=float(round(rec.energy_pJ / 200.0) * 200.0))
    ref, _ = optimize(net, table, cap)
    got, _ = optimize_on_demand(net, TableSource(net, table, bound_of=_coarse(seed)), cap)
    assert _signature(got) == _signature(ref)
    assert got.total.energy_pJ == ref.total.energy_pJ


def _coarse(seed: int):
    rng = np.random.default_rng(seed)
    return lambda layer, variant, metric, grid: (
        np.floor(grid * rng.uniform(0.5, 1.0, size=grid.shape) / 200) * 200
    )


@pytest.mark.parametrize("seed", range(400, 410))
def test_holes_and_exact_bounds(seed):
    """Entries missing from the table (infeasible ones): the same optimum; with exact bounds, only the
    optimum's entries and a batch around them are asked for."""
    net, cap, depth, objective, keys, table = _case(seed)
    rng = np.random.default_rng(seed)
    drop = [k for k in table.records if k[1] != Variant.SLC]
    for i in rng.choice(len(drop), size=len(drop) // 5, replace=False):
        del table.records[drop[i]]
    ref, _ = optimize(net, table, cap, max_stack_depth=depth, objective=objective)
    got, stats = optimize_on_demand(
        net, TableSource(net, table), cap, max_stack_depth=depth, objective=objective
    )
    assert _signature(got) == _signature(ref)
    assert math.isclose(got.total.energy_pJ, ref.total.energy_pJ, rel_tol=1e-9)
    assert stats.entries_requested <= len(keys)


def test_missing_whole_plane_entry_is_an_error():
    net = Network.chain("n", [Layer("a", C=2, M=2, P=4, Q=3), Layer("b", C=2, M=2, P=4, Q=3)])
    table = synthetic_table(net, seed=1)
    del table.records[(1, Variant.SLC, 3, 4)]
    with pytest.raises(MissingCostError, match="layer 1"):
        optimize_on_demand(net, TableSource(net, table))


def test_rejects_legacy():
    net = Network.chain("n", [Layer("a", C=2, M=2, P=4, Q=3), Layer("b", C=2, M=2, P=4, Q=3)])
    source = TableSource(net, synthetic_table(net, seed=1))
    with pytest.raises(ValueError, match="exact"):
        optimize_on_demand(net, source, rule="legacy")
