"""The Pareto front of (energy, cycles) equals brute force on small random chains and graphs: every
schedule (every partition into single-exit stacks, every tile shape, every caching subset) costed by
the independent reference of tests/search/reference.py, in both metrics, its non-dominated set
compared point for point; every front point's schedule costs its point through ``evaluate``; the
energy-, cycles- and EDP-optimal points and the budgets pick what brute force picks."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.errors import InputError
from deepfrack.residency import Variant
from deepfrack.search import StackSpec, evaluate, optimize
from deepfrack.search.knapsack import knapsack_front
from deepfrack.search.pareto import choose, front_schedules, nondominated, pareto_front
from tests.search.nets import random_capacity, random_dag, random_dag_capacity, random_network
from tests.search.reference import dag_stack_cost, partitions, single_exit, stack_choices
from tests.synthetic import synthetic_table

REL = 1e-9


def _decorrelate(table, seed: int):
    """Cycles with their own noise, so that energy and cycles trade off more often."""
    rng = np.random.default_rng(seed + 1000)
    for key, rec in list(table.records.items()):
        table.records[key] = dataclasses.replace(rec, cycles=rec.cycles * float(rng.uniform(0.5, 1.5)))
    return table


def case(seed: int):
    rng = np.random.default_rng(seed)
    if seed % 2:
        net = random_dag(rng, max_blocks=2, max_layers=5, max_last=4)
        cap = random_dag_capacity(rng, net)
    else:
        net = random_network(rng, max_layers=4, max_last=5)
        cap = random_capacity(rng, net)
    table = _decorrelate(synthetic_table(net, seed=seed, noise=0.3), seed)
    if seed % 3 == 2:  # holes: entries the benchmark did not produce
        keys = [k for k in table.records if k[1] != Variant.SLC]
        for i in rng.choice(len(keys), size=len(keys) // 10, replace=False):
            del table.records[keys[i]]
    return net, table, cap


def brute_front(net, table, cap) -> list[tuple[float, float]]:
    """The non-dominated (energy, cycles) of every schedule: every stack choice costed by the
    reference, every combination over every partition into single-exit stacks summed."""
    homes, words = dict(cap.home), dict(cap.words)
    n = len(net.layers)
    options: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for first in range(n):
        for last in range(first, n):
            if not single_exit(net, first, last):
                continue
            vals = set()
            for shape, cached in stack_choices(net, first, last):
                e = dag_stack_cost(net, table, first, last, *shape, cached, homes, words)
                if math.isfinite(e):
                    c = dag_stack_cost(net, table, first, last, *shape, cached, homes, words, "cycles")
                    vals.add((e, c))
            options[(first, last)] = sorted(vals)
    points = set()
    for stacks in partitions(n):
        if not all(single_exit(net, a, b) for a, b in stacks):
            continue
        for combo in itertools.product(*(options[s] for s in stacks)):
            points.add((sum(e for e, _ in combo), sum(c for _, c in combo)))
    pts = sorted(points)
    e, c = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return [pts[k] for k in nondominated(e, c)]


def _same_front(got: list[tuple[float, float]], want: list[tuple[float, float]], where: str) -> None:
    assert len(got) == len(want), (where, got, want)
    for (ge, gc), (we, wc) in zip(sorted(got), sorted(want)):
        assert ge == pytest.approx(we, rel=REL) and gc == pytest.approx(wc, rel=REL), (where, got, want)


@pytest.mark.parametrize("seed", range(24))
def test_front_equals_bruteforce(seed: int):
    net, table, cap = case(seed)
    want = brute_front(net, table, cap)
    front, _ = pareto_front(net, table, capacity=cap)
    _same_front([(p.energy_pJ, p.cycles) for p in front], want, f"seed {seed}")
    # every point's schedule costs its point through evaluate
    for p, sched in zip(front, front_schedules(net, table, front, capacity=cap)):
        specs = [StackSpec(s.first, s.last, s.tile_shape, s.cached_layers) for s in sched.stacks]
        again = evaluate(net, table, specs, capacity=cap)
        assert again.total.energy_pJ == pytest.approx(p.energy_pJ, rel=REL)
        assert again.total.cycles == pytest.approx(p.cycles, rel=REL)
    # its ends are the single-metric optima, and the EDP optimum is brute force's
    for metric, col in (("energy", 0), ("cycles", 1)):
        best = optimize(net, table, capacity=cap, objective=metric)[0].total
        assert min(pt[col] for pt in want) == pytest.approx(
            best.energy_pJ if metric == "energy" else best.cycles, rel=REL
        )
    e = [p.energy_pJ for p in front]
    c = [p.cycles for p in front]
    k = choose(e, c, "edp").index
    assert e[k] * c[k] == pytest.approx(min(a * b for a, b in want), rel=REL)


def test_fronts_have_tradeoffs_and_the_sample_covers_graphs():
    sizes = []
    for seed in range(24):
        net, table, cap = case(seed)
        sizes.append(len(pareto_front(net, table, capacity=cap)[0]))
    assert sum(s > 1 for s in sizes) >= 8, sizes
    assert max(sizes) >= 4, sizes


@pytest.mark.parametrize("seed", range(0, 24, 5))
def test_epsilon_thins_within_its_factor(seed: int):
    net, table, cap = case(seed)
    exact, _ = pareto_front(net, table, capacity=cap)
    for eps in (0.01, 0.2):
        thin, _ = pareto_front(net, table, capacity=cap, epsilon=eps)
        assert len(thin) <= len(exact)
        assert {(p.energy_pJ, p.cycles) for p in thin} <= {(p.energy_pJ, p.cycles) for p in exact}
        for p in exact:
            assert any(
                q.energy_pJ <= (1 + eps) * p.energy_pJ * (1 + 1e-12)
                and q.cycles <= (1 + eps) * p.cycles * (1 + 1e-12)
                for q in thin
            )


def test_budgets_pick_the_best_point_that_meets_them():
    e = [1.0, 2.0, 3.0, 5.0]
    c = [9.0, 5.0, 4.0, 1.0]
    assert choose(e, c, "energy", max_cycles=4.5) == choose(e, c, "energy", max_cycles=4.0)
    assert choose(e, c, "energy", max_cycles=4.5).index == 2
    assert choose(e, c, "cycles", max_energy=3.0).index == 2
    assert choose(e, c, "edp").index == 3  # 9, 10, 12, 5
    assert choose(e, c, "edp", max_cycles=4.0).index == 3
    assert choose(e, c, "edp", max_energy=3.5).index == 0
    assert choose(e, c, "energy", max_cycles=5.0, max_energy=2.0).index == 1
    miss = choose(e, c, "energy", max_cycles=0.5)
    assert not miss.met and miss.index == 3  # the fewest cycles is the closest
    miss = choose(e, c, "energy", max_cycles=4.0, max_energy=2.0)  # 9/4, 5/4 & 1, 4/4 & 1.5, ...
    assert not miss.met and miss.index == 1


def test_tables_without_cycles_are_refused():
    net, table, cap = case(0)
    for key, rec in list(table.records.items()):
        table.records[key] = dataclasses.replace(rec, cycles=None)
    with pytest.raises(InputError, match="cycles"):
        pareto_front(net, table, capacity=cap)


def _enumerate(weights, gains, cap):
    pts = []
    for bits in itertools.product((0, 1), repeat=len(weights)):
        if sum(w for w, b in zip(weights, bits) if b) <= cap:
            chosen = [g for g, b in zip(gains, bits) if b]
            pts.append((sum(g[0] for g in chosen), sum(g[1] for g in chosen)))
    e, c = -np.array([p[0] for p in pts]), -np.array([p[1] for p in pts])
    return sorted(pts[k] for k in nondominated(e, c))


items = st.lists(
    st.tuples(st.integers(0, 40), st.integers(-20, 60), st.integers(-20, 60)), min_size=0, max_size=9
)


@settings(max_examples=300, deadline=None)
@given(items=items, cap=st.integers(0, 150))
def test_knapsack_front_matches_enumeration(items, cap):
    weights = [w for w, _, _ in items]
    gains = [(float(e), float(c)) for _, e, c in items]
    got = knapsack_front(weights, gains, cap)
    assert sorted((e, c) for e, c, _ in got) == _enumerate(weights, gains, cap)
    for e, c, chosen in got:
        assert sum(weights[i] for i in chosen) <= cap
        assert (sum(gains[i][0] for i in chosen), sum(gains[i][1] for i in chosen)) == (e, c)
