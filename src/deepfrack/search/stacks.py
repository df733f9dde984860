"""The cost of every stack that ends at one layer, over all its tilings at once, in named steps.

Both searches use these steps: the exhaustive one (``optimizer.optimize``) on a complete table, the
on-demand one (``ondemand.optimize_on_demand``) on the entries costed so far, where it applies them to
the tilings whose entries are all known. Given the same entries, a tiling gets the same value, bit
for bit, in both.

1. ``sweep_stacks``: the stacks [j..last] for j = last - 1 down to the lowest first layer, each as a
   ``StackArrays``: its layers' terms (``plan.LayerTerm``, one per layer and role), its uncached cost,
   missing shapes, forced weights and most live words per on-chip level (``sweep_live``), every array
   over the tilings of the Plan;
2. ``stack_capacity``: which tilings fit (activations and forced weights) and what the
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from deepfrack.search.costs import LevelUse
from deepfrack.search.graph import Role, layer_role, live_tensors, role_is_final, words_per_pixel
from deepfrack.search.knapsack import solve_knapsack
from deepfrack.search.plan import LayerTerm, Plan
from deepfrack.workload.layer import Network

#: (layer, its role in the stack) -> the layer's term over the Plan's tilings
TermOf = Callable[[int, Role], LayerTerm]


@dataclass(frozen=True)
class StackArrays:
    """Stack [first..last] over every tiling of its Plan (arrays shaped like ``Plan.shape``).

    ``terms``: (layer, role, term) for every layer, first to last. ``unc``: the cost with no free
    caching (forced layers cached). ``missing``: some shape has no usable entry. ``forced_words``:
    weights that must be cached. ``live``: per on-chip level, the most live activation words over
    the (tile, layer) steps."""

    first: int
    last: int
    terms: tuple[tuple[int, Role, LayerTerm], ...]
    unc: np.ndarray
    missing: np.ndarray
    forced_words: np.ndarray
    live: dict[str, np.ndarray]


def step_tensors(
    network: Network, level: LevelUse, layer: int, last: int, held: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    """(tensor, words per pixel) of what ``level`` holds at the step of ``layer``: the in-stack tensors
    ``held`` (tensor, its first reader at or after the step; ``graph.live_tensors``) when it is the
    inputs' home, and the layer's output, unless it is the stack's last layer, when it is the outputs'
    home."""
    out = [(t, words_per_pixel(network, reader, t)) for t, reader in held] if level.inputs else []
    if level.outputs and layer < last:
        lay = network.layers[layer]
        out.append((layer, lay.N * lay.M))
    return tuple(out)


def _max(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.maximum(a[name], b[name]) for name in a}


def sweep_live(
    network: Network, plan: Plan, levels: Sequence[LevelUse]
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(j, most live words per level over the (tile, layer) steps) of the stacks [j..plan.last], j from
    last - 1 down to plan.lowest (docs/search.md, "Capacity"). It stops after the first stack in which
    no tiling's activations fit: a step holds at least as much when the stack starts lower (the same
    tensors, and those made between the two first layers), so no deeper stack fits either.

    A step's words change only when the first layer moves below a tensor the step holds; once the
    first layer is at or below all of them, the step is settled and enters a running maximum."""
    last, lowest = plan.last, plan.lowest
    if not levels:
        for first in range(last - 1, lowest - 1, -1):
            yield first, {}
        return
    # what step l holds when the stack starts at lowest; starting at j, those made at or after j
    held = {l: live_tensors(network, lowest, last, l) for l in range(lowest, last + 1)}
    words: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def step(l: int, first: int) -> dict[str, np.ndarray]:
        inside = tuple((t, r) for t, r in held[l] if t >= first)
        key = (l, len(inside))
        if key not in words:
            words[key] = {
                lv.name: plan.max_words(step_tensors(network, lv, l, last, inside)) for lv in levels
            }
        return words[key]

    settled = {lv.name: np.zeros(plan.shape) for lv in levels}
    pending: list[int] = []  # steps after the first layer that are not settled yet
    for first in range(last - 1, lowest - 1, -1):
        pending.append(first + 1)
        still = []
        for l in pending:
            if not held[l] or first <= held[l][0][0]:
                settled = _max(settled, step(l, first))
            else:
                still.append(l)
        pending = still
        live = _max(settled, step(first, first))
        for l in pending:
            live = _max(live, step(l, first))
        yield first, live
        if not activation_capacity(live, levels, plan.shape)[0].any():
            return


@dataclass(frozen=True)
class _Sums:
    """Running sums over some layers of a stack: uncached cost, missing shapes, forced weights."""

    unc: np.ndarray
    missing: np.ndarray
    forced: np.ndarray

    def plus(self, term: LayerTerm, weights: int) -> _Sums:
        return _Sums(self.unc + term.unc, self.missing | term.missing, self.forced + weights * term.forced)


def sweep_stacks(
    network: Network,
    plan: Plan,
    levels: Sequence[LevelUse],
    term_of: TermOf,
    live: Iterable[tuple[int, dict[str, np.ndarray]]] | None = None,
) -> Iterator[StackArrays]:
    """Every stack [j..plan.last], j from last - 1 down to plan.lowest (until no tiling's activations
    fit: ``sweep_live``, or ``live``, what it gave before), sharing running sums: a layer joins them
    once its role is final (``graph.role_is_final``: on a chain, as soon as it is a middle layer); the
    others (a join whose operand is made before the first layer, which reads it from DRAM) are summed
    per stack."""
    last = plan.last
    weights = [lay.weights for lay in network.layers]
    shape = plan.shape
    settled_sums = _Sums(np.zeros(shape), np.zeros(shape, dtype=bool), np.zeros(shape))
    settled: dict[int, tuple[Role, LayerTerm]] = {}
    pending: list[int] = []
    for first, words in sweep_live(network, plan, levels) if live is None else live:
        if first + 1 < last:  # layer first + 1 becomes a middle layer
            pending.append(first + 1)
        for m in sorted(pending):
            if role_is_final(network, m, first):
                role = layer_role(network, m, first, last)
                settled[m] = (role, term_of(m, role))
                settled_sums = settled_sums.plus(settled[m][1], weights[m])
        pending = [m for m in pending if m not in settled]
        sums, middles = settled_sums, dict(settled)
        for m in pending:
            role = layer_role(network, m, first, last)
            middles[m] = (role, term_of(m, role))
            sums = sums.plus(middles[m][1], weights[m])
        first_role = layer_role(network, first, first, last)
        ft = term_of(first, first_role)
        last_role = layer_role(network, last, first, last)
        lt = term_of(last, last_role)
        yield StackArrays(
            first,
            last,
            (
                (first, first_role, ft),
                *((m, *middles[m]) for m in sorted(middles)),
                (last, last_role, lt),
            ),
            ft.unc + sums.unc + lt.unc,
            ft.missing | sums.missing | lt.missing,
            weights[first] * ft.forced + sums.forced + weights[last] * lt.forced,
            words,
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
    """Step 2: per home level, the most live words against its size."""
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
