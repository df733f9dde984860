"""Timeloop's nest analysis in closed form, vectorized over candidate mappings.

The reference simulator (:mod:`deepfrack.cost.nest_sim`) replays Timeloop's recursion. This module
computes the same per-level statistics (:class:`~deepfrack.cost.timeloop_post.NestStats`) with
array arithmetic, from the following facts about that recursion (NVlabs/timeloop
src/loop-analysis/nest-analysis.cpp):

* With uniform extrapolation a temporal loop runs its iterations #0 and #1 only, #1 standing for
  iterations 1..n-1; spatial loops simulate their first child only. So the working set of a
  storage level's outermost loop (its tile B) is visited in the order of a binary counter over the
  active (bound > 1) temporal loops above it, innermost digit first. Visit i has weight
  prod(n_j - 1 for the digits set in i).
* Between consecutive visits the tile moves by u_m = t_m - sum(t_j for active j inside m), where m
  is the digit that became 1 and t_j is one step of loop j (its stride: the product of the bounds
  below it on its dimension), projected onto the tensor.
* ``SaveAndSubtractIfSameStride`` keeps the residual only while the translation repeats. Every
  visit that moves by the innermost translation u_1 finds it remembered, so it costs
  D(u_1) = |B| - |B and (B - u_1)|; a carry into m costs D(u_m) if u_m == u_1 and |B| (a refetch)
  otherwise ("legacy" rule; the "stationary" rule of 2025 replaces u_1 by the innermost non-zero
  translation and makes zero translations free).
* Summing over the counter: accesses(B) = |B| + sum_m (n_m - 1) * prod(n_j, j outside m) * delta_m
  = |B| * prod(n_j, all loops above) - D'(u_1) * sum(w_m, m with u_m == u_1), with D' the overlap
  |B| - D and w_m = (n_m - 1) * prod(n_j, j outside m).
* How this is computed: the active loops are compacted per level into rows (outermost first). With
  V_m = 2 t_m + sum(t_j, j outside m), u_m = V_m - sum(t_j, j above the level), so u_m == u_1 iff
  V_m == V_1, whatever the level: V is computed once for all levels. Projected onto a tensor, V is
  a non-negative vector below twice the layer's extents (the strides of the loops on one dimension
  at least double outward), so one integer (mixed radix) identifies it, and the equality tests
  are integer comparisons of [rows, candidates] arrays.
* A spatial fan-out multiplies that by the number of distinct translates among the children
  (children with equal data share one parent access: multicast); the histogram by multicast
  factor is uniform unless two spatial loops of one level drive the same input coordinate (P and
  R, or Q and S), which is enumerated.
* Link transfers between neighbouring children (a child's delta equal to a neighbour's previous
  delta, ``ComputeNetworkLinkTransfers``) are possible only when a visit's translation equals a
  difference of children's offsets and the two deltas have the same shape: cheap conditions
  exclude them for most candidates, the others are tested and accounted exactly
  (:mod:`deepfrack.cost.link_transfers`).

The analysis runs in phases, each a function from immutable records of arrays (NamedTuples: they
cost a fraction of a frozen dataclass to build, which counts in the fixed cost of a call) to the next
(candidate axis last, storage levels outermost first, as ``Architecture.levels``):
:func:`_extents` (factors and tile extents), :func:`_fanouts` (children used, replication),
:func:`_temporal_rows` (the active temporal loops, compacted), :func:`_translation_keys`,
:func:`_reuse_legacy` / :func:`_reuse_stationary` (each tile's accesses to its parent),
link transfers, :func:`_access_histograms` (per multicast factor) and
:func:`_partition_denominators`.

Every claim above is checked against the simulator by the test suite (hypothesis, and the 1,517
reference runs).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from deepfrack.cost.link_transfers import Patches, apply_link_patches, find_link_transfers, last_true
from deepfrack.cost.mapping import MappingBatch
from deepfrack.cost.nest import N_COORDS, RELEVANT, TENSOR_COORDS, proj_matrix
from deepfrack.cost.timeloop_post import NestStats
from deepfrack.dims import NT, C, M, N, P, Q, R, S
from deepfrack.workload.layer import Layer


@dataclass(frozen=True)
class AnalyticResult:
    """The nest statistics of a batch, and two flags per candidate."""

    stats: NestStats
    link_flag: np.ndarray  # bool [B]: link transfers could not be excluded and were accounted exactly
    bad_spatial: np.ndarray  # bool [B]: spatial factors on a level without fan-out


@dataclass(frozen=True)
class AnalyticSetup:
    """What :func:`analyze` derives from the layer, the architecture's fan-outs and the stride
    rule alone (build it once per layer with :func:`analytic_setup`)."""

    A: np.ndarray  # int64 [3, 4, 7] (proj_matrix)
    fanouts: tuple[tuple[int, int], ...]  # (X, Y) per storage level
    has_fan: np.ndarray  # bool [L]
    fan_levels: tuple[int, ...]  # levels with a fan-out
    nofan_levels: tuple[int, ...]  # the others
    stationary: bool
    P9: np.ndarray  # int64 [9, 7]: the nine coordinates of an op-space vector
    coords: np.ndarray  # int64 [3, 4]: TENSOR_COORDS
    cmap: np.ndarray  # int64 [3, 8]: per tensor, the coordinate (of the nine; 9: none) a dim moves (7: none)
    ccoef: np.ndarray  # int64 [3, 8]: and by how much per unit
    rel: np.ndarray  # bool [3, 7]: RELEVANT
    irr: np.ndarray  # uint8 [3, 7]: not RELEVANT


def _accumulate(op, a: np.ndarray, dtype=None, axis: int = 0, from_end: bool = False) -> np.ndarray:
    """``op.accumulate(a, axis)`` for axis 0 or 1, slice by slice (numpy's accumulate along a
    leading axis is many times slower than whole-slice operations); ``from_end``: along axis 0
    from its last slice to its first."""
    out = np.empty(a.shape, dtype or a.dtype)
    if a.shape[axis]:
        if from_end:
            out[-1] = a[-1]
            for i in range(a.shape[0] - 2, -1, -1):
                op(out[i + 1], a[i], out=out[i])
        elif axis == 0:
            out[0] = a[0]
            for i in range(1, a.shape[0]):
                op(out[i - 1], a[i], out=out[i])
        else:
            out[:, 0] = a[:, 0]
            for i in range(1, a.shape[1]):
                op(out[:, i - 1], a[:, i], out=out[:, i])
    return out


#: bits set in 0..127; and per 7-bit mask the j-th set bit counted from bit 6 down (7: none)
_POPCOUNT = np.array([m.bit_count() for m in range(256)], np.int32)
_NTH_ACTIVE = np.full((256, 7), 7, np.int64)
for _m in range(128):
    for _j, _p in enumerate([p for p in range(6, -1, -1) if _m >> p & 1]):
        _NTH_ACTIVE[_m, _j] = _p


def analytic_setup(fanouts, layer: Layer, translation: str = "legacy") -> AnalyticSetup:
    """``fanouts``: (X, Y) fan-out per storage level, outermost first (``level_fanouts``)."""
    A = proj_matrix(layer)
    fan = tuple((int(x), int(y)) for x, y in fanouts)
    has = [fx * fy > 1 for fx, fy in fan]
    P9 = np.zeros((N_COORDS, 7), np.int64)
    P9[:7] = np.eye(7, dtype=np.int64)
    P9[7] = A[1, 2]
    P9[8] = A[1, 3]
    cmap = [[N_COORDS] * 8 for _ in range(NT)]
    ccoef = [[0] * 8 for _ in range(NT)]
    Al = A.tolist()
    for t in range(NT):
        for c, c9 in enumerate(TENSOR_COORDS[t]):
            for d in range(7):
                if Al[t][c][d]:
                    cmap[t][d] = c9
                    ccoef[t][d] = Al[t][c][d]
    return AnalyticSetup(
        A=A,
        fanouts=fan,
        has_fan=np.array(has, bool),
        fan_levels=tuple(i for i, h in enumerate(has) if h),
        nofan_levels=tuple(i for i, h in enumerate(has) if not h),
        stationary=translation == "stationary",
        P9=P9,
        coords=np.array(TENSOR_COORDS, np.int64),
        cmap=np.array(cmap, np.int64),
        ccoef=np.array(ccoef, np.int64),
        rel=RELEVANT,
        irr=(~RELEVANT).astype(np.uint8),
    )


def analyze(
    batch: MappingBatch,
    fanouts: list[tuple[int, int]],
    layer: Layer,
    translation: str = "legacy",
    setup: AnalyticSetup | None = None,
) -> AnalyticResult:
    """Closed-form nest analysis of every candidate in ``batch``. ``fanouts``: (X, Y) fan-out per
    storage level, outermost first (``deepfrack.cost.mapping.level_fanouts``); ``setup``:
    :func:`analytic_setup` of these (built here when not given). See the module docstring."""
    su = setup if setup is not None else analytic_setup(fanouts, layer, translation)
    ext = _extents(batch, su)
    fans = _fanouts(batch, ext, su)
    rows = _temporal_rows(batch, ext)
    keys = _translation_keys(ext, rows, su)
    reuse = _reuse_stationary(ext, rows, keys, su) if su.stationary else _reuse_legacy(ext, rows, keys, su)
    link_flag, patches = find_link_transfers(su, layer, ext, fans, rows, keys, reuse)
    per_mac = ext.coord[:7, 0].prod(axis=0) // fans.used.prod(axis=0)  # MAC iterations per MAC
    acc, mc, link = _access_histograms(ext, fans, reuse, per_mac, su, patches)
    stats = NestStats(
        size=np.ascontiguousarray(ext.size.transpose(1, 0, 2)),
        pfd=_partition_denominators(ext, fans, su),
        acc=acc,
        mc=mc,
        link=link,
        fanout=fans.used,
        replication=fans.replication,
        x_exp=fans.x_exp,
        y_exp=fans.y_exp,
        compute_accesses=per_mac.astype(np.float64),
        compute_replication=fans.used.prod(axis=0),
        mac_x=fans.x.prod(axis=0),
        mac_y=fans.y.prod(axis=0),
    )
    return AnalyticResult(stats, link_flag, ext.bad_spatial)


# --------------------------------------------------------------------------------------------- #
# factors, extents, fan-outs
# --------------------------------------------------------------------------------------------- #
class Extents(NamedTuple):
    """Loop factors and tile extents per level (outermost first), candidate axis last."""

    factors: np.ndarray  # int64 [L, 2, 7, B]: [l, 0] temporal, [l, 1] spatial (1 without a fan-out)
    cum: np.ndarray  # int64 [L, 2, 7, B]: [l, 0] extent of level l's tile, [l, 1] below its temporal loops
    coord: np.ndarray  # int64 [10, L, B]: extents of the nine data coordinates of level l's tile (9: 1)
    size: np.ndarray  # int64 [3, L, B]: tile words per tensor
    bad_spatial: np.ndarray  # bool [B]: spatial factors on a level without a fan-out

    @property
    def spatial(self) -> np.ndarray:
        """int64 [L, 7, B]: the spatial factors."""
        return self.factors[:, 1]

    def spatial_step(self, l: int) -> np.ndarray:
        """int64 [7, B]: the step of level l's spatial loops per dimension (its child's tile)."""
        L, _, _, B = self.cum.shape
        return self.cum[l + 1, 0] if l < L - 1 else np.ones((7, B), np.int64)


def _extents(batch: MappingBatch, su: AnalyticSetup) -> Extents:
    B, L, _ = batch.temporal.shape
    fac = np.empty((L, 2, 7, B), np.int64)
    fac[:, 0] = batch.temporal.transpose(1, 2, 0)
    fac[:, 1] = batch.spatial.transpose(1, 2, 0)
    if su.nofan_levels:
        nofan = list(su.nofan_levels)
        bad_spatial = (fac[nofan, 1] > 1).any(axis=(0, 1))
        fac[nofan, 1] = 1
    else:
        bad_spatial = np.zeros(B, bool)
    # products from the MACs outward: the innermost level's spatial factors, its temporal ones, ...
    cum = _accumulate(np.multiply, fac.reshape(2 * L, 7, B), from_end=True).reshape(L, 2, 7, B)
    A = su.A
    CE = np.empty((N_COORDS + 1, L, B), np.int64)
    CE[:7] = cum[:, 0].transpose(1, 0, 2)
    CE[7] = A[1, 2, R] * (CE[R] - 1) + A[1, 2, P] * (CE[P] - 1) + 1
    CE[8] = A[1, 3, S] * (CE[S] - 1) + A[1, 3, Q] * (CE[Q] - 1) + 1
    CE[9] = 1
    co = su.coords
    size = CE[co[:, 0]] * CE[co[:, 1]] * CE[co[:, 2]] * CE[co[:, 3]]
    return Extents(fac, cum, CE, size, bad_spatial)


class Fanouts(NamedTuple):
    """The spatial fan-outs [L, B] (1 at levels without one): children ``used``, on ``x`` and on
    ``y``; and the products over the levels outside each level: ``replication`` (utilized
    instances), ``x_exp`` and ``y_exp``. At the levels with a fan-out (``levels``, nf of them):
    their ``spatial`` factors [nf, 7, B], where they are > 1 (``spread``), and per level its spatial
    ``order`` [7, B] (int8, innermost first) and ``split`` [B]."""

    used: np.ndarray
    x: np.ndarray
    y: np.ndarray
    replication: np.ndarray
    x_exp: np.ndarray
    y_exp: np.ndarray
    levels: tuple[int, ...]
    spatial: np.ndarray | None
    spread: np.ndarray | None
    order: dict[int, np.ndarray]
    split: dict[int, np.ndarray]


def _fanouts(batch: MappingBatch, ext: Extents, su: AnalyticSetup) -> Fanouts:
    B, L, _ = batch.temporal.shape
    fan_lv = list(su.fan_levels)
    nf = len(fan_lv)
    fxy = np.ones((3, L, B), np.int64)
    order: dict[int, np.ndarray] = {}
    split: dict[int, np.ndarray] = {}
    sf_f = spread = None
    if nf:
        sf_f = ext.spatial[fan_lv]  # [nf, 7, B]
        spread = sf_f > 1
        so_f = np.empty((nf, 7, B), np.int8)  # spatial order, innermost first
        so_f[...] = batch.spatial_order[:, fan_lv, :].transpose(1, 2, 0)
        split_f = batch.split[:, fan_lv].T  # [nf, B]
        for i, l in enumerate(fan_lv):
            order[l] = so_f[i]
            split[l] = split_f[i]
        fxy[0, fan_lv] = sf_f.prod(axis=1)
        # the factors of the loops on X (positions before the split)
        s_ends = sf_f.reshape(-1).take(
            so_f.astype(np.int64) * B + (np.arange(nf) * (7 * B))[:, None, None] + np.arange(B)
        )
        fxy[1, fan_lv] = np.where(np.arange(7)[None, :, None] < split_f[:, None, :], s_ends, 1).prod(axis=1)
        fxy[2, fan_lv] = fxy[0, fan_lv] // fxy[1, fan_lv]
    outside = np.ones_like(fxy)
    for l in range(1, L):
        np.multiply(outside[:, l - 1], fxy[:, l - 1], out=outside[:, l])
    return Fanouts(*fxy, *outside, tuple(fan_lv), sf_f, spread, order, split)


# --------------------------------------------------------------------------------------------- #
# the active temporal loops, compacted into rows
# --------------------------------------------------------------------------------------------- #
class TemporalRows(NamedTuple):
    """The active temporal loops of every candidate, compacted per level into rows [R + 1, B],
    outermost first: level 0's rows, then level 1's ..., each level's loops outermost first. A
    level gets as many rows as its most active candidate (padding rows: bound 1, dimension 7, step
    0) and the last row is padding. The loops above level l's tile are the first ``above[l]``
    rows."""

    bound: np.ndarray  # int64
    dim: np.ndarray  # int8 (7: none)
    step: np.ndarray  # int64: the extent below the loop on its dimension (0 for padding rows)
    n_rows: int  # R, the rows before the last padding row
    above: tuple[int, ...]  # [L]
    active: np.ndarray  # bool: bound > 1
    cum: np.ndarray  # int64: the product of the bounds down to each row
    weight: np.ndarray  # int64: visits carrying into the row, (bound - 1) x the bounds outside it
    weight_f: np.ndarray | None  # ``weight`` as float64 when every sum of weights is exact there
    ref: np.ndarray  # int64 [L, B]: the innermost active row above each level (``n_rows``: none)
    outer: np.ndarray  # int64 [L, B]: the product of the temporal bounds above each level
    has_loops_above: np.ndarray  # bool [L, B]: ref != n_rows


def _temporal_rows(batch: MappingBatch, ext: Extents) -> TemporalRows:
    B, L, _ = batch.temporal.shape
    rows = np.arange(B)
    to = np.empty((L, 7, B), np.int8)  # dim at each position, innermost first
    to[...] = batch.temporal_order.transpose(1, 2, 0)
    it = np.int32 if 2 * 7 * L * B < 2**31 else np.int64
    tbase = ((np.arange(L, dtype=it) * 14) * B)[:, None, None] + rows.astype(it)[None, None, :]
    nb = ext.factors.reshape(-1).take(to * it(B) + tbase)  # temporal bound at each position [L, 7, B]
    active = nb > 1
    # active positions as a bit mask per level (bit p: position p), then a table gives the j-th
    # active position from the outermost
    amask = active[:, 0].astype(np.uint8)
    for pos in range(1, 7):
        amask |= active[:, pos].astype(np.uint8) << pos
    Kl = [int(x) for x in _POPCOUNT[amask].max(axis=1)]  # rows per level
    R_ = sum(Kl)
    Nr = np.ones((R_ + 1, B), np.int64)
    Dr = np.full((R_ + 1, B), 7, np.int8)
    KS = np.zeros((R_ + 1, B), np.int64)
    if R_:
        row_lev = np.repeat(np.arange(L), Kl)  # level of each row
        row_j = np.concatenate([np.arange(k) for k in Kl])
        posr = _NTH_ACTIVE.reshape(-1).take(amask[row_lev].astype(np.int64) * 7 + row_j[:, None])  # 7: none
        valid = posr < 7
        fidx = (row_lev[:, None] * 7 + np.minimum(posr, 6)).astype(it) * it(B) + rows.astype(it)[None, :]
        Dr[:R_] = np.where(valid, to.reshape(-1).take(fidx), 7)
        Nr[:R_] = np.where(valid, nb.reshape(-1).take(fidx), 1)
        # the step: ext.cum[level, 1, dim]
        fidx = ((14 * row_lev[:, None] + 7 + np.minimum(Dr[:R_], 6)).astype(it)) * it(B) + rows.astype(it)[
            None, :
        ]
        KS[:R_] = np.where(valid, ext.cum.reshape(-1).take(fidx), 0)
    act_r = Nr > 1
    cpn = _accumulate(np.multiply, Nr)
    kw = np.empty_like(cpn)
    kw[0] = cpn[0] - 1
    np.subtract(cpn[1:], cpn[:-1], out=kw[1:])
    above = (0, *itertools.accumulate(Kl[:-1]))
    ref, outer = _loops_above(act_r, cpn, above)
    kwf = kw.astype(np.float64) if (R_ and int(cpn[R_ - 1].max()) < 2**53) else None
    return TemporalRows(Nr, Dr, KS, R_, above, act_r, cpn, kw, kwf, ref, outer, ref != R_)


def _loops_above(
    active: np.ndarray, cum: np.ndarray, above: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per level [L, B]: the innermost active row above it (the last row index: none) and the
    product of the bounds above it."""
    R_ = len(active) - 1
    L, B = len(above), active.shape[1]
    ref = np.full((L, B), R_, np.int64)
    outer = np.ones((L, B), np.int64)
    la = np.full(B, R_, np.int64)
    r0 = 0
    for s in range(1, L):
        for r in range(r0, above[s]):
            la = np.where(active[r], r, la)
        r0 = above[s]
        ref[s] = la
        if above[s]:
            outer[s] = cum[above[s] - 1]
    return ref, outer


