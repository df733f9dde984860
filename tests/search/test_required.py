"""required_shapes: a table holding exactly those entries gives optimize everything it asks for, and
the same optimum as a table of every rectangle, on random chains with padding, strides, dilation,
pooling and depthwise layers."""

from __future__ import annotations

import numpy as np
import pytest

from deepfrack.benchmark.tables_io import check_table
from deepfrack.cost.table import CostTable
from deepfrack.residency import Variant
from deepfrack.search import optimize, required_shapes
from deepfrack.workload.layer import Layer, Network
from tests.search.nets import random_capacity, random_network
from tests.synthetic import synthetic_table


@pytest.mark.parametrize("seed", range(30))
def test_required_entries_are_all_the_search_needs(seed: int):
    rng = np.random.default_rng(1000 + seed)
    net = random_network(rng, max_layers=5, max_last=8)
    full = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)))
    cap = random_capacity(rng, net)
    depth = None if seed % 3 else 2
    keys = required_shapes(net, depth)
    table = CostTable({k: full.records[k] for k in keys}, source="required")
    check_table(table, net)  # every shape inside its layer's plane
    assert len(keys) < len(full.records)
    best, _ = optimize(net, full, cap, max_stack_depth=depth)
    got, stats = optimize(net, table, cap, max_stack_depth=depth)
    assert stats.tilings_skipped_missing == 0, stats.skipped_examples
    assert got.total == best.total
    assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == [
        (s.first, s.last, s.tile_shape, s.cached_layers) for s in best.stacks
    ]


def test_without_fusion_only_the_whole_planes():
    net = Network.chain(
        "n",
        [
            Layer("a", C=3, M=4, P=7, Q=5, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("b", C=4, M=4, P=7, Q=5, R=3, S=3, pad=(1, 1, 1, 1)),
        ],
    )
    assert required_shapes(net, 1) == {(0, Variant.SLC, 5, 7), (1, Variant.SLC, 5, 7)}
    keys = required_shapes(net)
    # stack 0-1: layer 0 first (Start, OutWCC), layer 1 last (ELBLC, EWCC); no middle layer
    assert {v for (_, v, _, _) in keys} == {
        Variant.SLC,
        Variant.Start,
        Variant.OutWCC,
        Variant.ELBLC,
        Variant.EWCC,
    }
    assert {(h, w) for (l, v, h, w) in keys if l == 1 and v == Variant.EWCC} == {
        (h, w) for h in range(1, 6) for w in range(1, 8)
    }
    # layer 0's regions: a band of t rows of layer 1 needs t + 2 rows of layer 0 inside, fewer at the edges
    hs = {h for (l, v, h, _) in keys if l == 0 and v == Variant.Start}
    assert hs == set(range(2, 6))


@pytest.mark.parametrize("seed", range(30))
def test_capacity_drops_only_shapes_no_feasible_tiling_uses(seed: int):
    """With a capacity, shapes whose every use overflows a home level (activations alone; a cached
    variant's weights beside them) are left out, and the optimum is unchanged."""
    rng = np.random.default_rng(2000 + seed)
    net = random_network(rng, max_layers=5, max_last=8)
    cap = random_capacity(rng, net)
    depth = None if seed % 3 else 2
    full = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)))
    keys = required_shapes(net, depth, cap)
    assert keys <= required_shapes(net, depth)
    table = CostTable({k: full.records[k] for k in keys}, source="required")
    best, _ = optimize(net, full, cap, max_stack_depth=depth)
    got, _ = optimize(net, table, cap, max_stack_depth=depth)
    assert got.total == best.total
    assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == [
        (s.first, s.last, s.tile_shape, s.cached_layers) for s in best.stacks
    ]


def test_capacity_drops_shapes_on_a_real_network():
    """AlexNet (padding, pooling) on Simba's capacities: half of the entries can never be used."""
    from deepfrack.arch.capacity import CapacitySpec
    from deepfrack.workload.loaders import load_workload
    from tests.paths import ROOT

    simba = CapacitySpec(
        home={"Weights": "PEWeightBuffer", "Inputs": "GlobalBuffer", "Outputs": "GlobalBuffer"},
        words={"GlobalBuffer": 65536, "PEWeightBuffer": 524288},
    )
    net = load_workload(ROOT / "examples/networks/alexnet.yaml")
    assert (len(required_shapes(net)), len(required_shapes(net, capacity=simba))) == (8382, 4305)
