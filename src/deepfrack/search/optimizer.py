"""The search: fused stacks, their tilings and cached weights that minimize the objective (docs/search.md).

* Partition (3.6): dynamic programming over the layers in topological order,
  ``best[i + 1] = min_j best[j] + cost(j..i)``; a single-layer stack is SLC on the whole plane. On a
  network that branches and joins, ``j`` keeps single exit (docs/search.md, "Networks that branch and
  join"), and a layer's variant follows what it reads (``graph.layer_role``).
* A stack's cost (3.2): the minimum over its tilings (3.7, ``tiling.py``) of the uncached cost of every
  layer over every tile, minus the best caching saving. All tilings of all stacks that end at one
  layer are costed together, by tile class (``plan.py``): no loop over tiles.
* Caching (3.5): an exact 0/1 knapsack per tiling (``knapsack.py``), run only for tilings whose bound
  (uncached cost minus every positive saving) can still beat the best found, and skipped when all
  the useful weights fit.
* Capacity (3.4): per home level, the most live words over every (tile, layer) step; the weights'
  level gives the knapsack what the activations leave.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostTable
from deepfrack.errors import InputError
from deepfrack.objective import ENERGY, Objective
from deepfrack.search.costs import (
    SQUARE_ONLY_HINT,
    CostGrids,
    LevelUse,
    Metric,
    capacity_levels,
    role_grids,
    search_metric,
)
from deepfrack.search.evaluation import _check_rule, _slc_record, assemble, build_stack
from deepfrack.search.graph import Role, single_exit_lowest
from deepfrack.search.plan import LayerTerm, Plan
from deepfrack.search.receptive import Rule, legacy_lookup
from deepfrack.search.schedule import Schedule, SearchStats, StackSpec
from deepfrack.search.stacks import (
    Capacity,
    StackArrays,
    best_tiling,
    caching_options,
    stack_capacity,
    sweep_stacks,
)
from deepfrack.search.tiling import square_candidates, tile_size_candidates
from deepfrack.workload.layer import Network

Progress = Callable[[int, int], None]
MAX_EXAMPLES = 3  # per kind of skip


class StackOption(Protocol):
    """An option of the partition: a stack starting at ``first`` and costing ``value``."""

    first: int
    value: float


@dataclass(frozen=True)
class StackChoice:
    """The best tiling and caching of one stack, and its cost in the objective's unit."""

    first: int
    last: int
    value: float
    tile_shape: tuple[int, int]
    cached_layers: tuple[int, ...]


@dataclass
class _Context:
    network: Network
    table: CostTable
    grids: CostGrids
    rule: Rule
    metric: Metric
    levels: tuple[LevelUse, ...]
    stats: SearchStats
    missing_examples: int = 0
    capacity_examples: int = 0
    terms: dict[tuple[int, int, Role], LayerTerm] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.available = legacy_lookup(self.table)


def lowest_first_layer(network: Network, last: int, rule: Rule, max_stack_depth: int | None) -> int:
    """The lowest layer a stack ending at ``last`` may start at: within ``max_stack_depth``, keeping
    single exit (``graph.single_exit_lowest``; on a chain, any layer) and, under the exact rule, not
    across an unchained pair; under the legacy rule, which fuses chains only, not across a layer that
    another layer than the next one reads."""
    lo = 0 if max_stack_depth is None else max(0, last - max_stack_depth + 1)
    if rule == "exact":
        spans = [u for u in network.unchained if lo < u <= last]
        if spans:
            lo = max(spans)
    else:
        j = last
        while j > lo and network.consumers(j - 1) == (j,):
            j -= 1
        lo = j
    return single_exit_lowest(network, last, lo)