# --------------------------------------------------------------------------------------------- #
# accesses of each level's tile to its parent
# --------------------------------------------------------------------------------------------- #
# The translation of the visit carrying into row m (above level s) is u_m = V_m - pre(s) with
# V_m = 2 t_m + sum(t_j, j outside m) and pre(s) = sum(t_j, j above s); two translations are
# equal iff their V are, and V's projection onto a tensor is a non-negative vector bounded by
# twice the layer's extent, so an integer key (mixed radix over the four data coordinates)
# identifies it: accesses = |B| x prod(bounds above) - overlap(u_ref) x sum(weights of the
# visits whose u equals u_ref) (module docstring; stationary: zero translations cost nothing).
class TranslationKeys(NamedTuple):
    """Integer keys [G, 3, K + 1, B] of the first K + 1 rows (those above the innermost level, and
    its own for a fan-out to the MACs): ``visit`` of V_m projected onto each tensor, ``inner`` of
    sum(t_j, j down to m); see :func:`_keys`."""

    visit: np.ndarray
    inner: np.ndarray
    n_rows: int  # K


def _translation_keys(ext: Extents, rows: TemporalRows, su: AnalyticSetup) -> TranslationKeys:
    L, B = ext.size.shape[1:]
    dtot = ext.coord[:7, 0].max(axis=1) if B else np.ones(7, np.int64)  # [7] largest extent per dim
    K = rows.n_rows if su.has_fan[L - 1] else rows.above[L - 1]
    visit, inner = _keys(su.A, dtot, rows.dim[: K + 1], rows.step[: K + 1])
    return TranslationKeys(visit, inner, K)


