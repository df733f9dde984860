"""Schedules: the search's output, plain data (DESIGN.md section 2).

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
    """One layer of a stack: per tile (in the stack's compute order) its variant and output region."""

    layer: int
    variants: tuple[Variant, ...]
    regions: tuple[Rect, ...]


@dataclass(frozen=True)
class Stack:
    """Layers ``first..last`` (0-based, inclusive) fused; a one-layer stack runs as SLC, one tile.

    energy_pJ / cycles / macs are the stack's totals (cycles None when the tables have none).
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
    """Stacks in network order, their total, and the layer-by-layer baseline (DESIGN.md 3.8)."""

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


@dataclass(frozen=True)
class StackSpec:
    """What a user gives ``evaluate`` per stack: the rest is derived."""

    first: int
    last: int
    tile_shape: tuple[int, int]
    cached_layers: tuple[int, ...] = ()


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
