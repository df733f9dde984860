"""An independent coverage check of the regions ``evaluate`` gives on graphs (hypothesis), written from
first principles with rectangles and kernel taps, not with deepfrack.search's walks:

* the last layer's tiles cover its plane exactly once, in row-major order;
* for every tile, every value a layer of the stack reads from a tensor made in the stack (every kernel
  tap, padding excluded; the same region of each input of an add or concat) lies in the region of
  that tensor computed in the same tile;
* each region is no larger than that: the bounding box of what the layer's readers need;
* fused MACs are the MACs of the regions, and the pixels no tile computes are counted.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.rect import Rect
from deepfrack.search import StackSpec, evaluate, tile_size_candidates
from deepfrack.search.graph import single_exit_lowest
from deepfrack.search.plan import walk_axis
from deepfrack.workload.layer import JOIN_KINDS, Layer, Network
from tests.search.nets import random_dag
from tests.search.reference import dag_regions, tiles_of
from tests.search.test_coverage import _touched
from tests.synthetic import synthetic_table

seeds = st.integers(0, 2**32 - 1)


def reads(layer: Layer, region: Rect, plane: tuple[int, int]) -> set[tuple[int, int]]:
    """Every input pixel that some kernel tap of an output pixel in ``region`` reads (taps in the
    padding read nothing); a join reads the same pixels of each input."""
    if layer.kind in JOIN_KINDS:
        return {(r, c) for r in range(region.row, region.row_end) for c in range(region.col, region.col_end)}
    return _touched(layer, region, plane)


def tap_span(layer: Layer, region: Rect, plane: tuple[int, int], axis: int) -> tuple[int, int]:
    """The pinned span of one axis: from the first tap to the last one (padding included), clipped."""
    if layer.kind in JOIN_KINDS:
        return (region.row, region.row_end) if axis == 0 else (region.col, region.col_end)
    left, _, top, _ = layer.pad
    if axis == 0:
        lo = region.row * layer.Hstride - top
        hi = (region.row_end - 1) * layer.Hstride - top + (layer.S - 1) * layer.Hdilation + 1
    else:
        lo = region.col * layer.Wstride - left
        hi = (region.col_end - 1) * layer.Wstride - left + (layer.R - 1) * layer.Wdilation + 1
    return max(lo, 0), min(hi, plane[axis])


def random_partition(net: Network, draw) -> list[StackSpec]:
    """A random cover of the network by single-exit stacks with random tile shapes."""
    n = len(net.layers)
    readers = [[c for c in range(n) if p in net.inputs[c]] for p in range(n)]
    specs, first = [], 0
    while first < n:
        ok = [
            last
            for last in range(first, n)
            if all(readers[l] and max(readers[l]) <= last for l in range(first, last))
        ]
        last = draw(st.sampled_from(ok))
        q, p = net.layers[last].out_plane
        shape = (q, p) if first == last else (draw(st.integers(1, q)), draw(st.integers(1, p)))
        specs.append(StackSpec(first, last, shape))
        first = last + 1
    return specs


def check_stack(net: Network, stack) -> None:
    plane_of = {sl.layer: net.layers[sl.layer].out_plane for sl in stack.layers}
    inside = {sl.layer for sl in stack.layers}
    # the last layer's tiles: row-major, every pixel exactly once
    q, p = plane_of[stack.last]
    count = np.zeros((q, p), dtype=int)
    for t in stack.tiles:
        assert t.h > 0 and t.w > 0
        count[t.row : t.row_end, t.col : t.col_end] += 1
    assert (count == 1).all()
    assert list(stack.tiles) == sorted(stack.tiles)
    assert stack.layers[-1].regions == stack.tiles
    region = {sl.layer: sl.regions for sl in stack.layers}
    for k in range(len(stack.tiles)):
        for sl in stack.layers:
            r = sl.regions[k]
            assert r.h > 0 and r.w > 0 and Rect(0, 0, *plane_of[sl.layer]).contains(r)
            lay = net.layers[sl.layer]
            for t in set(net.inputs[sl.layer]):
                if t not in inside:
                    continue
                have = region[t][k]
                # every value read is computed in this tile
                for y, x in reads(lay, r, plane_of[t]):
                    assert have.row <= y < have.row_end and have.col <= x < have.col_end, (sl.layer, t, k)
        # and no more than the bounding box of what the readers need
        for sl in stack.layers[:-1]:
            readers = [c for c in inside if sl.layer in net.inputs[c]]
            assert readers  # single exit: every layer but the last is read inside the stack
            spans = [
                [tap_span(net.layers[c], region[c][k], plane_of[sl.layer], axis) for c in readers]
                for axis in (0, 1)
            ]
            (r0, r1), (c0, c1) = ((min(a for a, _ in s), max(b for _, b in s)) for s in spans)
            assert sl.regions[k] == Rect(r0, c0, r1 - r0, c1 - c0)
    # MACs of the regions; pixels that no tile computes
    macs, skipped, skipped_macs = 0, 0, 0
    for sl in stack.layers:
        lay = net.layers[sl.layer]
        done = np.zeros(plane_of[sl.layer], dtype=bool)
        for r in sl.regions:
            macs += lay.macs_for(r.h, r.w)
            done[r.row : r.row_end, r.col : r.col_end] = True
        skipped += int((~done).sum())
        skipped_macs += lay.macs_for(1, 1) * int((~done).sum())
    assert stack.macs == macs
    assert (stack.skipped_pixels, stack.skipped_macs) == (skipped, skipped_macs)


@settings(max_examples=150, deadline=None)
@given(seed=seeds, data=st.data())
def test_every_value_read_is_computed_in_its_tile(seed, data):
    net = random_dag(np.random.default_rng(seed), max_blocks=3, max_layers=10, max_last=10)
    table = synthetic_table(net, seed=1)
    specs = random_partition(net, data.draw)
    sched = evaluate(net, table, specs)
    assert [(s.first, s.last) for s in sched.stacks] == [(s.first, s.last) for s in specs]
    for stack in sched.stacks:
        check_stack(net, stack)
    base = sched.layer_by_layer.macs
    # fused = layer by layer - skipped + halo recompute (the recompute is never negative)
    assert sched.total.macs >= base - sched.skipped_macs


@settings(max_examples=100, deadline=None)
@given(seed=seeds, data=st.data())
def test_walk_of_all_candidates_matches_the_reference_tile_by_tile(seed, data):
    """plan.walk_axis on a graph (every candidate size at once, as the search uses it) gives, for every
    tile of a drawn candidate, the regions of the tap-by-tap reference."""
    net = random_dag(np.random.default_rng(seed), max_blocks=3, max_layers=10, max_last=10)
    last = data.draw(st.integers(1, len(net.layers) - 1))
    lowest = single_exit_lowest(net, last)
    q, p = net.layers[last].out_plane
    sizes = (np.array(tile_size_candidates(q)), np.array(tile_size_candidates(p)))
    walks = [walk_axis(net, last, lowest, axis, sizes[axis], "exact") for axis in (0, 1)]
    kh, kw = data.draw(st.integers(0, sizes[0].size - 1)), data.draw(st.integers(0, sizes[1].size - 1))
    th, tw = int(sizes[0][kh]), int(sizes[1][kw])
    for tile in tiles_of(q, p, th, tw):
        want = dag_regions(net, lowest, last, tile)
        rband = np.flatnonzero(walks[0].owner == kh)[tile[0] // th]
        cband = np.flatnonzero(walks[1].owner == kw)[tile[2] // tw]
        for l in range(lowest, last + 1):
            (rs, rl), (cs, cl) = walks[0].spans(l), walks[1].spans(l)
            r0, r1, c0, c1 = want[l]
            assert (rs[rband], rl[rband], cs[cband], cl[cband]) == (r0, r1 - r0, c0, c1 - c0)