def candidate_sizes(network: Network, last: int, rule: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate tile heights, widths, and the mask of allowed (height, width) pairs (square under legacy)."""
    q, p = network.layers[last].out_plane
    if rule == "legacy":
        sq = np.array(square_candidates(q, p))
        return sq, sq, np.eye(sq.size, dtype=bool)
    hs, ws = np.array(tile_size_candidates(q)), np.array(tile_size_candidates(p))
    return hs, ws, np.ones((hs.size, ws.size), dtype=bool)


def _term(ctx: _Context, plan: Plan, layer: int, role: Role) -> LayerTerm:
    key = (plan.last, layer, role)
    if key not in ctx.terms:
        unc, cached = role_grids(
            lambda v: ctx.grids.grid(layer, v, ctx.metric), ctx.network.layers[layer], role
        )
        ctx.terms[key] = plan.term(layer, unc, cached)
    return ctx.terms[key]


def _explain_missing(
    ctx: _Context, plan: Plan, first: int, flat: int, terms: list[tuple[int, Role, LayerTerm]]
) -> str:
    """One line on why a tiling needs a shape the table lacks."""
    r, c = divmod(flat, plan.w.n)
    th, tw = plan.tiling(flat)
    for layer, role, term in terms:
        if not term.missing.ravel()[flat]:
            continue
        hs = np.unique(plan.h.lengths(layer)[plan.h.walk.owner == r])
        ws = np.unique(plan.w.lengths(layer)[plan.w.walk.owner == c])
        for v, h, w in itertools.product((role.variant(False), role.dram_variant), hs, ws):
            if v is not None and np.isnan(ctx.grids.grid(layer, v, ctx.metric)[h, w]):
                name = ctx.network.layers[layer].name
                hint = ""
                if ctx.table.square_only and h != w:
                    hint = (
                        f" ({SQUARE_ONLY_HINT})"
                        if ctx.rule == "exact"
                        else f" (the tables hold only square tiles and {th}x{tw} tiles "
                        "leave a non-square remainder)"
                    )
                return (
                    f"stack {first}-{plan.last}, tile {th}x{tw}: no {v.value} entry for layer {layer} "
                    f"({name}) at {h}x{w}{hint}"
                )
    return f"stack {first}-{plan.last}, tile {th}x{tw}: a shape is missing from the tables"


def _note_skips(ctx: _Context, plan: Plan, st: StackArrays, allowed: np.ndarray, cap: Capacity) -> None:
    """Count the stack and its tilings in the stats, with a few examples of tilings skipped because a
    shape is missing or the activations (and forced weights) do not fit."""
    stats = ctx.stats
    stats.stacks_considered += 1
    stats.tilings_considered += int(allowed.sum())
    missing = allowed & st.missing
    over = allowed & ~st.missing & ~cap.fits
    stats.tilings_skipped_missing += int(missing.sum())
    stats.tilings_skipped_capacity += int(over.sum())
    examples = stats.skipped_examples
    if missing.any() and ctx.missing_examples < MAX_EXAMPLES:
        ctx.missing_examples += 1
        flat = int(np.flatnonzero(missing.ravel())[0])
        examples.append(_explain_missing(ctx, plan, st.first, flat, list(st.terms)))
    if over.any() and ctx.capacity_examples < MAX_EXAMPLES:
        ctx.capacity_examples += 1
        flat = int(np.flatnonzero(over.ravel())[0])
        th, tw = plan.tiling(flat)
        too_much = [
            f"{lv.name} needs {int(st.live[lv.name].ravel()[flat]):,} words > {int(lv.words):,}"
            for lv in ctx.levels
            if st.live[lv.name].ravel()[flat] > lv.words
        ]
        what = "activations alone" if not st.forced_words.ravel()[flat] else "activations and forced weights"
        examples.append(
            f"stack {st.first}-{st.last}, tile {th}x{tw}: "
            f"{'; '.join(too_much) or 'weights do not fit'} ({what})"
        )


def stack_plan(
    network: Network, last: int, lowest: int, rule: Rule, available=None
) -> tuple[Plan, np.ndarray]:
    """The Plan of every tiling of the stacks ending at ``last`` (first layer >= ``lowest``), and the
    mask of the (height, width) pairs the rule allows."""
    hs, ws, allowed = candidate_sizes(network, last, rule)
    return Plan(network, last, lowest, hs, ws, rule, available if rule == "legacy" else None), allowed


def _stacks_ending_at(ctx: _Context, last: int, lowest: int) -> list[StackChoice]:
    """The best tiling and caching of every multi-layer stack [j..last], lowest <= j < last (the
    feasible ones only), by the steps of ``stacks.py``."""
    plan, allowed = stack_plan(ctx.network, last, lowest, ctx.rule, ctx.available)

    def counted() -> None:
        ctx.stats.knapsacks_solved += 1

    choices: list[StackChoice] = []
    deepest = last
    for st in sweep_stacks(ctx.network, plan, ctx.levels, lambda l, role: _term(ctx, plan, l, role)):
        deepest = st.first
        cap = stack_capacity(st, ctx.levels)
        _note_skips(ctx, plan, st, allowed, cap)
        feasible = allowed & ~st.missing & cap.fits
        if not feasible.any():
            continue
        opts = caching_options(st, ctx.network, cap.headroom)
        best = best_tiling(st, ctx.network, feasible, cap, opts, counted)
        if best is not None:
            choices.append(StackChoice(st.first, last, best.value, plan.tiling(best.index), best.cached))
    # the sweep stops once no tiling's activations fit: the deeper stacks overflow as well
    skipped = deepest - lowest
    ctx.stats.stacks_considered += skipped
    ctx.stats.tilings_considered += skipped * int(allowed.sum())
    ctx.stats.tilings_skipped_capacity += skipped * int(allowed.sum())
    return choices


def forward_partition(
    n: int,
    single_cost: Callable[[int], float],
    stacks_ending_at: Callable[[int], Sequence[StackOption]],
) -> tuple[list[float], list[tuple[int, StackOption | None]]]:
    """The partition DP: ``best[i + 1] = min(best[i] + single_cost(i), min_j best[j] + cost(j..i))``
    over the options ``stacks_ending_at(i)`` (first layer descending), and the back pointers. Ties keep
    the earlier option: the single-layer stack, then the shorter stack (only a strictly lower value
    replaces)."""
    best = [0.0] + [math.inf] * n
    back: list[tuple[int, StackOption | None]] = [(0, None)] * (n + 1)
    for i in range(n):
        best[i + 1] = best[i] + single_cost(i)
        back[i + 1] = (i, None)
        for ch in stacks_ending_at(i):
            v = best[ch.first] + ch.value
            if v < best[i + 1]:
                best[i + 1] = v
                back[i + 1] = (ch.first, ch)
    return best, back


def partition(
    n: int,
    single_cost: Callable[[int], float],
    stacks_ending_at: Callable[[int], Sequence[StackOption]],
) -> list[tuple[int, int, StackOption | None]]:
    """Cheapest cover of layers 0..n-1 (in topological order) by contiguous stacks
    (``forward_partition``). Returns (first, last, option) per stack in order (None for a single-layer
    stack)."""
    _, back = forward_partition(n, single_cost, stacks_ending_at)
    out = []
    i = n
    while i > 0:
        first, ch = back[i]
        out.append((first, i - 1, ch))
        i = first
    return out[::-1]


def check_search(network: Network, max_stack_depth: int | None) -> None:
    """ValueError for a depth below 1."""
    if max_stack_depth is not None and max_stack_depth < 1:
        raise ValueError(f"max_stack_depth must be at least 1, got {max_stack_depth}")


def build_schedule(
    network: Network,
    table: CostTable,
    parts: Sequence[tuple[int, int, tuple[int, int] | None, tuple[int, ...]]],
    rule: Rule,
    levels: Sequence[LevelUse],
    metric: Metric,
) -> Schedule:
    """The Schedule of the chosen stacks: (first, last, tile shape (None: a single layer, its whole
    plane), cached layers) each, costed and checked by ``evaluation.build_stack``."""
    stacks = []
    for k, (first, last, tile_shape, cached) in enumerate(parts):
        shape = network.layers[first].out_plane if tile_shape is None else tile_shape
        stacks.append(build_stack(network, table, k, StackSpec(first, last, shape, cached), rule, levels))
    return assemble(network, table, stacks, rule, metric)


def optimize(
    network: Network,
    table: CostTable,
    capacity: CapacitySpec | None = None,
    rule: Rule = "exact",
    max_stack_depth: int | None = None,
    objective: Objective | str = ENERGY,
    progress: Progress | None = None,
) -> tuple[Schedule, SearchStats]:
    """The schedule that minimizes ``objective`` (energy, or cycles when the tables have cycles)
    within the tiling space of ``tiling.py``, and what the search looked at.

    ``capacity`` None: no capacity check (every layer with a positive saving is cached).
    ``rule``: "exact" (default) or "legacy" receptive field (``receptive.py``).
    ``max_stack_depth``: most layers per stack (None: unlimited). ``progress(done, total)`` is called
    as stacks are costed. Raises MissingCostError when a layer has no SLC entry for its whole plane.
    """
    _check_rule(rule)
    metric = search_metric(objective)
    if metric == "cycles" and not table.has_cycles:
        raise InputError(table.source, None, "the objective 'cycles' needs cycles for every cost-table entry")
    check_search(network, max_stack_depth)
    start = time.perf_counter()
    stats = SearchStats()
    ctx = _Context(
        network,
        table,
        CostGrids(network, table),
        rule,
        metric,
        capacity_levels(capacity),
        stats,
    )
    n = len(network)
    lowest = [lowest_first_layer(network, i, rule, max_stack_depth) for i in range(n)]
    total = sum(i - lowest[i] + 1 for i in range(n))
    done = 0

    def single(i: int) -> float:
        rec = _slc_record(network, table, i)
        return rec.energy_pJ if metric == "energy" else float(rec.cycles)  # type: ignore[arg-type]

    def ending_at(i: int) -> list[StackChoice]:
        nonlocal done
        choices = _stacks_ending_at(ctx, i, lowest[i]) if lowest[i] < i else []
        stats.stacks_considered += 1  # the single-layer stack
        done += i - lowest[i] + 1
        if progress is not None:
            progress(done, total)
        return choices

    parts = partition(n, single, ending_at)
    schedule = build_schedule(
        network,
        table,
        [
            (f, l, None if ch is None else ch.tile_shape, () if ch is None else ch.cached_layers)
            for f, l, ch in parts
        ],
        rule,
        ctx.levels,
        metric,
    )
    stats.elapsed_s = time.perf_counter() - start
    return schedule, stats
