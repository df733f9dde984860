"""The cost of every stack that ends at one layer, over all its tilings at once, in named steps.

Both searches use these steps: the exhaustive one (``optimizer.optimize``) on a complete table, the
on-demand one (``ondemand.optimize_on_demand``) on the entries costed so far, where it applies them to
the tilings whose entries are all known. Given the same entries, a tiling gets the same value, bit
for bit, in both.

1. ``sweep_stacks``: the stacks [j..last] for j = last - 1 down to the lowest first layer, each as a
   ``StackArrays``: its layers' terms (``plan.LayerTerm``), its uncached cost, missing shapes, forced
   weights and most live words per on-chip level, every array over the tilings of the Plan;
2. ``stack_capacity``: which tilings fit (activations and forced weights, DESIGN.md 3.4) and what the
   weights' level has left for caching;
3. ``caching_options``: per layer what caching saves, only where its weights could fit beside the
   activations (elsewhere caching is impossible whatever the table says), and the sums the quick
   test needs;
4. ``best_tiling``: the cheapest feasible tiling and its cached layers (an exact knapsack where the
   useful weights do not all fit), under the canonical tie rule: lowest value, then lowest flat
   tiling index (``Plan.tiling``), the knapsack's choice being deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from deepfrack.search.costs import LevelUse
from deepfrack.search.knapsack import solve_knapsack
from deepfrack.search.plan import LayerTerm, Plan
from deepfrack.workload.layer import Network

#: (layer, position) -> the layer's term over the Plan's tilings
TermOf = Callable[[int, str], LayerTerm]


@dataclass(frozen=True)
class StackArrays:
    """Stack [first..last] over every tiling of its Plan (arrays shaped like ``Plan.shape``).

    ``terms``: (layer, position, term) for every layer, first to last. ``unc``: the cost with no free
    caching (forced layers cached). ``missing``: some shape has no usable entry. ``forced_words``:
    weights that must be cached. ``live``: per on-chip level, the most live activation words over
    the (tile, layer) steps."""

    first: int
    last: int
    terms: tuple[tuple[int, str, LayerTerm], ...]
    unc: np.ndarray
    missing: np.ndarray
    forced_words: np.ndarray
    live: dict[str, np.ndarray]


def live_words(network: Network, plan: Plan, levels: Sequence[LevelUse], layer: int, position: str):
    """{level: most live words of ``layer`` at ``position`` over the tiles of every tiling}."""
    return {lv.name: plan.live_words(layer, *lv.coefficients(network, layer), position) for lv in levels}


def sweep_live(
    network: Network, plan: Plan, levels: Sequence[LevelUse]
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(j, most live words per level) of every stack [j..plan.last], j from last - 1 down to
    plan.lowest (DESIGN.md 3.4: a layer's input region unless it is first, its output unless last)."""
    last = plan.last
    last_live = live_words(network, plan, levels, last, "last")
    mid_live = {lv.name: np.zeros(plan.shape) for lv in levels}
    for first in range(last - 1, plan.lowest - 1, -1):
        if first + 1 < last:  # layer first + 1 becomes a middle layer
            for name, words in live_words(network, plan, levels, first + 1, "middle").items():
                mid_live[name] = np.maximum(mid_live[name], words)
        first_live = live_words(network, plan, levels, first, "first")
        yield first, {n: np.maximum(np.maximum(first_live[n], mid_live[n]), last_live[n]) for n in mid_live}


def sweep_stacks(
    network: Network, plan: Plan, levels: Sequence[LevelUse], term_of: TermOf
) -> Iterator[StackArrays]:
    """Every stack [j..plan.last], j from last - 1 down to plan.lowest, sharing running sums: going one
    layer down turns the previous first layer into a middle layer."""
    last = plan.last
    weights = [lay.weights for lay in network.layers]
    last_term = term_of(last, "last")
    shape = plan.shape
    mid_unc = np.zeros(shape)
    mid_missing = np.zeros(shape, dtype=bool)
    mid_forced = np.zeros(shape)
    middles: list[tuple[int, str, LayerTerm]] = []
    for first, live in sweep_live(network, plan, levels):
        if first + 1 < last:  # layer first + 1 becomes a middle layer
            m = first + 1
            t = term_of(m, "middle")
            middles.insert(0, (m, "middle", t))
            mid_unc = mid_unc + t.unc
            mid_missing = mid_missing | t.missing
            mid_forced = mid_forced + weights[m] * t.forced
        ft = term_of(first, "first")
        yield StackArrays(
            first,
            last,
            ((first, "first", ft), *middles, (last, "last", last_term)),
            ft.unc + mid_unc + last_term.unc,
            ft.missing | mid_missing | last_term.missing,
            weights[first] * ft.forced + mid_forced + weights[last] * last_term.forced,
            live,
        )


