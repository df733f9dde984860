"""Schedules: the search's output, plain data.

A schedule is a list of stacks covering every layer once. Each stack has a tiling of its last layer's
output plane (a uniform grid ``tile_shape`` with remainders, tiles in row-major compute order), the
layers whose weights stay cached across tiles, and for every layer and tile the variant used and the
region of that layer's output computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deepfrack.rect import Rect
from deepfrack.residency import Variant


@dataclass(frozen=True)
class StackLayer:
    """One layer of a stack: per tile (in the stack's compute order) its variant and output region.

    A join that reads both tensors made in the stack and tensors made outside it (docs/search.md)
    costs ``on + dram_share x (dram - on)`` per tile: ``on`` the entry of ``variants``, ``dram`` the
    entry of ``dram_variant`` for the same region; ``dram_share`` is the share of its input words
    read from DRAM. For every other layer ``dram_variant`` is None and ``dram_share`` 0.
    """

    layer: int
    variants: tuple[Variant, ...]
    regions: tuple[Rect, ...]
    dram_variant: Variant | None = None
    dram_share: float = 0.0


@dataclass(frozen=True)
class Stack:
    """Layers ``first..last`` (0-based, inclusive) fused; a one-layer stack runs as SLC, one tile.

    energy_pJ / cycles / macs are the stack's totals (cycles None when the tables have none).
    ``skipped_pixels``: output pixels (positions on the planes of its layers) that no tile computes
    because no consumer in the stack reads them (e.g. the last row of an odd plane before a 2x2,
    stride-2 pool); ``skipped_macs``: the MACs they would have cost.
    """

    first: int
    last: int
    tile_shape: tuple[int, int]
    tiles: tuple[Rect, ...]
    cached_layers: tuple[int, ...]
    layers: tuple[StackLayer, ...]
    energy_pJ: float
    cycles: float | None
    macs: int
    skipped_pixels: int = 0
    skipped_macs: int = 0

    @property
    def depth(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Totals:
    energy_pJ: float
    cycles: float | None
    macs: int

    @property
    def energy_uJ(self) -> float:
        return self.energy_pJ * 1e-6


@dataclass(frozen=True)
class Schedule:
    """Stacks in network order, their total, and the layer-by-layer baseline."""

    stacks: tuple[Stack, ...]
    total: Totals
    layer_by_layer: Totals
    receptive_field: str = "exact"
    objective: str = "energy"

    @property
    def reduction(self) -> float:
        """Fraction of the layer-by-layer energy saved (0.25 = 25% less)."""
        base = self.layer_by_layer.energy_pJ
        return 0.0 if base == 0 else 1.0 - self.total.energy_pJ / base

    @property
    def recompute(self) -> float:
        """Extra MACs of the fused schedule over layer by layer, as a fraction (halo recomputation)."""
        base = self.layer_by_layer.macs
        return 0.0 if base == 0 else self.total.macs / base - 1.0

    @property
    def skipped_pixels(self) -> int:
        """Output pixels that no tile computes because no consumer reads them (``Stack``)."""
        return sum(s.skipped_pixels for s in self.stacks)

    @property
    def skipped_macs(self) -> int:
        """The MACs of ``skipped_pixels``: fused MACs = layer-by-layer MACs - skipped + halo recompute."""
        return sum(s.skipped_macs for s in self.stacks)


@dataclass(frozen=True)
class LayerClaim:
    """What a schedule file states about one layer of a stack (None: not stated): its output region
    and variant per tile, and, for a join that reads from DRAM too, its DRAM-input entry and share."""

    layer: int
    regions: tuple[Rect, ...] | None = None
    variants: tuple[Variant, ...] | None = None
    dram_variant: Variant | None = None
    dram_share: float | None = None


@dataclass(frozen=True)
class StackSpec:
    """What a user gives ``evaluate`` per stack: the rest is derived.

    ``tiles`` and ``layers`` (optional) are what a schedule file states besides: the last layer's tiles
    in compute order, and per layer of the stack (in order) a ``LayerClaim``. ``evaluate`` checks that
    they are what the rules give for ``tile_shape``.
    """

    first: int
    last: int
    tile_shape: tuple[int, int]
    cached_layers: tuple[int, ...] = ()
    tiles: tuple[Rect, ...] | None = None
    layers: tuple[LayerClaim, ...] | None = None


@dataclass
class SearchStats:
    """What the search looked at: for the log."""

    stacks_considered: int = 0
    tilings_considered: int = 0
    tilings_skipped_missing: int = 0
    tilings_skipped_capacity: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    knapsacks_solved: int = 0
    elapsed_s: float = 0.0
