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
* Summing over the counter: accesses(B) = |B| + sum_m (n_m - 1) * prod(n_j, j outside m) * delta_m.
* A spatial fan-out multiplies that by the number of distinct translates among the children
  (children with equal data share one parent access: multicast); the histogram by multicast
  factor is uniform unless two spatial loops of one level drive the same input coordinate (P and
  R, or Q and S), which is enumerated.
* Link transfers between neighbouring children (a child's delta equal to a neighbour's previous
  delta, ``ComputeNetworkLinkTransfers``) are possible only when a visit's translation equals a
  difference of children's offsets and the two deltas have the same shape. A vectorized test
  excludes them for most candidates (:func:`_link_candidates`, :func:`_lattice_rows`); for the
  others the visits are accounted exactly, child by child (:func:`_exact_links`).

Every claim above is checked against the simulator by the test suite (hypothesis, and the 1,517
reference runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product as iproduct

import numpy as np

from deepfrack.cost.mapping import MappingBatch
from deepfrack.cost.timeloop_post import NestStats
from deepfrack.workload.layer import Layer

C, M, R, S, N, P, Q = range(7)
NT = 3
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


def analyze(batch: MappingBatch, fanouts_inner_first: list[tuple[int, int]], layer: Layer, translation: str = "legacy") -> AnalyticResult:
    """Closed-form nest analysis of every candidate in ``batch`` (levels outer to inner, as the
    architecture lists them). ``fanouts_inner_first``: (X, Y) fan-out per storage level, innermost
    first. Arrays below are candidate-last: [levels, dims or slots, B]."""
    stationary = translation == "stationary"
    B, L, _ = batch.temporal.shape
    A = proj_matrix(layer)
    rows = np.arange(B)
    # Timeloop level order (innermost first), candidate axis last
    tf = np.ascontiguousarray(batch.temporal[:, ::-1, :].transpose(1, 2, 0))  # [L, 7, B] factor per dim
    to = np.ascontiguousarray(batch.temporal_order[:, ::-1, :].transpose(1, 2, 0))  # [L, 7, B] dim per position
    sf = np.ascontiguousarray(batch.spatial[:, ::-1, :].transpose(1, 2, 0))
    so = np.ascontiguousarray(batch.spatial_order[:, ::-1, :].transpose(1, 2, 0))
    split = np.ascontiguousarray(batch.split[:, ::-1].T)  # [L, B]
    has_fan = np.array([fx * fy > 1 for fx, fy in fanouts_inner_first], bool)
    bad_spatial = ((sf[~has_fan] > 1).any(axis=(0, 1))) if (~has_fan).any() else np.zeros(B, bool)
    sf[~has_fan] = 1
    flat0 = (np.arange(L)[:, None, None] * 7) * B + rows[None, None, :]  # flat index of (l, 0, b)

    # ---- strides: every dimension appears once per (level, spatial|temporal) group -------------
    # the stride of a level's spatial (temporal) loop on dim d is the extent of d below it
    ext_tile = np.empty((L, 7, B), np.int64)
    ext_sp = np.empty((L, 7, B), np.int64)
    sig_t = np.empty((L, 7, B), np.int64)
    e = np.ones((7, B), np.int64)
    for lv in range(L):
        e = e * sf[lv]
        ext_sp[lv] = e
        sig_t[lv] = e
        e = e * tf[lv]
        ext_tile[lv] = e
    sig_s = np.empty_like(ext_sp)  # per dim
    sig_s[0] = 1
    sig_s[1:] = ext_tile[:-1]
    xpos = np.arange(7)[None, :, None] < split[:, None, :]  # positions on X
    s_ends = sf.ravel().take(flat0 + so * B)  # [L, 7 positions, B]
    fx = np.where(xpos, s_ends, 1).prod(axis=1)  # [L, B]
    fan = sf.prod(axis=1)
    fy = fan // fx
    sp_active = fan > 1

    dext_tile = _data_extents(ext_tile, A)  # [3, 4, L, B]
    size = _sizes(dext_tile)  # [3, L, B]

    def above(a: np.ndarray) -> np.ndarray:  # product over levels strictly outside
        out = np.ones_like(a)
        out[:-1] = np.cumprod(a[::-1], axis=0)[::-1][1:]
        return out

    replication = above(fan)
    x_exp = above(fx)
    y_exp = above(fy)
    compute_acc = ext_tile[-1].prod(axis=0) // fan.prod(axis=0)

    # ---- active temporal loops, compacted outermost first: [K, B] ---------------------------------
    tidx = (flat0 + to * B)[::-1, ::-1].reshape(7 * L, B)  # nest positions, outermost first
    tends = tf.ravel().take(tidx)
    active = tends > 1
    cnt = active.sum(axis=0)
    K = max(1, int(cnt.max()))
    # compact the active loops to the top rows, keeping their order (a scatter by running count)
    slot = np.cumsum(active, axis=0) - 1
    slot[~active] = K  # a dump row
    fidx = np.zeros((K + 1, B), np.int64)
    fidx[slot, rows[None, :]] = tidx
    fidx = fidx[:K]
    kact = np.arange(K)[:, None] < cnt[None, :]
    kd = (fidx // B) % 7
    klev = np.where(kact, fidx // (7 * B), -1)
    kn = np.where(kact, tf.ravel().take(fidx), 1)
    ks = sig_t.ravel().take(fidx) * kact
    outer = np.ones_like(kn)
    outer[1:] = np.cumprod(kn[:-1], axis=0)
    kw = (kn - 1) * outer  # [K, B] weight of the visits carrying into each loop
    # translations are sums of strides times projection coefficients: int32 while that is safe
    coef = max(1, int(A.max()))
    big = int(size.max()) >= 2**31 or int(ext_tile.max()) * coef * 8 >= 2**31
    it = np.int64 if big else np.int32
    steps = [((kd == d) * ks).astype(it) for d in range(7)]  # op-space step of each loop
    pre = [np.concatenate([np.zeros((1, B), it), np.cumsum(st, axis=0, dtype=it)]) for st in steps]  # [K+1, B]

    Acc = np.empty((NT, L, B), np.int64)  # accesses the child tile of each level costs its parent
    link_flag = np.zeros(B, bool)
    patches: dict[tuple[int, int], list] = {}
    lat = [[_lattice_data(t, sf[lv], sig_s[lv], A) for t in range(NT)] if has_fan[lv] else None for lv in range(L)]
    linkable = [[_linkable(t, sf[lv]) for t in range(NT)] if has_fan[lv] else None for lv in range(L)]
    n_above = [(klev > s).sum(axis=0) for s in range(L)]
    for s in range(L - 1):
        P_s = n_above[s]  # the loops above level s are the first P_s (outermost first)
        W = int(P_s.max())
        bs_all = size[:, s, :]
        if W == 0:
            Acc[:, s, :] = bs_all
            continue
        rel = np.arange(W)[:, None] < P_s[None, :]
        innermost = np.maximum(P_s - 1, 0)
        # translation of visit m: its step minus the steps of the relevant loops inside it
        # = 2 step_m + prefix_m - prefix_P
        u = [(2 * st[:W] + pr[:W] - pr[P_s, rows]) * rel for st, pr in zip(steps, pre)]
        wt = kw[:W] * rel
        wsum = wt.sum(axis=0)
        Up = _project(u, layer)
        lf_t = np.zeros((NT, B), bool)
        for t in range(NT):
            Ut = Up[t]
            ext = dext_tile[t, :, s, :].astype(it)  # [4, B]
            bs_t = bs_all[t]
            ov = np.maximum(ext[0] - np.abs(Ut[0]), 0)
            for c in range(1, 4):
                ov *= np.maximum(ext[c] - np.abs(Ut[c]), 0)
            zero = ov == bs_t.astype(it)
            if stationary:
                nzr = ~zero & rel
                ridx = W - 1 - np.argmax(nzr[::-1], axis=0)  # innermost non-zero translation
            else:
                ridx = innermost
            ref = [Ut[c][ridx, rows] for c in range(4)]
            eq = (Ut[0] == ref[0]) & (Ut[1] == ref[1]) & (Ut[2] == ref[2]) & (Ut[3] == ref[3])
            if stationary:
                eq |= zero
            # delta = |B| - eq * overlap  (D(u) = |B| - overlap when the translation repeats)
            Acc[t, s] = bs_t * (1 + wsum) - (wt * (eq * ov)).sum(axis=0)
            if has_fan[s + 1] and linkable[s + 1][t][2]:
                mixed, ignored, _ = linkable[s + 1][t]
                refz = zero[ridx, rows]
                if mixed.any():
                    cand = _link_candidates(rel, ov, zero, eq, ridx, rows, stationary) & _lattice_ok(Ut, lat[s + 1][t])
                    cand &= mixed[None, :] | zero
                elif stationary:
                    cand = np.zeros((1, B), bool)  # zero translations cost nothing: no delta to share
                else:
                    # only a zero translation can match (two children with equal data): a refetch
                    # of a tile the previous visit also fetched whole
                    noov = ov[ridx, rows] == 0
                    cand = rel & zero & (~refz & noov & ignored)[None, :]
                if cand.any():
                    lf_t[t] = _neighbour_rows(cand, Ut, t, so[s + 1], sf[s + 1], split[s + 1], sig_s[s + 1], A, fanouts_inner_first[s + 1])
        lf_p = lf_t.any(axis=0)
        link_flag |= lf_p
        # exact accounting of the fan-out at s + 1 for the flagged candidates
        p = s + 1
        for b in np.nonzero(lf_p)[0]:
            js = np.arange(int(P_s[b]))[::-1]  # relevant loops, innermost first
            Ub = np.stack([np.stack([Up[t][c][js, b] for c in range(4)], axis=1) for t in range(NT)]).astype(np.int64)  # [3, W, 4]
            Db = np.stack([size[t, s, b] - np.prod(np.maximum(0, dext_tile[t, :, s, b][None, :] - np.abs(Ub[t])), axis=1) for t in range(NT)])
            if stationary:
                refb = []
                for t in range(NT):
                    nzr_ = [j for j in range(len(js)) if Ub[t, j].any()]
                    refb.append(Ub[t, nzr_[0]] if nzr_ else np.zeros(4, np.int64))
                refb = np.stack(refb)
            else:
                refb = Ub[:, 0, :]
            patches[(int(b), p)] = _exact_links(
                Ub, np.ones(len(js), bool), kw[js, b], kn[js, b], Db, size[:, s, b], refb, stationary, False,
                _layout(so[p, :, b], sf[p, :, b], split[p, b], sig_s[p, :, b], A, fanouts_inner_first[p]),
                tensors=lf_t[:, b],
            )
    Acc[:, L - 1, :] = 0

    # level 0 fan-out to the MACs: deltas are single points, one per visit
    if has_fan[0]:
        P0 = cnt
        u = [(2 * st + pr[:K] - pr[P0, rows]) * kact for st, pr in zip(steps, pre)]
        Up = _project(u, layer)
        lf_t = np.zeros((NT, B), bool)
        for t in range(NT):
            Ut = Up[t]
            cand = kact & _lattice_ok(Ut, lat[0][t]) if linkable[0][t][2] else np.zeros((1, B), bool)
            if cand.any():
                lf_t[t] = _neighbour_rows(cand, Ut, t, so[0], sf[0], split[0], sig_s[0], A, fanouts_inner_first[0])
        lf0 = lf_t.any(axis=0)
        link_flag |= lf0
        for b in np.nonzero(lf0)[0]:
            js = np.arange(int(P0[b]))[::-1]
            Ub = np.stack([np.stack([Up[t][c][js, b] for c in range(4)], axis=1) for t in range(NT)]).astype(np.int64)
            ones = np.ones(NT, np.int64)
            patches[(int(b), 0)] = _exact_links(
                Ub, np.ones(len(js), bool), kw[js, b], kn[js, b], np.ones((NT, len(js)), np.int64), ones, None, stationary, True,
                _layout(so[0, :, b], sf[0, :, b], split[0, b], sig_s[0, :, b], A, fanouts_inner_first[0]),
                tensors=lf_t[:, b],
            )

    # ---- access histograms per level ----------------------------------------------------------
    child_acc = np.empty((L, NT, B), np.int64)  # what a level receives from one child
    child_acc[0] = compute_acc
    child_acc[1:] = Acc[:, : L - 1, :].transpose(1, 0, 2)
    hist_mc, hist_sc = _spatial_histograms(sf, sig_s, A, L)  # [L, 3, H, B]
    acc = hist_sc * child_acc[:, :, None, :].astype(np.float64)
    mc = np.where(hist_sc > 0, hist_mc, 1)
    link = np.zeros((L, NT, B))
    if patches:
        acc, mc, link = _apply_link_patches(acc, mc, hist_mc, hist_sc, child_acc, patches)

    size_l = size.transpose(1, 0, 2)  # [L, 3, B]
    pfd = np.zeros((L, NT, B), np.int64)
    if sp_active[1:].any():
        size_sp = _sizes(_data_extents(ext_sp, A)).transpose(1, 0, 2)
        pfd[: L - 1] = np.where(sp_active[1:, None, :], size_sp[1:], size_l[: L - 1])
    else:
        pfd[: L - 1] = size_l[: L - 1]

    stats = NestStats(
        size=np.ascontiguousarray(size_l),
        pfd=pfd,
        acc=acc,
        mc=mc.astype(np.int64),
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


def _data_extents(ext: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Data-space extents [3, 4, ...] of op-space boxes with extents ``ext`` [L, 7, B]."""
    dt = np.int32 if int(ext.max(initial=0)) * max(1, int(A.max())) * 8 < 2**31 else np.int64
    e = (ext - 1).astype(dt)
    out = np.empty((NT, 4) + (ext.shape[0], ext.shape[2]), dt)
    for t in range(NT):
        for c in range(4):
            ds = np.nonzero(A[t, c])[0]
            acc = int(A[t, c, ds[0]]) * e[:, ds[0], :] + 1
            for d in ds[1:]:
                acc = acc + int(A[t, c, d]) * e[:, d, :]
            out[t, c] = acc
    return out


def _sizes(dext: np.ndarray) -> np.ndarray:
    """Words of boxes with data extents [3, 4, ...] -> [3, ...] (int64)."""
    return dext[:, 0].astype(np.int64) * dext[:, 1] * dext[:, 2] * dext[:, 3]


# --------------------------------------------------------------------------------------------- #
# spatial multicast histograms
# --------------------------------------------------------------------------------------------- #
def _spatial_histograms(sf, sig_s, A, L):
    """Per level and tensor, the (multicast factor, number of groups) pairs of the children, sorted by
    multicast factor: [L, 3, H, B] each (sc = 0 pads). ``sf``, ``sig_s``: spatial factor and stride
    per dimension [L, 7, B]."""
    B = sf.shape[2]
    Fl = sf.prod(axis=1)  # [L, B]
    mc = np.ones((L, NT, 1, B), np.int64)
    sc = np.zeros((L, NT, 1, B), np.int64)
    for t in range(NT):
        G = sf[:, RELEVANT[t], :].prod(axis=1)  # distinct groups when uniform
        mc[:, t, 0, :] = Fl // G
        sc[:, t, 0, :] = G
    # Inputs with P and R (or Q and S) both spread at one level: offsets may coincide unevenly
    cplx = ((sf[:, P] > 1) & (sf[:, R] > 1)) | ((sf[:, Q] > 1) & (sf[:, S] > 1))  # [L, B]
    if cplx.any():
        extra = {}
        H = 1
        for lv, b in zip(*np.nonzero(cplx)):
            hist = _input_histogram(sf[lv, :, b], sig_s[lv, :, b], A)
            extra[(int(lv), int(b))] = hist
            H = max(H, len(hist))
        if H > 1:
            mc = np.concatenate([mc, np.ones((L, NT, H - 1, B), np.int64)], axis=2)
            sc = np.concatenate([sc, np.zeros((L, NT, H - 1, B), np.int64)], axis=2)
        for (lv, b), hist in extra.items():
            mc[lv, 1, :, b] = 1
            sc[lv, 1, :, b] = 0
            for h, (m, c) in enumerate(hist):
                mc[lv, 1, h, b] = m
                sc[lv, 1, h, b] = c
    return mc, sc


def _input_histogram(fac, sig, A) -> list[tuple[int, int]]:
    """Exact (multicast, count) histogram of the children's Inputs offsets at one level
    (``fac``, ``sig``: spatial factor and stride per dimension)."""
    loops = [(d, int(fac[d]), int(sig[d])) for d in range(7) if fac[d] > 1]
    offs: dict[tuple[int, ...], int] = {}
    for idx in iproduct(*[range(e) for _, e, _ in loops]):
        v = [0, 0, 0, 0]
        for (d, _, g), x in zip(loops, idx):
            for e_ in range(4):
                v[e_] += int(A[1, e_, d]) * g * x
        key = tuple(v)
        offs[key] = offs.get(key, 0) + 1
    hist: dict[int, int] = {}
    for m in offs.values():
        hist[m] = hist.get(m, 0) + 1
    return sorted(hist.items())


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


def _linkable(t, fac):
    """Which candidates can have link transfers of tensor t at a fan-out with spatial factors
    ``fac`` [7, B]: (mixed, ignored, any). Every temporal step above a spatial loop on dimension d
    is a multiple of that loop's span, so on a data coordinate driven by d alone a visit's
    translation is never a non-zero difference of two children's offsets. Links then need two
    children with equal data (a spatial loop the tensor ignores: ``ignored``, zero translations
    only) or a coordinate mixing two dimensions, one of them spread (Inputs' P/R, Q/S: ``mixed``)."""
    ignored = (fac[~RELEVANT[t]] > 1).any(axis=0)
    if t == 1:
        mixed = (fac[P] > 1) | (fac[R] > 1) | (fac[Q] > 1) | (fac[S] > 1)
    else:
        mixed = np.zeros(fac.shape[1], bool)
    return mixed, ignored, bool((mixed | ignored).any())


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
        one = (nd == 1)[None, :] & (u % step.astype(u.dtype)[None, :] == 0) & (np.abs(u) < span.astype(u.dtype)[None, :])
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


def _layout(order, fac, split, sig, A, phys_fan) -> _Layout:
    """``order``: the level's spatial permutation (innermost first), ``fac``/``sig``: factor and
    stride per dimension, ``split``: positions before it are on X."""
    loops = [(int(d), int(fac[d]), 1 if pos < split else 2, int(sig[d])) for pos, d in enumerate(order) if fac[d] > 1]
    F = 1
    lx = ly = 1
    for d, e, k, _ in loops:
        F *= e
        if k == 1:
            lx *= e
        else:
            ly *= e
    keys = np.arange(F)
    op = np.zeros((F, 7), np.int64)
    rem = keys.copy()
    for d, e, k, sg in loops:  # innermost loop = least significant digit
        op[:, d] += (rem % e) * sg
        rem //= e
    offsets = np.einsum("ted,fd->tfe", A, op)
    h = max(int(phys_fan[0]), lx)
    v = max(int(phys_fan[1]), ly)
    hh = keys % h
    vv = keys // h
    nbr = np.stack([keys - h, keys + h, keys - 1, keys + 1], axis=1)  # down, up, left, right
    ok = np.stack([(v > 1) & (vv >= 1), (v > 1) & (vv <= v - 2), (h > 1) & (hh >= 1), (h > 1) & (hh <= h - 2)], axis=1)
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
    Ut = [tuple(int(x) for x in U[t, i]) for i in range(U.shape[1])]
    Dt = [int(x) for x in D[t]]
    full = int(Bsz[t])
    i1 = idx[0]
    r_legacy = Ut[i1]
    r_stat = tuple(int(x) for x in ref[t]) if ref is not None else None
    zero_vec = (0, 0, 0, 0)
    keys = lay.keys[t]
    G = len(set(keys.tolist()))
    memo: dict[tuple[int, ...], tuple[int, dict[int, int]] | None] = {}

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

    def linked_groups(u):
        """(number of linked children, {multicast: groups} of the others), or None when the links
        do not pay (as many distinct deltas left as without them)."""
        if u not in memo:
            match = (lay.nbr_diff[t] == np.array(u)[None, None, :]).all(axis=2) & lay.nbr_ok
            linked = match.any(axis=1)
            nl = int(linked.sum())
            memo[u] = None
            if nl:
                _, counts = np.unique(keys[~linked], return_counts=True)
                if len(counts) < G:
                    g: dict[int, int] = {}
                    for c in counts.tolist():
                        g[c] = g.get(c, 0) + 1
                    memo[u] = (nl, g)
        return memo[u]

    def visit(i, pred_shape, weight):
        nonlocal moved, links
        if weight == 0:
            return
        sh = shape(i)
        if sh[1] == 0 or sh[0] != pred_shape[0]:
            return
        lg = linked_groups(Ut[i])
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
        for h, (m_, c_, v) in enumerate(items):
            acc[p, t, h, b] = v
            mc[p, t, h, b] = m_
    return acc, mc, link
