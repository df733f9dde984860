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


def knapsack_front(
    weights: Sequence[int], gains: Sequence[tuple[float, float]], capacity: float
) -> list[tuple[float, float, tuple[int, ...]]]:
    """The two-objective 0/1 knapsack: every non-dominated (energy gain, cycles gain) of a subset of
    items whose weights sum to at most ``capacity``, with one subset reaching each (item indices
    ascending), largest energy gain first. Both gains are to be maximized; a subset dominates another
    when it gains at least as much in both (equal gains: one subset is kept).

    An item is a candidate when it gains in at least one metric (a positive, finite gain) and its
    weight fits: an item that gains in neither can only weakly worsen a subset. As ``solve_knapsack``,
    a dynamic program item by item over non-dominated (weight, energy gain, cycles gain) states,
    never the 2^n subsets; when every candidate fits at once the weights are dropped from the states.
    """
    items = [
        (i, int(w), float(e), float(c))
        for i, (w, (e, c)) in enumerate(zip(weights, gains))
        if math.isfinite(e) and math.isfinite(c) and (e > 0 or c > 0) and w <= capacity
    ]
    binding = sum(w for _, w, _, _ in items) > capacity
    # states: (weight, energy gain, cycles gain, bitmask of chosen items)
    states: list[tuple[int, float, float, int]] = [(0, 0.0, 0.0, 0)]
    for i, w, e, c in items:
        grown = [(sw + w, se + e, sc + c, m | (1 << i)) for sw, se, sc, m in states if sw + w <= capacity]
        states = _prune_states(states + grown, binding)
    front = _prune_states([(0, e, c, m) for _, e, c, m in states], False)
    return [(e, c, tuple(i for i, _, _, _ in items if m >> i & 1)) for _, e, c, m in front]


def _prune_states(
    states: list[tuple[int, float, float, int]], by_weight: bool
) -> list[tuple[int, float, float, int]]:
    """The states that no other state weakly dominates (no more weight when ``by_weight``, at least
    the same gains), one of each set of equal states; largest energy gain first when not by weight."""
    if not by_weight:
        out: list[tuple[int, float, float, int]] = []
        best_c = -math.inf
        for s in sorted(states, key=lambda s: (-s[1], -s[2])):
            if s[2] > best_c:
                out.append(s)
                best_c = s[2]
        return out
    kept: list[tuple[int, float, float, int]] = []
    for s in sorted(states, key=lambda s: (s[0], -s[1], -s[2])):
        if not any(k[1] >= s[1] and k[2] >= s[2] for k in kept):
            kept.append(s)
    return kept
