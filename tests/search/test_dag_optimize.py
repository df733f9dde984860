"""The search on graphs: ``optimize`` equals the brute force of tests/search/reference.py (every
partition into single-exit stacks, every tile shape, every caching subset, tile by tile) in value and
schedule, for energy and cycles, with capacities that bind, holes in the tables and depth limits; the
on-demand search equals ``optimize``; ``required_shapes`` gives ``optimize`` every entry it looks up;
the most live words over the tiles (``Plan.max_words``) are those of a tile-by-tile count."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from deepfrack.cost.table import CostTable
from deepfrack.residency import Variant
from deepfrack.search import StackSpec, evaluate, optimize, required_shapes
from deepfrack.search.graph import single_exit_lowest
from deepfrack.search.ondemand import optimize_on_demand
from deepfrack.search.optimizer import stack_plan
from deepfrack.search.source import TableSource
from deepfrack.workload.layer import Layer, Network
from tests.search.nets import random_dag, random_dag_capacity
from tests.search.reference import dag_regions, reference_dag_optimum, tiles_of
from tests.synthetic import synthetic_table


def _signature(schedule):
    return [(s.first, s.last, s.tile_shape, s.cached_layers) for s in schedule.stacks]


def _kinds(net: Network, schedule) -> Counter:
    """What the optimum's fused stacks hold: joins with every operand on chip, joins that read an
    operand from DRAM, layers after the first that read only DRAM, cached weights, several tiles."""
    seen: Counter = Counter()
    for s in schedule.stacks:
        if s.depth == 1:
            continue
        seen["fused"] += 1
        seen["tiled"] += len(s.tiles) > 1
        seen["cached"] += bool(s.cached_layers)
        for sl in s.layers:
            if net.layers[sl.layer].kind in ("add", "concat") and sl.layer != s.first:
                seen["join on chip" if sl.dram_variant is None else "join reads DRAM"] += 1
        seen["DRAM mid-stack"] += any(sl.variants[0] == Variant.Start for sl in s.layers[1:])
    return seen


def dag_case(seed: int):
    """A random graph, its synthetic table (holes in one case of three), a capacity in three cases of
    four, a depth limit in one of three, cycles in one of five."""
    rng = np.random.default_rng(5000 + seed)
    net = random_dag(rng)
    table = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)))
    if seed % 3 == 2:  # entries the benchmark did not produce
        keys = [k for k in table.records if k[1] != Variant.SLC]
        for i in rng.choice(len(keys), size=len(keys) // 10, replace=False):
            del table.records[keys[i]]
    cap = random_dag_capacity(rng, net) if seed % 4 else None
    depth = int(rng.integers(2, 4)) if seed % 3 == 1 else None
    metric = "cycles" if seed % 5 == 0 else "energy"
    return net, table, cap, depth, metric


SEEDS = range(100)


def compare_with_bruteforce(seed: int) -> Counter:
    net, table, cap, depth, metric = dag_case(seed)
    homes, words = (dict(cap.home), dict(cap.words)) if cap is not None else (None, None)
    ref = reference_dag_optimum(net, table, homes, words, metric, depth)
    got, _ = optimize(net, table, cap, max_stack_depth=depth, objective=metric)
    value = got.total.energy_pJ if metric == "energy" else got.total.cycles
    assert value == pytest.approx(ref.value, rel=1e-9), seed
    assert _signature(got) == [(s.first, s.last, s.tile_shape, s.cached) for s in ref.stacks], seed
    assert depth is None or all(s.depth <= depth for s in got.stacks)
    # the optimum is a schedule evaluate accepts and costs the same
    specs = [StackSpec(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks]
    again = evaluate(net, table, specs, capacity=cap, objective=metric)
    assert again.total == got.total
    return _kinds(net, got)


@pytest.mark.parametrize("part", range(5))
def test_optimize_equals_bruteforce(part: int):
    seen: Counter = Counter()
    for seed in SEEDS[20 * part : 20 * (part + 1)]:
        seen += compare_with_bruteforce(seed)
    assert seen["fused"] >= 8 and seen["tiled"] >= 4, seen


def test_the_bruteforce_sample_is_varied():
    """Over the sample: fused joins of both kinds, DRAM reads after a stack's first layer, cached
    weights, several tiles (the kinds each part's optimum shows are counted by the test above)."""
    seen: Counter = Counter()
    for seed in SEEDS:
        net, table, cap, depth, metric = dag_case(seed)
        got, _ = optimize(net, table, cap, max_stack_depth=depth, objective=metric)
        seen += _kinds(net, got)
    for kind in ("join on chip", "join reads DRAM", "DRAM mid-stack", "cached", "tiled"):
        assert seen[kind] >= 3, (kind, seen)


# --------------------------------------------------------------------------------------------- #
# on demand and required shapes, on larger random graphs
# --------------------------------------------------------------------------------------------- #
def _loose(seed: int, low: float):
    """Bounds: every entry times a random factor in [low, 1) (admissible, as loose as asked)."""
    rng = np.random.default_rng(seed)
    return lambda layer, variant, metric, grid: grid * rng.uniform(low, 1.0, size=grid.shape)


def big_case(seed: int):
    rng = np.random.default_rng(7000 + seed)
    net = random_dag(rng, max_blocks=3, max_layers=10, max_last=8)
    cap = random_dag_capacity(rng, net) if seed % 4 else None
    depth = None if seed % 3 else 3
    metric = "cycles" if seed % 5 == 0 else "energy"
    full = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)))
    return net, cap, depth, metric, full


