"""Receptive field: which part of each layer's output a fused tile needs (docs/search.md, "Receptive field").

Both rules work one axis at a time (rows along the height, columns along the width): a rectangle's
receptive field is the product of its row span's and its column span's.

* **exact** (the default): output rows [a, b) of a layer with stride s, dilation d, kernel extent
  S, top padding p need input rows [a*s - p, (b-1)*s - p + (S-1)*d + 1), clipped to the input plane.
  Pooling layers are layers too.
* **legacy** (only to reproduce the original DeepFrack's logs): lengths only, t_in = (t-1)*s + kernel
  extent (no padding, no pooling), clipped to the producer's plane, then lowered to the largest size
  <= t_in that the cost table has for the producer layer in LBLC; the walk goes on from the lowered
  size. The original had no positions; we place a legacy region at the exact rule's start without
  padding, start = a*s, moved up/left just enough to stay inside the plane
  (``min(a*s, extent - length)``). Positions only matter for pictures; costs depend on lengths.

All functions accept ints or numpy integer arrays (elementwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from deepfrack.cost.table import CostTable
from deepfrack.rect import Rect
from deepfrack.residency import Variant
from deepfrack.workload.layer import Layer, Network

Rule = Literal["exact", "legacy"]
RULES: tuple[str, ...] = ("exact", "legacy")


@dataclass(frozen=True)
class AxisGeometry:
    """One axis of a layer (axis 0 = height: rows, Q; axis 1 = width: columns, P): stride, kernel extent
    (dilated, in input rows/columns), padding before (top or left)."""

    stride: int
    kernel_extent: int
    pad_before: int


def axis_geometry(layer: Layer, axis: int) -> AxisGeometry:
    """Height (axis 0: Hstride, S, top padding, Q) or width (axis 1: Wstride, R, left padding, P)."""
    kh, kw = layer.kernel_extent
    left, _right, top, _bottom = layer.pad
    if axis == 0:
        return AxisGeometry(layer.Hstride, kh, top)
    return AxisGeometry(layer.Wstride, kw, left)


def exact_input_span(start, end, geom: AxisGeometry, in_extent: int):
    """Input rows [lo, hi) that output rows [start, end) need (exact rule), clipped to [0, in_extent)."""
    lo = np.asarray(start) * geom.stride - geom.pad_before
    hi = (np.asarray(end) - 1) * geom.stride - geom.pad_before + geom.kernel_extent
    return np.clip(lo, 0, in_extent), np.clip(hi, 0, in_extent)


def legacy_input_length(length, geom: AxisGeometry):
    """The original's t_in = (t - 1) * stride + kernel extent (no padding)."""
    return (np.asarray(length) - 1) * geom.stride + geom.kernel_extent


def lower_to_available(length, available: np.ndarray, extent: int):
    """Largest size in ``available`` (ascending) that is <= min(length, extent); 0 when there is none."""
    avail = np.asarray(available, dtype=np.int64)
    want = np.minimum(np.asarray(length), extent)
    if avail.size == 0:
        return np.zeros_like(want)
    idx = np.searchsorted(avail, want, side="right") - 1
    return np.where(idx >= 0, avail[np.clip(idx, 0, None)], 0)


def legacy_start(next_start, geom: AxisGeometry, length, extent: int):
    """Where a legacy region of ``length`` on a plane of ``extent`` starts (see the module docstring)."""
    return np.clip(np.minimum(np.asarray(next_start) * geom.stride, extent - np.asarray(length)), 0, None)


def legacy_available(table: CostTable, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Heights and widths (ascending) that the table's LBLC entries of ``layer`` have (legacy lowering)."""
    shapes = table.shapes(layer, Variant.LBLC)
    hs = np.array(sorted({h for h, _ in shapes}), dtype=np.int64)
    ws = np.array(sorted({w for _, w in shapes}), dtype=np.int64)
    return hs, ws


def legacy_lookup(table: CostTable):
    """``available(layer, axis)``: the table's LBLC heights (axis 0) or widths (axis 1) of a layer,
    ascending, computed once per layer."""
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def available(layer: int, axis: int) -> np.ndarray:
        if layer not in cache:
            cache[layer] = legacy_available(table, layer)
        return cache[layer][axis]

    return available


# --------------------------------------------------------------------------------------------- #
# rectangles
# --------------------------------------------------------------------------------------------- #
def receptive_field(layer: Layer, region: Rect, in_plane: tuple[int, int]) -> Rect:
    """The input region (exact rule) that ``layer`` needs to compute output ``region``, on an input
    plane of ``in_plane`` (height, width)."""
    r0, r1 = exact_input_span(region.row, region.row_end, axis_geometry(layer, 0), in_plane[0])
    c0, c1 = exact_input_span(region.col, region.col_end, axis_geometry(layer, 1), in_plane[1])
    return Rect(int(r0), int(c0), int(r1 - r0), int(c1 - c0))


def _bounding_box(rects: list[Rect]) -> Rect:
    """The smallest rectangle that holds every one of ``rects`` (rows and columns independently)."""
    r0, c0 = min(r.row for r in rects), min(r.col for r in rects)
    r1, c1 = max(r.row_end for r in rects), max(r.col_end for r in rects)
    return Rect(r0, c0, r1 - r0, c1 - c0)


def stack_regions(
    network: Network,
    first: int,
    last: int,
    tile: Rect,
    rule: Rule = "exact",
    table: CostTable | None = None,
) -> tuple[Rect, ...]:
    """The output region of every layer first..last (in that order) for one tile of the last layer.

    Exact rule: each layer's region is the bounding box of what its consumers need (on a chain, what
    the next layer needs); every consumer of layers first..last - 1 must be in the stack (single
    exit), else ValueError. Legacy rule: chains only; needs ``table`` (the LBLC sizes it lowers to); a
    region lowered to nothing has size 0.
    """
    regions = {last: tile}
    for l in range(last - 1, first - 1, -1):
        readers = network.consumers(l)
        if not readers or readers[-1] > last:
            raise ValueError(f"layer {l} ({network.layers[l].name}) has a consumer outside {first}..{last}")
        prod = network.layers[l]
        if rule == "exact":
            regions[l] = _bounding_box(
                [receptive_field(network.layers[c], regions[c], prod.out_plane) for c in readers]
            )
            continue
        if table is None:
            raise ValueError("the legacy rule needs the cost table")
        if readers != (l + 1,):
            raise ValueError(f"the legacy rule walks chains only; layer {l} ({prod.name}) branches")
        cons, nxt = network.layers[l + 1], regions[l + 1]
        hs, ws = legacy_available(table, l)
        spans = []
        for axis, avail, start, length in ((0, hs, nxt.row, nxt.h), (1, ws, nxt.col, nxt.w)):
            geom = axis_geometry(cons, axis)
            extent = prod.out_plane[axis]
            t = int(lower_to_available(legacy_input_length(length, geom), avail, extent))
            spans.append((int(legacy_start(start, geom, t, extent)), t))
        regions[l] = Rect(spans[0][0], spans[1][0], spans[0][1], spans[1][1])
    return tuple(regions[l] for l in range(first, last + 1))
