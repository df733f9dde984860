"""The search equals a brute-force reference (every partition, every tile shape, every caching
subset, tile by tile) on random small networks with synthetic tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepfrack.residency import Variant
from deepfrack.search import StackSpec, evaluate, optimize
from tests.search.nets import random_capacity, random_network
from tests.search.reference import reference_optimum
from tests.synthetic import synthetic_table

EXACT_SEEDS = range(40)


def _case(seed: int, **kw):
    rng = np.random.default_rng(seed)
    net = random_network(rng, **kw)
    table = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)))
    cap = random_capacity(rng, net)
    return net, table, cap


def _respec(schedule):
    return [StackSpec(s.first, s.last, s.tile_shape, s.cached_layers) for s in schedule.stacks]


@pytest.fixture(scope="module")
def exact_results():
    out = []
    for seed in EXACT_SEEDS:
        net, table, cap = _case(seed)
        sched, stats = optimize(net, table, capacity=cap)
        ref = reference_optimum(net, table, dict(cap.home), dict(cap.words))
        out.append((seed, net, table, cap, sched, stats, ref))
    return out


def test_exact_equals_bruteforce(exact_results):
    for seed, net, table, cap, sched, _, ref in exact_results:
        assert math.isfinite(ref)
        assert sched.total.energy_pJ == pytest.approx(ref, rel=1e-9), f"seed {seed}"
        # the schedule it returns costs the same when given back to evaluate
        again = evaluate(net, table, _respec(sched), capacity=cap)
        assert again.total.energy_pJ == pytest.approx(sched.total.energy_pJ, rel=1e-12)


def test_sample_needs_tiling_and_caching(exact_results):
    """The capacities are tight enough that most optima fuse with several tiles and cache weights."""
    n = len(exact_results)
    tiled = sum(any(len(s.tiles) > 1 and s.depth > 1 for s in r[4].stacks) for r in exact_results)
    cached = sum(any(s.cached_layers for s in r[4].stacks) for r in exact_results)
    knap = sum(r[5].knapsacks_solved > 0 for r in exact_results)
    assert tiled >= 0.6 * n, (tiled, n)
    assert cached >= 0.5 * n, (cached, n)
    # the capacity binds the caching choice, not only the quick exit: the knapsack runs where the weights
    # that could each fit beside the activations do not all fit together (12 of the 40 cases)
    assert knap >= 0.25 * n, (knap, n)
    # and the networks are varied: P != Q, asymmetric padding, stride 2, pooling all occur
    layers = [lay for r in exact_results for lay in r[1].layers]
    assert any(lay.P != lay.Q for lay in layers)
    assert any(lay.pad[0] != lay.pad[1] or lay.pad[2] != lay.pad[3] for lay in layers)
    assert any(max(lay.Hstride, lay.Wstride) == 2 and lay.kind != "pool" for lay in layers)
    assert any(lay.kind == "pool" for lay in layers)


@pytest.mark.parametrize("seed", range(100, 112))
def test_legacy_equals_bruteforce(seed):
    net, table, cap = _case(seed)
    sched, _ = optimize(net, table, capacity=cap, rule="legacy")
    ref = reference_optimum(net, table, dict(cap.home), dict(cap.words), rule="legacy")
    assert sched.total.energy_pJ == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("seed", range(200, 210))
def test_max_stack_depth_equals_bruteforce(seed):
    net, table, cap = _case(seed, max_layers=4)
    for depth in (1, 2):
        sched, _ = optimize(net, table, capacity=cap, max_stack_depth=depth)
        assert all(s.depth <= depth for s in sched.stacks)
        ref = reference_optimum(net, table, dict(cap.home), dict(cap.words), max_depth=depth)
        assert sched.total.energy_pJ == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("seed", range(300, 310))
def test_unlimited_capacity_and_cycles_objective(seed):
    net, table, _ = _case(seed)
    sched, _ = optimize(net, table, capacity=None)
    assert sched.total.energy_pJ == pytest.approx(reference_optimum(net, table, None, None), rel=1e-9)
    sched_c, _ = optimize(net, table, capacity=None, objective="cycles")
    ref_c = reference_optimum(net, table, None, None, metric="cycles")
    assert sched_c.total.cycles == pytest.approx(ref_c, rel=1e-9)
    assert sched_c.objective == "cycles"


@pytest.mark.parametrize("seed", range(400, 410))
def test_holes_in_the_table_are_skipped(seed):
    """Entries missing from the table: tilings that need them are skipped, layers whose cached variant
    lacks a shape are not cached there; the optimum still equals the brute force."""
    net, table, cap = _case(seed)
    rng = np.random.default_rng(seed)
    keys = [k for k in table.records if k[1] != Variant.SLC]
    for idx in rng.choice(len(keys), size=len(keys) // 4, replace=False):
        del table.records[keys[idx]]
    sched, stats = optimize(net, table, capacity=cap)
    ref = reference_optimum(net, table, dict(cap.home), dict(cap.words))
    assert sched.total.energy_pJ == pytest.approx(ref, rel=1e-9)
    assert stats.tilings_skipped_missing > 0
    assert stats.skipped_examples and any("entry" in e for e in stats.skipped_examples)