@pytest.fixture(scope="module")
def on_demand_results():
    out = []
    for seed in range(40):
        net, cap, depth, metric, full = big_case(seed)
        keys = required_shapes(net, depth, cap)
        table = CostTable({k: full.records[k] for k in keys}, source="required")
        ref, _ = optimize(net, table, cap, max_stack_depth=depth, objective=metric)
        source = TableSource(net, table, bound_of=_loose(seed, 0.6))
        got, stats = optimize_on_demand(net, source, cap, max_stack_depth=depth, objective=metric)
        out.append((seed, net, ref, got, stats, len(keys)))
    return out


def test_on_demand_equals_exhaustive(on_demand_results):
    seen: Counter = Counter()
    for seed, net, ref, got, stats, n_keys in on_demand_results:
        assert _signature(got) == _signature(ref), seed
        assert got.total.energy_pJ == pytest.approx(ref.total.energy_pJ, rel=1e-9), seed
        assert got.total.cycles == pytest.approx(ref.total.cycles, rel=1e-9), seed
        assert stats.entries_requested <= n_keys
        assert len(stats.table.records) + len(stats.table.infeasible) == stats.entries_requested
        seen += _kinds(net, ref)
    assert seen["join on chip"] >= 5 and seen["join reads DRAM"] >= 5, seen
    asked = sum(r[4].entries_requested for r in on_demand_results)
    required = sum(r[5] for r in on_demand_results)
    assert asked < 0.6 * required, (asked, required)


@pytest.mark.parametrize("seed", range(30))
def test_required_shapes_are_what_optimize_needs(seed: int):
    """Without a capacity, a table of the required entries lacks nothing any tiling asks for; with one,
    it may lack only what tilings that overflow would use, and the optimum is the same as with every
    entry."""
    net, cap, depth, metric, full = big_case(seed)
    keys = required_shapes(net, depth)
    got, stats = optimize(net, CostTable({k: full.records[k] for k in keys}), None, max_stack_depth=depth)
    assert stats.tilings_skipped_missing == 0, stats.skipped_examples
    assert _signature(got) == _signature(optimize(net, full, None, max_stack_depth=depth)[0])
    if cap is None:
        return
    fitting = required_shapes(net, depth, cap)
    assert fitting <= keys
    best, _ = optimize(net, full, cap, max_stack_depth=depth, objective=metric)
    table = CostTable({k: full.records[k] for k in fitting})
    got, _ = optimize(net, table, cap, max_stack_depth=depth, objective=metric)
    assert _signature(got) == _signature(best) and got.total == best.total