class Reuse(NamedTuple):
    """Per tensor and level [3, L, B] (level 0, the outermost, has no parent: 0): the ``accesses``
    of the level's tile to its parent; the ``overlap`` of the tile with itself moved by the
    remembered translation, and whether that leaves the tile ``in_place``."""

    accesses: np.ndarray
    overlap: np.ndarray
    in_place: np.ndarray


def _weighted_sum(rows: TemporalRows, n: int, mask: np.ndarray) -> np.ndarray:
    """sum(weight[r] for the first n rows where mask [3, n, B]) per tensor and candidate (int64);
    through float64 when that is exact (faster)."""
    if rows.weight_f is not None:
        return np.einsum("trb,rb->tb", mask, rows.weight_f[:n]).astype(np.int64)
    return (rows.weight[None, :n] * mask).sum(axis=1)


def _parent_accesses(size, outer, overlap, same, zero=None) -> np.ndarray:
    """|B| x prod(bounds above) - overlap(u_ref) x (weights of the visits by u_ref) (- |B| x the
    weights of the zero translations, under the stationary rule), [3, L, B]."""
    acc = np.empty_like(size)
    acc[:, 0] = 0
    acc[:, 1:] = size[:, 1:] * outer[None, 1:] - overlap[:, 1:] * same[:, 1:]
    if zero is not None:
        acc[:, 1:] -= size[:, 1:] * zero[:, 1:]
    return acc


