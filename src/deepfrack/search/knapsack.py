"""Exact 0/1 knapsack for weight caching (docs/search.md, "Caching").

Items are a stack's layers: weight = the layer's weight words, benefit = what caching them saves
over the tiles after the first. We never enumerate 2^n subsets: a dynamic program keeps the Pareto
front of (words used, benefit) states, item by item, dropping every state that another state beats
with no more words. When all useful items fit together the answer is immediate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def solve_knapsack(
    weights: Sequence[int], benefits: Sequence[float], capacity: float
) -> tuple[float, tuple[int, ...]]:
    """Best total benefit of a subset of items whose weights sum to at most ``capacity``, and the
    chosen item indices (ascending).

    Only items with a positive, finite benefit can be chosen (a zero-benefit item is never cached).
    ``capacity`` may be ``math.inf``. Returns (0.0, ()) when nothing fits or nothing helps.
    """
    if capacity < 0:
        return 0.0, ()
    items = [
        (i, int(w), float(b))
        for i, (w, b) in enumerate(zip(weights, benefits))
        if b > 0 and math.isfinite(b) and w <= capacity
    ]
    if not items:
        return 0.0, ()
    if sum(w for _, w, _ in items) <= capacity:
        return sum(b for _, _, b in items), tuple(i for i, _, _ in items)
    # Pareto front: parallel lists sorted by weight ascending, benefit strictly ascending.
    front: list[tuple[int, float, int]] = [(0, 0.0, 0)]  # (weight, benefit, bitmask of chosen items)
    for i, w, b in items:
        shifted = [(fw + w, fb + b, mask | (1 << i)) for fw, fb, mask in front if fw + w <= capacity]
        front = _merge_front(front, shifted)
    _, best_b, best_mask = front[-1]
    chosen = tuple(i for i, _, _ in items if best_mask >> i & 1)
    return best_b, chosen


def _merge_front(
    a: list[tuple[int, float, int]], b: list[tuple[int, float, int]]
) -> list[tuple[int, float, int]]:
    """Merge two fronts sorted by weight, keeping only states with more benefit than every lighter one."""
    out: list[tuple[int, float, int]] = []
    ia = ib = 0
    best = -math.inf
    while ia < len(a) or ib < len(b):
        if ib >= len(b) or (ia < len(a) and (a[ia][0], -a[ia][1]) <= (b[ib][0], -b[ib][1])):
            state = a[ia]
            ia += 1
        else:
            state = b[ib]
            ib += 1
        if state[1] > best:
            out.append(state)
            best = state[1]
    return out
