"""The cost-table entries the search may look up: what ``deepfrack benchmark --shapes needed`` (and
``deepfrack run --exhaustive``) benchmarks so that ``optimize`` under the exact receptive-field rule finds
every shape it asks for, and nothing more than its tilings can use.

It follows ``optimize`` step by step, with the same helpers, so the two cannot drift apart:

* every layer alone: SLC on its whole output plane (the single-layer stack, and the layer-by-layer
  baseline);
* every stack ending at layer ``i`` starts at ``lowest_first_layer(network, i, "exact",
  max_stack_depth)`` or later; its tilings are the candidate tile sizes of ``candidate_sizes`` (every
  height x every width under the exact rule), walked back through the stack (``stack_plan``; a layer's
  band lengths depend on the last layer and the tiling only, not on where the stack starts);
* a layer is looked up under the variants of its role in the stack (``graph.layer_role``: on a chain,
  first, middle or last; on a graph it depends on which of its operands the stack holds): uncached,
  cached when it has weights, and a mixed join's DRAM-input variant at the same shapes;
* with a ``capacity``, a tiling of a stack whose activations alone overflow a home level is never
  costed (``stacks.sweep_live``, ``stacks.activation_capacity``), and a layer's cached variant only
  where its weights fit beside the activations: shapes that only such tilings use are left out.

Per layer and variant, the shapes are the (band height, band width) pairs of the tilings that can use
them: ``counts_h^T @ usable @ counts_w > 0`` over the Plan's band-length counts.
"""

from __future__ import annotations

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostKey
from deepfrack.residency import Variant
from deepfrack.search.costs import capacity_levels
from deepfrack.search.graph import Role, layer_role
from deepfrack.search.optimizer import lowest_first_layer, stack_plan
from deepfrack.search.plan import Plan
from deepfrack.search.stacks import activation_capacity, sweep_live
from deepfrack.workload.layer import Network

#: (layer, variant) -> bool grid [h, w] (rows and columns 0 unused) of the shapes to cost
NeededGrids = dict[tuple[int, Variant], np.ndarray]


def needed_grids(
    network: Network, max_stack_depth: int | None = None, capacity: CapacitySpec | None = None
) -> NeededGrids:
    """Every (layer, variant) shape ``optimize(network, table, capacity, "exact", max_stack_depth)`` may
    look up, as boolean grids (module docstring); layers 0-based."""
    out: NeededGrids = {}
    levels = capacity_levels(capacity)

    def mark(layer: int, variant: Variant, grid: np.ndarray) -> None:
        if variant in (Variant.SLC,) or grid.any():
            out[(layer, variant)] = out[(layer, variant)] | grid if (layer, variant) in out else grid

    for last, layer in enumerate(network.layers):
        q, p = layer.out_plane
        whole = np.zeros((q + 1, p + 1), dtype=bool)
        whole[q, p] = True
        mark(last, Variant.SLC, whole)
        lowest = lowest_first_layer(network, last, "exact", max_stack_depth)
        if lowest == last:
            continue
        plan, allowed = stack_plan(network, last, lowest, "exact")
        fit, room = {}, {}
        for first, live in sweep_live(network, plan, levels):
            f, headroom = activation_capacity(live, levels, plan.shape)
            fit[first] = f & allowed
            room[first] = np.where(fit[first], headroom, -np.inf)
        deepest = min(fit)  # stacks starting lower overflow whatever the tiling (``sweep_live``)
        for l in range(deepest, last + 1):
            for role, firsts in _roles(network, l, deepest, last).items():
                usable = np.logical_or.reduce([fit[j] for j in firsts])
                cacheable = np.maximum.reduce([room[j] for j in firsts]) >= network.layers[l].weights
                shapes = _shapes(plan, l, usable)
                mark(l, role.variant(False), shapes)
                if role.dram_variant is not None:
                    mark(l, role.dram_variant, shapes)
                cached = role.cached_variant(network.layers[l].has_weights)
                if cached is not None:
                    mark(l, cached, _shapes(plan, l, usable & cacheable))
    return out


def _roles(network: Network, layer: int, lowest: int, last: int) -> dict[Role, list[int]]:
    """The roles ``layer`` takes in the multi-layer stacks ``[j..last]`` (``lowest <= j <= layer``), each
    with the first layers j that give it (on a chain: first, middle or last)."""
    out: dict[Role, list[int]] = {}
    for j in range(min(layer, last - 1), lowest - 1, -1):
        out.setdefault(layer_role(network, layer, j, last), []).append(j)
    return out


def _shapes(plan: Plan, layer: int, usable: np.ndarray) -> np.ndarray:
    """Bool grid of the (h, w) region shapes at ``layer`` of the tilings in ``usable``."""
    rows = plan.h.counts(layer) > 0  # (nTh, Q + 1): candidate r has a band of length h
    cols = plan.w.counts(layer) > 0
    hs, ws = np.flatnonzero(rows.any(axis=0)), np.flatnonzero(cols.any(axis=0))
    grid = np.zeros((rows.shape[1], cols.shape[1]), dtype=bool)
    hit = rows[:, hs].T.astype(float) @ usable.astype(float) @ cols[:, ws].astype(float)
    grid[np.ix_(hs, ws)] = hit > 0.5
    return grid


def required_shapes(
    network: Network, max_stack_depth: int | None = None, capacity: CapacitySpec | None = None
) -> set[CostKey]:
    """Every (layer, variant, h, w) that ``optimize(network, table, capacity, rule="exact",
    max_stack_depth=max_stack_depth)`` may look up (module docstring); layers 0-based. Without a
    capacity, every tiling counts."""
    keys: set[CostKey] = set()
    for (layer, variant), grid in needed_grids(network, max_stack_depth, capacity).items():
        hs, ws = np.nonzero(grid)
        keys.update((layer, variant, int(h), int(w)) for h, w in zip(hs, ws))
    return keys


__all__ = ["NeededGrids", "needed_grids", "required_shapes"]
