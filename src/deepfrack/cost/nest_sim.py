"""Reference simulator of Timeloop's nest analysis (the oracle of the vectorized model).

This follows the algorithm of NVlabs/timeloop ``src/loop-analysis/nest-analysis.cpp`` (the
"legacy" point-set analysis, v2.x/v3.x) step by step, on axis-aligned boxes, for CNN-layer problems
(or any problem of three data spaces given by its projections) with perfect factorization, no skew
and no flattening:

* ``ComputeDeltas`` walks the nest from the outermost loop. A temporal loop runs only its iterations
  #0 and #1 and scales what #1 returns by (bound - 1) ("uniform temporal extrapolation"); the
  numbers of epochs multiply accordingly.
* At every loop the working set (the box the loops at and below it cover, translated by the
  current indices) is differenced with the set the same loop saw at its previous invocation. The
  residual is only kept while the set keeps moving by the same translation vector; when the
  translation changes, the whole set is fetched again (``SaveAndSubtractIfSameStride`` in
  src/workload/shape-models/operation-space.cpp). Two versions of that rule exist: ``legacy``
  (before timeloop commit a12fff5, January 2025: any change, including to or from a zero
  translation, resets) and ``stationary`` (after it: a zero translation neither resets nor updates
  the remembered stride).
* A spatial loop group simulates its first child only and obtains the others by translation
  ("uniform spatial extrapolation"); children whose deltas are equal share one parent access
  (multicast), and a child whose delta equals a mesh neighbour's previous delta can take it over a
  link instead (link transfers), when that lowers the parent's accesses.

The result is, per storage level and tensor, Timeloop's collapsed tile (size, access histogram by
multicast factor, fan-out, link transfers ...): the input of :mod:`deepfrack.cost.timeloop_post`.
It is exact but slow (2^k calls for k non-trivial temporal loops), so deepfrack uses it in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deepfrack.cost.nest import SPACE_X, TIME, LoopNest, projections
from deepfrack.dims import NT
from deepfrack.workload.layer import Layer

Box = tuple[tuple[int, ...], tuple[int, ...]]  # (low inclusive, high exclusive)
#: per data space, per rank, its (loop dimension, coefficient) terms
Projection = tuple[tuple[tuple[tuple[int, int], ...], ...], ...]
PointSet = tuple[Box, ...]  # disjoint boxes (Timeloop's MultiAAHR)


# --------------------------------------------------------------------------------------------- #
# point sets
# --------------------------------------------------------------------------------------------- #
def _box_size(b: Box) -> int:
    lo, hi = b
    n = 1
    for a, z in zip(lo, hi):
        n *= z - a
    return n


def ps_size(ps: PointSet) -> int:
    return sum(_box_size(b) for b in ps)


def _box_minus(a: Box, b: Box) -> list[Box]:
    """a \\ b as disjoint slabs, rank by rank (the slicing order of MultiAAHR::MultiSubtract)."""
    alo, ahi = a
    blo, bhi = b
    for r in range(len(alo)):
        if ahi[r] <= blo[r] or bhi[r] <= alo[r]:
            return [a]
    out: list[Box] = []
    mlo, mhi = list(alo), list(ahi)
    for r in range(len(alo)):
        if mlo[r] < blo[r]:
            hi = list(mhi)
            hi[r] = blo[r]
            out.append((tuple(mlo), tuple(hi)))
            mlo[r] = blo[r]
        if bhi[r] < mhi[r]:
            lo = list(mlo)
            lo[r] = bhi[r]
            out.append((tuple(lo), tuple(mhi)))
            mhi[r] = bhi[r]
    return out


def ps_minus(a: PointSet, b: PointSet) -> PointSet:
    cur = list(a)
    for bb in b:
        nxt: list[Box] = []
        for aa in cur:
            nxt.extend(_box_minus(aa, bb))
        cur = nxt
    return tuple(cur)


def ps_equal(a: PointSet, b: PointSet) -> bool:
    """MultiAAHR::operator== : same number of boxes and each box of a found in b."""
    return len(a) == len(b) and all(x in b for x in a)


def ps_translate(a: PointSet, t: tuple[int, ...]) -> PointSet:
    return tuple((tuple(l + d for l, d in zip(lo, t)), tuple(h + d for h, d in zip(hi, t))) for lo, hi in a)


def ps_translation(a: PointSet, b: PointSet) -> tuple[int, ...] | None:
    """Translation a -> b by weighted centroids, rounded (MultiAAHR::GetTranslation); a zero vector
    when either is empty."""
    order = len(a[0][0]) if a else (len(b[0][0]) if b else 4)
    sa = ps_size(a)
    sb = ps_size(b)
    if sa == 0 or sb == 0:
        return (0,) * order

    def centroid(ps: PointSet, total: int) -> list[float]:
        c = [0.0] * order
        for lo, hi in ps:
            sz = _box_size((lo, hi))
            for r in range(order):
                c[r] += (lo[r] + (hi[r] - 1 - lo[r]) / 2) * sz
        return [x / total for x in c]

    ca, cb = centroid(a, sa), centroid(b, sb)
    out = []
    for r in range(order):
        d = cb[r] - ca[r]
        # C's round(): half away from zero
        out.append(int(d + 0.5) if d >= 0 else -int(-d + 0.5))
    return tuple(out)


# --------------------------------------------------------------------------------------------- #
# results
# --------------------------------------------------------------------------------------------- #
@dataclass
class LoopTile:
    """Timeloop's per-loop DataMovementInfo for one tensor (only temporal and master-spatial loops)."""

    level: int  # the storage level of the loop
    size: int
    access: dict[tuple[int, int], float]
    link_transfers: int
    replication: int
    fanout: int
    boundary: bool
    master: bool


