"""The exact knapsack against enumeration of every subset."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.search import solve_knapsack


def _enumerate(weights, benefits, cap):
    best = 0.0
    for bits in itertools.product((0, 1), repeat=len(weights)):
        w = sum(x for x, b in zip(weights, bits) if b)
        v = sum(x for x, b in zip(benefits, bits) if b)
        if w <= cap and v > best:
            best = v
    return best


items = st.lists(st.tuples(st.integers(0, 50), st.floats(-20, 100, allow_nan=False)), min_size=0, max_size=11)


@settings(max_examples=300, deadline=None)
@given(items=items, cap=st.integers(0, 200))
def test_matches_enumeration(items, cap):
    weights = [w for w, _ in items]
    benefits = [b for _, b in items]
    value, chosen = solve_knapsack(weights, benefits, cap)
    assert value == _enumerate(weights, benefits, cap) or math.isclose(
        value, _enumerate(weights, benefits, cap)
    )
    assert sum(weights[i] for i in chosen) <= cap
    assert math.isclose(sum(benefits[i] for i in chosen), value, abs_tol=1e-9)
    assert all(benefits[i] > 0 for i in chosen)
    assert list(chosen) == sorted(set(chosen))


def test_quick_exit_and_edge_cases():
    assert solve_knapsack([3, 4], [1.0, 2.0], math.inf) == (3.0, (0, 1))
    assert solve_knapsack([3, 4], [1.0, -2.0], math.inf) == (1.0, (0,))
    assert solve_knapsack([3, 4], [0.0, -math.inf], math.inf) == (0.0, ())  # zero benefit: never cached
    assert solve_knapsack([3, 4], [1.0, 2.0], -1) == (0.0, ())
    assert solve_knapsack([5, 4, 3], [10.0, 7.0, 6.0], 7) == (13.0, (1, 2))


def test_many_items_is_fast_and_exact_on_a_structured_case():
    # 60 items of weight 2^k-ish: enumeration would be 2^60; the Pareto front stays small
    weights = [10 + (k % 7) for k in range(60)]
    benefits = [float(10 + (k % 7)) * (1 + (k % 3) * 0.01) for k in range(60)]
    value, chosen = solve_knapsack(weights, benefits, 100)
    assert sum(weights[i] for i in chosen) <= 100
    # greedy by ratio is optimal here up to the last item; the exact answer is at least as good
    order = sorted(range(60), key=lambda i: -benefits[i] / weights[i])
    greedy, used = 0.0, 0
    for i in order:
        if used + weights[i] <= 100:
            used += weights[i]
            greedy += benefits[i]
    assert value >= greedy
