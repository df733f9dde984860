"""Tilings of a stack's output plane (docs/search.md, "The tiling space").

A tiling is a uniform grid with remainder: tile shape (th, tw) on the stack's last layer, bands of th
rows and tw columns, the last band smaller when the extent does not divide. Tiles are computed in
row-major order from the top-left tile (the one that pays the weight loads).

Tile-size candidates, per axis (height and width independently):

* an extent of at most ``FULL_SPACE_EXTENT`` (32) rows or columns: every size 1..extent;
* a larger extent E: every divisor of E, every power of two below E, E itself, and ceil(E / n) for
  every band count n = 1..``MAX_BANDS`` (32), i.e. the most even split into n bands.

The search is exact within the product of the two axes' candidates.
"""

from __future__ import annotations

import math

from deepfrack.rect import Rect

#: up to this extent (rows or columns) every tile size is a candidate
FULL_SPACE_EXTENT = 32
#: for larger extents, the most even split into n bands for every n up to this
MAX_BANDS = 32


def tile_size_candidates(extent: int) -> tuple[int, ...]:
    """Candidate tile sizes (ascending) along one axis of ``extent`` rows or columns."""
    if extent <= 0:
        raise ValueError(f"extent must be positive, got {extent}")
    if extent <= FULL_SPACE_EXTENT:
        return tuple(range(1, extent + 1))
    sizes = {extent}
    sizes.update(d for d in range(1, math.isqrt(extent) + 1) if extent % d == 0)
    sizes.update(extent // d for d in list(sizes) if extent % d == 0)
    p = 1
    while p < extent:
        sizes.add(p)
        p *= 2
    sizes.update(-(-extent // n) for n in range(1, MAX_BANDS + 1))
    return tuple(sorted(sizes))


def square_candidates(height: int, width: int) -> tuple[int, ...]:
    """Square tile sizes t (legacy rule): candidates of either axis that fit both, ascending."""
    both = set(tile_size_candidates(height)) | set(tile_size_candidates(width))
    return tuple(sorted(t for t in both if t <= min(height, width)))


def band_bounds(extent: int, size: int) -> list[tuple[int, int]]:
    """[start, end) of each band of ``size`` along an axis of ``extent``, the last one smaller."""
    if not 0 < size <= extent:
        raise ValueError(f"tile size {size} must be in 1..{extent}")
    return [(a, min(a + size, extent)) for a in range(0, extent, size)]


def grid(plane: tuple[int, int], tile_shape: tuple[int, int]) -> tuple[Rect, ...]:
    """The tiles of a uniform grid with remainder over ``plane`` (height, width), row-major from the
    top-left."""
    rows = band_bounds(plane[0], tile_shape[0])
    cols = band_bounds(plane[1], tile_shape[1])
    return tuple(Rect(r0, c0, r1 - r0, c1 - c0) for r0, r1 in rows for c0, c1 in cols)
