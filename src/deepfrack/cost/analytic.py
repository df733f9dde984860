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
  delta) are possible only when a visit's translation equals a difference of children's offsets;
  candidates where that cannot be excluded (:func:`link_possible`) are evaluated by the simulator.

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


def data_extents(ext: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Data-space extents [..., 3, 4] of op-space boxes with extents ``ext`` [..., 7]."""
    return np.einsum("ted,...d->...te", A, ext - 1) + 1


@dataclass
class AnalyticResult:
    stats: NestStats
    link_flag: np.ndarray  # bool [B]: link transfers cannot be excluded -> evaluate with the simulator
    bad_spatial: np.ndarray  # bool [B]: spatial factors on a level without fan-out


def analyze(batch: MappingBatch, fanouts_inner_first: list[tuple[int, int]], layer: Layer, translation: str = "legacy") -> AnalyticResult:
    """Closed-form nest analysis of every candidate in ``batch`` (levels outer to inner, as the
    architecture lists them). ``fanouts_inner_first``: (X, Y) fan-out per storage level, innermost
    first."""
    stationary = translation == "stationary"
    B, L, _ = batch.temporal.shape
    A = proj_matrix(layer)
    tf = batch.temporal[:, ::-1, :]
    to = batch.temporal_order[:, ::-1, :]
    sf = batch.spatial[:, ::-1, :]
    so = batch.spatial_order[:, ::-1, :]
    split = batch.split[:, ::-1]
    has_fan = np.array([fx * fy > 1 for fx, fy in fanouts_inner_first], bool)
    bad_spatial = ((sf > 1).any(axis=2) & ~has_fan[None, :]).any(axis=1)
    sf = np.where(has_fan[None, :, None], sf, 1)

    # ---- slots in nest order: per level 7 spatial then 7 temporal (innermost first) --------------
    s_dims = so  # [B, L, 7]
    s_ends = np.take_along_axis(sf, so, axis=2)
    s_kind = np.where(np.arange(7)[None, None, :] < split[:, :, None], 1, 2)  # 1 X, 2 Y
    t_dims = to
    t_ends = np.take_along_axis(tf, to, axis=2)
    dims = np.concatenate([s_dims, t_dims], axis=2).reshape(B, L * 14)
    ends = np.concatenate([s_ends, t_ends], axis=2).reshape(B, L * 14)
    G = L * 14
    onehot = dims[:, :, None] == np.arange(7)[None, None, :]  # [B, G, 7]
    E = np.where(onehot, ends[:, :, None], 1)
    cum = np.cumprod(E, axis=1)  # inclusive
    excl = np.concatenate([np.ones((B, 1, 7), np.int64), cum[:, :-1, :]], axis=1)
    sigma = np.take_along_axis(excl, dims[:, :, None], axis=2)[:, :, 0]  # [B, G]

    lev = np.arange(L)
    ext_tile = cum[:, lev * 14 + 13, :]  # [B, L, 7]
    ext_sp = cum[:, lev * 14 + 6, :]
    dext_tile = data_extents(ext_tile, A)  # [B, L, 3, 4]
    size = dext_tile.prod(axis=3)  # [B, L, 3]
    sp_active = (s_ends > 1).any(axis=2)  # [B, L]
    size_sp = data_extents(ext_sp, A).prod(axis=3)

    # spatial products
    s_act_ends = np.where(s_ends > 1, s_ends, 1)
    fan = s_act_ends.prod(axis=2)  # [B, L]
    fx = np.where(s_kind == 1, s_act_ends, 1).prod(axis=2)
    fy = np.where(s_kind == 2, s_act_ends, 1).prod(axis=2)
    # product over levels strictly above
    rev_cum = lambda a: np.concatenate([np.cumprod(a[:, ::-1], axis=1)[:, ::-1][:, 1:], np.ones((B, 1), np.int64)], axis=1)
    replication = rev_cum(fan)
    x_exp = rev_cum(fx)
    y_exp = rev_cum(fy)

    # ---- temporal slots --------------------------------------------------------------------------
    tsel = (np.arange(L)[:, None] * 14 + 7 + np.arange(7)[None, :]).reshape(-1)  # [7L]
    JT = 7 * L
    tdims = dims[:, tsel]
    tends = ends[:, tsel]
    tsig = sigma[:, tsel]
    tlev = np.repeat(np.arange(L), 7)
    active = tends > 1
    step = np.where((tdims[:, :, None] == np.arange(7)[None, None, :]) & active[:, :, None], tsig[:, :, None], 0)  # [B, JT, 7]
    Cs = np.concatenate([np.zeros((B, 1, 7), np.int64), np.cumsum(step, axis=1)[:, :-1, :]], axis=1)
    # weight of the visits that carry into slot j: (n_j - 1) * prod(n outside j)
    outer_prod = np.concatenate([np.cumprod(tends[:, ::-1], axis=1)[:, ::-1][:, 1:], np.ones((B, 1), np.int64)], axis=1)
    Wt = (tends - 1) * outer_prod  # [B, JT]
    compute_acc = np.prod(tends, axis=1)

    # ---- child accesses A[s, t] ------------------------------------------------------------------
    Acc = np.zeros((B, L, NT), np.int64)  # accesses a child tile of level s costs its parent
    link_flag = np.zeros(B, bool)
    patches: dict[tuple[int, int], list[tuple[dict[tuple[int, int], float], float, float]]] = {}
    for s in range(L - 1):
        j0 = 7 * (s + 1)
        base = Cs[:, j0, :]  # sum of all active steps at or below level s
        u = step[:, j0:, :] - (Cs[:, j0:, :] - base[:, None, :])  # [B, J, 7]
        act = active[:, j0:]
        wt = Wt[:, j0:]
        kidx = np.argmax(act, axis=1)  # innermost active above (0 when none; weights then all 0)
        U = np.einsum("ted,bjd->btje", A, u)  # [B, 3, J, 4]
        ext = dext_tile[:, s, :, :]  # [B, 3, 4]
        Bsz = size[:, s, :]  # [B, 3]
        ov = np.maximum(0, ext[:, :, None, :] - np.abs(U)).prod(axis=3)  # [B, 3, J]
        D = Bsz[:, :, None] - ov
        zero = (U == 0).all(axis=3) | ~act[:, None, :]
        if stationary:
            nz = ~zero
            ridx = np.argmax(nz, axis=2)  # [B, 3] innermost non-zero translation
            ref = np.take_along_axis(U, ridx[:, :, None, None], axis=2)  # [B, 3, 1, 4]
            eq = (U == ref).all(axis=3) | zero
        else:
            ref = np.take_along_axis(U, kidx[:, None, None, None].repeat(NT, axis=1), axis=2)
            eq = (U == ref).all(axis=3)
        delta = np.where(eq, D, Bsz[:, :, None])
        Acc[:, s, :] = Bsz + (wt[:, None, :] * delta).sum(axis=2)
        # link transfers at the parent's fan-out (level s + 1)
        p = s + 1
        if has_fan[p]:
            lf = _link_possible(
                U, ref, act, D, Bsz, zero, s_dims[:, p, :], s_ends[:, p, :], excl[:, p * 14 : p * 14 + 7, :], A, stationary, points=False
            )
            link_flag |= lf
            for b in np.nonzero(lf)[0]:
                patches[(int(b), p)] = _exact_links(
                    U[b], act[b], wt[b], tends[b, j0:], D[b], Bsz[b], ref[b, :, 0, :], stationary, False,
                    _layout(s_dims[b, p], s_ends[b, p], s_kind[b, p], excl[b, p * 14 : p * 14 + 7], A, fanouts_inner_first[p]),
                )

    # level 0 fan-out to the MACs: deltas are single points, one per visit
    if has_fan[0]:
        u = step - Cs  # every active temporal slot, relative to nothing below
        U = np.einsum("ted,bjd->btje", A, u)
        zero = (U == 0).all(axis=3) | ~active[:, None, :]
        lf = _link_possible(
            U, None, active, None, None, zero, s_dims[:, 0, :], s_ends[:, 0, :], excl[:, 0:7, :], A, stationary, points=True
        )
        link_flag |= lf
        for b in np.nonzero(lf)[0]:
            ones = np.ones(NT, np.int64)
            patches[(int(b), 0)] = _exact_links(
                U[b], active[b], Wt[b], tends[b], np.ones((NT, JT), np.int64), ones, None, stationary, True,
                _layout(s_dims[b, 0], s_ends[b, 0], s_kind[b, 0], excl[b, 0:7], A, fanouts_inner_first[0]),
            )

    # ---- access histograms per level ----------------------------------------------------------
    # level p receives from its children: the child's accesses (or the MAC iterations for p = 0),
    # times the number of distinct translates among its fan-out
    child_acc = np.concatenate([np.repeat(compute_acc[:, None, None], NT, axis=2), Acc[:, : L - 1, :]], axis=1)  # [B, L, 3]
    hist_mc, hist_sc, complex_rows = _spatial_histograms(s_dims, s_ends, excl, A, L)
    acc = hist_sc.astype(np.float64) * child_acc[:, :, :, None].astype(np.float64)
    acc = np.where(hist_sc > 0, acc, 0.0)
    mc = np.where(hist_sc > 0, hist_mc, 1)
    link = np.zeros((B, L, NT))
    if patches:
        acc, mc, link = _apply_link_patches(acc, mc, hist_mc, hist_sc, child_acc, patches)

    pfd = np.zeros((B, L, NT), np.int64)
    for s in range(L - 1):
        pfd[:, s, :] = np.where(sp_active[:, s + 1, None], size_sp[:, s + 1, :], size[:, s, :])

    stats = NestStats(
        size=size.astype(np.int64),
        pfd=pfd,
        acc=acc,
        mc=mc.astype(np.int64),
        link=link,
        fanout=fan.astype(np.int64),
        replication=replication.astype(np.int64),
        x_exp=x_exp.astype(np.int64),
        y_exp=y_exp.astype(np.int64),
        compute_accesses=compute_acc.astype(np.float64),
        compute_replication=fan.prod(axis=1).astype(np.int64),
        mac_x=fx.prod(axis=1).astype(np.int64),
        mac_y=fy.prod(axis=1).astype(np.int64),
    )
    return AnalyticResult(stats, link_flag, bad_spatial)


# --------------------------------------------------------------------------------------------- #
# spatial multicast histograms
# --------------------------------------------------------------------------------------------- #
def _spatial_histograms(s_dims, s_ends, excl, A, L):
    """Per level and tensor, the (multicast factor, number of groups) pairs of the children, sorted by
    multicast factor: [B, L, 3, H] each (sc = 0 pads)."""
    B = s_dims.shape[0]
    act = s_ends > 1  # [B, L, 7]
    f = np.where(act, s_ends, 1)
    Fl = f.prod(axis=2)  # [B, L]
    rel = np.stack([r[s_dims] for r in RELEVANT], axis=2)  # [B, L, 3, 7] relevance of each slot
    G = np.where(rel, f[:, :, None, :], 1).prod(axis=3)  # distinct groups if uniform
    # complex: Inputs with P and R (or Q and S) both active at one level
    d_act = np.zeros((B, L, 7), bool)
    np.put_along_axis(d_act, s_dims, act, axis=2)
    complex_rows = (d_act[:, :, P] & d_act[:, :, R]) | (d_act[:, :, Q] & d_act[:, :, S])  # [B, L]
    H = 1
    extra: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for b, lv in zip(*np.nonzero(complex_rows)):
        hist = _input_histogram(s_dims[b, lv], s_ends[b, lv], excl[b, lv * 14 : lv * 14 + 7], A)
        extra[(int(b), int(lv))] = hist
        H = max(H, len(hist))
    mc = np.ones((B, L, NT, H), np.int64)
    sc = np.zeros((B, L, NT, H), np.int64)
    mc[..., 0] = Fl[:, :, None] // G
    sc[..., 0] = G
    for (b, lv), hist in extra.items():
        mc[b, lv, 1, :] = 1
        sc[b, lv, 1, :] = 0
        for h, (m, c) in enumerate(hist):
            mc[b, lv, 1, h] = m
            sc[b, lv, 1, h] = c
    return mc, sc, complex_rows


def _input_histogram(dims, ends, excl_rows, A) -> list[tuple[int, int]]:
    """Exact (multicast, count) histogram of the children's Inputs offsets at one level."""
    loops = [(int(d), int(e), int(excl_rows[i, d])) for i, (d, e) in enumerate(zip(dims, ends)) if e > 1]
    offs = {}
    for idx in iproduct(*[range(e) for _, e, _ in loops]):
        v = [0, 0, 0, 0]
        for (d, _, sg), x in zip(loops, idx):
            for e_ in range(4):
                v[e_] += int(A[1, e_, d]) * sg * x
        key = tuple(v)
        offs[key] = offs.get(key, 0) + 1
    hist: dict[int, int] = {}
    for m in offs.values():
        hist[m] = hist.get(m, 0) + 1
    return sorted(hist.items())


# --------------------------------------------------------------------------------------------- #
# link transfers
# --------------------------------------------------------------------------------------------- #
def _link_possible(U, ref, act, D, Bsz, zero, sdims, sends, excl_rows, A, stationary, points) -> np.ndarray:
    """Conservative test (per candidate) that a link transfer may occur at one fan-out.

    A child takes data over a link when its delta equals a neighbour's delta of the previous visit,
    i.e. when the visit's translation U equals the difference of two children's offsets (a vector
    sum_l c_l T_l over the level's spatial loops, |c_l| < f_l), and the two deltas have the same
    shape. U must then be a "lattice" vector of the fan-out; U = 0 needs two children with equal
    offsets. Returns True where that cannot be excluded."""
    B = U.shape[0]
    sact = sends > 1  # [B, 7]
    # spatial translation per slot and tensor: T[b, t, l, e] = A[t, e, d_l] * sigma_l
    ssig = np.take_along_axis(excl_rows, sdims[:, :, None], axis=2)[:, :, 0]  # [B, 7]
    Adim = A[:, :, :][None, :, :, :]  # [1, 3, 4, 7]
    T = np.take_along_axis(np.broadcast_to(Adim, (B, NT, 4, 7)), np.broadcast_to(sdims[:, None, None, :], (B, NT, 4, 7)), axis=3)
    T = T * ssig[:, None, None, :]  # [B, 3, 4, 7]  (e, l)
    T = np.where(sact[:, None, None, :], T, 0)
    # which visits can link (shape-compatible, non-empty deltas)
    if points:
        cand = act[:, None, :] & np.ones((1, NT, 1), bool)
    else:
        nonzero_ref = ~(ref == 0).all(axis=3)  # [B, 3, 1]
        eq_ref = (U == ref).all(axis=3)
        noov = _no_overlap(ref, D, Bsz, U)
        cand = act[:, None, :] & nonzero_ref & (eq_ref | noov) & ~zero
        if not stationary:
            # a refetch with zero translation after a full (no-overlap) slab
            cand = cand | (act[:, None, :] & nonzero_ref & noov & zero)
    out = np.zeros(B, bool)
    # zero-difference neighbours exist when a spatial loop is irrelevant to the tensor, or when
    # two loops drive the same coordinate (checked by the lattice test below)
    for t in range(NT):
        Tt = T[:, t]  # [B, 4, 7]
        irrelevant = (sact & ~(Tt != 0).any(axis=1)).any(axis=1)  # [B]
        Ut = U[:, t]  # [B, J, 4]
        ok = _in_lattice(Ut, Tt, sends)  # [B, J]
        zU = (Ut == 0).all(axis=2)
        ok = np.where(zU, irrelevant[:, None] | ok, ok)
        out |= (ok & cand[:, t]).any(axis=1)
    return out


def _no_overlap(ref, D, Bsz, U):
    """True where the reference translation moves the tile entirely off itself (D(ref) == |B|)."""
    # D is [B, 3, J]; ref is one of the U's, recompute its D from the matching column
    match = (U == ref).all(axis=3)
    Dm = np.where(match, D, -1).max(axis=2)  # [B, 3]
    return (Dm == Bsz)[:, :, None]


def _in_lattice(U, T, ends) -> np.ndarray:
    """U [B, J, 4] is sum_l c_l T[:, :, l] with |c_l| < f_l (integer c_l)? Exact for coordinates
    driven by at most one spatial loop; coordinates driven by two loops are enumerated."""
    B, J, _ = U.shape
    ok = np.ones((B, J), bool)
    f = np.where(ends > 1, ends, 1)  # [B, 7]
    drivers = T != 0  # [B, 4, 7]
    nd = drivers.sum(axis=2)  # [B, 4]
    for e in range(4):
        Ue = U[:, :, e]
        one = nd[:, e] == 1
        none = nd[:, e] == 0
        l1 = np.argmax(drivers[:, e, :], axis=1)
        te = np.take_along_axis(T[:, e, :], l1[:, None], axis=1)  # [B, 1]
        fe = np.take_along_axis(f, l1[:, None], axis=1)
        safe_te = np.where(te == 0, 1, te)
        q, r = np.divmod(Ue, safe_te)
        okone = (r == 0) & (np.abs(q) < fe)
        res = np.where(none[:, None], Ue == 0, np.where(one[:, None], okone, True))
        ok &= res
    return ok


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


def _layout(dims, ends, kinds, excl_rows, A, phys_fan) -> _Layout:
    loops = [(int(d), int(e), int(k), int(excl_rows[i, d])) for i, (d, e, k) in enumerate(zip(dims, ends, kinds)) if e > 1]
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
    return _Layout(F, offsets, diff, ok)


def _groups(offs: np.ndarray) -> dict[int, int]:
    """{multicast: number of groups} of a set of children offsets [n, 4]."""
    if len(offs) == 0:
        return {}
    _, counts = np.unique(offs, axis=0, return_counts=True)
    out: dict[int, int] = {}
    for c in counts.tolist():
        out[c] = out.get(c, 0) + 1
    return out


def _exact_links(U, act, wt, n, D, Bsz, ref, stationary, points, lay: _Layout):
    """Per tensor: (extra histogram {(mc, sc): accesses}, accesses moved out of the plain histogram,
    link transfers) for the visits of one fan-out that Timeloop serves over links.

    Visits (see the module docstring): the first (no predecessor), u_1 visits after the first or
    after a carry into m, and carries into m (after a u_1 visit). A child can take its delta over a
    link when the visit's delta and the previous visit's delta have the same shape (both the whole
    tile, both the slab left by the remembered translation, or single points at the MACs) and its
    neighbour's offset differs from its own by the visit's translation."""
    out = []
    idx = np.nonzero(act)[0]
    for t in range(NT):
        extra: dict[tuple[int, int], float] = {}
        moved = 0.0
        links = 0.0
        if len(idx) >= 1:
            Ut = U[t]
            i1 = idx[0]
            full = int(Bsz[t])

            def shape(i):
                """(kind, size) of the delta of a visit whose translation is U[i]."""
                if points:
                    return ("pt", 1)
                u = Ut[i]
                uz = not u.any()
                if stationary:
                    if uz:
                        return ("empty", 0)
                    rz = not ref[t].any()
                    same = (not rz) and bool((u == ref[t]).all())
                else:
                    r = Ut[i1]
                    same = bool((u == r).all())
                    if same and uz:
                        return ("empty", 0)
                if same:
                    d = int(D[t, i])
                    return ("full", full) if d == full else ("slab", d)
                return ("full", full)

            all_offs = lay.offsets[t]
            G = len(np.unique(all_offs, axis=0))

            def visit(i, pred_shape, weight):
                nonlocal moved, links
                sh = shape(i)
                if sh[1] == 0 or sh[0] != pred_shape[0] or weight == 0:
                    return
                match = (lay.nbr_diff[t] == Ut[i][None, None, :]).all(axis=2) & lay.nbr_ok  # [F, 4]
                linked = match.any(axis=1)
                if not linked.any():
                    return
                rest = all_offs[~linked]
                g = _groups(rest)
                if sum(g.values()) >= G:
                    return
                amount = float(sh[1]) * float(weight)
                moved += amount
                links += float(linked.sum()) * amount
                for m_, c_ in g.items():
                    extra[(m_, c_)] = extra.get((m_, c_), 0.0) + c_ * amount

            first_shape = ("pt", 1) if points else ("full", full)
            u1_shape = shape(i1)
            n1 = int(n[i1])
            visit(i1, first_shape, n1 - 1)  # u_1 visit right after the first
            for i in idx[1:]:
                visit(i, u1_shape, int(wt[i]))  # carry into i
                visit(i1, shape(i), (n1 - 1) * int(wt[i]))  # u_1 visit after that carry
        out.append((extra, moved, links))
    return out


def _apply_link_patches(acc, mc, hist_mc, hist_sc, child_acc, patches):
    """Rebuild the histograms of the patched (candidate, level) pairs: the plain multicast
    histogram for the accesses not served over links, plus the linked visits' own histograms."""
    B, L, _, H = acc.shape
    rows: dict[tuple[int, int, int], list[tuple[int, int, float]]] = {}
    link = np.zeros((B, L, NT))
    Hn = H
    for (b, p), per_t in patches.items():
        for t, (extra, moved, links) in enumerate(per_t):
            if moved == 0:
                continue
            base = float(child_acc[b, p, t]) - moved
            d: dict[tuple[int, int], float] = {}
            for h in range(H):
                if hist_sc[b, p, t, h] > 0:
                    key = (int(hist_mc[b, p, t, h]), int(hist_sc[b, p, t, h]))
                    d[key] = d.get(key, 0.0) + key[1] * base
            for key, v in extra.items():
                d[key] = d.get(key, 0.0) + v
            items = sorted((k, v) for k, v in d.items() if v != 0)
            rows[(b, p, t)] = [(k[0], k[1], v) for k, v in items]
            link[b, p, t] = links
            Hn = max(Hn, len(items))
    if Hn > H:
        acc = np.concatenate([acc, np.zeros((B, L, NT, Hn - H))], axis=3)
        mc = np.concatenate([mc, np.ones((B, L, NT, Hn - H), mc.dtype)], axis=3)
    for (b, p, t), items in rows.items():
        acc[b, p, t, :] = 0.0
        mc[b, p, t, :] = 1
        for h, (m_, c_, v) in enumerate(items):
            acc[b, p, t, h] = v
            mc[b, p, t, h] = m_
    return acc, mc, link