@dataclass(frozen=True)
class Capacity:
    """``fits``: the activations and the forced weights fit every level. ``kcap``: what the weights'
    level has left for free caching after both (inf without a weight level). ``headroom``: what it
    has left after the activations alone (a layer whose weights exceed it can never be cached in that
    tiling). ``activations_fit``: the activations alone fit every level."""

    fits: np.ndarray
    kcap: np.ndarray
    headroom: np.ndarray
    activations_fit: np.ndarray


def weight_level(levels: Sequence[LevelUse]) -> LevelUse | None:
    return next((lv for lv in levels if lv.weights), None)


def activation_capacity(live: dict[str, np.ndarray], levels: Sequence[LevelUse], shape) -> tuple:
    """(activations fit every level, what the weights' level has left after them)."""
    wl = weight_level(levels)
    fit = np.ones(shape, dtype=bool)
    for lv in levels:
        if lv is not wl:
            fit &= live[lv.name] <= lv.words
    headroom = np.full(shape, math.inf) if wl is None else wl.words - live[wl.name]
    return fit & (headroom >= 0), headroom


def stack_capacity(st: StackArrays, levels: Sequence[LevelUse]) -> Capacity:
    """Step 2 (DESIGN.md 3.4): per home level, the most live words against its size."""
    shape = st.unc.shape
    act_fit, headroom = activation_capacity(st.live, levels, shape)
    kcap = headroom - st.forced_words
    return Capacity(act_fit & (kcap >= 0), kcap, headroom, act_fit)


@dataclass(frozen=True)
class CachingOptions:
    """Step 3. ``benefits``: per layer of the stack (in ``terms`` order) what caching it saves, -inf where
    it cannot be chosen (no weights, a cached shape missing, forced, or weights that cannot fit beside
    the activations). ``bound``: the cost if every positive saving were taken. ``positive_words``: the
    weights of the layers with a positive saving."""

    benefits: tuple[np.ndarray, ...]
    bound: np.ndarray
    positive_words: np.ndarray


def caching_options(st: StackArrays, network: Network, headroom: np.ndarray) -> CachingOptions:
    benefits = []
    pos = np.zeros(st.unc.shape)
    words = np.zeros(st.unc.shape)
    for layer, _, term in st.terms:
        w = network.layers[layer].weights
        b = np.where(w <= headroom, term.benefit, -np.inf) if w else term.benefit
        benefits.append(b)
        pos = pos + np.maximum(b, 0.0)
        words = words + w * (b > 0)
    return CachingOptions(tuple(benefits), st.unc - pos, words)


@dataclass(frozen=True)
class TilingChoice:
    """The best tiling of a stack: its value (objective's unit), flat tiling index and cached layers."""

    value: float
    index: int
    cached: tuple[int, ...]


def best_tiling(
    st: StackArrays,
    network: Network,
    feasible: np.ndarray,
    cap: Capacity,
    opts: CachingOptions,
    on_knapsack: Callable[[], None] | None = None,
) -> TilingChoice | None:
    """Step 4: the cheapest tiling among ``feasible`` (canonical ties: lowest value, then lowest flat
    index). Tilings where every useful weight fits take all of them at once; the others solve the
    knapsack, best bound first, only while their bound can still win. None when nothing is feasible."""
    idx = np.flatnonzero(feasible.ravel())
    if idx.size == 0:
        return None
    unc, bound = st.unc.ravel(), opts.bound.ravel()
    kflat = cap.kcap.ravel()
    quick = opts.positive_words.ravel()[idx] <= kflat[idx]
    best_val, best_idx, best_cached = math.inf, -1, None
    if quick.any():
        qi = idx[quick]
        k = int(qi[np.argmin(bound[qi])])  # argmin: the first, i.e. lowest index, of equal values
        best_val, best_idx = float(bound[k]), k
    slow = idx[~quick]
    weights = [network.layers[layer].weights for layer, _, _ in st.terms]
    layer_ids = [layer for layer, _, _ in st.terms]
    for k in slow[np.lexsort((slow, bound[slow]))]:
        if (bound[k], k) > (best_val, best_idx):
            break
        gain, chosen = solve_knapsack(weights, [float(b.ravel()[k]) for b in opts.benefits], float(kflat[k]))
        if on_knapsack is not None:
            on_knapsack()
        value = float(unc[k] - gain)
        if (value, k) < (best_val, best_idx):
            best_val, best_idx = value, int(k)
            best_cached = {layer_ids[c] for c in chosen}
    if best_cached is None:
        best_cached = {layer_ids[i] for i, b in enumerate(opts.benefits) if b.ravel()[best_idx] > 0}
    best_cached |= {layer for layer, _, term in st.terms if term.forced.ravel()[best_idx]}
    return TilingChoice(best_val, best_idx, tuple(sorted(best_cached)))
