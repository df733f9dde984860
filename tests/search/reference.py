"""A deliberately simple reference search, independent of deepfrack.search: every partition, every
tile shape, every caching subset, tile by tile. No tile classes, no knapsack, no numpy. Only for
small networks (it is exponential). ``reference_optimum`` is the chain search (both rules);
``dag_stack_cost`` / ``reference_dag_optimum`` cost stacks of a graph under the exact rule."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

from deepfrack.cost.table import CostTable
from deepfrack.residency import Variant
from deepfrack.workload.layer import Network

UNCACHED = {"first": Variant.Start, "middle": Variant.LBLC, "last": Variant.ELBLC}
CACHED = {"first": Variant.OutWCC, "middle": Variant.WCC, "last": Variant.EWCC}


def needed_span(out_lo: int, out_hi: int, stride: int, dilation: int, kernel: int, pad: int, in_size: int):
    """Input rows for output rows [out_lo, out_hi): the span of every kernel tap (padding included),
    found by visiting the taps, then clipped to the plane (docs/search.md keeps this bounding span: with
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


# --------------------------------------------------------------------------------------------- #
# graphs (exact rule): written from the pinned semantics in docs/search.md, not from deepfrack.search
# --------------------------------------------------------------------------------------------- #
def readers_of(net: Network) -> list[list[int]]:
    """For every layer, the layers that read its output (from ``net.inputs`` directly)."""
    out: list[list[int]] = [[] for _ in net.layers]
    for i, ops in enumerate(net.inputs):
        for p in set(ops):
            if p >= 0:
                out[p].append(i)
    return out


def single_exit(net: Network, first: int, last: int) -> bool:
    """Every layer of first..last but the last is read, and only by layers of the stack."""
    readers = readers_of(net)
    return all(readers[l] and max(readers[l]) <= last for l in range(first, last))


def dag_regions(net: Network, first: int, last: int, tile):
    """{layer: (row_lo, row_hi, col_lo, col_hi)} for one tile of ``last``: walking back, a layer's
    region is the bounding box of what its readers (all in the stack) need, tap by tap."""
    readers = readers_of(net)
    out = {last: tile}
    for l in range(last - 1, first - 1, -1):
        plane = net.layers[l]
        boxes = []
        for c in readers[l]:
            lay = net.layers[c]
            r0, r1, c0, c1 = out[c]
            rows = needed_span(r0, r1, lay.Hstride, lay.Hdilation, lay.S, lay.pad[2], plane.Q)
            cols = needed_span(c0, c1, lay.Wstride, lay.Wdilation, lay.R, lay.pad[0], plane.P)
            boxes.append((rows[0], rows[1], cols[0], cols[1]))
        out[l] = (
            min(b[0] for b in boxes),
            max(b[1] for b in boxes),
            min(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    return out


def dram_share(net: Network, l: int, first: int) -> float:
    """Share of layer l's input words made outside the stack starting at ``first``: by operands for
    an add, by channels for a concat (an operand that is the network input carries what is left of C)."""
    ops = net.inputs[l]
    lay = net.layers[l]
    if lay.kind == "concat":
        layer_ch = sum(net.layers[p].M for p in ops if p >= 0)
        net_ch = (lay.C - layer_ch) / max(1, sum(p < 0 for p in ops))
        ch = [net.layers[p].M if p >= 0 else net_ch for p in ops]
    else:
        ch = [1.0] * len(ops)
    return sum(c for c, p in zip(ch, ops) if p < first) / sum(ch)


def held_words(net: Network, readers, reg, first: int, last: int, l: int) -> int:
    """Words of the in-stack tensors made before layer l in this tile that l or a later layer reads,
    each once, as its first such reader reads it (a concat: the tensor's channels; others: their C)."""
    total = 0
    for t in range(first, l):
        later = [c for c in readers[t] if l <= c <= last]
        if later:
            r = net.layers[min(later)]
            ch = net.layers[t].M if r.kind == "concat" else r.C
            r0, r1, c0, c1 = reg[t]
            total += r.N * ch * (r1 - r0) * (c1 - c0)
    return total


def dag_fits(net, homes, words, readers, cached, reg, l, first, last) -> bool:
    """Live words per home level at step (tile, layer l) within that level's words; a tensor without a
    home level cannot stay on chip."""
    live: dict[str | None, int] = {}

    def put(tensor: str, n: int) -> None:
        if n:
            live[homes.get(tensor)] = live.get(homes.get(tensor), 0) + n

    put("Weights", sum(net.layers[c].weights for c in cached))
    put("Inputs", held_words(net, readers, reg, first, last, l))
    if l != last:
        lay = net.layers[l]
        r0, r1, c0, c1 = reg[l]
        put("Outputs", lay.N * lay.M * (r1 - r0) * (c1 - c0))
    for name, n in live.items():
        if name is None:
            return False
        if words.get(name) is not None and n > words[name]:
            return False
    return True


def dag_stack_cost(
    net: Network,
    table: CostTable,
    first: int,
    last: int,
    th: int,
    tw: int,
    cached: frozenset[int] | set[int],
    homes: dict[str, str] | None,
    words: dict[str, int] | None,
    metric: str = "energy",
) -> float:
    """The cost of one stack (exact rule), tile by tile and layer by layer; inf when it breaks single
    exit, a (tile, layer) step does not fit, or the table lacks an entry."""
    if first == last:
        lay = net.layers[first]
        if (th, tw) != (lay.Q, lay.P) or cached:
            return math.inf
        rec = table.get(first, Variant.SLC, lay.Q, lay.P)
        return value(rec, metric) if rec is not None else math.inf
    if not single_exit(net, first, last):
        return math.inf
    readers = readers_of(net)
    q, p = net.layers[last].Q, net.layers[last].P
    total = 0.0
    for k, tile in enumerate(tiles_of(q, p, th, tw)):
        reg = dag_regions(net, first, last, tile)
        for l in range(first, last + 1):
            if homes is not None and not dag_fits(net, homes, words, readers, cached, reg, l, first, last):
                return math.inf
            reuse = l in cached and k > 0
            if l == last:
                on = Variant.EWCC if reuse else Variant.ELBLC
            else:
                on = Variant.WCC if reuse else Variant.LBLC
            f = dram_share(net, l, first)
            r0, r1, c0, c1 = reg[l]
            shape = (r1 - r0, c1 - c0)
            if f == 0:
                parts = [(on, 1.0)]
            elif f == 1:
                parts = [((Variant.OutWCC if reuse else Variant.Start), 1.0)]
            else:
                plain = Variant.ELBLC if l == last else Variant.LBLC
                parts = [(plain, 1.0 - f), ((Variant.SLC if l == last else Variant.Start), f)]
            for v, share in parts:
                rec = table.get(l, v, *shape)
                if rec is None:
                    return math.inf
                total += share * value(rec, metric)
    return total


@dataclass(frozen=True)
class RefStack:
    first: int
    last: int
    tile_shape: tuple[int, int]
    cached: tuple[int, ...]


@dataclass(frozen=True)
class RefOptimum:
    """The brute-force optimum: its value (pJ or cycles) and one schedule that reaches it."""

    value: float
    stacks: tuple[RefStack, ...]


def stack_choices(net: Network, first: int, last: int):
    """Every (tile shape, cached layers) of a stack: one for a single layer (SLC, whole plane), else
    every (th, tw) and every subset of its layers with weights."""
    q, p = net.layers[last].Q, net.layers[last].P
    if first == last:
        yield (q, p), frozenset()
        return
    weighted = [l for l in range(first, last + 1) if net.layers[l].weights > 0]
    for th in range(1, q + 1):
        for tw in range(1, p + 1):
            for bits in itertools.product((False, True), repeat=len(weighted)):
                yield (th, tw), frozenset(l for l, b in zip(weighted, bits) if b)


def partitions(n: int, max_depth: int | None = None):
    """Every cover of layers 0..n-1 by contiguous runs, as (first, last) lists."""
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        stacks = [(bounds[k], bounds[k + 1] - 1) for k in range(len(bounds) - 1)]
        if max_depth is None or all(b - a + 1 <= max_depth for a, b in stacks):
            yield stacks


def reference_dag_optimum(
    net: Network,
    table: CostTable,
    homes: dict[str, str] | None,
    words: dict[str, int] | None,
    metric: str = "energy",
    max_depth: int | None = None,
) -> RefOptimum:
    """The minimum ``metric`` over every partition into single-exit stacks, every (th, tw) and every
    caching subset, costed tile by tile (``dag_stack_cost``), with a schedule that reaches it (ties:
    the first found). Works on chains too. Exponential: small networks only."""

    @cache
    def best_stack(first: int, last: int) -> tuple[float, RefStack | None]:
        best: tuple[float, RefStack | None] = (math.inf, None)
        for shape, cached in stack_choices(net, first, last):
            v = dag_stack_cost(net, table, first, last, *shape, cached, homes, words, metric)
            if v < best[0]:
                best = (v, RefStack(first, last, shape, tuple(sorted(cached))))
        return best

    best = RefOptimum(math.inf, ())
    for stacks in partitions(len(net.layers), max_depth):
        if not all(single_exit(net, a, b) for a, b in stacks):
            continue
        parts = [best_stack(a, b) for a, b in stacks]
        total = sum(v for v, _ in parts)
        if total < best.value:
            best = RefOptimum(total, tuple(s for _, s in parts))  # type: ignore[misc]
    return best