def test_required_shapes_of_a_residual_block():
    """x -> a (3x3) -> b (3x3) -> add(b, x). Single exit allows the stacks a..b, b..add, a..add and
    x..add (not x..a nor x..b: the add still reads x). In b..add and a..add the add reads x from DRAM
    (ELBLC mixed with SLC at the tiles' shapes); in x..add it reads both operands on chip."""
    net = Network(
        "res",
        (
            Layer("x", C=2, M=4, P=6, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("a", C=4, M=4, P=6, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("b", C=4, M=4, P=6, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("add", C=4, M=4, P=6, Q=6, kind="add", n_inputs=2),
        ),
        ((-1,), (0,), (1,), (2, 0)),
        input_plane=(6, 6),
    )
    keys = required_shapes(net)
    by: dict[tuple[int, Variant], set] = {}
    for l, v, h, w in keys:
        by.setdefault((l, v), set()).add((h, w))
    every = {(h, w) for h in range(1, 7) for w in range(1, 7)}
    assert set(by) == {
        (0, Variant.SLC), (0, Variant.Start), (0, Variant.OutWCC),  # x alone, or first of x..add
        (1, Variant.SLC), (1, Variant.Start), (1, Variant.OutWCC),  # a first of a..b, a..add
        (1, Variant.LBLC), (1, Variant.WCC),  # a in the middle of x..add
        (2, Variant.SLC), (2, Variant.ELBLC), (2, Variant.EWCC),  # b last of a..b
        (2, Variant.Start), (2, Variant.OutWCC),  # b first of b..add
        (2, Variant.LBLC), (2, Variant.WCC),  # b in the middle of a..add, x..add
        (3, Variant.SLC), (3, Variant.ELBLC),  # the add: last, with x on chip or from DRAM
    }  # fmt: skip
    assert by[(3, Variant.ELBLC)] == every and by[(3, Variant.SLC)] == every
    table = synthetic_table(net, seed=3, keys=keys)
    _, stats = optimize(net, table, None)
    assert stats.tilings_skipped_missing == 0 and stats.stacks_considered == 4 + 4


def test_required_shapes_of_a_strided_shortcut():
    """x -> a (3x3, stride 2) -> b (3x3) -> ds (1x1, stride 2, reads x) -> add(b, ds). In a..add and
    b..add the shortcut ds reads x from DRAM in the middle of the stack: Start (OutWCC when cached) at
    every shape of the add's tiles, as in ds..add where it comes first; in x..add it reads x on chip
    (LBLC, WCC). The add reads both operands on chip, except in ds..add, where it reads b from DRAM."""
    net = Network(
        "down",
        (
            Layer("x", C=2, M=4, P=6, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("a", C=4, M=4, P=3, Q=3, R=3, S=3, Wstride=2, Hstride=2, pad=(1, 1, 1, 1)),
            Layer("b", C=4, M=4, P=3, Q=3, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("ds", C=4, M=4, P=3, Q=3, Wstride=2, Hstride=2),
            Layer("add", C=4, M=4, P=3, Q=3, kind="add", n_inputs=2),
        ),
        ((-1,), (0,), (1,), (0,), (2, 3)),
        input_plane=(6, 6),
    )
    keys = required_shapes(net)
    variants = {(l, v) for l, v, _, _ in keys}
    every = {(h, w) for h in range(1, 4) for w in range(1, 4)}
    for v in (Variant.Start, Variant.OutWCC, Variant.LBLC, Variant.WCC):
        assert {(h, w) for l, vv, h, w in keys if (l, vv) == (3, v)} == every, v
    for v in (Variant.ELBLC, Variant.SLC):
        assert {(h, w) for l, vv, h, w in keys if (l, vv) == (4, v)} == every, v
    assert {v for l, v in variants if l == 4} == {Variant.ELBLC, Variant.SLC}
    got, stats = optimize(net, synthetic_table(net, seed=4, keys=keys), None)
    assert stats.tilings_skipped_missing == 0
    optimum = reference_dag_optimum(net, synthetic_table(net, seed=4, keys=keys), None, None)
    assert got.total.energy_pJ == pytest.approx(optimum.value, rel=1e-9)


# --------------------------------------------------------------------------------------------- #
# the live words over the tiles
# --------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", range(20))
def test_max_words_is_the_max_over_the_tiles(seed: int):
    """``Plan.max_words`` for random sets of tensors and words per pixel equals the maximum, over the
    tiles of each tiling, of the sum of words x region area, counted tile by tile."""
    rng = np.random.default_rng(9000 + seed)
    net = random_dag(rng, max_blocks=3, max_layers=10, max_last=8)
    last = len(net.layers) - 1
    plan, _ = stack_plan(net, last, single_exit_lowest(net, last), "exact")
    layers = list(range(plan.lowest, last + 1))
    q, p = net.layers[last].out_plane
    for _ in range(4):
        chosen = sorted(rng.choice(layers, size=min(len(layers), int(rng.integers(1, 5))), replace=False))
        tensors = tuple((int(l), int(rng.integers(1, 9))) for l in chosen)
        words = plan.max_words(tensors)
        for r, th in enumerate(plan.h.walk.sizes):
            for c, tw in enumerate(plan.w.walk.sizes):
                most = 0
                for tile in tiles_of(q, p, int(th), int(tw)):
                    reg = dag_regions(net, plan.lowest, last, tile)
                    area = {l: (reg[l][1] - reg[l][0]) * (reg[l][3] - reg[l][2]) for l in reg}
                    most = max(most, sum(k * area[l] for l, k in tensors))
                assert words[r, c] == most, (seed, tensors, th, tw)


def test_legacy_rule_fuses_only_chain_segments_of_a_graph():
    """Under the legacy rule (the original DeepFrack fused chains), no stack spans a layer that another
    layer than the next one reads; the schedule is what evaluate gives for it."""
    for seed in range(10):
        net, table, _, _, _ = dag_case(seed)
        got, _ = optimize(net, table, None, rule="legacy")
        for s in got.stacks:
            assert all(net.consumers(l) == (l + 1,) for l in range(s.first, s.last))
        specs = [StackSpec(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks]
        assert evaluate(net, table, specs, rule="legacy").total == got.total
        assert math.isfinite(got.total.energy_pJ)
