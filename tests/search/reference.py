"""A deliberately simple reference search, independent of deepfrack.search: every partition, every
tile shape, every caching subset, tile by tile. No tile classes, no knapsack, no numpy. Only for
small networks (it is exponential)."""

from __future__ import annotations

import itertools
import math
from functools import cache

from deepfrack.cost.table import CostTable
from deepfrack.residency import Variant
from deepfrack.workload.layer import Network

UNCACHED = {"first": Variant.Start, "middle": Variant.LBLC, "last": Variant.ELBLC}
CACHED = {"first": Variant.OutWCC, "middle": Variant.WCC, "last": Variant.EWCC}


def needed_span(out_lo: int, out_hi: int, stride: int, dilation: int, kernel: int, pad: int, in_size: int):
    """Input rows for output rows [out_lo, out_hi): the span of every kernel tap (padding included),
    found by visiting the taps, then clipped to the plane (DESIGN.md 3.3 pins this bounding span: with
    dilation it may include a row at a clipped edge that no tap reads)."""
    taps = [y * stride - pad + k * dilation for y in range(out_lo, out_hi) for k in range(kernel)]
    return max(min(taps), 0), min(max(taps) + 1, in_size)


def legacy_span(out_lo: int, out_hi: int, stride: int, dilation: int, kernel: int, in_size: int):
    """The original's rule with a table that has every size: t_in = (t-1)*stride + extent, at most the
    plane."""
    t = min((out_hi - out_lo - 1) * stride + (kernel - 1) * dilation + 1, in_size)
    lo = min(out_lo * stride, in_size - t)
    return lo, lo + t


def regions_of_tile(net: Network, first: int, last: int, tile, rule: str):
    """{layer: (row_lo, row_hi, col_lo, col_hi)} for one tile (row_lo, row_hi, col_lo, col_hi) of ``last``."""
    out = {last: tile}
    for l in range(last, first, -1):
        lay = net.layers[l]
        prev = net.layers[l - 1]
        r0, r1, c0, c1 = out[l]
        if rule == "exact":
            rows = needed_span(r0, r1, lay.Hstride, lay.Hdilation, lay.S, lay.pad[2], prev.Q)
            cols = needed_span(c0, c1, lay.Wstride, lay.Wdilation, lay.R, lay.pad[0], prev.P)
        else:
            rows = legacy_span(r0, r1, lay.Hstride, lay.Hdilation, lay.S, prev.Q)
            cols = legacy_span(c0, c1, lay.Wstride, lay.Wdilation, lay.R, prev.P)
        out[l - 1] = (rows[0], rows[1], cols[0], cols[1])
    return out


def tiles_of(q: int, p: int, th: int, tw: int):
    tiles = []
    r = 0
    while r < q:
        c = 0
        while c < p:
            tiles.append((r, min(r + th, q), c, min(c + tw, p)))
            c += tw
        r += th
    return tiles


def value(rec, metric: str) -> float:
    return rec.energy_pJ if metric == "energy" else rec.cycles


def reference_optimum(
    net: Network,
    table: CostTable,
    homes: dict[str, str] | None,
    words: dict[str, int] | None,
    rule: str = "exact",
    max_depth: int | None = None,
    metric: str = "energy",
) -> float:
    """The minimum total cost over every partition, tiling (every th, tw; squares under legacy) and
    caching subset, checking capacity at every (tile, layer) step."""
    n = len(net.layers)

    def position(l, first, last):
        return "first" if l == first else "last" if l == last else "middle"

    @cache
    def stack_cost(first: int, last: int) -> float:
        if first == last:
            lay = net.layers[first]
            rec = table.get(first, Variant.SLC, lay.Q, lay.P)
            return value(rec, metric) if rec is not None else math.inf
        if rule == "exact" and any(u in net.unchained for u in range(first + 1, last + 1)):
            return math.inf
        q, p = net.layers[last].Q, net.layers[last].P
        best = math.inf
        weighted = [l for l in range(first, last + 1) if net.layers[l].weights > 0]
        for th in range(1, q + 1):
            for tw in range(1, p + 1):
                if rule == "legacy" and th != tw:
                    continue
                tiles = tiles_of(q, p, th, tw)
                regions = [regions_of_tile(net, first, last, t, rule) for t in tiles]
                for bits in itertools.product((False, True), repeat=len(weighted)):
                    cached = {l for l, b in zip(weighted, bits) if b}
                    total = 0.0
                    ok = True
                    for k, reg in enumerate(regions):
                        for l in range(first, last + 1):
                            pos = position(l, first, last)
                            v = CACHED[pos] if (l in cached and k > 0) else UNCACHED[pos]
                            r0, r1, c0, c1 = reg[l]
                            rec = table.get(l, v, r1 - r0, c1 - c0)
                            if rec is None:
                                ok = False
                                break
                            total += value(rec, metric)
                            if homes is not None and not fits(net, homes, words, cached, reg, l, first, last):
                                ok = False
                                break
                        if not ok:
                            break
                    if ok:
                        best = min(best, total)
        return best

    best = math.inf
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        stacks = [(bounds[k], bounds[k + 1] - 1) for k in range(len(bounds) - 1)]
        if max_depth is not None and any(b - a + 1 > max_depth for a, b in stacks):
            continue
        best = min(best, sum(stack_cost(a, b) for a, b in stacks))
    return best


def fits(net, homes, words, cached, reg, l, first, last) -> bool:
    """Live words per home level at step (tile, layer l) <= that level's words."""
    live: dict[str, int] = {}
    for c in cached:
        live[homes["Weights"]] = live.get(homes["Weights"], 0) + net.layers[c].weights
    lay = net.layers[l]
    if l != first:
        r0, r1, c0, c1 = reg[l - 1]
        live[homes["Inputs"]] = live.get(homes["Inputs"], 0) + lay.N * lay.C * (r1 - r0) * (c1 - c0)
    if l != last:
        r0, r1, c0, c1 = reg[l]
        live[homes["Outputs"]] = live.get(homes["Outputs"], 0) + lay.N * lay.M * (r1 - r0) * (c1 - c0)
    return all(v <= words[name] for name, v in live.items() if words.get(name) is not None)
