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
* a layer at a position (first, middle, last) is looked up under ``position_variants`` (uncached, and
  cached when it has weights);
* with a ``capacity``, a tiling of a stack whose activations alone overflow a home level is never
  costed (``stacks.activation_capacity``), and a layer's cached variant only where its weights fit
  beside the activations: shapes that only such tilings use are left out.

Per layer and variant, the shapes are the (band height, band width) pairs of the tilings that can use
them: ``counts_h^T @ usable @ counts_w > 0`` over the Plan's band-length counts.
"""

from __future__ import annotations

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostKey
from deepfrack.residency import Variant
from deepfrack.search.costs import capacity_levels
from deepfrack.search.optimizer import lowest_first_layer, position_variants, stack_plan
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
        firsts = sorted(fit)  # ascending: the stacks a middle layer l sits in start below it
        below_fit = np.zeros(plan.shape, dtype=bool)
        below_room = np.full(plan.shape, -np.inf)
        for l in range(lowest, last + 1):
            weights = network.layers[l].weights
            uses = []
            if l == last:
                any_fit = np.logical_or.reduce([fit[j] for j in firsts])
                best_room = np.maximum.reduce([room[j] for j in firsts])
                uses.append(("last", any_fit, best_room >= weights))
            else:
                uses.append(("first", fit[l], room[l] >= weights))
                if l > lowest:
                    uses.append(("middle", below_fit, below_room >= weights))
                below_fit = below_fit | fit[l]
                below_room = np.maximum(below_room, room[l])
            for position, usable, cacheable in uses:
                unc_v, cac_v = position_variants(network.layers[l], position)
                mark(l, unc_v, _shapes(plan, l, usable))
                if cac_v is not None:
                    mark(l, cac_v, _shapes(plan, l, usable & cacheable))
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
