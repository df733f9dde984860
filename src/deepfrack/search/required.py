"""The cost-table entries the search may look up: what ``deepfrack benchmark --shapes needed`` (and
``deepfrack run``) benchmarks so that ``optimize`` under the exact receptive-field rule finds every
shape it asks for, and nothing more than its tilings can reach.

It follows ``optimize`` step by step, with the same helpers, so the two cannot drift apart:

* every layer alone: SLC on its whole output plane (the single-layer stack, and the layer-by-layer
  baseline);
* every stack ending at layer ``i`` starts at ``lowest_first_layer(network, i, "exact",
  max_stack_depth)`` or later; its tilings are the candidate tile sizes of ``candidate_sizes`` (every
  height x every width under the exact rule), walked back through the stack with ``walk_axis``
  (a layer's band lengths depend on the last layer and the tiling only, not on where the stack
  starts);
* a layer at a position (first, middle, last) is looked up under ``position_variants`` (uncached,
  and cached when it has weights); a layer below ``i`` is first of some stack and, above the lowest
  first layer, also middle of another.

Per layer and variant the shapes are every (band height, band width) pair: under the exact rule
every height candidate goes with every width candidate, so the union over tilings of their band
shapes is the product of the two axes' band lengths.
"""

from __future__ import annotations

import numpy as np

from deepfrack.cost.table import CostKey
from deepfrack.residency import Variant
from deepfrack.search.optimizer import candidate_sizes, lowest_first_layer, position_variants
from deepfrack.search.plan import walk_axis
from deepfrack.workload.layer import Network


def _positions(layer: int, last: int, lowest: int) -> tuple[str, ...]:
    """The positions ``layer`` can take in the stacks [j..last], lowest <= j < last."""
    if layer == last:
        return ("last",)
    return ("first", "middle") if layer > lowest else ("first",)


def required_shapes(network: Network, max_stack_depth: int | None = None) -> set[CostKey]:
    """Every (layer, variant, h, w) that ``optimize(network, table, rule="exact",
    max_stack_depth=max_stack_depth)`` may look up (module docstring); layers 0-based."""
    keys: set[CostKey] = set()
    for last, layer in enumerate(network.layers):
        q, p = layer.out_plane
        keys.add((last, Variant.SLC, q, p))
        lowest = lowest_first_layer(network, last, "exact", max_stack_depth)
        if lowest == last:
            continue
        hs, ws, _ = candidate_sizes(network, last, "exact")
        walks = (
            walk_axis(network, last, lowest, 0, hs, "exact"),
            walk_axis(network, last, lowest, 1, ws, "exact"),
        )
        for l in range(lowest, last + 1):
            heights, widths = (np.unique(w.spans(l)[1]) for w in walks)
            heights, widths = heights[heights > 0].tolist(), widths[widths > 0].tolist()
            variants = {
                v
                for pos in _positions(l, last, lowest)
                for v in position_variants(network.layers[l], pos)
                if v is not None
            }
            keys.update((l, v, h, w) for v in variants for h in heights for w in widths)
    return keys


__all__ = ["required_shapes"]
