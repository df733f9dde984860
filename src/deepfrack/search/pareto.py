"""The exact Pareto front of (energy, cycles) over every schedule of the search space (docs/search.md,
"Energy and cycles together").

The search space is the optimizer's: partitions into stacks (single exit on a graph), every tiling of
``tiling.py`` and every caching subset that fits. Both metrics add up over stacks, so the front is a
dynamic program over the layer order, as the optimizer's partition, carrying sets instead of numbers:

* **Per stack**: the non-dominated (energy, cycles) options over its (tiling, caching) pairs. Each
  tiling is costed by the optimizer's own steps (``stacks.py``) once per metric; its caching choice is
  a two-objective 0/1 knapsack (``knapsack.knapsack_front``) solved by a dominance-pruned dynamic
  program over the layers, never by enumerating subsets. A tiling is skipped when its ideal point
  (every gain taken in each metric at once) is already weakly dominated by an option found.
* **Partition**: ``front[i + 1]`` = the non-dominated points of ``front[i]`` plus layer i alone (SLC)
  and of ``front[j]`` plus each option of the stack ``j..i``, with back pointers, so every point's
  schedule can be rebuilt.

Points that reach the same (energy, cycles) are one point (one schedule kept). ``epsilon`` > 0 bounds
the front's size: each prefix front is thinned so that every point dropped is within a factor
``(1 + epsilon) ** (1 / layers)`` in both metrics of a point kept; errors do not grow through sums, so
every point of the exact front is within a factor ``1 + epsilon`` in both metrics of a point of the
thinned one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostTable
from deepfrack.errors import InputError
from deepfrack.objective import Objective
from deepfrack.search.costs import CostGrids, capacity_levels
from deepfrack.search.evaluation import _check_rule, _slc_record
from deepfrack.search.knapsack import knapsack_front
from deepfrack.search.optimizer import (
    Progress,
    _Context,
    _note_skips,
    _term,
    build_schedule,
    check_search,
    lowest_first_layer,
    stack_plan,
)
from deepfrack.search.receptive import Rule
from deepfrack.search.schedule import Schedule, SearchStats
from deepfrack.search.stacks import (
    Capacity,
    StackArrays,
    caching_options,
    stack_capacity,
    sweep_live,
    sweep_stacks,
)
from deepfrack.workload.layer import Network

#: (first, last, tile shape (None: a single layer on its whole plane), cached layers)
Part = tuple[int, int, tuple[int, int] | None, tuple[int, ...]]


@dataclass(frozen=True)
class FrontPoint:
    """One point of the front: its total energy (pJ) and cycles, and the schedule that reaches it."""

    energy_pJ: float
    cycles: float
    parts: tuple[Part, ...]

    @property
    def edp(self) -> float:
        return self.energy_pJ * self.cycles


@dataclass(frozen=True)
class _Options:
    """Non-dominated options of one stack: energy, cycles (1-D, energy ascending) and their parts."""

    energy: np.ndarray
    cycles: np.ndarray
    parts: tuple[Part, ...]


def nondominated(energy: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Indices of the points no other point weakly dominates (at most the energy and the cycles), one
    of each set of equal points (the first), in ascending energy (descending cycles)."""
    order = np.lexsort((cycles, energy))
    c = cycles[order]
    prev_min = np.minimum.accumulate(np.concatenate(([np.inf], c[:-1])))
    return order[c < prev_min]