def _reuse_legacy(ext: Extents, rows: TemporalRows, keys: TranslationKeys, su: AnalyticSetup) -> Reuse:
    """The legacy rule (Timeloop before a12fff5): the remembered translation is the innermost
    active loop's."""
    size = ext.size
    L, B = size.shape[1:]
    ar = np.arange(B)
    overlap = np.zeros((NT, L, B), np.int64)
    in_place = np.zeros((NT, L, B), bool)
    same = np.zeros((NT, L, B), np.int64)
    refp = rows.ref[1:] * B + ar
    d_ref = rows.dim.reshape(-1).take(refp).astype(np.intp)  # [L - 1, B]
    ks_ref = rows.step.reshape(-1).take(refp)
    c9 = su.cmap[:, d_ref]  # [3, L - 1, B]
    e = ext.coord.reshape(-1).take(c9 * (L * B) + (np.arange(1, L)[:, None] * B + ar[None, :]))
    overlap[:, 1:] = (size[:, 1:] // e) * np.maximum(e - su.ccoef[:, d_ref] * ks_ref, 0)
    in_place[:, 1:] = overlap[:, 1:] == size[:, 1:]
    visit = keys.visit
    G = visit.shape[0]
    kflat = visit.reshape(G * NT, -1)
    for s in range(1, L):
        n = rows.above[s]
        if not n:
            continue
        # (no loop above: weights 0)
        kref = kflat.take(np.minimum(rows.ref[s], keys.n_rows) * B + ar, axis=1).reshape(G, NT, 1, B)
        eq = visit[0, :, :n] == kref[0]
        for g in range(1, G):
            eq &= visit[g, :, :n] == kref[g]
        same[:, s] = _weighted_sum(rows, n, eq)
    return Reuse(_parent_accesses(size, rows.outer, overlap, same), overlap, in_place)


def _reuse_stationary(ext: Extents, rows: TemporalRows, keys: TranslationKeys, su: AnalyticSetup) -> Reuse:
    """The "stationary" rule (timeloop a12fff5): zero translations cost nothing and are not
    remembered; the remembered translation is the innermost non-zero one."""
    size = ext.size
    L, B = size.shape[1:]
    ar = np.arange(B)
    # the nine coordinates of V per row, for the overlap of the remembered translation
    P98 = np.zeros((N_COORDS, 8), np.int64)
    P98[:, :7] = su.P9
    st9 = P98.take(rows.dim.astype(np.intp), axis=1) * rows.step[None]  # [9, R, B]
    cs9 = _accumulate(np.add, st9, axis=1)
    V9 = cs9 + st9
    visit, inner = keys.visit, keys.inner
    G = visit.shape[0]
    overlap = np.zeros((NT, L, B), np.int64)
    in_place = np.zeros((NT, L, B), bool)
    same = np.zeros((NT, L, B), np.int64)
    zero_w = np.zeros((NT, L, B), np.int64)
    for s in range(1, L):
        n = rows.above[s]
        if not n:
            overlap[:, s] = size[:, s]
            in_place[:, s] = True
            continue
        zero = visit[0, :, :n] == inner[0, :, n - 1][:, None, :]  # V_m = pre(s): a zero translation
        for g in range(1, G):
            zero &= visit[g, :, :n] == inner[g, :, n - 1][:, None, :]
        same_s = np.empty_like(zero)
        for t in range(NT):
            nzr = ~zero[t] & rows.active[:n]
            anynz = nzr.any(axis=0)
            ridx = last_true(nzr)
            e_ = visit[0, t, :n] == visit[0, t, ridx, ar]
            for g in range(1, G):
                e_ &= visit[g, t, :n] == visit[g, t, ridx, ar]
            same_s[t] = e_ & ~zero[t]
            ov = np.ones(B, np.int64)
            for c9 in TENSOR_COORDS[t]:
                u = V9[c9, ridx, ar] - cs9[c9, n - 1]
                ov *= np.maximum(ext.coord[c9, s] - np.abs(u), 0)
            overlap[t, s] = np.where(anynz, ov, size[t, s])
            in_place[t, s] = ~anynz
        zero_w[:, s] = _weighted_sum(rows, n, zero)
        same[:, s] = _weighted_sum(rows, n, same_s)
    return Reuse(_parent_accesses(size, rows.outer, overlap, same, zero_w), overlap, in_place)


def _key_weights(A: np.ndarray, dtot: np.ndarray) -> tuple[np.ndarray, int]:
    """The key of a unit step of each dimension (7: none), int64 [G, 3, 8], per group of data
    coordinates (mixed radix; a single group unless the layer is huge), and the largest key."""
    radix_a = 2 * (A * dtot).sum(axis=2) + 1  # [3, 4]
    radix = radix_a.tolist()
    prods = [radix[t][0] * radix[t][1] * radix[t][2] * radix[t][3] for t in range(NT)]
    if max(prods) < 2**62:  # one key per tensor
        mult = np.ones((NT, 4), np.int64)
        mult[:, 1:] = np.cumprod(radix_a[:, :3], axis=1)
        W = np.zeros((1, NT, 8), np.int64)
        W[0, :, :7] = (mult[:, :, None] * A).sum(axis=1)
        return W, max(prods)
    groups: list[list[list[int]]] = []
    for t in range(NT):
        gs: list[list[int]] = [[]]
        prod = 1
        for c in range(4):
            if gs[-1] and prod * radix[t][c] >= 2**62:
                gs.append([])
                prod = 1
            gs[-1].append(c)
            prod *= radix[t][c]
        groups.append(gs)
    W = np.zeros((max(len(g) for g in groups), NT, 8), np.int64)
    top = 1
    for t in range(NT):
        for g, cs in enumerate(groups[t]):
            m = 1
            for c in cs:
                W[g, t, :7] += m * A[t, c]
                m *= radix[t][c]
            top = max(top, m)
    return W, top


def _keys(A: np.ndarray, dtot: np.ndarray, Dr: np.ndarray, KS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys [G, 3, R, B] of V_m = 2 t_m + sum(t_j, j outside m) (rows outermost first) projected
    onto each tensor, and of sum(t_j, j down to m): per tensor one integer per group of data
    coordinates. Coordinate c of V lies in [0, 2 x sum_d A[t, c, d] dtot_d] (the strides of the
    loops on one dim at least double outward, so they sum to less than the dim's extent)."""
    W, top = _key_weights(A, dtot)
    G = W.shape[0]
    kt = np.int32 if top < 2**31 else np.int64
    a = W.astype(kt).take(Dr.astype(np.intp), axis=2) * KS.astype(kt)  # [G, 3, R, B]
    cs = _accumulate(np.add, a.reshape(G * NT, *Dr.shape), axis=1).reshape(a.shape)  # sum(t_j, j down to m)
    return cs + a, cs


# --------------------------------------------------------------------------------------------- #
# access histograms by multicast factor; partition-fraction denominators
# --------------------------------------------------------------------------------------------- #
def _access_histograms(
    ext: Extents, fans: Fanouts, reuse: Reuse, per_mac: np.ndarray, su: AnalyticSetup, patches: Patches
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What each level receives from its children [L, 3, H, B], by multicast factor (``mc``):
    children with equal data share one parent access, so a fan-out's children form as many groups
    as the product of the spatial factors the tensor depends on, each multicast to the others;
    then the link transfers' patches. Returns (accesses, multicast, link transfers [L, 3, B])."""
    L, B = ext.size.shape[1:]
    child_acc = np.empty((L, NT, B), np.int64)  # what a level receives from one child
    child_acc[L - 1] = per_mac
    child_acc[: L - 1] = reuse.accesses[:, 1:, :].transpose(1, 0, 2)
    hist_mc = np.ones((L, NT, 1, B), np.int64)
    hist_sc = np.ones((L, NT, 1, B), np.int64)
    if fans.levels:
        fan_lv = list(fans.levels)
        G3 = np.where(su.rel[:, None, :, None], fans.spatial[None], 1).prod(axis=2)  # [3, nf, B]
        hist_sc[fan_lv, :, 0] = G3.transpose(1, 0, 2)
        hist_mc[fan_lv, :, 0] = (fans.used[fan_lv][None] // G3).transpose(1, 0, 2)
        # Inputs with P and R (or Q and S) both spread at one level: offsets may coincide unevenly
        sp = fans.spread
        uneven = (sp[:, P] & sp[:, R]) | (sp[:, Q] & sp[:, S])  # [nf, B]
        if uneven.any():
            hist_mc, hist_sc = _uneven_histograms(hist_mc, hist_sc, uneven, ext, fans, su.A)
    acc = hist_sc * child_acc[:, :, None, :].astype(np.float64)
    mc = np.where(hist_sc > 0, hist_mc, 1)
    if patches:
        return apply_link_patches(acc, mc, hist_mc, hist_sc, child_acc, patches)
    return acc, mc, np.zeros((L, NT, B))


def _uneven_histograms(hist_mc, hist_sc, uneven, ext: Extents, fans: Fanouts, A):
    """Replace the Inputs histograms [L, 3, H, B] of the fan-outs flagged ``uneven`` [nf, B] (P and
    R, or Q and S, spread at one level) by their enumeration, sorted by multicast factor."""
    L, _, _, B = hist_mc.shape
    extra = {}
    H = 1
    for i, l in enumerate(fans.levels):
        if not uneven[i].any():
            continue
        sg = ext.spatial_step(l)
        for b in np.nonzero(uneven[i])[0]:
            hist = _input_histogram(ext.spatial[l, :, b], sg[:, b], A)
            extra[(l, int(b))] = hist
            H = max(H, len(hist))
    if H > 1:
        hist_mc = np.concatenate([hist_mc, np.ones((L, NT, H - 1, B), np.int64)], axis=2)
        hist_sc = np.concatenate([hist_sc, np.zeros((L, NT, H - 1, B), np.int64)], axis=2)
    for (lv, b), hist in extra.items():
        hist_mc[lv, 1, :, b] = 1
        hist_sc[lv, 1, :, b] = 0
        for h, (m, c) in enumerate(hist):
            hist_mc[lv, 1, h, b] = m
            hist_sc[lv, 1, h, b] = c
    return hist_mc, hist_sc


def _input_histogram(fac, sig, A) -> list[tuple[int, int]]:
    """Exact (multicast, count) histogram of the children's Inputs offsets at one level
    (``fac``, ``sig``: spatial factor and stride per dimension): every child's offset (mixed radix
    over the spatial loops), the number of children per distinct offset, and how many offsets
    have each such number, by increasing multicast."""
    loops = [(d, int(fac[d]), int(sig[d])) for d in range(7) if fac[d] > 1]
    F = 1
    for _, e, _ in loops:
        F *= e
    k = np.arange(F, dtype=np.int64)
    coords = []
    spans = []
    for c in range(4):
        v = np.zeros(F, np.int64)
        rem = k
        top = 0
        for d, e, g in loops:
            step = int(A[1, c, d]) * g
            v += step * (rem % e)
            rem = rem // e
            top += step * (e - 1)
        coords.append(v)
        spans.append(top + 1)
    if spans[0] * spans[1] * spans[2] * spans[3] < 2**62:  # one integer per offset (mixed radix)
        key = coords[0] + spans[0] * (coords[1] + spans[1] * (coords[2] + spans[2] * coords[3]))
        _, per_offset = np.unique(key, return_counts=True)
    else:
        _, per_offset = np.unique(np.stack(coords, axis=1), axis=0, return_counts=True)
    m, n = np.unique(per_offset, return_counts=True)
    return list(zip(m.tolist(), n.tolist()))


def _partition_denominators(ext: Extents, fans: Fanouts, su: AnalyticSetup) -> np.ndarray:
    """[L, 3, B]: a level's own tile, or below a fan-out in use its parent's spatial partition
    (what the parent's spatial loops cover); 0 at the outermost level."""
    size_l = ext.size.transpose(1, 0, 2)  # [L, 3, B]
    L, _, B = size_l.shape
    pfd = np.zeros((L, NT, B), np.int64)
    pfd[1:] = size_l[1:]
    sp_active = fans.used > 1
    fl1 = [l for l in fans.levels if l < L - 1]
    if fl1 and sp_active[fl1].any():
        ssp = _sizes9(ext.cum[fl1, 1].transpose(1, 0, 2), su.A)  # [3, n, B]
        for i, l in enumerate(fl1):
            pfd[l + 1] = np.where(sp_active[l][None, :], ssp[:, i], size_l[l + 1])
    return pfd


def _sizes9(e: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Words per tensor [3, B] of op-space boxes with extents ``e`` [7, B] (int64)."""
    iw = A[1, 2, R] * (e[R] - 1) + A[1, 2, P] * (e[P] - 1) + 1
    ih = A[1, 3, S] * (e[S] - 1) + A[1, 3, Q] * (e[Q] - 1) + 1
    return np.stack([e[C] * e[M] * e[R] * e[S], e[N] * e[C] * iw * ih, e[N] * e[M] * e[Q] * e[P]])
