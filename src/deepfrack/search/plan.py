"""Every tiling of one last layer at once: band walks and per-layer tile classes (docs/search.md).

A uniform grid is separable: tile (r, c) of a stack is row band r times column band c, and the
region it needs at every layer of the stack is (rows of band r at that layer) x (columns of band c).
So the search never loops over tiles. For a last layer and a set of candidate tile sizes per axis,
we walk every band of every candidate back through the layers below once (a flat numpy array of
bands), and summarize each layer by:

* ``classes`` / ``counts``: how many bands of each length each candidate has (a candidates x lengths
  matrix). The cost of a layer over all tiles of all tilings is then ``counts_h @ E @ counts_w.T``,
  where E[h, w] is the layer's cost table as a dense matrix: a sum over tile classes of count x cost.
* the first band's length: the top-left tile, which pays the weight loads, is handled apart;
* per candidate, the distinct vectors of band lengths at several layers (``signatures``), for the
  most on-chip words over the tiles of several tensors held at once (``Plan.max_words``; docs/search.md,
  "Capacity");
* the longest band and the total length (for capacity and MACs).

The regions of a layer depend only on the stack's last layer and its tiling, not on where the stack
starts, so one walk serves every stack that ends at this layer. On a graph too: under single exit
(``graph.py``) every consumer of a layer of the stack is in the stack, so a layer's region is the
bounding box of what its consumers need, whatever the stack's first layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from deepfrack.search.receptive import (
    Rule,
    axis_geometry,
    exact_input_span,
    legacy_input_length,
    legacy_start,
    lower_to_available,
)
from deepfrack.workload.layer import Network

#: legacy rule: (layer, axis) -> ascending sizes the LBLC table has along that axis
Available = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class AxisWalk:
    """The bands of one axis for several candidate tile sizes, walked back from the stack's last layer.

    ``sizes``: candidate tile sizes on the last layer, shape (nT,). ``owner``: candidate index of every
    band, shape (nB,); a candidate's bands are contiguous and in order, ``first_band[k]`` is the index of
    candidate k's first band. ``starts[d]`` / ``lengths[d]``: band spans (rows or columns of that
    layer's output) at layer ``last - d``, for d = 0 .. last - lowest.
    """

    last: int
    lowest: int
    sizes: np.ndarray
    owner: np.ndarray
    first_band: np.ndarray
    starts: tuple[np.ndarray, ...]
    lengths: tuple[np.ndarray, ...]

    def spans(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.last - layer
        return self.starts[d], self.lengths[d]


def walk_axis(
    network: Network,
    last: int,
    lowest: int,
    axis: int,
    sizes: np.ndarray,
    rule: Rule,
    available: Available | None = None,
) -> AxisWalk:
    """Walk the uniform-grid bands of every candidate size (rows for axis 0, columns for axis 1) of
    layer ``last`` back to layer ``lowest`` with the given receptive-field rule.

    On a graph, layers are visited in reverse topological order and a layer's span is the bounding
    span of what its consumers need from it (``exact_input_span`` per consumer; a join needs the same
    span of each input). Every layer in ``lowest..last - 1`` must have all its consumers at or below
    ``last`` (single exit, ``graph.single_exit_lowest``): ValueError otherwise. The legacy rule walks
    chains only (ValueError when a layer has another consumer than the next layer). On a chain this is
    the plain walk from each layer to the layer below.
    """
    layers = network.layers
    extent = layers[last].out_plane[axis]
    sizes = np.asarray(sizes, dtype=np.int64)
    n_bands = -(-extent // sizes)
    owner = np.repeat(np.arange(sizes.size), n_bands)
    first_band = np.concatenate(([0], np.cumsum(n_bands)[:-1])).astype(np.int64)
    start = (np.arange(owner.size) - first_band[owner]) * sizes[owner]
    end = np.minimum(start + sizes[owner], extent)
    spans = {last: (start, end)}
    for l in range(last - 1, lowest - 1, -1):
        readers = network.consumers(l)
        if not readers or readers[-1] > last:
            raise ValueError(
                f"layer {l} ({layers[l].name}) has a consumer after layer {last} or none: "
                f"no stack ending at {last} can hold it (single exit)"
            )
        pext = layers[l].out_plane[axis]
        if rule == "exact":
            needs = [exact_input_span(*spans[c], axis_geometry(layers[c], axis), pext) for c in readers]
            start, end = needs[0]
            for lo, hi in needs[1:]:
                start, end = np.minimum(start, lo), np.maximum(end, hi)
        else:
            if available is None:
                raise ValueError("the legacy rule needs the table's available sizes")
            if readers != (l + 1,):
                raise ValueError(f"the legacy rule walks chains only; layer {l} ({layers[l].name}) branches")
            geom = axis_geometry(layers[l + 1], axis)
            start, end = spans[l + 1]
            length = end - start
            t = lower_to_available(legacy_input_length(length, geom), available(l, axis), pext)
            t = np.where(length > 0, t, 0)
            start = legacy_start(start, geom, t, pext)
            end = start + t
        spans[l] = (start, end)
    starts = tuple(spans[l][0] for l in range(last, lowest - 1, -1))
    lengths = tuple(spans[l][1] - spans[l][0] for l in range(last, lowest - 1, -1))
    return AxisWalk(last, lowest, sizes, owner, first_band, starts, lengths)


class AxisSummary:
    """Per-layer summaries of an AxisWalk (computed on demand, cached)."""

    def __init__(self, network: Network, walk: AxisWalk, axis: int):
        self.network = network
        self.walk = walk
        self.axis = axis
        self._classes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._counts: dict[int, np.ndarray] = {}
        self._signatures: dict[tuple[int, ...], np.ndarray] = {}

    @property
    def n(self) -> int:
        return int(self.walk.sizes.size)

    def extent(self, layer: int) -> int:
        return self.network.layers[layer].out_plane[self.axis]

    def lengths(self, layer: int) -> np.ndarray:
        return self.walk.spans(layer)[1]

    def classes(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate, its distinct band lengths at ``layer`` and how many bands have each: two
        (nT, K) integer arrays, padded with length 0 and count 0."""
        if layer not in self._classes:
            base = self.extent(layer) + 1
            keys, counts = np.unique(self.walk.owner * base + self.lengths(layer), return_counts=True)
            own, length = np.divmod(keys, base)
            self._classes[layer] = _pad_groups(own, self.n, length, counts)
        return self._classes[layer]

    def counts(self, layer: int) -> np.ndarray:
        """(nT, extent + 1) float matrix: number of bands of each length per candidate."""
        if layer not in self._counts:
            lens, cnts = self.classes(layer)
            dense = np.zeros((self.n, self.extent(layer) + 1))
            np.add.at(dense, (np.repeat(np.arange(self.n), lens.shape[1]), lens.ravel()), cnts.ravel())
            self._counts[layer] = dense
        return self._counts[layer]

    def sparse(self, layer: int) -> bool:
        """True when candidates have few distinct lengths compared with the extent (gathers beat a
        dense product)."""
        return 8 * self.classes(layer)[0].shape[1] < self.extent(layer) + 1

    def first_len(self, layer: int) -> np.ndarray:
        """(nT,) length of each candidate's first band (the top-left tile's) at ``layer``."""
        return self.lengths(layer)[self.walk.first_band]

    def max_len(self, layer: int) -> np.ndarray:
        return np.maximum.reduceat(self.lengths(layer), self.walk.first_band)

    def signatures(self, layers: tuple[int, ...]) -> np.ndarray:
        """Per candidate, the distinct vectors (length of the band at each of ``layers``) over its bands,
        keeping only the maximal ones (no other band of the candidate is at least as long at every
        layer), padded with zero vectors: an (nT, K, len(layers)) integer array. Live words are a
        non-negative combination of row length x column length per tensor, so their maximum over the
        tiles is reached on these vectors."""
        if layers not in self._signatures:
            lens = np.stack([self.lengths(l) for l in layers], axis=1)
            rows = np.unique(np.column_stack([self.walk.owner, lens]), axis=0)  # sorted by owner
            own, vecs = rows[:, 0], rows[:, 1:]
            same = own[:, None] == own[None, :]
            covers = (vecs[None, :, :] >= vecs[:, None, :]).all(axis=2)  # [a, b]: b >= a everywhere
            strictly = covers & ~(vecs[None, :, :] == vecs[:, None, :]).all(axis=2)
            keep = ~(same & strictly).any(axis=1)
            self._signatures[layers] = np.stack(_pad_groups(own[keep], self.n, *vecs[keep].T), axis=2)
        return self._signatures[layers]


