"""What a Schedule holds: every layer of every stack with one variant and one region per tile, in the
order of ``tiles``; MACs with the recomputed halos; cycles only when every record has them; progress."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deepfrack.rect import Rect
from deepfrack.residency import Variant, position_in_stack, variant_for
from deepfrack.search import StackSpec, evaluate, grid, optimize, stack_regions
from deepfrack.workload.layer import Layer, Network
from tests.search.nets import random_capacity, random_network
from tests.synthetic import synthetic_table


def _check_structure(net, sched, rule="exact", table=None):
    covered = []
    for st in sched.stacks:
        covered.extend(range(st.first, st.last + 1))
        plane = net.layers[st.last].out_plane
        assert [sl.layer for sl in st.layers] == list(range(st.first, st.last + 1))
        assert st.tiles == grid(plane, st.tile_shape)
        assert st.tiles[0].shape == st.tile_shape  # the grid's main tile
        for sl in st.layers:
            assert len(sl.variants) == len(sl.regions) == len(st.tiles)
            pos = position_in_stack(sl.layer, st.first, st.last)
            assert sl.variants[0] == variant_for(pos, False)
            assert set(sl.variants[1:]) <= {variant_for(pos, sl.layer in st.cached_layers)}
            assert all(Rect(0, 0, *net.layers[sl.layer].out_plane).contains(r) for r in sl.regions)
        for k, tile in enumerate(st.tiles):
            regions = stack_regions(net, st.first, st.last, tile, rule, table)
            assert tuple(sl.regions[k] for sl in st.layers) == regions
        if st.depth == 1:
            assert st.layers[0].variants == (Variant.SLC,) and st.tile_shape == plane and not st.cached_layers
        macs = sum(net.layers[sl.layer].macs_for(r.h, r.w) for sl in st.layers for r in sl.regions)
        assert st.macs == macs
    assert covered == list(range(len(net.layers)))
    assert sched.total.macs == sum(st.macs for st in sched.stacks)
    assert sched.layer_by_layer.macs == net.macs


@pytest.mark.parametrize("seed", range(8))
def test_structure_of_optimized_schedules(seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng)
    table = synthetic_table(net, seed=seed, noise=0.3)
    sched, _ = optimize(net, table, capacity=random_capacity(rng, net))
    _check_structure(net, sched)
    sched_l, _ = optimize(net, table, capacity=None, rule="legacy")
    _check_structure(net, sched_l, "legacy", table)


@pytest.fixture
def net():
    layers = [
        Layer("conv1", C=3, M=4, P=10, Q=8, R=3, S=3, pad=(1, 1, 1, 1)),
        Layer("pool1", C=4, M=4, P=5, Q=4, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max"),
        Layer("conv2", C=4, M=6, P=5, Q=4, R=3, S=3, pad=(0, 2, 1, 1)),
    ]
    return Network.chain("tiny", layers, input_plane=(8, 10))


def test_fused_macs_include_the_halos(net):
    table = synthetic_table(net, seed=2)
    sched = evaluate(net, table, [StackSpec(0, 2, (1, 1))])
    st = sched.stacks[0]
    # conv2 (pad left 0, right 2) tiles of 1x1 need 3x3 of pool1, each 6x6 of conv1 (clipped at the edges)
    assert sched.total.macs > net.macs
    conv1 = sum(r.area for r in st.layers[0].regions)
    assert conv1 > net.layers[0].Q * net.layers[0].P
    assert st.macs == conv1 * 3 * 9 * 4 + 0 + 20 * 4 * 9 * 6  # pool1 multiplies nothing
    assert sched.recompute == pytest.approx(sched.total.macs / net.macs - 1)


def test_cycles_only_when_every_record_has_them(net):
    table = synthetic_table(net, seed=2)
    spec = [StackSpec(0, 2, (2, 5), (0,))]
    assert evaluate(net, table, spec).total.cycles is not None
    key = (0, Variant.OutWCC, *evaluate(net, table, spec).stacks[0].layers[0].regions[1].shape)
    table.records[key] = dataclasses.replace(table.records[key], cycles=None)
    sched = evaluate(net, table, spec)
    assert sched.total.cycles is None
    assert sched.layer_by_layer.cycles is not None  # SLC records still have them
    other = evaluate(net, table, [StackSpec(0, 2, (2, 5))])  # that record is not used
    assert other.total.cycles is not None


def test_progress_reports_every_stack(net):
    table = synthetic_table(net, seed=2)
    calls = []
    _, stats = optimize(net, table, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6) and len(calls) == 3
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert stats.stacks_considered == 6
    calls.clear()
    optimize(net, table, max_stack_depth=2, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (5, 5)


def test_unlimited_capacity_caches_every_layer_that_gains(net):
    table = synthetic_table(net, seed=2)
    # make large regions (and so SLC on whole planes) expensive: the optimum fuses with several tiles
    for key, rec in list(table.records.items()):
        if key[2] * key[3] > 4:
            table.records[key] = dataclasses.replace(rec, energy_pJ=rec.energy_pJ * key[2] * key[3])
    sched, stats = optimize(net, table, capacity=None)
    tiled = [st for st in sched.stacks if len(st.tiles) > 1]
    assert tiled
    for st in tiled:
        # the synthetic cached variants never read weights from DRAM: caching always gains
        assert st.cached_layers == tuple(l for l in range(st.first, st.last + 1) if net.layers[l].has_weights)
    assert stats.knapsacks_solved == 0
