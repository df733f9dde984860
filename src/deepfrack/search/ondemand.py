"""On-demand search: cost only the entries that can still change the optimum (docs/search.md).

``optimize_on_demand(network, source, ...)`` returns exactly the schedule ``optimize`` returns on a table
of every entry it may look up (``required_shapes``): the same stacks, tilings, cached layers and
values. It asks its ``CostSource`` for lower bounds of every entry (cheap) and for exact entries only
as it needs them:

* **Optimistic values.** A tiling's value is exact when every entry it uses is known (costed), and
  otherwise a lower bound: per layer, the top-left tile's uncached bound plus, for every later tile, the
  smaller of its uncached and cached bounds (whatever is cached; the uncached one alone when the layer's
  weights cannot fit beside the activations), with exact values where known. A stack's optimistic
  value is the smaller of its best exact tiling (``stacks.best_tiling``, the exhaustive search's own
  step) and its open tilings' bounds; it is **settled** when no open tiling can beat or tie its best
  exact tiling under the canonical tie rule (lowest value, then lowest flat tiling index).
* **Partition.** The partition DP (``optimizer.partition``'s recurrence and tie rule) runs on
  the optimistic values. When every stack of the optimum it finds (and every single layer, SLC) is
  exact, that optimum is the exhaustive one: every other option's value is at least its optimistic
  one, and the exhaustive DP prefers the same options on ties.
* **What to cost next.** Otherwise every open tiling, and every unknown single-layer entry, gets the
  lowest total any partition through it can have (prefix optimum + its bound + suffix optimum); the
  entries of the lowest ones are costed next, a batch big enough to keep the source's workers busy
  (the optimum's own open tilings always first). For each (layer, h, w) asked, every variant of it that
  the search may use is asked at once: a mapper maps all the variants of a tile in one search.
* Tilings whose activations alone overflow an on-chip level are never costed.

Only the exact receptive-field rule is searched on demand (the legacy rule needs a finished table).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostKey, CostTable
from deepfrack.objective import ENERGY, Objective
from deepfrack.residency import Variant
from deepfrack.search.costs import LevelUse, Metric, capacity_levels, role_grids, search_metric
from deepfrack.search.evaluation import _slc_record
from deepfrack.search.graph import Role, layer_role
from deepfrack.search.optimizer import (
    build_schedule,
    check_search,
    forward_partition,
    lowest_first_layer,
    stack_plan,
)
from deepfrack.search.plan import LayerTerm, Plan
from deepfrack.search.required import NeededGrids, needed_grids
from deepfrack.search.schedule import Schedule, SearchStats
from deepfrack.search.source import CostSource
from deepfrack.search.stacks import (
    StackArrays,
    TilingChoice,
    best_tiling,
    caching_options,
    stack_capacity,
    sweep_live,
    sweep_stacks,
)
from deepfrack.workload.layer import Network

Progress = Callable[[int, int], None]


@dataclass
class OnDemandStats(SearchStats):
    """What the on-demand search looked at and asked for: ``entries_requested`` (distinct entries asked
    of the source), ``entries_computed`` (of those, the ones the source had to compute: not cached),
    ``tilings_resolved`` (tilings whose entries were all known at the end), ``rounds`` (batches), and
    ``table``: every entry costed (what the schedule's stacks and the baseline use)."""

    entries_requested: int = 0
    entries_computed: int = 0
    tilings_resolved: int = 0
    rounds: int = 0
    table: CostTable = field(default_factory=CostTable)


#: (layer, h, w): one mapper search, all variants of the tile
Task = tuple[int, int, int]
#: tasks per worker in the first batch; later batches grow by GROWTH up to MAX_TASKS per worker
FIRST_TASKS, GROWTH, MAX_TASKS = 8, 1.5, 64
#: tiles of work ahead per round, as a share of the batch (the next options in the frontier's order)
AHEAD = 0.5


# --------------------------------------------------------------------------------------------- #
# the entries known so far
# --------------------------------------------------------------------------------------------- #
class KnownEntries:
    """The entries costed so far as dense grids per (layer, variant): ``exact`` (NaN where unknown or
    absent, as ``CostGrids``), ``known`` (costed, present or not) and ``optimistic`` (exact where known,
    +inf where absent, the source's bound elsewhere); ``version`` counts the updates of each grid."""

    def __init__(self, network: Network, source: CostSource, metric: Metric):
        self.network = network
        self.source = source
        self.metric = metric
        self.table = CostTable(source="on-demand")
        self._exact: dict[tuple[int, Variant], np.ndarray] = {}
        self._known: dict[tuple[int, Variant], np.ndarray] = {}
        self._opt: dict[tuple[int, Variant], np.ndarray] = {}
        self.version: dict[tuple[int, Variant], int] = {}

    def _init(self, key: tuple[int, Variant]) -> None:
        if key in self._exact:
            return
        q, p = self.network.layers[key[0]].out_plane
        self._exact[key] = np.full((q + 1, p + 1), np.nan)
        self._known[key] = np.zeros((q + 1, p + 1), dtype=bool)
        bound = np.asarray(self.source.bounds(key[0], key[1], self.metric), dtype=float)
        self._opt[key] = bound.copy()
        self.version[key] = 0

    def exact(self, layer: int, variant: Variant) -> np.ndarray:
        self._init((layer, variant))
        return self._exact[(layer, variant)]

    def known(self, layer: int, variant: Variant) -> np.ndarray:
        self._init((layer, variant))
        return self._known[(layer, variant)]

    def optimistic(self, layer: int, variant: Variant) -> np.ndarray:
        self._init((layer, variant))
        return self._opt[(layer, variant)]

    def add(self, costed: CostTable, asked: list[CostKey]) -> set[int]:
        """Record the answers to ``asked``; returns the layers whose grids changed."""
        changed: set[int] = set()
        for key in asked:
            l, v, h, w = key
            self._init((l, v))
            rec = costed.records.get(key)
            if rec is not None:
                self.table.records[key] = rec
                value = rec.energy_pJ if self.metric == "energy" else rec.cycles
                value = math.nan if value is None else float(value)
            else:
                self.table.infeasible.add(key)
                if key in costed.reasons:
                    self.table.reasons[key] = costed.reasons[key]
                value = math.nan
            self._exact[(l, v)][h, w] = value
            self._known[(l, v)][h, w] = True
            self._opt[(l, v)][h, w] = math.inf if math.isnan(value) else value
            self.version[(l, v)] += 1
            changed.add(l)
        return changed


# --------------------------------------------------------------------------------------------- #
# per layer at a position: exact term, what is known, lower bounds
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class TermState:
    """One layer in one role in the stacks ending at a last layer, over the Plan's tilings:
    ``exact`` (valid where the entries are known), ``unc_known`` / ``cac_known`` (every shape the
    tiling needs is costed under the uncached / cached variant), ``lb_unc`` (bound, every tile
    uncached) and ``lb_any`` (bound whatever is cached; None without weights)."""

    versions: tuple[int, ...]
    exact: LayerTerm
    unc_known: np.ndarray
    cac_known: np.ndarray | None
    lb_unc: np.ndarray
    lb_any: np.ndarray | None


def _bound_sums(plan: Plan, layer: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum over every tile, the top-left tile's value) of an optimistic grid, +inf where a tile is +inf."""
    total, n_inf, top_left = plan.cost_sums(layer, np.where(np.isinf(grid), np.nan, grid))
    total = np.where(n_inf > 0.5, math.inf, total)
    return total, np.where(np.isnan(top_left), math.inf, top_left)


def role_lookups(network: Network, layer: int, role: Role) -> tuple[Variant, ...]:
    """The variants a layer's term in ``role`` reads: its uncached entry, a mixed join's DRAM-input
    entry, and its cached entry when it can be cached."""
    cached = role.cached_variant(network.layers[layer].has_weights)
    return tuple(v for v in (role.variant(False), role.dram_variant, cached) if v is not None)


def term_state(
    known: KnownEntries, plan: Plan, layer: int, role: Role, versions: tuple[int, ...]
) -> TermState:
    lay = known.network.layers[layer]
    unc_exact, cac_exact = role_grids(lambda v: known.exact(layer, v), lay, role)
    exact = plan.term(layer, unc_exact, cac_exact)

    def all_known(variants) -> np.ndarray:
        unknown = np.logical_or.reduce([~known.known(layer, v) for v in variants])
        return plan.class_sum(layer, unknown.astype(float)) < 0.5

    unc_opt, cac_opt = role_grids(lambda v: known.optimistic(layer, v), lay, role)
    unc_known = all_known([v for v in (role.variant(False), role.dram_variant) if v is not None])
    lb_unc, top_left = _bound_sums(plan, layer, unc_opt)
    cac_v = role.cached_variant(lay.has_weights)
    if cac_v is None or cac_opt is None:
        return TermState(versions, exact, unc_known, None, lb_unc, None)
    cac_known = all_known([cac_v])
    low = np.minimum(unc_opt, cac_opt)
    low_total, low_top_left = _bound_sums(plan, layer, low)
    with np.errstate(invalid="ignore"):  # inf - inf: that tile is +inf anyway
        later = np.where(np.isinf(low_total), math.inf, low_total - low_top_left)
    return TermState(versions, exact, unc_known, cac_known, lb_unc, top_left + later)


# --------------------------------------------------------------------------------------------- #
# the stacks ending at one layer
# --------------------------------------------------------------------------------------------- #
@dataclass
class StackState:
    """One stack [first..last]: optimistic ``value``, whether it is ``settled`` (exact), its best exact
    tiling (``choice``, None when none is known), and its ``open`` tilings (flat indices) with their
    bounds, as the frontier needs them."""

    first: int
    last: int
    value: float
    settled: bool
    choice: TilingChoice | None
    open: np.ndarray
    open_bounds: np.ndarray
    headroom: np.ndarray
    resolved: int = 0
    allowed: int = 0
    over: int = 0


class LastLayer:
    """Every stack ending at ``last``: the Plan of its tilings, the layers' term states (recomputed when
    their entries change), and the stacks' states."""

    def __init__(self, network: Network, last: int, lowest: int, levels: tuple[LevelUse, ...]):
        self.network = network
        self.last = last
        self.lowest = lowest
        self.levels = levels
        self.plan, self.allowed = stack_plan(network, last, lowest, "exact")
        self.live = list(sweep_live(network, self.plan, levels))  # the same whatever the entries
        self.terms: dict[tuple[int, Role], TermState] = {}
        self.stacks: list[StackState] = []

    def _term(self, known: KnownEntries, layer: int, role: Role) -> TermState:
        variants = role_lookups(self.network, layer, role)
        for v in variants:
            known.exact(layer, v)  # the grids exist (and have a version) from here on
        versions = tuple(known.version[(layer, v)] for v in variants)
        got = self.terms.get((layer, role))
        if got is None or got.versions != versions:
            got = self.terms[(layer, role)] = term_state(known, self.plan, layer, role, versions)
        return got

    def evaluate(self, known: KnownEntries, stats: OnDemandStats) -> None:
        """Recompute every stack's state from the entries known now."""
        self.stacks = []
        term_of = lambda l, role: self._term(known, l, role).exact  # noqa: E731
        for st in sweep_stacks(self.network, self.plan, self.levels, term_of, self.live):
            self.stacks.append(self._stack(known, st, stats))

    def _stack(self, known: KnownEntries, st: StackArrays, stats: OnDemandStats) -> StackState:
        cap = stack_capacity(st, self.levels)
        candidates = self.allowed & cap.activations_fit
        resolved = candidates.copy()
        bound = np.zeros(st.unc.shape)
        for layer, role, _ in st.terms:
            ts = self._term(known, layer, role)
            weights = self.network.layers[layer].weights
            if ts.lb_any is None:
                resolved &= ts.unc_known
                bound = bound + ts.lb_unc
                continue
            cacheable = cap.headroom >= weights
            resolved &= ts.unc_known & (ts.cac_known | ~cacheable)  # type: ignore[operator]
            bound = bound + np.where(cacheable, ts.lb_any, ts.lb_unc)
        feasible = resolved & ~st.missing & cap.fits
        choice = None
        if feasible.any():
            opts = caching_options(st, self.network, cap.headroom)

            def counted() -> None:
                stats.knapsacks_solved += 1

            choice = best_tiling(st, self.network, feasible, cap, opts, counted)
        flat = np.arange(bound.size)
        b = bound.ravel()
        open_mask = (candidates & ~resolved).ravel() & np.isfinite(b)
        if choice is not None:
            open_mask &= (b < choice.value) | ((b == choice.value) & (flat < choice.index))
        idx = np.flatnonzero(open_mask)
        best = choice.value if choice is not None else math.inf
        value = min(best, float(b[idx].min())) if idx.size else best
        return StackState(
            st.first,
            st.last,
            value,
            idx.size == 0,
            choice,
            idx,
            b[idx],
            cap.headroom.ravel(),
            int(resolved.sum()),
            int(self.allowed.sum()),
            int((self.allowed & ~cap.activations_fit).sum()),
        )

    def tasks(self, known: KnownEntries, stack: StackState, flat: int) -> list[tuple[int, Variant, int, int]]:
        """The unknown entries (layer, variant, h, w) tiling ``flat`` of ``stack`` needs."""
        r, c = divmod(int(flat), self.plan.w.n)
        out = []
        for layer in range(stack.first, self.last + 1):
            role = layer_role(self.network, layer, stack.first, self.last)
            lay = self.network.layers[layer]
            variants = [v for v in (role.variant(False), role.dram_variant) if v is not None]
            cac_v = role.cached_variant(lay.has_weights)
            if cac_v is not None and stack.headroom[flat] >= lay.weights:
                variants.append(cac_v)
            lh, nh = self.plan.h.classes(layer)
            lw, nw = self.plan.w.classes(layer)
            heights, widths = lh[r][nh[r] > 0], lw[c][nw[c] > 0]
            for v in variants:
                grid = known.known(layer, v)
                for h in heights.tolist():
                    for w in widths.tolist():
                        if not grid[h, w]:
                            out.append((layer, v, h, w))
        return out


# --------------------------------------------------------------------------------------------- #
# the partition over optimistic values
# --------------------------------------------------------------------------------------------- #
@dataclass
class Partition:
    """Forward DP (``best``, back pointers), the suffix optimum ``rest[i]`` (layers i..n-1), and the
    optimum's options: (first, last, StackState or None for a single layer)."""

    best: list[float]
    rest: list[float]
    path: list[tuple[int, int, StackState | None]]


def solve_partition(n: int, single: list[float], stacks: dict[int, list[StackState]]) -> Partition:
    """``optimizer.forward_partition`` (its recurrence and tie rule) on optimistic values, the suffix
    optima, and the optimum's options."""
    best, back = forward_partition(n, single.__getitem__, lambda i: stacks.get(i, []))
    starting: dict[int, list[StackState]] = {}
    for sts in stacks.values():
        for st in sts:
            if math.isfinite(st.value):
                starting.setdefault(st.first, []).append(st)
    rest = [math.inf] * n + [0.0]
    for i in range(n - 1, -1, -1):
        through = [st.value + rest[st.last + 1] for st in starting.get(i, [])]
        rest[i] = min([single[i] + rest[i + 1], *through])
    path = []
    i = n
    while i > 0:
        first, st = back[i]
        path.append((first, i - 1, st))
        i = first
    return Partition(best, rest, path[::-1])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- #
# the search
# --------------------------------------------------------------------------------------------- #
@dataclass
class OnDemandSearch:
    network: Network
    source: CostSource
    levels: tuple[LevelUse, ...]
    metric: Metric
    max_stack_depth: int | None
    needed: NeededGrids
    stats: OnDemandStats = field(default_factory=OnDemandStats)

    def __post_init__(self) -> None:
        self.known = KnownEntries(self.network, self.source, self.metric)
        n = len(self.network)
        self.lasts = {}
        for i in range(n):
            lowest = lowest_first_layer(self.network, i, "exact", self.max_stack_depth)
            if lowest < i:
                self.lasts[i] = LastLayer(self.network, i, lowest, self.levels)
        self.dirty = set(self.lasts)
        self.batch_tasks = FIRST_TASKS * max(1, self.source.parallelism)

    # ---- costing --------------------------------------------------------------------------------
    def _keys(self, tasks: list[Task]) -> list[CostKey]:
        """The unknown entries of the tasks' tiles: every variant the search may use (``needed_grids``)."""
        keys: list[CostKey] = []
        for l, h, w in tasks:
            for v in Variant:
                grid = self.needed.get((l, v))
                if grid is not None and grid[h, w] and not self.known.known(l, v)[h, w]:
                    keys.append((l, v, h, w))
        return keys

    def request(self, tasks: list[Task], ahead: list[Task] | None = None) -> None:
        """Cost every variant the search may use of each task's tile. ``ahead``: tiles likely to be
        asked for next, given to a source that can compute them on idle workers meanwhile (they stay
        unknown to the search until it asks: what it decides never depends on them)."""
        keys = self._keys(tasks)
        if not keys:
            return
        if ahead and getattr(self.source, "works_ahead", False):
            costed = self.source.cost(keys, ahead=self._keys(ahead))  # type: ignore[call-arg]
        else:
            costed = self.source.cost(keys)
        changed = self.known.add(costed, keys)
        self.stats.entries_requested += len(keys)
        for e, ll in self.lasts.items():
            if any(ll.lowest <= l <= e for l in changed):
                self.dirty.add(e)

    def single_values(self) -> tuple[list[float], list[bool]]:
        values, exact = [], []
        for i, lay in enumerate(self.network.layers):
            q, p = lay.out_plane
            values.append(float(self.known.optimistic(i, Variant.SLC)[q, p]))
            exact.append(bool(self.known.known(i, Variant.SLC)[q, p]))
        return values, exact

    def evaluate(self) -> dict[int, list[StackState]]:
        for e in sorted(self.dirty):
            self.lasts[e].evaluate(self.known, self.stats)
        self.dirty.clear()
        return {e: ll.stacks for e, ll in self.lasts.items()}

    # ---- the frontier ---------------------------------------------------------------------------
    def frontier(
        self, part: Partition, single: list[float], single_exact: list[bool]
    ) -> tuple[list[Task], list[Task]]:
        """The tiles (layer, h, w) to cost next: the unknown entries of the open options with the lowest
        total of a partition through them (prefix optimum + bound + suffix optimum). Every option as good
        as the optimistic optimum (the optimum's own) is taken, then more until the batch is full; and
        the tiles of the next options (up to half a batch), as work ahead for idle workers."""
        options: list[tuple[float, int, int, int]] = []  # (total, last layer or -1 for SLC, index, flat)
        for i, ok in enumerate(single_exact):
            if not ok and math.isfinite(single[i]):
                options.append((part.best[i] + single[i] + part.rest[i + 1], -1, i, -1))
        for e, ll in self.lasts.items():
            for s, st in enumerate(ll.stacks):
                if st.open.size:
                    totals = part.best[st.first] + st.open_bounds + part.rest[e + 1]
                    for j in np.argsort(totals, kind="stable")[: self.batch_tasks]:
                        options.append((float(totals[j]), e, s, int(st.open[j])))
        options.sort()
        optimum = part.best[-1]
        tasks: dict[Task, None] = {}
        ahead: dict[Task, None] = {}
        for total, e, s, flat in options:
            into = tasks
            if len(tasks) >= self.batch_tasks and total > optimum * (1 + 1e-9):
                if len(ahead) >= AHEAD * self.batch_tasks:
                    break
                into = ahead
            if e == -1:
                into[(s, *self.network.layers[s].out_plane)] = None
                continue
            ll = self.lasts[e]
            for l, _, h, w in ll.tasks(self.known, ll.stacks[s], flat):
                into[(l, h, w)] = None
        return list(tasks), [t for t in ahead if t not in tasks]

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, progress: Progress | None = None) -> Partition:
        n = len(self.network)
        # every layer's SLC entry first: the single-layer stacks and the layer-by-layer baseline
        self.request([(i, *lay.out_plane) for i, lay in enumerate(self.network.layers)])
        for i in range(n):
            _slc_record(self.network, self.known.table, i)  # MissingCostError when a layer has none
        while True:
            single, single_exact = self.single_values()
            part = solve_partition(n, single, self.evaluate())
            self.stats.rounds += 1
            if progress is not None:
                progress(self.stats.rounds, self.stats.entries_requested)
            if all(single_exact[first] if st is None else st.settled for first, _, st in part.path):
                return part
            tasks, ahead = self.frontier(part, single, single_exact)
            if not tasks:  # pragma: no cover - an open option always has an unknown entry
                raise RuntimeError("the on-demand search made no progress")
            self.request(tasks, ahead)
            self.batch_tasks = min(
                int(self.batch_tasks * GROWTH), MAX_TASKS * max(1, self.source.parallelism)
            )


def optimize_on_demand(
    network: Network,
    source: CostSource,
    capacity: CapacitySpec | None = None,
    rule: str = "exact",
    max_stack_depth: int | None = None,
    objective: Objective | str = ENERGY,
    progress: Progress | None = None,
) -> tuple[Schedule, SearchStats]:
    """The schedule ``optimize`` finds on a table of every entry it may look up, costing entries from
    ``source`` only as they are needed (module docstring). Returns the schedule, whose ``table`` of
    costed entries is in ``stats`` (``SearchStats.entries_requested`` and friends)."""
    if rule != "exact":
        raise ValueError("the on-demand search uses the exact receptive-field rule; use optimize for legacy")
    metric = search_metric(objective)
    check_search(network, max_stack_depth)
    start = time.perf_counter()
    levels = capacity_levels(capacity)
    needed = needed_grids(network, max_stack_depth, capacity)
    search = OnDemandSearch(network, source, levels, metric, max_stack_depth, needed)
    part = search.run(progress)
    table = search.known.table
    chosen = [
        (first, last, None, ())
        if st is None or st.choice is None
        else (first, last, search.lasts[last].plan.tiling(st.choice.index), st.choice.cached)
        for first, last, st in part.path
    ]
    schedule = build_schedule(network, table, chosen, "exact", levels, metric)
    stats = search.stats
    stats.table = table
    stats.entries_computed = getattr(getattr(source, "stats", None), "computed", stats.entries_requested)
    final = [st for ll in search.lasts.values() for st in ll.stacks]
    stats.tilings_resolved = sum(st.resolved for st in final)
    stats.stacks_considered = len(final) + len(network)
    stats.tilings_considered = sum(st.allowed for st in final)
    stats.tilings_skipped_capacity = sum(st.over for st in final)
    stats.elapsed_s = time.perf_counter() - start
    return schedule, stats