def _pad_groups(owner: np.ndarray, n: int, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scatter values grouped by ``owner`` (sorted ascending, in 0..n-1) into (n, K) arrays padded with 0."""
    pos = np.arange(owner.size) - np.searchsorted(owner, owner, side="left")
    k = int(pos.max(initial=0)) + 1
    out = []
    for v in values:
        a = np.zeros((n, k), dtype=np.int64)
        a[owner, pos] = v
        out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class LayerTerm:
    """One layer in one role in a stack, over all tilings (nTh, nTw), for one metric.

    ``unc``: the layer's cost over all tiles when it is not cached (every tile uncached), or, where it
    is ``forced``, when it is cached (top-left tile uncached, the others cached). ``forced``: the table
    lacks an uncached shape that only tiles after the first need, while the cached variant has them:
    the layer must be cached. ``missing``: no choice of caching gives the layer every shape it needs
    (the tiling is infeasible). ``benefit``: what caching saves over tiles 2..T; -inf when caching is
    not a free choice (no weights, a cached shape missing, or forced).
    """

    unc: np.ndarray
    missing: np.ndarray
    benefit: np.ndarray
    forced: np.ndarray

    @cached_property
    def positive(self) -> np.ndarray:
        return np.maximum(self.benefit, 0.0)


class Plan:
    """All tilings (candidate heights x candidate widths) of stacks ending at layer ``last`` whose
    first layer is at least ``lowest``."""

    def __init__(
        self,
        network: Network,
        last: int,
        lowest: int,
        sizes_h: np.ndarray,
        sizes_w: np.ndarray,
        rule: Rule,
        available: Available | None = None,
    ):
        self.network = network
        self.last = last
        self.lowest = lowest
        self.rule = rule
        self.h = AxisSummary(network, walk_axis(network, last, lowest, 0, sizes_h, rule, available), 0)
        self.w = AxisSummary(network, walk_axis(network, last, lowest, 1, sizes_w, rule, available), 1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.h.n, self.w.n)

    def tiling(self, flat_index: int) -> tuple[int, int]:
        """(th, tw) of a flattened tiling index."""
        r, c = divmod(int(flat_index), self.w.n)
        return int(self.h.walk.sizes[r]), int(self.w.walk.sizes[c])

    def class_sum(self, layer: int, matrix: np.ndarray) -> np.ndarray:
        """sum over all tiles of ``matrix[h, w]`` (finite; h, w = the tile's region shape at ``layer``)
        for every tiling, shape (nTh, nTw): a sum over tile classes of count x value,
        ``counts_h @ matrix @ counts_w.T``. When the candidates have few distinct lengths, as two
        gathers over them instead (also keeps multi-threaded BLAS off large, sparse products)."""
        if self.h.sparse(layer) and self.w.sparse(layer):
            lh, nh = self.h.classes(layer)
            lw, nw = self.w.classes(layer)
            rows = np.einsum("tk,tkw->tw", nh.astype(float), matrix[lh])  # (nTh, extent_w + 1)
            return np.einsum("tuk,uk->tu", rows[:, lw], nw.astype(float))
        return self.h.counts(layer) @ matrix @ self.w.counts(layer).T

    def cost_sums(self, layer: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a dense cost matrix ``grid[h, w]`` (NaN = missing) of ``layer``: the total over all tiles,
        the number of tiles whose shape is missing, and the top-left tile's cost (NaN when missing);
        each (nTh, nTw)."""
        nan = np.isnan(grid)
        total = self.class_sum(layer, np.where(nan, 0.0, grid))
        n_missing = self.class_sum(layer, nan.astype(float))
        top_left = grid[self.h.first_len(layer)[:, None], self.w.first_len(layer)[None, :]]
        return total, n_missing, top_left

    def term(self, layer: int, unc_grid: np.ndarray, cached_grid: np.ndarray | None) -> LayerTerm:
        """The LayerTerm of ``layer`` from its uncached and cached variants' cost matrices
        (``cached_grid`` None: the layer cannot be cached)."""
        total, n_missing, top_left = self.cost_sums(layer, unc_grid)
        top_left_missing = np.isnan(top_left)
        later_missing = (n_missing - top_left_missing) > 0.5
        if cached_grid is None:
            forced = np.zeros(self.shape, dtype=bool)
            return LayerTerm(total, top_left_missing | later_missing, np.full(self.shape, -np.inf), forced)
        c_total, c_missing, c_top_left = self.cost_sums(layer, cached_grid)
        c_later_missing = (c_missing - np.isnan(c_top_left)) > 0.5
        top_left_0 = np.where(top_left_missing, 0.0, top_left)
        later_unc = total - top_left_0
        later_cached = c_total - np.where(np.isnan(c_top_left), 0.0, c_top_left)
        forced = later_missing & ~c_later_missing
        missing = top_left_missing | (later_missing & c_later_missing)
        unc = np.where(forced, top_left_0 + later_cached, total)
        benefit = np.where(later_missing | c_later_missing | missing, -np.inf, later_unc - later_cached)
        return LayerTerm(unc, missing, benefit, forced)

    def max_words(self, tensors: tuple[tuple[int, int], ...]) -> np.ndarray:
        """Most words over the tiles of every tiling, shape (nTh, nTw), of the tensors (layer, words per
        pixel) held at once: the max over tiles (r, c) of ``sum_k words_k x rows_k[r] x cols_k[c]``, with
        rows_k / cols_k the band lengths of layer k. Exact: the max of the sums over every pair of a
        row signature and a column signature (``AxisSummary.signatures``), in integers."""
        if not tensors:
            return np.zeros(self.shape)
        if len(tensors) == 1:
            layer, coef = tensors[0]
            return (coef * np.outer(self.h.max_len(layer), self.w.max_len(layer))).astype(float)
        layers = tuple(layer for layer, _ in tensors)
        coefs = np.array([coef for _, coef in tensors], dtype=np.int64)
        rows = self.h.signatures(layers) * coefs  # (nTh, Kh, m)
        cols = self.w.signatures(layers)  # (nTw, Kw, m)
        return np.einsum("rak,cbk->racb", rows, cols).max(axis=(1, 3)).astype(float)
