"""Where the on-demand search gets its cost entries: lower bounds for free, exact values on request.

A ``CostSource`` has two methods:

* ``bounds(layer, variant, metric)``: a (Q + 1) x (P + 1) grid whose [h, w] entry is at most the cost
  (pJ or cycles) of an h x w output region of the layer under the variant, whatever the entry turns
  out to be (+inf where the entry is known to be absent; rows and column 0 are unused). Cheap: no
  mapper runs.
* ``cost(keys)``: cost a batch of (layer, variant, h, w) entries and return them as a ``CostTable``
  (records for the costed ones, ``infeasible`` and ``reasons`` for those with no valid mapping).
  Entries are costed once; asking again is free. A source whose ``works_ahead`` is true also takes
  ``cost(keys, ahead=more)``: entries likely to be asked for next, which it may compute meanwhile on
  workers that would otherwise idle (``BenchmarkSource``); they are not returned until asked for.

``TableSource`` serves a finished ``CostTable`` (what ``deepfrack optimize --tables`` reads; its bounds
are the entries themselves). ``BenchmarkSource`` costs entries with a benchmark backend (the built-in
mapper, Timeloop, ...): cached entries are free, new ones are computed by the executor's worker
processes in batches and committed to the result cache batch by batch, so that an interrupted run
resumes with nothing lost; its bounds are the backend's (``deepfrack.cost.bounds`` for the built-in
mapper), or 0 when the backend gives none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from deepfrack.benchmark.jobs import make_job
from deepfrack.benchmark.runner import BenchmarkSession, table_from_outcomes
from deepfrack.cost.table import CostKey, CostTable
from deepfrack.errors import DeepfrackError
from deepfrack.residency import Variant
from deepfrack.search.costs import CostGrids, Metric
from deepfrack.workload.layer import Network


class CostSource(Protocol):
    """Lower bounds and exact cost entries for the on-demand search (module docstring)."""

    #: how many entries it can cost at once (worker processes): the search asks for batches that
    #: keep them busy
    parallelism: int

    def bounds(self, layer: int, variant: Variant, metric: Metric) -> np.ndarray: ...

    def cost(self, keys: Sequence[CostKey]) -> CostTable: ...


@dataclass
class SourceStats:
    """``requested``: distinct entries asked for; ``computed``: those that were not already known to
    the source (for a benchmark: not in the result cache), i.e. new mapper runs."""

    requested: int = 0
    computed: int = 0


def _table_of(keys: Sequence[CostKey], table: CostTable, absent: str) -> CostTable:
    out = CostTable(source=table.source)
    for key in keys:
        rec = table.records.get(key)
        if rec is not None:
            out.records[key] = rec
        else:
            out.infeasible.add(key)
            out.reasons[key] = table.reasons.get(key, absent)
    return out


@dataclass
class TableSource:
    """A finished cost table as a source. Its bounds are the entries themselves (+inf where the table
    has none); ``bound_of`` may replace them with looser ones (tests do, to exercise the search)."""

    network: Network
    table: CostTable
    parallelism: int = 1
    bound_of: Callable[[int, Variant, Metric, np.ndarray], np.ndarray] | None = None
    stats: SourceStats = field(default_factory=SourceStats)

    def __post_init__(self) -> None:
        self._grids = CostGrids(self.network, self.table)
        self._seen: set[CostKey] = set()

    def bounds(self, layer: int, variant: Variant, metric: Metric) -> np.ndarray:
        exact = self._grids.grid(layer, variant, metric)
        grid = np.where(np.isnan(exact), math.inf, exact)
        return grid if self.bound_of is None else self.bound_of(layer, variant, metric, grid)

    def cost(self, keys: Sequence[CostKey]) -> CostTable:
        new = [k for k in dict.fromkeys(keys) if k not in self._seen]
        self._seen.update(new)
        self.stats.requested += len(new)
        self.stats.computed += len(new)
        return _table_of(keys, self.table, "not in the cost table")


class CostingFailed(DeepfrackError):
    """Some entries could not be costed (the evaluator failed; a re-run retries them)."""


@dataclass
class BenchmarkSource:
    """Entries from a benchmark session (``deepfrack.benchmark.runner.BenchmarkSession``: backend,
    result cache, executor). ``bounds`` come from the backend's ``entry_bounds()`` when it has one
    (``deepfrack.cost.bounds.EntryBounds`` for the built-in mapper), else 0."""

    network: Network
    session: BenchmarkSession
    stats: SourceStats = field(default_factory=SourceStats)

    def __post_init__(self) -> None:
        getter = getattr(self.session.backend, "entry_bounds", None)
        self._model = getter() if callable(getter) else None
        self._grids: dict[tuple[int, Variant], tuple[np.ndarray, np.ndarray]] = {}
        self._seen: set[CostKey] = set()

    @property
    def parallelism(self) -> int:
        return self.session.workers

    @property
    def has_bounds(self) -> bool:
        return self._model is not None

    def bounds(self, layer: int, variant: Variant, metric: Metric) -> np.ndarray:
        lay = self.network.layers[layer]
        q, p = lay.out_plane
        if self._model is None:
            return np.zeros((q + 1, p + 1))
        key = (layer, variant)
        if key not in self._grids:
            self._grids[key] = self._model.grids(lay, variant, q, p)
        energy, cycles = self._grids[key]
        return energy if metric == "energy" else cycles

    #: ``cost`` takes entries to compute ahead on idle workers
    works_ahead = True

    def cost(self, keys: Sequence[CostKey], ahead: Sequence[CostKey] = ()) -> CostTable:
        """The entries, from the cache or computed now; CostingFailed when the evaluator failed on some
        (they are not cached: running again retries them). ``ahead``: entries likely to be asked for
        next, computed by workers that would otherwise idle (``BenchmarkSession.cost``); not returned."""
        keys = list(dict.fromkeys(keys))
        jobs = [make_job(self.network, l, v, h, w) for l, v, h, w in keys]
        before = self.session.summary.computed
        outcomes = self.session.cost(jobs, [make_job(self.network, *k) for k in ahead])
        new = [k for k in keys if k not in self._seen]
        self._seen.update(new)
        self.stats.requested += len(new)
        self.stats.computed += self.session.summary.computed - before
        failed = [j for j in jobs if outcomes[j.key].status == "error"]
        if failed:
            raise CostingFailed(
                f"{len(failed)} entries failed (not cached), e.g. {failed[0].describe()}: "
                f"{outcomes[failed[0].key].reason}; run the same command again to retry them"
            )
        return table_from_outcomes(jobs, outcomes, self.session.cache_path)


__all__ = ["BenchmarkSource", "CostSource", "CostingFailed", "SourceStats", "TableSource"]