@dataclass
class CollapsedTile:
    """Timeloop's per-storage-level tile for one tensor, before masking (CollapseDataMovementNest)."""

    size: int
    access: dict[tuple[int, int], float]  # (multicast, scatter) -> accesses, per instance
    link_transfers: int
    replication: int
    fanout: int
    pfd: int = 0  # partition_fraction_denominator (0 for the outermost level)


@dataclass
class SimResult:
    """Per storage level (outermost first) and tensor, the collapsed tiles; and the
    compute iterations per MAC instance and the number of MAC instances used."""

    tiles: list[list[CollapsedTile]]  # [level][tensor]
    compute_accesses: float
    compute_replication: int
    x_expansion: list[int]  # per level, product of X spatial factors above it
    y_expansion: list[int]


@dataclass
class _State:
    last: list[PointSet] = field(default_factory=lambda: [(), (), ()])
    last_t: list[tuple[int, ...] | None] = field(default_factory=lambda: [None, None, None])
    max_size: list[int] = field(default_factory=lambda: [0, 0, 0])
    access: list[dict[tuple[int, int], float]] = field(default_factory=lambda: [{}, {}, {}])
    prev_spatial: dict[int, list[PointSet]] = field(default_factory=dict)
    link: list[int] = field(default_factory=lambda: [0, 0, 0])


