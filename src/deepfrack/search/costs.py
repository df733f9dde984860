"""Cost tables as dense matrices, and on-chip capacity as the search uses it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostTable
from deepfrack.dims import TENSORS
from deepfrack.errors import MissingCostError
from deepfrack.objective import Objective
from deepfrack.residency import Variant
from deepfrack.search.graph import Role
from deepfrack.workload.layer import Layer, Network

Metric = Literal["energy", "cycles"]


def search_metric(objective: Objective | str) -> Metric:
    """The metric the search sums over tiles and stacks for ``objective``: "energy" or "cycles".
    ValueError for objectives the search does not minimize directly."""
    obj = Objective.parse(objective)
    if len(obj.metrics) != 1 or not obj.additive:
        raise ValueError(f"the search minimizes energy or cycles, not {obj.name!r}")
    return obj.primary  # type: ignore[return-value]


SQUARE_ONLY_HINT = "those tables hold only square tiles; use --receptive-field legacy or deepfrack benchmark"
INFEASIBLE_HINT = "the benchmark found no valid mapping for it"


class CostGrids:
    """``grid(layer, variant, metric)``: a (Q + 1) x (P + 1) matrix whose [h, w] entry is the cost of an
    h x w output region of the layer (pJ or cycles), NaN where the table has no entry (row and column
    0 are always NaN). One pass over the table collects every entry into flat arrays; grids are
    built from them on demand."""

    def __init__(self, network: Network, table: CostTable):
        self.network = network
        self.table = table
        order = {v: k for k, v in enumerate(Variant)}
        n = len(table.records)
        keys, recs = table.records.keys(), table.records.values()
        nv = len(order)
        lv = np.fromiter((k[0] * nv + order[k[1]] for k in keys), dtype=np.int64, count=n)
        hw = np.stack(
            [
                np.fromiter((k[2] for k in keys), dtype=np.int64, count=n),
                np.fromiter((k[3] for k in keys), dtype=np.int64, count=n),
            ],
            axis=1,
        )
        values = np.stack(
            [
                np.fromiter((r.energy_pJ for r in recs), dtype=float, count=n),
                np.fromiter((math.nan if r.cycles is None else r.cycles for r in recs), dtype=float, count=n),
            ],
            axis=1,
        )
        sort = np.argsort(lv, kind="stable")
        self._lv, self._hw, self._values = lv[sort], hw[sort], values[sort]
        self._order = order
        self._grids: dict[tuple[int, Variant, str], np.ndarray] = {}

    def grid(self, layer: int, variant: Variant, metric: Metric) -> np.ndarray:
        key = (layer, variant, metric)
        if key not in self._grids:
            q, p = self.network.layers[layer].out_plane
            g = np.full((q + 1, p + 1), np.nan)
            code = layer * len(self._order) + self._order[variant]
            lo, hi = np.searchsorted(self._lv, [code, code + 1])
            h, w = self._hw[lo:hi, 0], self._hw[lo:hi, 1]
            vals = self._values[lo:hi, 0 if metric == "energy" else 1]
            inside = (h > 0) & (h <= q) & (w > 0) & (w <= p)
            g[h[inside], w[inside]] = vals[inside]
            self._grids[key] = g
        return self._grids[key]


def mixed_grid(on: np.ndarray, dram: np.ndarray, share: float) -> np.ndarray:
    """A join that reads ``share`` of its input words from DRAM and the rest on chip, as one grid:
    ``on + share x (dram - on)`` per shape (docs/search.md, "Networks that branch and join"). NaN
    where either grid is NaN, +inf where either is +inf (a bound grid's absent entries)."""
    with np.errstate(invalid="ignore"):
        out = on + share * (dram - on)
    return np.where(np.isinf(on) | np.isinf(dram), math.inf, out)


def role_grids(
    grid_of: Callable[[Variant], np.ndarray], layer: Layer, role: Role
) -> tuple[np.ndarray, np.ndarray | None]:
    """The uncached grid of a layer in its role (a mixed join: its two entries mixed by ``mixed_grid``)
    and its cached variant's grid (None when it cannot be cached), from ``grid_of(variant)``."""
    unc = grid_of(role.variant(False))
    if role.dram_variant is not None:
        unc = mixed_grid(unc, grid_of(role.dram_variant), role.outside)
    cached = role.cached_variant(layer.has_weights)
    return unc, (None if cached is None else grid_of(cached))


def missing_error(
    network: Network, table: CostTable, layer: int, variant: Variant, shape: tuple[int, int], rule: str | None
) -> MissingCostError:
    """The MissingCostError for one absent entry, with a hint for square-only tables and infeasible shapes."""
    hint = ""
    key = (layer, variant, shape[0], shape[1])
    if key in table.infeasible:
        hint = INFEASIBLE_HINT + (f": {table.reasons[key]}" if key in table.reasons else "")
    elif table.square_only and shape[0] != shape[1] and rule == "exact":
        hint = SQUARE_ONLY_HINT
    return MissingCostError(layer, network.layers[layer].name, variant.value, shape, hint, table.source)


@dataclass(frozen=True)
class LevelUse:
    """One on-chip level with a finite capacity (words) and which tensors call it home."""

    name: str
    words: float
    weights: bool
    inputs: bool
    outputs: bool


def capacity_levels(capacity: CapacitySpec | None) -> tuple[LevelUse, ...]:
    """The home levels with a finite capacity (a level missing from ``words`` or sized None is
    unlimited). A tensor with no home level can never stay on chip: it gets a level of 0 words of
    its own, so caching weights, or keeping activations between fused layers, does not fit."""
    if capacity is None:
        return ()
    out = []
    homes = dict(capacity.home)
    for name in dict.fromkeys(v for v in homes.values() if v is not None):
        words = capacity.words.get(name)
        if words is None:
            continue
        out.append(
            LevelUse(
                name,
                float(words),
                homes.get("Weights") == name,
                homes.get("Inputs") == name,
                homes.get("Outputs") == name,
            )
        )
    for tensor in TENSORS:
        if homes.get(tensor) is None:
            out.append(
                LevelUse(
                    f"(no on-chip level keeps {tensor})",
                    0.0,
                    tensor == "Weights",
                    tensor == "Inputs",
                    tensor == "Outputs",
                )
            )
    return tuple(out)
