"""Receptive fields and tilings (hypothesis): the regions of every layer cover what the next layer
needs, the last layer's tiles cover its plane exactly once, and the receptive field's own properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.rect import Rect
from deepfrack.search import grid, receptive_field, stack_regions, tile_size_candidates
from deepfrack.search.plan import walk_axis
from deepfrack.search.tiling import FULL_SPACE_EXTENT, band_bounds
from deepfrack.workload.layer import Layer
from tests.search.nets import random_network

seeds = st.integers(0, 2**32 - 1)


def _tile_shape(draw, plane):
    return (draw(st.integers(1, plane[0])), draw(st.integers(1, plane[1])))


def reg_nonempty(r: Rect) -> bool:
    return r.h > 0 and r.w > 0


def _touched(layer: Layer, region: Rect, in_plane: tuple[int, int]) -> set[tuple[int, int]]:
    """Every input pixel some kernel tap of an output pixel in ``region`` reads (brute force)."""
    left, _, top, _ = layer.pad
    rows = {
        y * layer.Hstride - top + k * layer.Hdilation
        for y in range(region.row, region.row_end)
        for k in range(layer.S)
    }
    cols = {
        x * layer.Wstride - left + k * layer.Wdilation
        for x in range(region.col, region.col_end)
        for k in range(layer.R)
    }
    return {(r, c) for r in rows if 0 <= r < in_plane[0] for c in cols if 0 <= c < in_plane[1]}


@settings(max_examples=150, deadline=None)
@given(seed=seeds, data=st.data())
def test_regions_cover_what_the_next_layer_needs(seed, data):
    net = random_network(np.random.default_rng(seed), max_layers=5, max_last=12)
    last = len(net.layers) - 1
    first = data.draw(st.integers(0, last - 1))
    plane = net.layers[last].out_plane
    tiles = grid(plane, _tile_shape(data.draw, plane))
    for tile in tiles:
        regions = stack_regions(net, first, last, tile)
        assert regions[-1] == tile
        for k in range(1, len(regions)):
            layer = net.layers[first + k]
            prev = regions[k - 1]
            in_plane = net.layers[first + k - 1].out_plane
            assert Rect(0, 0, *in_plane).contains(prev)
            needed = _touched(layer, regions[k], in_plane)
            assert reg_nonempty(prev)
            assert all(prev.row <= r < prev.row_end and prev.col <= c < prev.col_end for r, c in needed)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 80), w=st.integers(1, 80), data=st.data())
def test_tiles_cover_the_plane_exactly_once(h, w, data):
    shape = _tile_shape(data.draw, (h, w))
    tiles = grid((h, w), shape)
    cover = np.zeros((h, w), dtype=int)
    for t in tiles:
        assert t.h > 0 and t.w > 0
        cover[t.row : t.row_end, t.col : t.col_end] += 1
    assert (cover == 1).all()
    # row-major from the top-left, uniform bands with only the last one smaller
    assert tiles[0][:2] == (0, 0)
    assert list(tiles) == sorted(tiles, key=lambda t: (t.row, t.col))
    assert {t.h for t in tiles if t.row_end < h} <= {shape[0]}
    assert {t.w for t in tiles if t.col_end < w} <= {shape[1]}


@settings(max_examples=150, deadline=None)
@given(seed=seeds, data=st.data())
def test_receptive_field_properties(seed, data):
    net = random_network(np.random.default_rng(seed), max_layers=3, max_last=12)
    k = data.draw(st.integers(1, len(net.layers) - 1))
    layer, in_plane = net.layers[k], net.layers[k - 1].out_plane
    q, p = layer.out_plane
    whole = receptive_field(layer, Rect(0, 0, q, p), in_plane)
    # the whole output needs the input minus at most the floor remainder (stride - 1 rows/columns)
    assert whole.row == 0 and whole.col == 0
    assert in_plane[0] - layer.Hstride < whole.h <= in_plane[0]
    assert in_plane[1] - layer.Wstride < whole.w <= in_plane[1]
    # monotone: a sub-region needs a sub-region
    r0, r1 = sorted(data.draw(st.lists(st.integers(0, q), min_size=2, max_size=2, unique=True)))
    c0, c1 = sorted(data.draw(st.lists(st.integers(0, p), min_size=2, max_size=2, unique=True)))
    outer = Rect(r0, c0, r1 - r0, c1 - c0)
    inner = Rect(r0, c0, max(1, (r1 - r0) // 2), max(1, (c1 - c0) // 2))
    assert receptive_field(layer, outer, in_plane).contains(receptive_field(layer, inner, in_plane))
    # splitting a region in two bands of rows: the two needs start and end where the whole one does
    # (they overlap by the halo when the kernel is taller than the stride)
    if r1 - r0 >= 2:
        mid = (r0 + r1) // 2
        top = receptive_field(layer, Rect(r0, c0, mid - r0, c1 - c0), in_plane)
        bot = receptive_field(layer, Rect(mid, c0, r1 - mid, c1 - c0), in_plane)
        both = receptive_field(layer, outer, in_plane)
        assert top.row == both.row and bot.row_end == both.row_end
        assert both.contains(top) and both.contains(bot)
        if layer.kernel_extent[0] > layer.Hstride and top.row_end < in_plane[0] and bot.row > 0:
            assert top.row_end > bot.row


@settings(max_examples=100, deadline=None)
@given(seed=seeds, data=st.data())
def test_walk_of_all_candidates_matches_one_tile_at_a_time(seed, data):
    """The vectorized band walk (all candidate sizes at once) agrees with stack_regions tile by tile."""
    net = random_network(np.random.default_rng(seed), max_layers=4, max_last=10)
    last = len(net.layers) - 1
    first = data.draw(st.integers(0, last - 1))
    q, p = net.layers[last].out_plane
    sizes = (np.array(tile_size_candidates(q)), np.array(tile_size_candidates(p)))
    walks = [walk_axis(net, last, first, axis, sizes[axis], "exact") for axis in (0, 1)]
    kh, kw = data.draw(st.integers(0, sizes[0].size - 1)), data.draw(st.integers(0, sizes[1].size - 1))
    tiles = grid((q, p), (int(sizes[0][kh]), int(sizes[1][kw])))
    for t in tiles:
        regions = stack_regions(net, first, last, t)
        for l, reg in zip(range(first, last + 1), regions):
            rs, rl = walks[0].spans(l)
            cs, cl = walks[1].spans(l)
            rband = np.flatnonzero(walks[0].owner == kh)[t.row // int(sizes[0][kh])]
            cband = np.flatnonzero(walks[1].owner == kw)[t.col // int(sizes[1][kw])]
            assert (rs[rband], rl[rband], cs[cband], cl[cband]) == (reg.row, reg.h, reg.col, reg.w)


def test_candidate_sizes():
    for e in (1, 7, 31, 32):
        assert tile_size_candidates(e) == tuple(range(1, e + 1))
    for e in (33, 55, 112, 224, 1000):
        c = set(tile_size_candidates(e))
        assert {d for d in range(1, e + 1) if e % d == 0} <= c
        assert {2**k for k in range(20) if 2**k <= e} <= c
        assert e in c and max(c) == e and min(c) >= 1
        assert {-(-e // n) for n in range(1, 33)} <= c
    assert len(tile_size_candidates(224)) < 60
    assert FULL_SPACE_EXTENT == 32
    assert band_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