class NestSimulator:
    """Run Timeloop's nest analysis on one loop nest. ``translation_rule`` is "legacy" or
    "stationary" (see the module docstring); ``link_transfers`` mirrors Timeloop's default (on).

    The problem is the CNN ``layer`` (its projections, ``deepfrack.cost.nest.projections``), or any
    problem of three data spaces given as ``projection``: per data space, per rank, the (loop dimension,
    coefficient) terms, over ``n_dims`` loop dimensions numbered as the nest's loops number them."""

    def __init__(
        self,
        nest: LoopNest,
        layer: Layer | None,
        translation_rule: str = "legacy",
        link_transfers: bool = True,
        projection: Projection | None = None,
        n_dims: int = 7,
    ):
        if translation_rule not in ("legacy", "stationary"):
            raise ValueError(f"unknown translation rule {translation_rule!r}")
        if (layer is None) == (projection is None):
            raise ValueError("give either a CNN layer or the projection of a problem")
        self.nest = nest
        self.loops = nest.loops
        self.proj = projection if projection is not None else projections(layer)  # type: ignore[arg-type]
        self.n_dims = n_dims if projection is not None else 7
        self.rule = translation_rule
        self.link_enabled = link_transfers
        n = len(self.loops)
        self.boundary = [False] * n
        for b in nest.boundaries:
            self.boundary[b] = True
        # master spatial = outermost loop of a run of spatial loops
        self.master = [False] * n
        for i, lp in enumerate(self.loops):
            if lp.spatial and (i == n - 1 or not self.loops[i + 1].spatial):
                self.master[i] = True
        # spatial elements above each loop (excluding its own group for a master)
        self.num_above = [1] * n
        prod = 1
        for i in range(n - 1, -1, -1):
            self.num_above[i] = prod
            if self.loops[i].spatial:
                prod *= self.loops[i].end
        self.fanout = [1] * n
        self.fanout_xy = [(1, 1)] * n
        for i in range(n):
            if self.master[i]:
                fx = fy = 1
                j = i
                while j >= 0 and self.loops[j].spatial:
                    if self.loops[j].kind == SPACE_X:
                        fx *= self.loops[j].end
                    else:
                        fy *= self.loops[j].end
                    j -= 1
                self.fanout[i] = fx * fy
                self.fanout_xy[i] = (fx, fy)
        # vector strides (extent of each dim below a loop) and molds (extent at and below)
        self.vstride: list[list[int]] = []
        self.mold: list[list[int]] = []
        scale = [1] * self.n_dims
        for lp in self.loops:
            self.vstride.append(list(scale))
            scale[lp.dim] *= lp.end
            self.mold.append([s - 1 for s in scale])
        self.transform = [0] * self.n_dims
        self.indices = [0] * n
        self.epochs = 1
        self.space_stamp: list[int] = []
        self.states: list[dict[tuple[int, ...], _State]] = [{} for _ in range(n)]
        self.compute: dict[tuple[int, ...], float] = {}

    # ---- geometry ---------------------------------------------------------------------------
    def _project(self, low: list[int], high: list[int]) -> list[PointSet]:
        out = []
        for t in range(NT):
            lo, hi = [], []
            for terms in self.proj[t]:
                a = sum(low[d] * c for d, c in terms)
                z = sum(high[d] * c for d, c in terms)
                lo.append(a)
                hi.append(z + 1)
            out.append(((tuple(lo), tuple(hi)),))
        return out

    def _working_set(self, level: int) -> list[PointSet]:
        low = list(self.transform)
        high = [self.transform[d] + self.mold[level][d] for d in range(self.n_dims)]
        return self._project(low, high)

    def _point(self) -> list[PointSet]:
        pt = [0] * self.n_dims
        for lv, lp in enumerate(self.loops):
            pt[lp.dim] += self.vstride[lv][lp.dim] * self.indices[lv]
        return self._project(pt, pt)

    def _translation_vectors(self, level: int) -> list[tuple[int, ...]]:
        d = self.loops[level].dim
        first = self._working_set(level)
        saved = self.transform[d]
        self.transform[d] += self.vstride[level][d]
        second = self._working_set(level)
        self.transform[d] = saved
        return [ps_translation(first[t], second[t]) for t in range(NT)]

    # ---- the recursion ----------------------------------------------------------------------
    def _state(self, level: int) -> _State:
        key = tuple(self.space_stamp[:-1])
        st = self.states[level].get(key)
        if st is None:
            st = _State()
            self.states[level][key] = st
        return st

    def compute_deltas(self, level: int) -> list[PointSet]:
        if self.boundary[level]:
            self.space_stamp.append(0)
        state = self._state(level)
        if self.loops[level].spatial:
            self._spatial(level)
        else:
            self._temporal(level, state)
        ps = self._working_set(level)
        if self.boundary[level] or self.master[level]:
            for t in range(NT):
                state.max_size[t] = max(state.max_size[t], ps_size(ps[t]))
        delta = self._save_and_subtract(ps, state)
        if self.boundary[level]:
            self.space_stamp.pop()
        return delta

    def _save_and_subtract(self, ps: list[PointSet], state: _State) -> list[PointSet]:
        out = []
        for t in range(NT):
            cur, prev, pt = ps[t], state.last[t], state.last_t[t]
            tr = ps_translation(prev, cur) if ps_size(prev) > 0 else None
            if self.rule != "legacy" and (tr is None or not any(tr)):
                out.append(ps_minus(cur, prev))  # "stationary": a tile that did not move keeps its data
            elif pt is None:
                out.append(ps_minus(cur, prev))
                state.last_t[t] = tr
            elif tr == pt:
                out.append(ps_minus(cur, prev))
            else:
                out.append(cur)
                state.last_t[t] = None
            state.last[t] = cur
        return out

    def _temporal(self, level: int, state: _State) -> None:
        lp = self.loops[level]
        n = lp.end
        if level == 0:
            body = n * self.epochs
            key = tuple(self.space_stamp[:-1])
            self.compute[key] = self.compute.get(key, 0.0) + body
            for t in range(NT):
                state.access[t][(1, 1)] = state.access[t].get((1, 1), 0.0) + body
            return
        d = lp.dim
        scale = self.vstride[level][d]
        saved = self.transform[d]
        sizes: list[tuple[list[int], int]] = []
        self.indices[level] = 0
        delta = self.compute_deltas(level - 1)
        sizes.append(([ps_size(x) for x in delta], 1))
        self.transform[d] += scale
        self.indices[level] += 1
        if n >= 2:
            v = n - 1
            saved_e = self.epochs
            self.epochs *= v
            delta = self.compute_deltas(level - 1)
            self.epochs = saved_e
            sizes.append(([ps_size(x) for x in delta], v))
            self.transform[d] += scale * v
            self.indices[level] += v
        self.transform[d] = saved
        if self.boundary[level - 1]:
            for t in range(NT):
                tot = sum(sz[t] * w for sz, w in sizes)
                state.access[t][(1, 1)] = state.access[t].get((1, 1), 0.0) + tot * self.epochs

    def _spatial(self, level: int) -> None:
        deltas: dict[int, list[PointSet]] = {}
        skew: dict[int, int] = {}
        self._fill_spatial(level, deltas, skew, 0, 0, level)
        state = self._state(level)
        unacc = [set(deltas) for _ in range(NT)]
        without = self._multicast(deltas, unacc)
        chosen = without
        if self.link_enabled:
            unacc = [set(deltas) for _ in range(NT)]
            links = self._link_transfers(level, deltas, unacc, state)
            with_ = self._multicast(deltas, unacc)
            chosen = []
            for t in range(NT):
                if sum(with_[t].values()) < sum(without[t].values()):
                    state.link[t] += links[t]
                    chosen.append(with_[t])
                else:
                    chosen.append(without[t])
        for t in range(NT):
            for k, v in chosen[t].items():
                state.access[t][k] = state.access[t].get(k, 0.0) + v

    def _fill_spatial(self, level, deltas, skew, base, stride, xlevel) -> None:
        lp = self.loops[level]
        end = lp.end
        base *= end
        if level == 0:
            for i in range(end):
                self.indices[level] = i
                idx = base + i
                deltas[idx] = self._point()
                self.space_stamp[-1] = idx
                key = tuple(self.space_stamp)
                self.compute[key] = self.compute.get(key, 0.0) + self.epochs
            return
        d = lp.dim
        scale = self.vstride[level][d]
        saved = self.transform[d]
        if self.loops[level - 1].spatial:
            for i in range(end):
                self.indices[level] = i
                nstride, nlevel = stride * end, xlevel
                if i >= 1:
                    nstride, nlevel = 1, level
                self._fill_spatial(level - 1, deltas, skew, base + i, nstride, nlevel)
                self.transform[d] += scale
        else:
            start = 0
            if stride == 0:
                self.indices[level] = 0
                idx = base
                skew[idx] = idx
                self.space_stamp[-1] = idx
                deltas[idx] = self.compute_deltas(level - 1)
                self.transform[d] += scale
                start = 1
                stride, xlevel = 1, level
            else:
                stride *= end
            if start < end:
                tv = self._translation_vectors(xlevel)
                for i in range(start, end):
                    self.indices[level] = i
                    dst = base + i
                    src = skew[base + i - stride]
                    skew[dst] = dst
                    deltas[dst] = [ps_translate(deltas[src][t], tv[t]) for t in range(NT)]
        self.transform[d] = saved

    def _multicast(
        self, deltas: dict[int, list[PointSet]], unacc: list[set[int]]
    ) -> list[dict[tuple[int, int], float]]:
        out: list[dict[tuple[int, int], float]] = []
        for t in range(NT):
            groups: list[tuple[int, int]] = []  # (matches, size)
            keys = [k for k in deltas if k in unacc[t]]
            used: set[int] = set()
            for i, k in enumerate(keys):
                if k in used:
                    continue
                used.add(k)
                matches = 1
                for k2 in keys[i + 1 :]:
                    if k2 not in used and ps_equal(deltas[k][t], deltas[k2][t]):
                        used.add(k2)
                        matches += 1
                groups.append((matches, ps_size(deltas[k][t])))
            unacc[t].clear()
            temp: dict[int, list[float]] = {}
            for matches, sz in groups:
                if sz > 0:
                    e = temp.setdefault(matches, [0.0, 0])
                    e[0] += sz * self.epochs
                    e[1] += 1
            out.append({(mc, int(e[1])): e[0] for mc, e in temp.items()})
        return out

    def _link_transfers(self, level, deltas, unacc, state: _State) -> list[int]:
        storage = self.loops[level].storage
        px, py = self.nest.fanout[storage]
        lx, ly = self.fanout_xy[level]
        h, v = max(px, lx), max(py, ly)
        prev = state.prev_spatial
        reuse: dict[int, list[bool]] = {}

        def compare(cur_i: int, prev_i: int) -> None:
            if cur_i not in deltas or prev_i not in prev:
                return
            for t in range(NT):
                cd = deltas[cur_i][t]
                if ps_size(cd) > 0 and ps_equal(cd, prev[prev_i][t]):
                    reuse.setdefault(cur_i, [False] * NT)[t] = True

        if v > 1:
            for hh in range(h):
                for vv in range(1, v):
                    compare(vv * h + hh, (vv - 1) * h + hh)
            for hh in range(h):
                for vv in range(v - 1):
                    compare(vv * h + hh, (vv + 1) * h + hh)
        if h > 1:
            for vv in range(v):
                for hh in range(1, h):
                    compare(vv * h + hh, vv * h + hh - 1)
            for vv in range(v):
                for hh in range(h - 1):
                    compare(vv * h + hh, vv * h + hh + 1)
        links = [0] * NT
        for k in deltas:
            r = reuse.get(k)
            if r is None:
                continue
            for t in range(NT):
                if r[t]:
                    links[t] += ps_size(deltas[k][t]) * self.epochs
                    unacc[t].discard(k)
        state.prev_spatial = dict(deltas)
        return links

    # ---- driver -----------------------------------------------------------------------------
    def run(self) -> SimResult:
        self.epochs = 1
        self.compute_deltas(len(self.loops) - 1)
        tiles = self._collapse(self._working_sets())
        vals = list(self.compute.values())
        comp = sum(vals) / len(vals) if vals else 0.0
        first_valid = next(lv for lv, lp in enumerate(self.loops) if not lp.spatial or self.master[lv])
        comp_rep = self.num_above[first_valid] * self.fanout[first_valid]
        xs, ys = self._spatial_expansion()
        return SimResult(tiles, comp, comp_rep, xs, ys)

    def _working_sets(self) -> list[list[LoopTile]]:
        """CollectWorkingSets: per tensor, one tile per temporal or master-spatial loop (innermost
        first), averaged over the loop's live states."""
        per_loop: list[list[LoopTile]] = [[] for _ in range(NT)]
        for lv, lp in enumerate(self.loops):
            if lp.spatial and not self.master[lv]:
                continue
            states = list(self.states[lv].values())
            cnt = max(1, len(states))
            for t in range(NT):
                acc: dict[tuple[int, int], float] = {}
                msz = 0
                link = 0
                for st in states:
                    for k, val in st.access[t].items():
                        acc[k] = acc.get(k, 0.0) + val
                    msz += st.max_size[t]
                    link += st.link[t]
                acc = {k: val / cnt for k, val in acc.items()}
                per_loop[t].append(
                    LoopTile(
                        lp.storage,
                        msz // cnt,
                        acc,
                        link // cnt,
                        self.num_above[lv],
                        self.fanout[lv],
                        self.boundary[lv],
                        self.master[lv],
                    )
                )
        return per_loop

    def _collapse(self, per_loop: list[list[LoopTile]]) -> list[list[CollapsedTile]]:
        """CollapseDataMovementNest: the loops of one storage level make one tile (the size and
        replication of its outermost loop, the accesses, link transfers and fan-out of its
        innermost); a level's partition-fraction denominator is its parent's innermost loop's tile
        when that loop is spatial, else its own tile."""
        nlev = len(self.nest.boundaries)
        tiles: list[list[CollapsedTile]] = [[None] * NT for _ in range(nlev)]  # type: ignore[list-item]
        for t in range(NT):
            lst = per_loop[t]
            i = 0
            while i < len(lst):
                j = i
                while not lst[j].boundary and j < len(lst) - 1:
                    j += 1
                inner, outer = lst[i], lst[j]
                level = outer.level
                tiles[level][t] = CollapsedTile(
                    outer.size,
                    dict(sorted(inner.access.items())),
                    inner.link_transfers,
                    outer.replication,
                    inner.fanout,
                )
                if level + 1 < nlev:  # the child level, collapsed before
                    child = tiles[level + 1][t]
                    child.pfd = inner.size if inner.master else child.size
                i = j + 1
        return tiles

    def _spatial_expansion(self) -> tuple[list[int], list[int]]:
        """Per storage level (outermost first), the product of the X and of the Y spatial factors
        of the levels outside it."""
        nlev = len(self.nest.boundaries)
        xs, ys = [1] * nlev, [1] * nlev
        px = py = 1
        for level in range(nlev):
            xs[level], ys[level] = px, py
            first = self.nest.boundaries[level + 1] + 1 if level + 1 < nlev else 0
            for lp in self.loops[first : self.nest.boundaries[level] + 1]:
                if lp.kind == SPACE_X:
                    px *= lp.end
                elif lp.kind != TIME:
                    py *= lp.end
        return xs, ys


def simulate(
    nest: LoopNest,
    layer: Layer | None,
    translation_rule: str = "legacy",
    link_transfers: bool = True,
    projection: Projection | None = None,
    n_dims: int = 7,
) -> SimResult:
    """Timeloop's nest analysis of ``nest`` (see :class:`NestSimulator`)."""
    return NestSimulator(nest, layer, translation_rule, link_transfers, projection, n_dims).run()
