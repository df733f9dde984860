"""Benchmark jobs: one (layer, residency variant, output-tile shape) to cost.

A job's problem is the layer with its output plane replaced by the tile: ``P = tile_w`` (width) and
``Q = tile_h`` (height), full C, M, R, S and N, as the original benchmarker set ``problem.instance.P/Q``.

Shape sets (``enumerate_jobs(shapes=...)``):

* ``square``: every square tile t x t for t = 1 .. min(P, Q), and, when the layer's plane is not square,
  also the whole plane Q x P (so the layer-by-layer baseline, SLC on the whole layer, is always there).
  On square layers this is exactly what the original benchmarked (AlexNet_Simba: 7 x 108 = 756 runs).
* ``all``: every rectangle h x w with 1 <= h <= Q and 1 <= w <= P.
* ``needed``: the entries the search will ask for, given by the caller as (layer, variant, h, w) keys
  (``deepfrack.search.required_shapes`` computes them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepfrack.cost.table import CostKey
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS, Variant, parse_variant
from deepfrack.workload.layer import Layer, Network

SHAPE_SETS: tuple[str, ...] = ("square", "needed", "all")
#: the most entries one benchmark computes (docs/benchmark.md, "Input limits"): at 10-20 ms per entry
#: on two cores, already a day's work
MAX_ENTRIES = 5_000_000
#: the most layers a benchmarked network may have
MAX_LAYERS = 4096


@dataclass(frozen=True, slots=True)
class Job:
    """Cost one output tile of one layer under one residency variant.

    layer_index: 0-based position in the network. layer: the network's layer with ``P = tile_w`` and
    ``Q = tile_h`` (its name kept for messages). tile_h, tile_w: the output tile (rows, columns).
    warm: work shared between the jobs of one layer problem, computed once and handed to the jobs that
    use it (``Warm``; the built-in mapper's warm-start ladder). It saves time only: a job's result
    never depends on it, and it is not part of the job's identity.
    """

    layer_index: int
    layer: Layer
    variant: Variant
    tile_h: int
    tile_w: int
    warm: Warm | None = field(default=None, compare=False)

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


@dataclass(frozen=True)
class Warm:
    """Shared work for one job (see ``backend.WarmStarts``): ``given`` holds the parts already computed
    ({index: data}); ``compute_to``, when set, asks the evaluator to also compute and return every part
    up to that index (in ``Outcome.shared``)."""

    given: dict[int, Any] = field(default_factory=dict)
    compute_to: int | None = None


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
    needed: Iterable[CostKey] | None = None,
) -> list[Job]:
    """Every job of a benchmark, ordered by (layer, variant, tile_h, tile_w).

    ``shapes`` is "square", "all" or "needed" (module docstring). For "needed", ``needed`` holds the
    (layer, variant, h, w) entries to cost; those whose variant is not in ``variants`` are skipped. A
    shape outside the layer's plane, or "needed" without ``needed``, is a ValueError (a bug in the
    caller, not bad user input).
    """
    if shapes not in SHAPE_SETS:
        raise ValueError(f"unknown shape set {shapes!r}; expected one of {', '.join(SHAPE_SETS)}")
    vs = _variants(variants)
    if shapes == "needed" and needed is None:
        raise ValueError('shapes="needed" takes the entries to cost: needed=required_shapes(network, ...)')
    needed = list(needed) if needed is not None else None
    check_size(network, shapes, vs, needed)
    jobs: list[Job] = []
    if needed is not None:
        wanted = set(vs)
        order = {v: i for i, v in enumerate(VARIANTS)}
        keys = {(int(l), Variant(v), int(h), int(w)) for l, v, h, w in needed}
        for l, v, h, w in sorted(keys, key=lambda k: (k[0], order[k[1]], k[2], k[3])):
            if v in wanted:
                jobs.append(make_job(network, l, v, h, w))
        return jobs
    for i, layer in enumerate(network.layers):
        shape_list = square_shapes(layer) if shapes == "square" else all_shapes(layer)
        # one tile problem per shape, shared by the variants (``--shapes all`` makes ~1e6 jobs on VGG16)
        tiles = [(h, w, dataclasses.replace(layer, P=w, Q=h)) for h, w in shape_list]
        for v in vs:
            jobs.extend(Job(i, tile, v, h, w) for h, w, tile in tiles)
    return jobs


def count_entries(
    network: Network, shapes: str, variants: Sequence[Variant], needed: Sequence[CostKey] | None = None
) -> int:
    """How many entries ``enumerate_jobs`` would make (without making them)."""
    if shapes == "needed":
        wanted = set(variants)
        return sum(1 for k in needed or () if Variant(k[1]) in wanted)
    per_variant = sum(
        min(lay.P, lay.Q) + (lay.P != lay.Q) if shapes == "square" else lay.P * lay.Q
        for lay in network.layers
    )
    return per_variant * len(variants)


def check_layers(network: Network) -> None:
    """InputError (naming the workload) when the network has more than MAX_LAYERS layers."""
    if len(network) > MAX_LAYERS:
        raise InputError(
            network.source, None, f"{len(network):,} layers; deepfrack benchmarks at most {MAX_LAYERS:,}"
        )


def check_size(
    network: Network, shapes: str, variants: Sequence[Variant], needed: Sequence[CostKey] | None = None
) -> None:
    """InputError (naming the workload) when the benchmark would need more than MAX_LAYERS layers or
    MAX_ENTRIES entries, with the number it would need: refused up front rather than run for days."""
    check_layers(network)
    n = count_entries(network, shapes, variants, needed)
    if n > MAX_ENTRIES:
        hint = "; benchmark the shapes the search needs (shapes 'needed')" if shapes == "all" else ""
        raise InputError(
            network.source,
            None,
            f"shapes {shapes!r} make {n:,} entries to benchmark, more than deepfrack computes in one run "
            f"({MAX_ENTRIES:,}){hint}",
        )
