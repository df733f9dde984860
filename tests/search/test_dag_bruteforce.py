"""``evaluate`` on graphs equals a brute-force reference written independently from the pinned rules
(tests/search/reference.py): every stack of every small random graph, every tile shape (th, tw), every
caching subset, tile by tile, in energy and in cycles, with capacities that bind and holes in the
tables. The reference's optimum is reached by ``evaluate`` and beats every other enumerated schedule."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from deepfrack.errors import MissingCostError, ScheduleError
from deepfrack.residency import Variant
from deepfrack.search import StackSpec, evaluate, optimize
from deepfrack.search.graph import single_exit_lowest
from tests.search.nets import random_capacity, random_dag, random_dag_capacity, random_network
from tests.search.reference import (
    dag_stack_cost,
    partitions,
    reference_dag_optimum,
    reference_optimum,
    single_exit,
    stack_choices,
)
from tests.synthetic import synthetic_table

SEEDS = range(36)


def dag_case(seed: int):
    rng = np.random.default_rng(seed)
    net = random_dag(rng)
    table = synthetic_table(net, seed=seed, noise=0.3, dram_pJ_per_word=float(rng.uniform(5, 40)))
    if seed % 3 == 2:  # holes: entries the benchmark did not produce
        keys = [k for k in table.records if k[1] != Variant.SLC]
        for i in rng.choice(len(keys), size=len(keys) // 10, replace=False):
            del table.records[keys[i]]
    return net, table, random_dag_capacity(rng, net)


def singles_around(net, first: int, last: int, spec: StackSpec) -> list[StackSpec]:
    """A whole schedule: ``spec`` for first..last, every other layer alone."""
    alone = [StackSpec(i, i, net.layers[i].out_plane) for i in range(len(net.layers))]
    return [*alone[:first], spec, *alone[last + 1 :]]


def compare_every_stack(seed: int) -> Counter:
    """evaluate vs dag_stack_cost for every stack, tile shape and caching subset of one graph; returns
    what kinds of outcome occurred."""
    net, table, cap = dag_case(seed)
    homes, words = dict(cap.home), dict(cap.words)
    seen: Counter = Counter()
    for first in range(len(net.layers)):
        for last in range(first + 1, len(net.layers)):
            choices = list(stack_choices(net, first, last))
            if not single_exit(net, first, last):  # one choice is enough: none is valid
                choices = choices[len(choices) // 2 : len(choices) // 2 + 1]
            for shape, cached in choices:
                ref_e = dag_stack_cost(net, table, first, last, *shape, cached, homes, words)
                ref_c = dag_stack_cost(net, table, first, last, *shape, cached, homes, words, "cycles")
                spec = StackSpec(first, last, shape, tuple(sorted(cached)))
                where = f"seed {seed}, stack {first}-{last}, tile {shape}, cached {sorted(cached)}"
                try:
                    sched = evaluate(net, table, singles_around(net, first, last, spec), capacity=cap)
                except ScheduleError as exc:
                    assert math.isinf(ref_e), f"{where}: {exc}"
                    single = "single exit" in str(exc) or "network output" in str(exc)
                    assert single == (not single_exit(net, first, last)), where
                    seen["single exit" if single else "held" if "held" in str(exc) else "capacity"] += 1
                    continue
                except MissingCostError:
                    assert math.isinf(ref_e), where
                    seen["missing"] += 1
                    continue
                stack = sched.stacks[first]
                assert stack.energy_pJ == pytest.approx(ref_e, rel=1e-9), where
                assert stack.cycles == pytest.approx(ref_c, rel=1e-9), where
                others = [s.energy_pJ for s in sched.stacks if s is not stack]
                assert sched.total.energy_pJ == pytest.approx(ref_e + sum(others), rel=1e-9)
                seen["fused"] += 1
                seen["mixed join"] += any(sl.dram_variant is not None for sl in stack.layers)
                seen["reads from DRAM mid-stack"] += any(
                    sl.variants[0] == Variant.Start for sl in stack.layers[1:]
                )
                seen["cached"] += bool(cached)
                seen["skipped pixels"] += stack.skipped_pixels > 0
    return seen


@pytest.mark.parametrize("part", range(3))
def test_evaluate_equals_bruteforce_on_every_stack(part: int):
    outcomes: Counter = Counter()
    for seed in SEEDS[12 * part : 12 * (part + 1)]:
        outcomes += compare_every_stack(seed)
    # the sample exercises every rule: fused stacks with joins that read DRAM, held skip tensors,
    # capacity and missing entries, stacks that break single exit
    for kind in (
        "fused",
        "mixed join",
        "reads from DRAM mid-stack",
        "cached",
        "skipped pixels",
        "single exit",
        "capacity",
        "held",
        "missing",
    ):
        assert outcomes[kind] >= 10, (kind, outcomes)


def test_sample_has_every_kind_of_block():
    names = " ".join(lay.name for seed in SEEDS for lay in dag_case(seed)[0].layers)
    kinds = {lay.kind for seed in SEEDS for lay in dag_case(seed)[0].layers}
    assert {"conv", "depthwise", "pool", "add", "concat"} <= kinds
    assert "ds" in names  # strided 1x1 shortcuts
    nets = [dag_case(seed)[0] for seed in SEEDS]
    assert any(lay.pad[0] != lay.pad[1] or lay.pad[2] != lay.pad[3] for n in nets for lay in n.layers)
    assert any(-1 in ops and len(ops) > 1 for n in nets for ops in n.inputs)  # a join reads the input


@pytest.mark.parametrize("seed", range(0, 36, 3))
def test_reference_optimum_is_reached_and_beats_every_schedule(seed):
    net, table, cap = dag_case(seed)
    homes, words = dict(cap.home), dict(cap.words)
    for metric in ("energy", "cycles"):
        best = reference_dag_optimum(net, table, homes, words, metric)
        assert math.isfinite(best.value)
        specs = [StackSpec(s.first, s.last, s.tile_shape, s.cached) for s in best.stacks]
        sched = evaluate(net, table, specs, capacity=cap, objective=metric)
        got = sched.total.energy_pJ if metric == "energy" else sched.total.cycles
        assert got == pytest.approx(best.value, rel=1e-9)
    # every partition into single-exit stacks, with one random choice per stack, costs no less
    rng = np.random.default_rng(seed)
    best = reference_dag_optimum(net, table, homes, words)
    for stacks in partitions(len(net.layers)):
        if not all(single_exit(net, a, b) for a, b in stacks):
            continue
        specs = []
        for a, b in stacks:
            choices = list(stack_choices(net, a, b))
            shape, cached = choices[int(rng.integers(len(choices)))]
            specs.append(StackSpec(a, b, shape, tuple(sorted(cached))))
        try:
            sched = evaluate(net, table, specs, capacity=cap)
        except (ScheduleError, MissingCostError):
            continue
        assert sched.total.energy_pJ >= best.value * (1 - 1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_on_chains_the_graph_reference_is_the_chain_search(seed):
    """On a chain, the graph brute force equals the chain brute force and ``optimize``."""
    rng = np.random.default_rng(seed)
    net = random_network(rng)
    table = synthetic_table(net, seed=seed, noise=0.3)
    cap = random_capacity(rng, net)
    best = reference_dag_optimum(net, table, dict(cap.home), dict(cap.words))
    assert best.value == pytest.approx(reference_optimum(net, table, dict(cap.home), dict(cap.words)))
    assert optimize(net, table, capacity=cap)[0].total.energy_pJ == pytest.approx(best.value, rel=1e-9)


@pytest.mark.parametrize("seed", range(60))
def test_single_exit_lowest_is_the_range_of_valid_first_layers(seed):
    net = random_dag(np.random.default_rng(seed), max_blocks=3, max_layers=12, max_last=12)
    for last in range(len(net.layers)):
        lowest = single_exit_lowest(net, last)
        assert [j for j in range(last + 1) if single_exit(net, j, last)] == list(range(lowest, last + 1))
        floor = last // 2
        assert single_exit_lowest(net, last, floor) == max(lowest, floor)