def _covered(front_e: np.ndarray, front_c: np.ndarray, e: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Which points (e, c) a point of a front (energy ascending, cycles descending) weakly dominates."""
    if front_e.size == 0:
        return np.zeros(e.shape, dtype=bool)
    k = np.searchsorted(front_e, e, side="right") - 1
    return (k >= 0) & (front_c[np.maximum(k, 0)] <= c)


def _thin(energy: np.ndarray, cycles: np.ndarray, factor: float) -> np.ndarray:
    """Indices into a front (energy ascending, cycles descending) of points kept so that every point
    dropped has a kept point with at most its energy and at most ``factor`` x its cycles."""
    keep = [0]
    for k in range(1, energy.size):
        if cycles[keep[-1]] > factor * cycles[k]:
            keep.append(k)
    return np.array(keep, dtype=np.int64)


def _stack_options(
    ctx_e: _Context, ctx_c: _Context, network: Network, last: int, lowest: int
) -> list[tuple[int, _Options]]:
    """(first layer, non-dominated options) of every multi-layer stack [j..last], lowest <= j < last,
    that has a feasible tiling."""
    plan, allowed = stack_plan(network, last, lowest, ctx_e.rule, ctx_e.available)
    live = list(sweep_live(network, plan, ctx_e.levels))
    out: list[tuple[int, _Options]] = []
    weights_of = [lay.weights for lay in network.layers]
    sweep_e = sweep_stacks(network, plan, ctx_e.levels, lambda l, r: _term(ctx_e, plan, l, r), live)
    sweep_c = sweep_stacks(network, plan, ctx_c.levels, lambda l, r: _term(ctx_c, plan, l, r), live)
    deepest = last
    for st_e, st_c in zip(sweep_e, sweep_c):
        deepest = st_e.first
        cap = stack_capacity(st_e, ctx_e.levels)
        _note_skips(ctx_e, plan, st_e, allowed, cap)
        feasible = allowed & ~(st_e.missing | st_c.missing) & cap.fits
        if not feasible.any():
            continue
        opts = _tiling_fronts(st_e, st_c, network, feasible, cap, plan.tiling, weights_of, ctx_e.stats)
        out.append((st_e.first, opts))
    skipped = deepest - lowest  # stacks deeper than the sweep went overflow as well (optimizer.py)
    stats = ctx_e.stats
    stats.stacks_considered += skipped
    stats.tilings_considered += skipped * int(allowed.sum())
    stats.tilings_skipped_capacity += skipped * int(allowed.sum())
    return out


def _tiling_fronts(
    st_e: StackArrays,
    st_c: StackArrays,
    network: Network,
    feasible: np.ndarray,
    cap: Capacity,
    tiling_of: Callable[[int], tuple[int, int]],
    weights_of: Sequence[int],
    stats: SearchStats,
) -> _Options:
    """The non-dominated (tiling, caching) options of one stack over its feasible tilings."""
    opt_e = caching_options(st_e, network, cap.headroom)
    opt_c = caching_options(st_c, network, cap.headroom)
    idx = np.flatnonzero(feasible.ravel())
    unc_e, unc_c = st_e.unc.ravel()[idx], st_c.unc.ravel()[idx]
    gains_e = np.stack([b.ravel()[idx] for b in opt_e.benefits])  # (layers, tilings)
    gains_c = np.stack([b.ravel()[idx] for b in opt_c.benefits])
    usable = np.isfinite(gains_e) & np.isfinite(gains_c)
    ideal_e = unc_e - np.where(usable, np.maximum(gains_e, 0.0), 0.0).sum(axis=0)
    ideal_c = unc_c - np.where(usable, np.maximum(gains_c, 0.0), 0.0).sum(axis=0)
    # every tiling uncached is an option: its front bounds which tilings can add anything
    base = nondominated(unc_e, unc_c)
    front_e, front_c = unc_e[base], unc_c[base]
    kcap = cap.kcap.ravel()[idx]
    layers = [layer for layer, _, _ in st_e.terms]
    weights = [weights_of[layer] for layer in layers]
    forced = np.stack([term.forced.ravel()[idx] for _, _, term in st_e.terms])
    pts_e: list[float] = []
    pts_c: list[float] = []
    pts_k: list[tuple[int, tuple[int, ...]]] = []
    order = np.lexsort((ideal_c, ideal_e))
    for pos in order:
        if _covered(front_e, front_c, ideal_e[pos : pos + 1], ideal_c[pos : pos + 1])[0]:
            continue  # nothing this tiling can reach is better than an option found
        gains = [
            (float(gains_e[m, pos]), float(gains_c[m, pos])) if usable[m, pos] else (-math.inf, -math.inf)
            for m in range(len(layers))
        ]
        stats.knapsacks_solved += 1
        for ge, gc, chosen in knapsack_front(weights, gains, float(kcap[pos])):
            pts_e.append(float(unc_e[pos] - ge))
            pts_c.append(float(unc_c[pos] - gc))
            pts_k.append((int(pos), tuple(layers[m] for m in chosen)))
        keep = nondominated(np.array(pts_e), np.array(pts_c))
        pts_e, pts_c, pts_k = [pts_e[k] for k in keep], [pts_c[k] for k in keep], [pts_k[k] for k in keep]
        front_e, front_c = _merge(front_e, front_c, np.array(pts_e), np.array(pts_c))
    # the options: every knapsack point and every uncached tiling, non-dominated
    all_e = np.concatenate([np.array(pts_e), unc_e[base]])
    all_c = np.concatenate([np.array(pts_c), unc_c[base]])
    refs = [*pts_k, *((int(p), ()) for p in base)]
    keep = nondominated(all_e, all_c)
    parts = []
    for k in keep:
        pos, chosen = refs[k]
        flat = int(idx[pos])
        cached = set(chosen) | {layers[m] for m in range(len(layers)) if forced[m, pos]}
        parts.append((st_e.first, st_e.last, tiling_of(flat), tuple(sorted(cached))))
    return _Options(all_e[keep], all_c[keep], tuple(parts))


def _merge(
    a_e: np.ndarray, a_c: np.ndarray, b_e: np.ndarray, b_c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    e, c = np.concatenate([a_e, b_e]), np.concatenate([a_c, b_c])
    keep = nondominated(e, c)
    return e[keep], c[keep]


def _check_table(table: CostTable) -> None:
    if not table.has_cycles:
        raise InputError(
            table.source,
            None,
            "energy and cycles together (the objectives 'cycles' and 'edp', --pareto, budgets) need "
            "cycles for every cost-table entry",
        )


def pareto_front(
    network: Network,
    table: CostTable,
    capacity: CapacitySpec | None = None,
    rule: Rule = "exact",
    max_stack_depth: int | None = None,
    epsilon: float = 0.0,
    progress: Progress | None = None,
) -> tuple[list[FrontPoint], SearchStats]:
    """The Pareto front of (energy, cycles) over every schedule ``optimize`` may choose from, energy
    ascending, each point with one schedule that reaches it (module docstring); ``epsilon`` > 0 thins
    it (every exact point within a factor 1 + epsilon in both metrics of a point kept). The points'
    values are the dynamic program's sums; ``front_schedules`` costs their schedules by ``evaluate``'s
    rules. InputError when the tables lack cycles."""
    _check_rule(rule)
    check_search(network, max_stack_depth)
    if not epsilon >= 0 or not math.isfinite(epsilon):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon}")
    _check_table(table)
    start = time.perf_counter()
    stats = SearchStats()
    grids = CostGrids(network, table)
    levels = capacity_levels(capacity)
    ctx_e = _Context(network, table, grids, rule, "energy", levels, stats)
    ctx_c = _Context(network, table, grids, rule, "cycles", levels, SearchStats())
    n = len(network)
    factor = (1.0 + epsilon) ** (1.0 / max(n, 1))
    lowest = [lowest_first_layer(network, i, rule, max_stack_depth) for i in range(n)]
    total = sum(i - lowest[i] + 1 for i in range(n))
    done = 0
    # prefix fronts: energy, cycles, and per point where it comes from (previous prefix, index there,
    # the stack's part)
    fe: list[np.ndarray] = [np.zeros(1)]
    fc: list[np.ndarray] = [np.zeros(1)]
    back: list[tuple[np.ndarray, np.ndarray, list[Part]]] = [
        (np.zeros(1, np.int64), np.zeros(1, np.int64), [])
    ]
    for i in range(n):
        rec = _slc_record(network, table, i)
        single: Part = (i, i, None, ())
        sources = [(i, np.array([rec.energy_pJ]), np.array([float(rec.cycles)]), (single,))]  # type: ignore[arg-type]
        if lowest[i] < i:
            for first, opts in _stack_options(ctx_e, ctx_c, network, i, lowest[i]):
                sources.append((first, opts.energy, opts.cycles, opts.parts))
        stats.stacks_considered += 1  # the single-layer stack
        cand_e, cand_c, prev, at, part_of = [], [], [], [], []
        parts_all: list[Part] = []
        for j, oe, oc, parts in sources:
            cand_e.append((fe[j][:, None] + oe[None, :]).ravel())
            cand_c.append((fc[j][:, None] + oc[None, :]).ravel())
            prev.append(np.full(fe[j].size * oe.size, j, dtype=np.int64))
            at.append(np.repeat(np.arange(fe[j].size), oe.size))
            part_of.append(np.tile(np.arange(oe.size), fe[j].size) + len(parts_all))
            parts_all.extend(parts)
        e, c = np.concatenate(cand_e), np.concatenate(cand_c)
        keep = nondominated(e, c)
        if factor > 1.0:
            keep = keep[_thin(e[keep], c[keep], factor)]
        fe.append(e[keep])
        fc.append(c[keep])
        part_idx = np.concatenate(part_of)[keep]
        back.append((np.concatenate(prev)[keep], np.concatenate(at)[keep], [parts_all[k] for k in part_idx]))
        done += i - lowest[i] + 1
        if progress is not None:
            progress(done, total)
    points = []
    for k in range(fe[n].size):
        chain: list[Part] = []
        i, a = n, k
        while i > 0:
            prev_i, prev_a, parts_i = back[i]
            chain.append(parts_i[a])
            i, a = int(prev_i[a]), int(prev_a[a])
        points.append(FrontPoint(float(fe[n][k]), float(fc[n][k]), tuple(chain[::-1])))
    stats.elapsed_s = time.perf_counter() - start
    return points, stats


def front_schedules(
    network: Network,
    table: CostTable,
    points: Sequence[FrontPoint],
    capacity: CapacitySpec | None = None,
    rule: Rule = "exact",
    objective: Objective | str = "energy",
) -> list[Schedule]:
    """The schedule of every point, costed and checked by ``evaluate``'s rules (``build_schedule``)."""
    levels = capacity_levels(capacity)
    name = Objective.parse(objective).name
    return [build_schedule(network, table, p.parts, rule, levels, name) for p in points]  # type: ignore[arg-type]


@dataclass(frozen=True)
class Choice:
    """The point of a front an objective and budgets pick: its index; ``met`` False when no point
    meets the budgets (``index`` is then the closest point: the least relative excess over them)."""

    index: int
    met: bool


def choose(
    energy: Sequence[float],
    cycles: Sequence[float],
    objective: Objective | str,
    max_cycles: float | None = None,
    max_energy: float | None = None,
) -> Choice:
    """The best point by ``objective`` (lexicographic; ties: the lower index) among the points within
    both budgets (None: no budget; ``max_energy`` in the unit of ``energy``); when none is, the one
    with the least relative excess ``max(cycles / max_cycles, energy / max_energy)``, then the best by
    ``objective``."""
    e, c = np.asarray(energy, dtype=float), np.asarray(cycles, dtype=float)
    obj = Objective.parse(objective)
    ok = np.ones(e.shape, dtype=bool)
    excess = np.zeros(e.shape)
    if max_cycles is not None:
        ok &= c <= max_cycles
        excess = np.maximum(excess, c / max_cycles if max_cycles > 0 else np.where(c > 0, np.inf, 0.0))
    if max_energy is not None:
        ok &= e <= max_energy
        excess = np.maximum(excess, e / max_energy if max_energy > 0 else np.where(e > 0, np.inf, 0.0))
    if ok.any():
        return Choice(int(obj.order(e, c, None, ok)[0]), True)
    cols = [excess, *obj.columns(e, c)]
    return Choice(int(np.lexsort(tuple(reversed(cols)))[0]), False)


@dataclass(frozen=True)
class Front:
    """A front whose every point was costed and checked by ``evaluate``'s rules: the points' values are
    their schedules' totals (points that the dynamic program's sums and ``evaluate``'s differ on by
    rounding only, and that are then dominated, are dropped), energy ascending. ``epsilon``: the thinning
    (0: exact)."""

    points: tuple[FrontPoint, ...]
    schedules: tuple[Schedule, ...]
    epsilon: float = 0.0

    @property
    def energy(self) -> np.ndarray:
        return np.array([p.energy_pJ for p in self.points])

    @property
    def cycles(self) -> np.ndarray:
        return np.array([p.cycles for p in self.points])

    def best(self, objective: Objective | str) -> int:
        """The index of the point ``objective`` ranks first."""
        return choose(self.energy, self.cycles, objective).index


def evaluated_front(
    network: Network,
    table: CostTable,
    capacity: CapacitySpec | None = None,
    rule: Rule = "exact",
    max_stack_depth: int | None = None,
    epsilon: float = 0.0,
    objective: Objective | str = "energy",
    progress: Progress | None = None,
) -> tuple[Front, SearchStats]:
    """``pareto_front``, then every point's schedule by ``front_schedules`` (recorded with
    ``objective``), the points valued by those schedules."""
    points, stats = pareto_front(network, table, capacity, rule, max_stack_depth, epsilon, progress)
    start = time.perf_counter()
    schedules = front_schedules(network, table, points, capacity, rule, objective)
    e = np.array([s.total.energy_pJ for s in schedules])
    c = np.array([float(s.total.cycles) for s in schedules])  # type: ignore[arg-type]
    keep = np.sort(nondominated(e, c)) if epsilon == 0 else np.arange(len(points))
    kept = tuple(FrontPoint(float(e[k]), float(c[k]), points[k].parts) for k in keep)
    stats.elapsed_s += time.perf_counter() - start
    return Front(kept, tuple(schedules[k] for k in keep), epsilon), stats
