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
  difference of children's offsets and the two deltas have the same shape. Cheap conditions
  (a spatial loop the tensor ignores or a coordinate mixing P/R or Q/S; the remembered
  translation) exclude them for most candidates; the others go through the exact tests
  (:func:`_link_candidates`, :func:`_lattice_ok`, :func:`_neighbour_rows`), and the few with real
  link transfers are accounted visit by visit (:func:`_exact_links`).

Every claim above is checked against the simulator by the test suite (hypothesis, and the 1,517
reference runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepfrack.cost.mapping import MappingBatch
from deepfrack.cost.timeloop_post import NestStats
from deepfrack.dims import NT, C, M, N, P, Q, R, S
from deepfrack.workload.layer import Layer

#: op dims each tensor depends on
RELEVANT = (
    np.array([1, 1, 1, 1, 0, 0, 0], bool),  # Weights: C M R S
    np.array([1, 0, 1, 1, 1, 1, 1], bool),  # Inputs: C R S N P Q
    np.array([0, 1, 0, 0, 1, 1, 1], bool),  # Outputs: M N P Q
)


def proj_matrix(layer: Layer) -> np.ndarray:
    """int64 [3, 4, 7]: data coordinate e of tensor t = sum_d A[t, e, d] * op coordinate d."""
    A = np.zeros((NT, 4, 7), np.int64)
    for e, d in enumerate((C, M, R, S)):
        A[0, e, d] = 1
    A[1, 0, N] = 1
    A[1, 1, C] = 1
    A[1, 2, R] = layer.Wdilation
    A[1, 2, P] = layer.Wstride
    A[1, 3, S] = layer.Hdilation
    A[1, 3, Q] = layer.Hstride
    for e, d in enumerate((N, M, Q, P)):
        A[2, e, d] = 1
    return A


@dataclass
class AnalyticResult:
    stats: NestStats
    link_flag: np.ndarray  # bool [B]: link transfers could not be excluded and were accounted exactly
    bad_spatial: np.ndarray  # bool [B]: spatial factors on a level without fan-out


def _project(u: list[np.ndarray], layer: Layer) -> list[list[np.ndarray]]:
    """Per tensor, the 4 data coordinates of op-space vectors given as 7 arrays (C M R S N P Q)."""
    uC, uM, uR, uS, uN, uP, uQ = u
    return [
        [uC, uM, uR, uS],
        [uN, uC, layer.Wdilation * uR + layer.Wstride * uP, layer.Hdilation * uS + layer.Hstride * uQ],
        [uN, uM, uQ, uP],
    ]


#: the nine data coordinates the three tensors use, as combinations of op dims: C M R S N P Q, then
#: the Inputs width (Wdilation R + Wstride P) and height (Hdilation S + Hstride Q)
_C9 = 9
#: per tensor, its four data coordinates (in proj_matrix order) among the nine
_COORDS = ((C, M, R, S), (N, C, 7, 8), (N, M, Q, P))


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
    coords: np.ndarray  # int64 [3, 4]: _COORDS
    cmap: (
        np.ndarray
    )  # int64 [3, 8]: per tensor, the coordinate (of the nine; 9 = none) a dim moves (dim 7: none)
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
    A = proj_matrix(layer)
    fan = tuple((int(x), int(y)) for x, y in fanouts)
    has = [fx * fy > 1 for fx, fy in fan]
    P9 = np.zeros((_C9, 7), np.int64)
    P9[:7] = np.eye(7, dtype=np.int64)
    P9[7] = A[1, 2]
    P9[8] = A[1, 3]
    cmap = [[_C9] * 8 for _ in range(NT)]
    ccoef = [[0] * 8 for _ in range(NT)]
    Al = A.tolist()
    for t in range(NT):
        for c, c9 in enumerate(_COORDS[t]):
            for d in range(7):
                if Al[t][c][d]:
                    cmap[t][d] = c9
                    ccoef[t][d] = Al[t][c][d]
    rel = np.array(RELEVANT)
    return AnalyticSetup(
        A=A,
        fanouts=fan,
        has_fan=np.array(has, bool),
        fan_levels=tuple(i for i, h in enumerate(has) if h),
        nofan_levels=tuple(i for i, h in enumerate(has) if not h),
        stationary=translation == "stationary",
        P9=P9,
        coords=np.array(_COORDS, np.int64),
        cmap=np.array(cmap, np.int64),
        ccoef=np.array(ccoef, np.int64),
        rel=rel,
        irr=(~rel).astype(np.uint8),
    )


def analyze(
    batch: MappingBatch,
    fanouts: list[tuple[int, int]],
    layer: Layer,
    translation: str = "legacy",
    setup: AnalyticSetup | None = None,
) -> AnalyticResult:
    """Closed-form nest analysis of every candidate in ``batch`` (levels outer to inner, as the
    architecture lists them). ``fanouts_inner_first``: (X, Y) fan-out per storage level, innermost
    first; ``setup``: :func:`analytic_setup` of these (built here when not given). Arrays below
    are candidate-last: [levels, dims or rows, B], levels in Timeloop order (innermost first)."""
    su = setup if setup is not None else analytic_setup(fanouts, layer, translation)
    stationary = su.stationary
    A = su.A
    B, L, _ = batch.temporal.shape
    rows = np.arange(B)
    fan_lv = list(su.fan_levels)
    nf = len(fan_lv)
    has_fan = su.has_fan

    # ---- factors, Timeloop level order, candidate axis last ---------------------------------
    buf = np.empty((L, 2, 7, B), np.int64)  # [l, 0] temporal, [l, 1] spatial factors
    buf[:, 0] = batch.temporal.transpose(1, 2, 0)
    buf[:, 1] = batch.spatial.transpose(1, 2, 0)
    if su.nofan_levels:
        nofan = list(su.nofan_levels)
        bad_spatial = (buf[nofan, 1] > 1).any(axis=(0, 1))
        buf[nofan, 1] = 1
    else:
        bad_spatial = np.zeros(B, bool)
    sf = buf[:, 1]
    # extents: ext_sp[l] = product of the factors below level l's temporal loops (their strides),
    # ext_tile[l] = the extent of level l's tile
    cp = _accumulate(np.multiply, buf.reshape(2 * L, 7, B), from_end=True)
    ext_sp = cp[1::2]
    ext_tile = cp[0::2]

    def sig_s(l: int) -> np.ndarray:  # stride of level l's spatial loops, per dim [7, B]
        return ext_tile[l + 1] if l < L - 1 else np.ones((7, B), np.int64)

    # spatial fan-outs: children used (fan), on X (fx) and Y (fy)
    fxy = np.ones((3, L, B), np.int64)
    so: dict[int, np.ndarray] = {}
    split: dict[int, np.ndarray] = {}
    if nf:
        sf_f = sf[fan_lv]  # [nf, 7, B]
        gt1 = sf_f > 1
        so_f = np.empty((nf, 7, B), np.int8)  # spatial order, innermost first
        so_f[...] = batch.spatial_order[:, fan_lv, :].transpose(1, 2, 0)
        split_f = batch.split[:, fan_lv].T  # [nf, B]
        for i, l in enumerate(fan_lv):
            so[l] = so_f[i]
            split[l] = split_f[i]
        fxy[0, fan_lv] = sf_f.prod(axis=1)
        # the factors of the loops on X (positions before the split)
        s_ends = sf_f.reshape(-1).take(
            so_f.astype(np.int64) * B + (np.arange(nf) * (7 * B))[:, None, None] + rows
        )
        fxy[1, fan_lv] = np.where(np.arange(7)[None, :, None] < split_f[:, None, :], s_ends, 1).prod(axis=1)
        fxy[2, fan_lv] = fxy[0, fan_lv] // fxy[1, fan_lv]
    fan, fx, fy = fxy
    sp_active = fan > 1

    # data extents of the nine coordinates and tile sizes [3, L, B]
    CE = np.empty((_C9 + 1, L, B), np.int64)
    CE[:7] = ext_tile.transpose(1, 0, 2)
    CE[7] = A[1, 2, R] * (CE[R] - 1) + A[1, 2, P] * (CE[P] - 1) + 1
    CE[8] = A[1, 3, S] * (CE[S] - 1) + A[1, 3, Q] * (CE[Q] - 1) + 1
    CE[9] = 1
    co = su.coords
    size = CE[co[:, 0]] * CE[co[:, 1]] * CE[co[:, 2]] * CE[co[:, 3]]

    # products over the levels strictly outside: utilized instances, X and Y expansion
    abv = np.ones_like(fxy)
    for l in range(1, L):
        np.multiply(abv[:, l - 1], fxy[:, l - 1], out=abv[:, l])
    replication, x_exp, y_exp = abv
    compute_acc = CE[:7, 0].prod(axis=0) // fan.prod(axis=0)

    # ---- active temporal loops, per level compacted, outermost first: rows [R, B] -------------
    # row order: level 0 first, each level's loops outermost first; a level gets as many rows as
    # its most active candidate (padding rows: bound 1, dim 7 = none)
    to = np.empty((L, 7, B), np.int8)  # dim at each position, innermost first
    to[...] = batch.temporal_order.transpose(1, 2, 0)
    it = np.int32 if 2 * 7 * L * B < 2**31 else np.int64
    tbase = ((np.arange(L, dtype=it) * 14) * B)[:, None, None] + rows.astype(it)[
        None, None, :
    ]  # temporal plane of buf
    nb = buf.reshape(-1).take(to * it(B) + tbase)  # bound at each position [L, 7, B]
    active = nb > 1
    # active positions as a bit mask per level (bit p: position p), then a table gives the j-th
    # active position from the outermost
    amask = active[:, 0].astype(np.uint8)
    for pos in range(1, 7):
        amask |= active[:, pos].astype(np.uint8) << pos
    Kl = [int(x) for x in _POPCOUNT[amask].max(axis=1)]  # rows per level
    R_ = sum(Kl)
    Rabove = [sum(Kl[:s]) for s in range(L)]  # rows of the loops above level s = the first Rabove[s]
    Nr = np.ones((R_ + 1, B), np.int64)  # [R + 1, B] loop bounds (1: padding; the last row is padding)
    Dr = np.full((R_ + 1, B), 7, np.int8)  # dims (7: none)
    KS = np.zeros((R_ + 1, B), np.int64)  # strides: ext_sp[level, dim] (0 for padding rows)
    if R_:
        row_lev = np.repeat(np.arange(L), Kl)  # level of each row
        row_j = np.concatenate([np.arange(k) for k in Kl])
        posr = _NTH_ACTIVE.reshape(-1).take(
            amask[row_lev].astype(np.int64) * 7 + row_j[:, None]
        )  # [R, B], 7: none
        valid = posr < 7
        fidx = (row_lev[:, None] * 7 + np.minimum(posr, 6)).astype(it) * it(B) + rows.astype(it)[None, :]
        Dr[:R_] = np.where(valid, to.reshape(-1).take(fidx), 7)
        Nr[:R_] = np.where(valid, nb.reshape(-1).take(fidx), 1)
        fidx = ((14 * row_lev[:, None] + 7 + np.minimum(Dr[:R_], 6)).astype(it)) * it(B) + rows.astype(it)[
            None, :
        ]
        KS[:R_] = np.where(valid, cp.reshape(-1).take(fidx), 0)
    act_r = Nr > 1
    cpn = _accumulate(np.multiply, Nr)  # product of the bounds down to each row
    kw = np.empty_like(cpn)  # weight of the visits carrying into each row: (n - 1) x outer bounds
    kw[0] = cpn[0] - 1
    np.subtract(cpn[1:], cpn[:-1], out=kw[1:])
    outer_s = np.ones((L, B), np.int64)  # product of the temporal bounds above level s
    # the innermost active loop above each level (R: none)
    ref = np.full((L, B), R_, np.int64)
    la = np.full(B, R_, np.int64)
    r0 = 0
    for s in range(1, L):
        for r in range(r0, Rabove[s]):
            la = np.where(act_r[r], r, la)
        r0 = Rabove[s]
        ref[s] = la
        if Rabove[s]:
            outer_s[s] = cpn[Rabove[s] - 1]
    has_rows = ref != R_

    # ---- accesses of each level's tile to its parent ------------------------------------------
    # The translation of the visit carrying into row m (above level s) is u_m = V_m - pre(s) with
    # V_m = 2 t_m + sum(t_j, j outside m) and pre(s) = sum(t_j, j above s); two translations are
    # equal iff their V are, and V's projection onto a tensor is a non-negative vector bounded by
    # twice the layer's extent, so an integer key (mixed radix over the four data coordinates)
    # identifies it: accesses = |B| x prod(bounds above) - overlap(u_ref) x sum(weights of the
    # visits whose u equals u_ref) (module docstring; stationary: zero translations cost nothing).
    dtot = CE[:7, 0].max(axis=1) if B else np.ones(7, np.int64)  # [7] largest extent per dim
    # rows whose keys are needed: those above the innermost level, and its own for a fan-out to the MACs
    Rk = R_ if has_fan[L - 1] else Rabove[L - 1]
    keys, kcs = _keys(A, dtot, Dr[: Rk + 1], KS[: Rk + 1])  # [G, 3, Rk + 1, B]
    S_same = np.zeros((NT, L, B), np.int64)
    S_zero = np.zeros((NT, L, B), np.int64) if stationary else None
    ov_ref = np.empty((NT, L, B), np.int64)
    refz = np.empty((NT, L, B), bool)
    # the weighted sums over rows run in float64 when every partial sum is an exact integer there
    kwf = kw.astype(np.float64) if (R_ and int(cpn[R_ - 1].max()) < 2**53) else None
    if not stationary:
        refp = ref[1:] * B + rows
        d_ref = Dr.reshape(-1).take(refp).astype(np.intp)  # [L - 1, B]
        ks_ref = KS.reshape(-1).take(refp)
        c9 = su.cmap[:, d_ref]  # [3, L - 1, B]
        e = CE.reshape(-1).take(c9 * (L * B) + (np.arange(1, L)[:, None] * B + rows[None, :]))
        ov_ref[:, 1:] = (size[:, 1:] // e) * np.maximum(e - su.ccoef[:, d_ref] * ks_ref, 0)
        refz[:, 1:] = ov_ref[:, 1:] == size[:, 1:]
        G = keys.shape[0]
        kflat = keys.reshape(G * NT, -1)
        for s in range(1, L):
            Rs = Rabove[s]
            if not Rs:
                continue
            kref = kflat.take(np.minimum(ref[s], Rk) * B + rows, axis=1).reshape(
                G, NT, 1, B
            )  # (no loop above: weights 0)
            eq = keys[0, :, :Rs] == kref[0]
            for g in range(1, G):
                eq &= keys[g, :, :Rs] == kref[g]
            S_same[:, s] = _wsum(kw, kwf, Rs, eq)
    else:
        _stationary_sums(
            L, B, rows, Rabove, act_r, kw, kwf, keys, kcs, Dr, KS, su, CE, size, S_same, S_zero, ov_ref, refz
        )
    Acc = np.zeros((NT, L, B), np.int64)  # accesses of level s's tile to its parent
    Acc[:, 1:] = size[:, 1:] * outer_s[None, 1:] - ov_ref[:, 1:] * S_same[:, 1:]
    if stationary:
        Acc[:, 1:] -= size[:, 1:] * S_zero[:, 1:]

    # ---- link transfers -------------------------------------------------------------------
    # A fan-out's children can share deltas over links only if the tensor has a spatial loop it
    # ignores (equal children: zero translations only) or a coordinate mixing P/R or Q/S: every
    # temporal step above a spatial loop on dimension d is a multiple of that loop's span, so on a data
    # coordinate driven by d alone a visit's translation is never a non-zero difference of two
    # children's offsets. The exact tests run on the few candidates these cheap conditions leave.
    link_flag = np.zeros(B, bool)
    patches: dict[tuple[int, int], list] = {}
    if nf:
        # per fan-out level and tensor: a spatial loop the tensor ignores, a mixed coordinate
        ignored = np.tensordot(su.irr, gt1, axes=([1], [1])) > 0  # [3, nf, B]
        mixed = np.zeros((NT, nf, B), bool)
        mixed[1] = gt1[:, [P, R, Q, S]].any(axis=1)
        ctx = _LinkCtx(su, layer, Dr, KS, Nr, kw, keys, kcs, CE, size, sf, so, split, sig_s, ref, Rabove, R_)
        for i, p in enumerate(fan_lv):
            if p == L - 1:
                # fan-out to the MACs: deltas are single points, one per visit (all loops are above)
                nd = mixed[:, i] | ignored[:, i]
                if nd.any():
                    link_flag |= ctx.level(
                        -1, p, R_, [(nd[t], mixed[t, i]) if nd[t].any() else None for t in range(NT)], patches
                    )
                continue
            s = p + 1
            # _link_candidates: the remembered translation is not zero; unless a coordinate is
            # mixed, only zero translations can match, after one that moved the tile off itself
            nd = has_rows[s][None, :] & ~refz[:, s] & (mixed[:, i] | (ignored[:, i] & (ov_ref[:, s] == 0)))
            if stationary:  # (zero translations cost nothing: only mixed coordinates can link)
                nd &= mixed[:, i].any(axis=1)[:, None]
            if nd.any():
                link_flag |= ctx.level(
                    s,
                    p,
                    Rabove[s],
                    [(nd[t], mixed[t, i]) if nd[t].any() else None for t in range(NT)],
                    patches,
                )

    # ---- access histograms per level ----------------------------------------------------------
    child_acc = np.empty((L, NT, B), np.int64)  # what a level receives from one child
    child_acc[L - 1] = compute_acc
    child_acc[: L - 1] = Acc[:, 1:, :].transpose(1, 0, 2)
    hist_mc = np.ones((L, NT, 1, B), np.int64)
    hist_sc = np.ones((L, NT, 1, B), np.int64)
    if nf:
        # children with equal data share one parent access: groups = product of the spatial
        # factors the tensor depends on, multicast = the others
        G3 = np.where(su.rel[:, None, :, None], sf_f[None], 1).prod(axis=2)  # [3, nf, B]
        hist_sc[fan_lv, :, 0] = G3.transpose(1, 0, 2)
        hist_mc[fan_lv, :, 0] = (fan[fan_lv][None] // G3).transpose(1, 0, 2)
        # Inputs with P and R (or Q and S) both spread at one level: offsets may coincide unevenly
        cplx = (gt1[:, P] & gt1[:, R]) | (gt1[:, Q] & gt1[:, S])  # [nf, B]
        if cplx.any():
            hist_mc, hist_sc = _uneven_histograms(hist_mc, hist_sc, cplx, fan_lv, sf, sig_s, A)
    acc = hist_sc * child_acc[:, :, None, :].astype(np.float64)
    mc = np.where(hist_sc > 0, hist_mc, 1)
    link = np.zeros((L, NT, B))
    if patches:
        acc, mc, link = _apply_link_patches(acc, mc, hist_mc, hist_sc, child_acc, patches)

    # partition-fraction denominators: the child's tile, or its spatial partition below a fan-out
    size_l = size.transpose(1, 0, 2)  # [L, 3, B]
    pfd = np.zeros((L, NT, B), np.int64)
    pfd[1:] = size_l[1:]
    fl1 = [l for l in fan_lv if l < L - 1]
    if fl1 and sp_active[fl1].any():
        ssp = _sizes9(ext_sp[fl1].transpose(1, 0, 2), A)  # [3, n, B]
        for i, l in enumerate(fl1):
            pfd[l + 1] = np.where(sp_active[l][None, :], ssp[:, i], size_l[l + 1])

    stats = NestStats(
        size=np.ascontiguousarray(size_l),
        pfd=pfd,
        acc=acc,
        mc=mc,
        link=link,
        fanout=fan,
        replication=replication,
        x_exp=x_exp,
        y_exp=y_exp,
        compute_accesses=compute_acc.astype(np.float64),
        compute_replication=fan.prod(axis=0),
        mac_x=fx.prod(axis=0),
        mac_y=fy.prod(axis=0),
    )
    return AnalyticResult(stats, link_flag, bad_spatial)


class _LinkCtx:
    """Link-transfer detection and exact accounting on subsets of candidates (columns): the
    candidates the cheap conditions of :func:`analyze` could not exclude. Follows the rules of
    _link_candidates / _lattice_ok / _neighbour_rows / _exact_links."""

    def __init__(self, su, layer, Dr, KS, Nr, kw, keys, kcs, CE, size, sf, so, split, sig_s, ref, Rabove, R_):
        self.su, self.layer = su, layer
        self.Dr, self.KS, self.Nr, self.kw, self.keys, self.kcs = Dr, KS, Nr, kw, keys, kcs
        self.CE, self.size, self.sf, self.so, self.split, self.sig_s = CE, size, sf, so, split, sig_s
        self.ref, self.Rabove, self.R_ = ref, Rabove, R_
        self.layouts: dict = {}

    def _u(self, Rs: int, cols: np.ndarray):
        """Translations of the visits carrying into the first Rs rows (0 on padding rows), per op
        dim [Rs, n], and the rows' activity."""
        d = self.Dr[:Rs, cols]
        k = self.KS[:Rs, cols]
        act = self.Nr[:Rs, cols] > 1
        u = []
        for dd in range(7):
            st = np.where(d == dd, k, 0)
            cs = _accumulate(np.add, st, np.int64)
            u.append((cs + st - cs[-1]) * act)
        return u, act

    def _fan(self, p: int, cols: np.ndarray):
        fac = self.sf[p][:, cols].astype(np.int64)
        sig = self.sig_s(p)[:, cols].astype(np.int64)
        return fac, sig, self.so[p][:, cols].astype(np.int64), self.split[p][cols].astype(np.int64)

    def _layout_of(self, p: int, b: int) -> _Layout:
        su = self.su
        return _layout_cached(
            self.layouts,
            self.so[p][:, b].astype(np.int64),
            self.sf[p][:, b],
            int(self.split[p][b]),
            self.sig_s(p)[:, b],
            su.A,
            su.fanouts[p],
        )

    def level(self, s: int, p: int, Rs: int, need: list, patches: dict) -> np.ndarray:
        """Link flags [B] of the fan-out of level p, whose children are level s's tiles (s = -1: the
        MACs, single-point deltas), over the first Rs rows (the loops above that fan-out); patches
        for the flagged candidates. ``need[t]``: None, or (candidates to test, mixed coordinate) [B]."""
        stationary = self.su.stationary
        macs = s < 0
        B = self.size.shape[2]
        lf = np.zeros((NT, B), bool)
        if Rs == 0:  # no loop above: nothing to share
            return lf[0]
        for t in range(NT):
            if need[t] is None:
                continue
            nd, mixed = need[t]
            # columns without a mixed coordinate: only zero translations can be candidates
            # (_link_candidates with same = False; _lattice_ok needs a spatial loop t ignores), and
            # for U = 0 every candidate visit asks the same question: do two neighbouring
            # children hold equal data
            nm = np.nonzero(nd & ~mixed)[0]
            if len(nm):
                z = self.Nr[:Rs, nm] > 1
                for g in range(self.keys.shape[0]):  # V_m = pre: a zero translation
                    z &= self.keys[g, t, :Rs][:, nm] == self.kcs[g, t, Rs - 1][nm]
                hit = nm[z.any(axis=0)]
                if len(hit):
                    lf[t, hit] = self._equal_neighbours(p, t, hit)
            mx = np.nonzero(nd & mixed)[0]
            if len(mx):
                lf[t, mx] = self._mixed(s, p, Rs, t, mx, stationary, macs)
        flagged = np.nonzero(lf.any(axis=0))[0]
        if len(flagged) == 0:
            return np.zeros(B, bool)
        u, rel = self._u(Rs, flagged)
        Up = _project(u, self.layer)
        U_all = np.stack([np.stack(Up[t], axis=-1) for t in range(NT)]).astype(np.int64)  # [3, Rs, n, 4]
        if not macs:
            # deltas: |B| - overlap of the tile with itself moved by U
            D_all = np.empty((NT, Rs, len(flagged)), np.int64)
            for t in range(NT):
                ov = None
                for c, c9 in enumerate(_COORDS[t]):
                    o_ = np.maximum(0, self.CE[c9, s, flagged][None, :] - np.abs(U_all[t, :, :, c]))
                    ov = o_ if ov is None else ov * o_
                D_all[t] = self.size[t, s, flagged][None, :] - ov
        for j, b in enumerate(flagged.tolist()):
            js = np.nonzero(rel[:, j])[0][::-1]  # relevant loops, innermost first
            Ub = U_all[:, js, j, :]  # [3, W, 4]
            kw_b = self.kw[js, b]
            kn_b = self.Nr[js, b].astype(np.int64)
            if macs:
                patches[(b, p)] = _exact_links(
                    Ub,
                    np.ones(len(js), bool),
                    kw_b,
                    kn_b,
                    np.ones((NT, len(js)), np.int64),
                    np.ones(NT, np.int64),
                    None,
                    stationary,
                    True,
                    self._layout_of(p, b),
                    tensors=lf[:, b],
                )
                continue
            Db = D_all[:, js, j]
            if stationary:
                refb = []
                for t in range(NT):
                    nzr_ = [i for i in range(len(js)) if Ub[t, i].any()]
                    refb.append(Ub[t, nzr_[0]] if nzr_ else np.zeros(4, np.int64))
                refb = np.stack(refb)
            else:
                refb = Ub[:, 0, :]
            patches[(b, p)] = _exact_links(
                Ub,
                np.ones(len(js), bool),
                kw_b,
                kn_b,
                Db,
                self.size[:, s, b],
                refb,
                stationary,
                False,
                self._layout_of(p, b),
                tensors=lf[:, b],
            )
        return lf.any(axis=0)

    def _equal_neighbours(self, p: int, t: int, cols: np.ndarray) -> np.ndarray:
        """bool [n]: two mesh neighbours among the children of level p hold equal data of tensor t
        (the zero-translation case of _neighbour_rows), for candidates without a mixed coordinate:
        each data coordinate is then driven by one spatial loop, so offsets are equal iff the
        digits of the loops t depends on are, whatever the strides, and the answer depends on the
        spatial order, factors and split only; it is computed once per distinct arrangement."""
        fac, sig, order, spl = self._fan(p, cols)
        n = len(cols)
        radix = int(fac.max()) + 1
        if radix**7 < 2**39:
            code = np.zeros(n, np.int64)
            for d in range(7):
                code = code * radix + fac[d]
            code = code * 8 + np.minimum(spl, 7)
            for pos in range(7):
                code = (code << 3) | order[pos]
            _, rep, inv = np.unique(code, return_index=True, return_inverse=True)
        else:
            rep, inv = np.arange(n), np.arange(n)
        m = len(rep)
        U0 = [np.zeros((1, m), np.int64)] * 4
        res = _neighbour_rows(
            np.ones((1, m), bool),
            U0,
            t,
            order[:, rep],
            fac[:, rep],
            spl[rep],
            sig[:, rep],
            self.su.A,
            self.su.fanouts[p],
        )
        return res[inv]

    def _mixed(self, s, p, Rs, t, cols, stationary, macs) -> np.ndarray:
        """Link flags of tensor t for candidates with a mixed coordinate (the full tests)."""
        A = self.su.A
        u, rel = self._u(Rs, cols)
        n = len(cols)
        r = np.arange(n)
        Ut = _project(u, self.layer)[t]
        fac, sig, order, spl = self._fan(p, cols)
        lat = _lattice_data(t, fac, sig, A)
        if macs:
            cand = rel & _lattice_ok(Ut, lat)
        else:
            bs_t = self.size[t, s, cols]
            ov = None
            for c, c9 in enumerate(_COORDS[t]):
                o_ = np.maximum(self.CE[c9, s, cols] - np.abs(Ut[c]), 0)
                ov = o_ if ov is None else ov * o_
            zero = ov == bs_t
            if stationary:
                nzr = ~zero & rel
                ridx = Rs - 1 - np.argmax(nzr[::-1], axis=0)  # innermost non-zero translation
            else:
                ridx = np.where(self.ref[s, cols] == self.R_, 0, self.ref[s, cols])  # innermost loop
            refv = [Ut[c][ridx, r] for c in range(4)]
            eq = (Ut[0] == refv[0]) & (Ut[1] == refv[1]) & (Ut[2] == refv[2]) & (Ut[3] == refv[3])
            if stationary:
                eq |= zero
            cand = _link_candidates(rel, ov, zero, eq, ridx, r, stationary) & _lattice_ok(Ut, lat)
        if not cand.any():
            return np.zeros(n, bool)
        return _neighbour_rows(cand, Ut, t, order, fac, spl, sig, A, self.su.fanouts[p])


def _uneven_histograms(hist_mc, hist_sc, cplx, fan_lv, sf, sig_s, A):
    """Replace the Inputs histograms [L, 3, H, B] of the fan-outs ``cplx`` [nf, B] flags (P and R,
    or Q and S, spread at one level) by their enumeration, sorted by multicast factor."""
    L, _, _, B = hist_mc.shape
    extra = {}
    H = 1
    for i, l in enumerate(fan_lv):
        if not cplx[i].any():
            continue
        sg = sig_s(l)
        for b in np.nonzero(cplx[i])[0]:
            hist = _input_histogram(sf[l, :, b], sg[:, b], A)
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


def _sizes9(e: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Words per tensor [3, B] of op-space boxes with extents ``e`` [7, B] (int64)."""
    iw = A[1, 2, R] * (e[R] - 1) + A[1, 2, P] * (e[P] - 1) + 1
    ih = A[1, 3, S] * (e[S] - 1) + A[1, 3, Q] * (e[Q] - 1) + 1
    return np.stack([e[C] * e[M] * e[R] * e[S], e[N] * e[C] * iw * ih, e[N] * e[M] * e[Q] * e[P]])


def _keys(A: np.ndarray, dtot: np.ndarray, Dr: np.ndarray, KS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys [G, 3, R, B] of V_m = 2 t_m + sum(t_j, j outside m) (rows outermost first) projected
    onto each tensor, and of sum(t_j, j down to m): per tensor one integer per group of data
    coordinates (mixed radix; a single group unless the layer is huge). Coordinate c of V lies in
    [0, 2 x sum_d A[t, c, d] dtot_d] (the strides of the loops on one dim at least double outward,
    so they sum to less than the dim's extent)."""
    radix_a = 2 * (A * dtot).sum(axis=2) + 1  # [3, 4]
    radix = radix_a.tolist()
    prods = [radix[t][0] * radix[t][1] * radix[t][2] * radix[t][3] for t in range(NT)]
    if max(prods) < 2**62:  # one key per tensor
        G = 1
        mult = np.ones((NT, 4), np.int64)
        mult[:, 1:] = np.cumprod(radix_a[:, :3], axis=1)
        W = np.zeros((1, NT, 8), np.int64)  # key weight of a unit step of each dim (7: none)
        W[0, :, :7] = (mult[:, :, None] * A).sum(axis=1)
        top = max(prods)
    else:
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
        G = max(len(g) for g in groups)
        W = np.zeros((G, NT, 8), np.int64)
        top = 1
        for t in range(NT):
            for g, cs in enumerate(groups[t]):
                m = 1
                for c in cs:
                    W[g, t, :7] += m * A[t, c]
                    m *= radix[t][c]
                top = max(top, m)
    kt = np.int32 if top < 2**31 else np.int64
    a = W.astype(kt).take(Dr.astype(np.intp), axis=2) * KS.astype(kt)  # [G, 3, R, B]
    cs = _accumulate(np.add, a.reshape(G * NT, *Dr.shape), axis=1).reshape(
        a.shape
    )  # key of sum(t_j, j down to m)
    return cs + a, cs


def _wsum(kw: np.ndarray, kwf: np.ndarray | None, Rs: int, mask: np.ndarray) -> np.ndarray:
    """sum(kw[r] for the first Rs rows where mask [3, Rs, B]) per tensor and candidate (int64);
    through float64 when possible (exact: ``kwf`` is given only when every sum is below 2**53),
    which is faster."""
    if kwf is not None:
        return np.einsum("trb,rb->tb", mask, kwf[:Rs]).astype(np.int64)
    return (kw[None, :Rs] * mask).sum(axis=1)


def _stationary_sums(
    L, B, rows, Rabove, act_r, kw, kwf, keys, kcs, Dr, KS, su, CE, size, S_same, S_zero, ov_ref, refz
):
    """The "stationary" rule (timeloop a12fff5): zero translations cost nothing and are not
    remembered; the remembered translation is the innermost non-zero one."""
    # the nine coordinates of V per row, for the overlap of the remembered translation
    P98 = np.zeros((_C9, 8), np.int64)
    P98[:, :7] = su.P9
    st9 = P98.take(Dr.astype(np.intp), axis=1) * KS[None]  # [9, R, B]
    cs9 = _accumulate(np.add, st9, axis=1)
    V9 = cs9 + st9
    G = keys.shape[0]
    for s in range(1, L):
        Rs = Rabove[s]
        if not Rs:
            ov_ref[:, s] = size[:, s]
            refz[:, s] = True
            continue
        act = act_r[:Rs]
        zero = keys[0, :, :Rs] == kcs[0, :, Rs - 1][:, None, :]  # V_m = pre(s): a zero translation
        for g in range(1, G):
            zero &= keys[g, :, :Rs] == kcs[g, :, Rs - 1][:, None, :]
        same = np.empty_like(zero)
        for t in range(NT):
            nzr = ~zero[t] & act
            anynz = nzr.any(axis=0)
            ridx = Rs - 1 - np.argmax(nzr[::-1], axis=0)
            e_ = keys[0, t, :Rs] == keys[0, t, ridx, rows]
            for g in range(1, G):
                e_ &= keys[g, t, :Rs] == keys[g, t, ridx, rows]
            same[t] = e_ & ~zero[t]
            ov = np.ones(B, np.int64)
            for c9 in _COORDS[t]:
                u = V9[c9, ridx, rows] - cs9[c9, Rs - 1]
                ov *= np.maximum(CE[c9, s] - np.abs(u), 0)
            ov_ref[t, s] = np.where(anynz, ov, size[t, s])
            refz[t, s] = ~anynz
        S_zero[:, s] = _wsum(kw, kwf, Rs, zero)
        S_same[:, s] = _wsum(kw, kwf, Rs, same)


# --------------------------------------------------------------------------------------------- #
# spatial multicast histograms
# --------------------------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------------------------- #
# link transfers: fast exclusion
# --------------------------------------------------------------------------------------------- #
def _link_candidates(rel, ov, zero, eq, ridx, rows, stationary) -> np.ndarray:
    """bool [K, B]: visits whose delta has the same shape as the previous visit's and is non-empty
    (the precondition of a link transfer; see _exact_links): both are the slab the remembered
    translation leaves, or both the whole tile (after a refetch, or when the remembered translation
    moves the tile off itself)."""
    refz = zero[ridx, rows]  # the remembered translation is zero: slabs are empty
    noov = ov[ridx, rows] == 0  # ... or moves the tile entirely off itself
    same = eq & ~zero
    cand = rel & ~refz[None, :] & (same | noov[None, :])
    if not stationary:
        cand |= rel & ~refz[None, :] & noov[None, :] & zero
    return cand


def _lattice_data(t, fac, sig, A):
    """Per data coordinate of tensor t at one fan-out: how many of the level's spatial loops drive
    it, and for a single driver its offset step and bound ([B] arrays); and whether some spatial
    loop is irrelevant to the tensor (two children with equal offsets). ``fac``, ``sig``: spatial
    factor and stride per dimension [7, B]."""
    coords = []
    multi = np.zeros(fac.shape[1], bool)
    for c in range(4):
        ds = np.nonzero(A[t, c])[0]
        act = [fac[d] > 1 for d in ds]
        nd = sum(a.astype(np.int64) for a in act)
        step = np.ones(fac.shape[1], np.int64)
        bound = np.ones(fac.shape[1], np.int64)
        for d, a in zip(ds, act):
            step = np.where(a, int(A[t, c, d]) * sig[d], step)
            bound = np.where(a, fac[d], bound)
        coords.append((nd, step, bound * step))
        multi |= nd > 1
    irrelevant = (fac[~RELEVANT[t]] > 1).any(axis=0)
    return coords, irrelevant | multi


def _lattice_ok(Ut, lat) -> np.ndarray:
    """bool [K, B]: the visit's translation can be a difference of two children's offsets:
    sum_l c_l T_l with |c_l| < f_l over the level's spatial loops (U = 0 needs a loop the tensor
    ignores, or two loops driving one coordinate). Exact for coordinates driven by one spatial
    loop; a coordinate driven by two passes (the neighbour test decides)."""
    coords, zero_ok = lat
    ok = None
    zU = None
    for c, (nd, step, span) in enumerate(coords):
        u = Ut[c]
        z = u == 0
        one = (
            (nd == 1)[None, :]
            & (u % step.astype(u.dtype)[None, :] == 0)
            & (np.abs(u) < span.astype(u.dtype)[None, :])
        )
        cond = z | one | (nd > 1)[None, :]
        ok = cond if ok is None else ok & cond
        zU = z if zU is None else zU & z
    return ok & (~zU | zero_ok[None, :])


def _neighbour_rows(cand, Ut, t, order, fac, split, sig, A, phys_fan, budget: int = 1 << 22) -> np.ndarray:
    """bool [B]: some candidate visit's translation equals the offset difference of two children
    that Timeloop compares (ComputeNetworkLinkTransfers: linear index = y * h + x with h = max(physical,
    mapped) X fan-out; up/down/left/right neighbours among the existing children). ``cand``, ``Ut``
    [K, B]; ``order`` the spatial permutation, ``fac``/``sig`` factor and stride per dimension,
    ``split`` [B], all per candidate (already filtered by _lattice_ok). Rows are processed in groups
    of similar child counts."""
    out = np.zeros(cand.shape[1], bool)
    rsel = np.nonzero(cand.any(axis=0))[0]
    if len(rsel) == 0:
        return out
    px, py = int(phys_fan[0]), int(phys_fan[1])
    F_all = fac[:, rsel].prod(axis=0)
    # compact the candidate visits: distinct translations only matter, few per row
    kc = cand[:, rsel]
    Kc = int(kc.sum(axis=0).max())
    korder = np.argsort(~kc, axis=0, kind="stable")[:Kc]
    kmask = np.take_along_axis(kc, korder, axis=0)
    Uc = [np.take_along_axis(Ut[e][:, rsel], korder, axis=0).astype(np.int64) for e in range(4)]
    bucket = np.ceil(np.log2(np.maximum(F_all, 1))).astype(int)
    for bk in np.unique(bucket):
        sel = np.nonzero(bucket == bk)[0]
        Fm = int(F_all[sel].max())
        step = max(1, budget // max(1, Fm * Kc * 16))
        for c0 in range(0, len(sel), step):
            q = sel[c0 : c0 + step]
            r = rsel[q]
            n = len(r)
            od = order[:, r]  # [7, n] dim at each position
            f = np.take_along_axis(fac[:, r], od, axis=0)  # [7, n] factor per position (1 = inactive)
            g = np.take_along_axis(sig[:, r], od, axis=0)
            onx = np.arange(7)[:, None] < split[r][None, :]
            F = f.prod(axis=0)
            lx = np.where(onx, f, 1).prod(axis=0)
            ly = F // lx
            h = np.maximum(px, lx)
            v = np.maximum(py, ly)
            Fq = int(F.max())
            k = np.arange(Fq)[None, :]  # [1, Fq]
            exists = k < F[:, None]
            # offsets of every child (mixed radix over the active loops, innermost least significant)
            off = np.zeros((4, n, Fq), np.int64)
            rem = np.broadcast_to(k, (n, Fq)).copy()
            for pos in range(7):
                fp = f[pos][:, None]
                digit = rem % fp
                rem //= fp
                coef = A[t][:, od[pos]]  # [4, n]
                off += (coef * g[pos])[:, :, None] * digit[None]
            hh = k % h[:, None]
            vv = k // h[:, None]
            nbr = [k - h[:, None], k + h[:, None], k - 1, k + 1]
            okd = [
                (v[:, None] > 1) & (vv >= 1),
                (v[:, None] > 1) & (vv <= v[:, None] - 2),
                (h[:, None] > 1) & (hh >= 1),
                (h[:, None] > 1) & (hh <= h[:, None] - 2),
            ]
            U = [u[:, q] for u in Uc]  # [Kc, n]
            km = kmask[:, q]
            hit = np.zeros(n, bool)
            for nb, ok in zip(nbr, okd):
                ok = ok & exists & (nb >= 0) & (nb < F[:, None])
                if not ok.any():
                    continue
                nbc = np.clip(nb, 0, Fq - 1)
                eqall = km[:, :, None] & ok[None]
                for e in range(4):
                    diff = np.take_along_axis(off[e], nbc, axis=1) - off[e]  # [n, Fq]
                    eqall &= U[e][:, :, None] == diff[None]
                hit |= eqall.any(axis=(0, 2))
            out[r] = hit
    return out


# --------------------------------------------------------------------------------------------- #
# exact link-transfer accounting
# --------------------------------------------------------------------------------------------- #
@dataclass
class _Layout:
    """The children of one fan-out: per element (Timeloop's linear index) its offset per tensor, and
    the neighbour differences in the four directions Timeloop tests."""

    F: int
    offsets: np.ndarray  # int64 [3, F, 4]
    nbr_diff: np.ndarray  # int64 [3, F, 4 dirs, 4]
    nbr_ok: np.ndarray  # bool [F, 4 dirs]
    keys: np.ndarray  # int64 [3, F]: one integer per distinct offset
    # per (tensor, translation): the linked children and groups (see _links_one_tensor), shared by
    # the candidates of one analysis with this layout
    memo: dict = field(default_factory=dict)
    segs: dict = field(default_factory=dict)  # tensor -> (children sorted by offset, segment starts)


def _layout_cached(cache: dict, order, fac, split, sig, A, phys_fan) -> _Layout:
    """:func:`_layout`, memoized in ``cache`` by the fan-out's active loops."""
    key = (
        tuple((int(d), int(fac[d]), pos < split, int(sig[d])) for pos, d in enumerate(order) if fac[d] > 1),
        tuple(phys_fan),
    )
    lay = cache.get(key)
    if lay is None:
        lay = cache[key] = _layout(order, fac, split, sig, A, phys_fan)
    return lay


def _layout(order, fac, split, sig, A, phys_fan) -> _Layout:
    """``order``: the level's spatial permutation (innermost first), ``fac``/``sig``: factor and
    stride per dimension, ``split``: positions before it are on X."""
    loops = [
        (int(d), int(fac[d]), 1 if pos < split else 2, int(sig[d]))
        for pos, d in enumerate(order)
        if fac[d] > 1
    ]
    F = 1
    lx = ly = 1
    for _d, e, k, _ in loops:
        F *= e
        if k == 1:
            lx *= e
        else:
            ly *= e
    keys = np.arange(F)
    op = np.zeros((F, 7), np.int64)
    rem = keys.copy()
    for d, e, _k, sg in loops:  # innermost loop = least significant digit
        op[:, d] += (rem % e) * sg
        rem //= e
    offsets = op @ A.transpose(0, 2, 1)  # [3, F, 4]
    h = max(int(phys_fan[0]), lx)
    v = max(int(phys_fan[1]), ly)
    hh = keys % h
    vv = keys // h
    nbr = np.stack([keys - h, keys + h, keys - 1, keys + 1], axis=1)  # down, up, left, right
    ok = np.stack(
        [(v > 1) & (vv >= 1), (v > 1) & (vv <= v - 2), (h > 1) & (hh >= 1), (h > 1) & (hh <= h - 2)], axis=1
    )
    ok &= (nbr >= 0) & (nbr < F)
    nb = np.clip(nbr, 0, F - 1)
    diff = offsets[:, nb, :] - offsets[:, keys, None, :]  # [3, F, 4, 4]
    span = offsets.max(axis=(0, 1)) + 1  # offsets are non-negative
    mult = np.array([1, span[0], span[0] * span[1], span[0] * span[1] * span[2]], np.int64)
    okeys = (offsets * mult[None, None, :]).sum(axis=2)
    return _Layout(F, offsets, diff, ok, okeys)


def _exact_links(U, act, wt, n, D, Bsz, ref, stationary, points, lay: _Layout, tensors=None):
    """Per tensor: (extra histogram {(mc, sc): accesses}, accesses moved out of the plain histogram,
    link transfers) for the visits of one fan-out that Timeloop serves over links (see
    :func:`_links_one_tensor`); ``tensors`` selects the tensors to account (others get nothing)."""
    idx = [int(i) for i in np.nonzero(act)[0]]
    out = []
    for t in range(NT):
        if idx and (tensors is None or tensors[t]):
            out.append(_links_one_tensor(t, U, idx, wt, n, D, Bsz, ref, stationary, points, lay))
        else:
            out.append(({}, 0.0, 0.0))
    return out


def _linked_groups(lay: _Layout, t: int, U: np.ndarray) -> list:
    """For each translation U[i] (rows of [W, 4]): (number of children that can take it from a
    mesh neighbour, {multicast: groups} of the others), or None when the links do not pay (as
    many distinct offsets left as without them). Memoized per layout."""
    out: list = [None] * len(U)
    todo = []
    for i, u in enumerate(map(tuple, U.tolist())):
        r = lay.memo.get((t, u), False)
        if r is False:
            todo.append((i, u))
        else:
            out[i] = r
    if not todo:
        return out
    if t not in lay.segs:
        order = np.argsort(lay.keys[t], kind="stable")
        sk = lay.keys[t][order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        lay.segs[t] = (order, starts)
    order, starts = lay.segs[t]
    G = len(starts)
    Ut = np.array([u for _, u in todo], np.int64)  # [n, 4]
    match = (lay.nbr_diff[t][None] == Ut[:, None, None, :]).all(axis=3) & lay.nbr_ok[None]  # [n, F, 4 dirs]
    linked = match.any(axis=2)  # [n, F]
    nl = linked.sum(axis=1)
    # children left per distinct offset
    left = np.add.reduceat((~linked[:, order]).astype(np.int64), starts, axis=1)  # [n, G]
    ngroups = (left > 0).sum(axis=1)
    for j, (i, u) in enumerate(todo):
        r = None
        if nl[j] and ngroups[j] < G:
            c, k = np.unique(left[j][left[j] > 0], return_counts=True)
            r = (int(nl[j]), dict(zip(c.tolist(), k.tolist())))
        lay.memo[(t, u)] = r
        out[i] = r
    return out


def _links_one_tensor(t, U, idx, wt, n, D, Bsz, ref, stationary, points, lay: _Layout):
    """Link-transfer accounting of tensor t at one fan-out.

    Visits (see the module docstring): the first (no predecessor), u_1 visits after the first or
    after a carry into m, and carries into m (after a u_1 visit). A child can take its delta over a
    link (nest-analysis.cpp ComputeNetworkLinkTransfers) when the visit's delta and the previous
    visit's delta have the same shape (both the whole tile, both the slab left by the remembered
    translation, or single points at the MACs) and a mesh neighbour's offset differs from its own by
    the visit's translation. Timeloop then uses the links if that leaves fewer distinct deltas to
    fetch from the parent than multicast alone."""
    extra: dict[tuple[int, int], float] = {}
    moved = 0.0
    links = 0.0
    Ut = [tuple(x) for x in U[t].tolist()]
    Dt = D[t].tolist()
    full = int(Bsz[t])
    i1 = idx[0]
    r_legacy = Ut[i1]
    r_stat = tuple(int(x) for x in ref[t]) if ref is not None else None
    zero_vec = (0, 0, 0, 0)
    groups: list | None = None

    def shape(i):
        """(kind, size) of the delta of a visit whose translation is U[i]."""
        if points:
            return ("pt", 1)
        u = Ut[i]
        if stationary:
            if u == zero_vec:
                return ("empty", 0)
            same = r_stat != zero_vec and u == r_stat
        else:
            same = u == r_legacy
            if same and u == zero_vec:
                return ("empty", 0)
        if same:
            return ("full", full) if Dt[i] == full else ("slab", Dt[i])
        return ("full", full)

    def visit(i, pred_shape, weight):
        nonlocal moved, links, groups
        if weight == 0:
            return
        sh = shape(i)
        if sh[1] == 0 or sh[0] != pred_shape[0]:
            return
        if groups is None:
            groups = _linked_groups(lay, t, U[t])
        lg = groups[i]
        if lg is None:
            return
        nl, g = lg
        amount = float(sh[1]) * float(weight)
        moved += amount
        links += float(nl) * amount
        for m_, c_ in g.items():
            extra[(m_, c_)] = extra.get((m_, c_), 0.0) + c_ * amount

    first_shape = ("pt", 1) if points else ("full", full)
    n1 = int(n[i1])
    visit(i1, first_shape, n1 - 1)  # u_1 visit right after the first
    for i in idx[1:]:
        w = int(wt[i])
        visit(i, shape(i1), w)  # carry into i (after a u_1 visit)
        visit(i1, shape(i), (n1 - 1) * w)  # u_1 visit after that carry
    return extra, moved, links


def _apply_link_patches(acc, mc, hist_mc, hist_sc, child_acc, patches):
    """Rebuild the histograms of the patched (candidate, level) pairs: the plain multicast
    histogram for the accesses not served over links, plus the linked visits' own histograms.
    Arrays are [L, 3, H, B]."""
    L, _, H, B = acc.shape
    rows: dict[tuple[int, int, int], list[tuple[int, int, float]]] = {}
    link = np.zeros((L, NT, B))
    Hn = H
    for (b, p), per_t in patches.items():
        for t, (extra, moved, links) in enumerate(per_t):
            if moved == 0:
                continue
            base = float(child_acc[p, t, b]) - moved
            d: dict[tuple[int, int], float] = {}
            for h in range(H):
                if hist_sc[p, t, h, b] > 0:
                    key = (int(hist_mc[p, t, h, b]), int(hist_sc[p, t, h, b]))
                    d[key] = d.get(key, 0.0) + key[1] * base
            for key, v in extra.items():
                d[key] = d.get(key, 0.0) + v
            items = sorted((k, v) for k, v in d.items() if v != 0)
            rows[(b, p, t)] = [(k[0], k[1], v) for k, v in items]
            link[p, t, b] = links
            Hn = max(Hn, len(items))
    if Hn > H:
        acc = np.concatenate([acc, np.zeros((L, NT, Hn - H, B))], axis=2)
        mc = np.concatenate([mc, np.ones((L, NT, Hn - H, B), mc.dtype)], axis=2)
    for (b, p, t), items in rows.items():
        acc[p, t, :, b] = 0.0
        mc[p, t, :, b] = 1
        for h, (m_, _c, v) in enumerate(items):
            acc[p, t, h, b] = v
            mc[p, t, h, b] = m_
    return acc, mc, link
