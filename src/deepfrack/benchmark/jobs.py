"""Benchmark jobs: one (layer, residency variant, output-tile shape) to cost.

A job's problem is the layer with its output plane replaced by the tile: ``P = tile_w`` (width) and
``Q = tile_h`` (height), full C, M, R, S and N, as the original benchmarker set ``problem.instance.P/Q``.

Shape sets (``enumerate_jobs(shapes=...)``):

* ``square``: every square tile t x t for t = 1 .. min(P, Q), and, when the layer's plane is not square,
  also the whole plane Q x P (so the layer-by-layer baseline, SLC on the whole layer, is always there).
  On square layers this is exactly what the original benchmarked (AlexNet_Simba: 7 x 108 = 756 runs).
* ``all``: every rectangle h x w with 1 <= h <= Q and 1 <= w <= P.
* ``needed``: the shapes the search will ask for, given as a mapping {(layer, variant): {(h, w), ...}}
  (``needed_shapes``: from the search's ``required_shapes``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from deepfrack.cost.table import CostKey
from deepfrack.residency import VARIANTS, Variant, parse_variant
from deepfrack.search.required import required_shapes
from deepfrack.workload.layer import Layer, Network

SHAPE_SETS: tuple[str, ...] = ("square", "needed", "all")

#: {(layer index 0-based, variant): shapes (h, w)} -- what ``--shapes needed`` benchmarks
NeededShapes = Mapping[tuple[int, Variant], Iterable[tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class Job:
    """Cost one output tile of one layer under one residency variant.

    layer_index: 0-based position in the network. layer: the network's layer with ``P = tile_w`` and
    ``Q = tile_h`` (its name kept for messages). tile_h, tile_w: the output tile (rows, columns).
    """

    layer_index: int
    layer: Layer
    variant: Variant
    tile_h: int
    tile_w: int

    @property
    def key(self) -> CostKey:
        """The CostTable key (layer 0-based, variant, tile_h, tile_w)."""
        return (self.layer_index, self.variant, self.tile_h, self.tile_w)

    def describe(self) -> str:
        """``layer 2 (conv2), variant WCC, tile 27x27`` -- layers 1-based as in the tables, tile h x w."""
        return (
            f"layer {self.layer_index + 1} ({self.layer.name}), variant {self.variant.value}, "
            f"tile {self.tile_h}x{self.tile_w}"
        )


def make_job(network: Network, layer_index: int, variant: Variant | str, tile_h: int, tile_w: int) -> Job:
    """The job for one entry; ValueError when the tile does not fit the layer's output plane."""
    layer = network.layers[layer_index]
    if not (1 <= tile_h <= layer.Q and 1 <= tile_w <= layer.P):
        raise ValueError(
            f"tile {tile_h}x{tile_w} does not fit layer {layer_index + 1} ({layer.name}), whose output is "
            f"{layer.Q}x{layer.P} (h x w)"
        )
    v = variant if isinstance(variant, Variant) else parse_variant(variant)
    return Job(layer_index, dataclasses.replace(layer, P=tile_w, Q=tile_h), v, tile_h, tile_w)


def square_shapes(layer: Layer) -> list[tuple[int, int]]:
    """t x t for t = 1..min(P, Q), plus the whole plane (Q, P) when it is not square."""
    shapes = [(t, t) for t in range(1, min(layer.P, layer.Q) + 1)]
    if layer.P != layer.Q:
        shapes.append((layer.Q, layer.P))
    return shapes


def all_shapes(layer: Layer) -> list[tuple[int, int]]:
    """Every rectangle h x w inside the layer's output plane."""
    return [(h, w) for h in range(1, layer.Q + 1) for w in range(1, layer.P + 1)]


def _variants(variants: Iterable[Variant | str]) -> tuple[Variant, ...]:
    out: list[Variant] = []
    for v in variants:
        pv = v if isinstance(v, Variant) else parse_variant(v)
        if pv not in out:
            out.append(pv)
    order = {v: i for i, v in enumerate(VARIANTS)}
    return tuple(sorted(out, key=order.__getitem__))


def enumerate_jobs(
    network: Network,
    shapes: str = "square",
    variants: Iterable[Variant | str] = VARIANTS,
    needed: NeededShapes | None = None,
) -> list[Job]:
    """Every job of a benchmark, ordered by (layer, variant, tile_h, tile_w).

    ``shapes`` is "square", "all" or "needed" (module docstring). For "needed", ``needed`` maps
    (layer, variant) to the shapes to cost (``needed_shapes``); pairs whose variant is not in
    ``variants`` are skipped. A shape outside the layer's plane, or "needed" without ``needed``, is a
    ValueError (a bug in the caller, not bad user input).
    """
    if shapes not in SHAPE_SETS:
        raise ValueError(f"unknown shape set {shapes!r}; expected one of {', '.join(SHAPE_SETS)}")
    vs = _variants(variants)
    jobs: list[Job] = []
    if shapes == "needed":
        if needed is None:
            raise ValueError(
                'shapes="needed" takes the shapes to cost: needed=needed_shapes(network, max_stack_depth)'
            )
        wanted = set(vs)
        for (layer_index, variant), shape_set in sorted(
            needed.items(), key=lambda kv: (kv[0][0], VARIANTS.index(Variant(kv[0][1])))
        ):
            variant = Variant(variant)
            if variant not in wanted:
                continue
            for h, w in sorted(set(shape_set)):
                jobs.append(make_job(network, layer_index, variant, h, w))
        return jobs
    for i, layer in enumerate(network.layers):
        shape_list = square_shapes(layer) if shapes == "square" else all_shapes(layer)
        # one tile problem per shape, shared by the variants (``--shapes all`` makes ~1e6 jobs on VGG16)
        tiles = [(h, w, dataclasses.replace(layer, P=w, Q=h)) for h, w in shape_list]
        for v in vs:
            jobs.extend(Job(i, tile, v, h, w) for h, w, tile in tiles)
    return jobs


def needed_shapes(
    network: Network, max_stack_depth: int | None = None
) -> dict[tuple[int, Variant], set[tuple[int, int]]]:
    """The shapes ``deepfrack optimize`` (exact receptive-field rule) may look up, per (layer, variant):
    SLC on each whole plane, and for every stack (up to ``max_stack_depth`` layers) and every candidate
    grid tiling of its last layer the region shapes of each layer, under the variants its position in
    the stack allows. Computed by the search (``deepfrack.search.required.required_shapes``)."""
    out: dict[tuple[int, Variant], set[tuple[int, int]]] = {}
    for layer, variant, h, w in required_shapes(network, max_stack_depth):
        out.setdefault((layer, variant), set()).add((h, w))
    return out


def batches_of(jobs: Sequence[Job], size: int) -> list[list[Job]]:
    """Consecutive slices of at most ``size`` jobs (jobs sharing a layer and shape stay together when
    the list is ordered by problem, see ``runner``)."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    return [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
