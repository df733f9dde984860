"""Link transfers between neighbouring children of a spatial fan-out, for the closed-form nest analysis.

Timeloop's nest analysis (NVlabs/timeloop src/loop-analysis/nest-analysis.cpp,
``ComputeNetworkLinkTransfers``) lets a child of a fan-out take its delta from a mesh neighbour over a
link instead of from the parent, when the neighbour's previous delta equals it, and uses the links
when that leaves fewer distinct deltas to fetch from the parent than multicast alone. In the closed
form of :mod:`deepfrack.cost.analytic` that is possible only when a visit's translation equals a
difference of two children's offsets and the two deltas have the same shape. This module:

* excludes link transfers cheaply for most (fan-out, tensor, candidate) triples: the tensor needs a
  spatial loop it ignores (equal children: zero translations only) or a data coordinate that mixes
  P and R or Q and S, since every temporal step above a spatial loop on dimension d is a multiple of
  that loop's span, so on a coordinate driven by d alone a translation is never a non-zero
  difference of two children's offsets (:func:`find_link_transfers`);
* tests the candidates left exactly: the shape of consecutive deltas (:func:`_link_candidates`),
  whether the translation lies on the lattice of offset differences (:func:`_lattice_ok`), and
  whether two neighbours in Timeloop's mesh order differ by it (:func:`_neighbour_rows`);
* accounts the few candidates with real link transfers visit by visit (:func:`_exact_links`), as
  patches of the multicast histograms (:func:`apply_link_patches`).

Levels are indexed outermost first; the loops above a fan-out are the rows of
:class:`deepfrack.cost.analytic.TemporalRows` (outermost first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from deepfrack.cost.nest import RELEVANT, TENSOR_COORDS
from deepfrack.dims import NT, P, Q, R, S
from deepfrack.workload.layer import Layer

if TYPE_CHECKING:
    from deepfrack.cost.analytic import AnalyticSetup, Extents, Fanouts, Reuse, TemporalRows, TranslationKeys

#: per (candidate, fan-out level): per tensor, (extra histogram {(multicast, groups): accesses},
#: accesses moved out of the plain histogram, link transfers)
Patches = dict[tuple[int, int], list[tuple[dict[tuple[int, int], float], float, float]]]


def _project(u: list[np.ndarray], layer: Layer) -> list[list[np.ndarray]]:
    """Per tensor, the 4 data coordinates of op-space vectors given as 7 arrays (C M R S N P Q)."""
    uC, uM, uR, uS, uN, uP, uQ = u
    return [
        [uC, uM, uR, uS],
        [uN, uC, layer.Wdilation * uR + layer.Wstride * uP, layer.Hdilation * uS + layer.Hstride * uQ],
        [uN, uM, uQ, uP],
    ]


def last_true(mask: np.ndarray) -> np.ndarray:
    """Index of the last True along axis 0 of bool [K, B] (K - 1 where there is none)."""
    return len(mask) - 1 - np.argmax(mask[::-1], axis=0)


@dataclass(frozen=True)
class _SpatialLoops:
    """The spatial loops of one fan-out, per dimension: ``order`` the spatial permutation (innermost
    first), ``factor``, ``split`` (positions before it are on X) and ``step`` (the extent of the
    child's tile); arrays [7, n] and [n] over candidates, or [7] and an int for one candidate."""

    order: np.ndarray
    factor: np.ndarray
    split: np.ndarray
    step: np.ndarray

    def take(self, idx: np.ndarray) -> _SpatialLoops:
        return _SpatialLoops(self.order[:, idx], self.factor[:, idx], self.split[idx], self.step[:, idx])


def find_link_transfers(
    su: AnalyticSetup,
    layer: Layer,
    ext: Extents,
    fans: Fanouts,
    rows: TemporalRows,
    keys: TranslationKeys,
    reuse: Reuse,
) -> tuple[np.ndarray, Patches]:
    """bool [B]: candidates whose link transfers could not be excluded (and were accounted
    exactly), and the histogram patches of those with real ones (see the module docstring)."""
    B = ext.size.shape[2]
    L = ext.size.shape[1]
    link_flag = np.zeros(B, bool)
    patches: Patches = {}
    if not fans.levels:
        return link_flag, patches
    spread = fans.spread
    # per fan-out level and tensor: a spatial loop the tensor ignores, a mixed coordinate
    ignored = np.tensordot(su.irr, spread, axes=([1], [1])) > 0  # [3, nf, B]
    mixed = np.zeros((NT, len(fans.levels), B), bool)
    mixed[1] = spread[:, [P, R, Q, S]].any(axis=1)
    ctx = None
    for i, p in enumerate(fans.levels):
        if p == L - 1:
            # fan-out to the MACs: deltas are single points, one per visit (all loops are above)
            child, n_rows = None, rows.n_rows
            nd = mixed[:, i] | ignored[:, i]
        else:
            child = p + 1
            n_rows = rows.above[child]
            # _link_candidates: the remembered translation is not zero; unless a coordinate is
            # mixed, only zero translations can match, after one that moved the tile off itself
            nd = (
                rows.has_loops_above[child][None, :]
                & ~reuse.in_place[:, child]
                & (mixed[:, i] | (ignored[:, i] & (reuse.overlap[:, child] == 0)))
            )
            if su.stationary:  # (zero translations cost nothing: only mixed coordinates can link)
                nd &= mixed[:, i].any(axis=1)[:, None]
        if nd.any():
            need = [(nd[t], mixed[t, i]) if nd[t].any() else None for t in range(NT)]
            ctx = ctx or _LinkContext(su, layer, ext, fans, rows, keys)
            link_flag |= ctx.level(child, p, n_rows, need, patches)
    return link_flag, patches


@dataclass
class _LinkContext:
    """Link-transfer detection and exact accounting on subsets of candidates (columns): the
    candidates the cheap conditions of :func:`find_link_transfers` could not exclude. Follows the
    rules of _link_candidates / _lattice_ok / _neighbour_rows / _exact_links. ``layouts`` caches the
    children's layouts of the fan-outs seen (:func:`_layout_cached`)."""

    su: AnalyticSetup
    layer: Layer
    ext: Extents
    fans: Fanouts
    rows: TemporalRows
    keys: TranslationKeys
    layouts: dict = field(default_factory=dict)

    def _u(self, n_rows: int, cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Translations of the visits carrying into the first ``n_rows`` rows (0 on padding rows),
        per op dim [n_rows, n], and the rows' activity."""
        d = self.rows.dim[:n_rows, cols]
        k = self.rows.step[:n_rows, cols]
        act = self.rows.bound[:n_rows, cols] > 1
        u = []
        for dd in range(7):
            st = np.where(d == dd, k, 0).astype(np.int64)
            cs = np.cumsum(st, axis=0)
            u.append((cs + st - cs[-1]) * act)
        return u, act

    def _spatial_loops(self, p: int, cols: np.ndarray) -> _SpatialLoops:
        return _SpatialLoops(
            self.fans.order[p][:, cols].astype(np.int64),
            self.ext.spatial[p][:, cols].astype(np.int64),
            self.fans.split[p][cols].astype(np.int64),
            self.ext.spatial_step(p)[:, cols].astype(np.int64),
        )

    def _layout_of(self, p: int, b: int) -> _Layout:
        loops = _SpatialLoops(
            self.fans.order[p][:, b].astype(np.int64),
            self.ext.spatial[p][:, b],
            int(self.fans.split[p][b]),
            self.ext.spatial_step(p)[:, b],
        )
        return _layout_cached(self.layouts, loops, self.su.A, self.su.fanouts[p])

    def level(self, child: int | None, p: int, n_rows: int, need: list, patches: Patches) -> np.ndarray:
        """Link flags [B] of the fan-out of level p, whose children are level ``child``'s tiles
        (None: the MACs, single-point deltas), over the first ``n_rows`` rows (the loops above that
        fan-out); patches for the flagged candidates. ``need[t]``: None, or (candidates to test,
        mixed coordinate) [B]."""
        B = self.ext.size.shape[2]
        lf = np.zeros((NT, B), bool)
        if n_rows == 0:  # no loop above: nothing to share
            return lf[0]
        for t in range(NT):
            if need[t] is not None:
                self._flag_tensor(child, p, n_rows, t, need[t], lf)
        flagged = np.nonzero(lf.any(axis=0))[0]
        if len(flagged) == 0:
            return np.zeros(B, bool)
        self._account(child, p, n_rows, flagged, lf, patches)
        return lf.any(axis=0)

    def _flag_tensor(self, child, p: int, n_rows: int, t: int, need, lf: np.ndarray) -> None:
        """Set lf[t] for the candidates whose link transfers of tensor t cannot be excluded."""
        nd, mixed = need
        # columns without a mixed coordinate: only zero translations can be candidates
        # (_link_candidates with same = False; _lattice_ok needs a spatial loop t ignores), and
        # for U = 0 every candidate visit asks the same question: do two neighbouring
        # children hold equal data
        nm = np.nonzero(nd & ~mixed)[0]
        if len(nm):
            z = self.rows.bound[:n_rows, nm] > 1
            visit, inner = self.keys.visit, self.keys.inner
            for g in range(visit.shape[0]):  # V_m = pre: a zero translation
                z &= visit[g, t, :n_rows][:, nm] == inner[g, t, n_rows - 1][nm]
            hit = nm[z.any(axis=0)]
            if len(hit):
                lf[t, hit] = self._equal_neighbours(p, t, hit)
        mx = np.nonzero(nd & mixed)[0]
        if len(mx):
            lf[t, mx] = self._mixed(child, p, n_rows, t, mx)

    def _account(
        self, child, p: int, n_rows: int, flagged: np.ndarray, lf: np.ndarray, patches: Patches
    ) -> None:
        """Exact link-transfer accounting of the flagged candidates, visit by visit."""
        stationary = self.su.stationary
        u, rel = self._u(n_rows, flagged)
        Up = _project(u, self.layer)
        U_all = np.stack([np.stack(Up[t], axis=-1) for t in range(NT)]).astype(np.int64)  # [3, Rs, n, 4]
        if child is not None:
            # deltas: |B| - overlap of the tile with itself moved by U
            D_all = np.empty((NT, n_rows, len(flagged)), np.int64)
            for t in range(NT):
                ov = None
                for c, c9 in enumerate(TENSOR_COORDS[t]):
                    o_ = np.maximum(
                        0, self.ext.coord[c9, child, flagged][None, :] - np.abs(U_all[t, :, :, c])
                    )
                    ov = o_ if ov is None else ov * o_
                D_all[t] = self.ext.size[t, child, flagged][None, :] - ov
        for j, b in enumerate(flagged.tolist()):
            js = np.nonzero(rel[:, j])[0]  # the active loops above, outermost first
            Ub = U_all[:, js, j, :]  # [3, W, 4]
            if child is None:
                delta, tile, ref = np.ones((NT, len(js)), np.int64), np.ones(NT, np.int64), None
            else:
                delta, tile, ref = D_all[:, js, j], self.ext.size[:, child, b], None
                if stationary:  # the remembered translation: the innermost non-zero one
                    ref = np.zeros((NT, 4), np.int64)
                    for t in range(NT):
                        nz = np.nonzero(Ub[t].any(axis=1))[0]
                        if len(nz):
                            ref[t] = Ub[t, nz[-1]]
            visits = _Visits(
                U=Ub,
                weight=self.rows.weight[js, b],
                bound=self.rows.bound[js, b].astype(np.int64),
                delta=delta,
                tile=tile,
                ref=ref,
                stationary=stationary,
                points=child is None,
            )
            patches[(b, p)] = _exact_links(visits, self._layout_of(p, b), tensors=lf[:, b])

    def _equal_neighbours(self, p: int, t: int, cols: np.ndarray) -> np.ndarray:
        """bool [n]: two mesh neighbours among the children of level p hold equal data of tensor t
        (the zero-translation case of _neighbour_rows), for candidates without a mixed coordinate:
        each data coordinate is then driven by one spatial loop, so offsets are equal iff the
        digits of the loops t depends on are, whatever the strides, and the answer depends on the
        spatial order, factors and split only; it is computed once per distinct arrangement."""
        loops = self._spatial_loops(p, cols)
        n = len(cols)
        radix = int(loops.factor.max()) + 1
        if radix**7 < 2**39:
            code = np.zeros(n, np.int64)
            for d in range(7):
                code = code * radix + loops.factor[d]
            code = code * 8 + np.minimum(loops.split, 7)
            for pos in range(7):
                code = (code << 3) | loops.order[pos]
            _, rep, inv = np.unique(code, return_index=True, return_inverse=True)
        else:
            rep, inv = np.arange(n), np.arange(n)
        m = len(rep)
        U0 = [np.zeros((1, m), np.int64)] * 4
        res = _neighbour_rows(np.ones((1, m), bool), U0, t, loops.take(rep), self.su.A, self.su.fanouts[p])
        return res[inv]

    def _mixed(self, child: int | None, p: int, n_rows: int, t: int, cols: np.ndarray) -> np.ndarray:
        """Link flags of tensor t for candidates with a mixed coordinate (the full tests)."""
        A = self.su.A
        u, rel = self._u(n_rows, cols)
        n = len(cols)
        r = np.arange(n)
        Ut = _project(u, self.layer)[t]
        loops = self._spatial_loops(p, cols)
        lat = _lattice_data(t, loops, A)
        if child is None:
            cand = rel & _lattice_ok(Ut, lat)
        else:
            stationary = self.su.stationary
            ov = None
            for c, c9 in enumerate(TENSOR_COORDS[t]):
                o_ = np.maximum(self.ext.coord[c9, child, cols] - np.abs(Ut[c]), 0)
                ov = o_ if ov is None else ov * o_
            zero = ov == self.ext.size[t, child, cols]
            if stationary:
                ridx = last_true(~zero & rel)  # the innermost non-zero translation
            else:
                ref = self.rows.ref[child, cols]
                ridx = np.where(ref == self.rows.n_rows, 0, ref)  # the innermost loop
            refv = [Ut[c][ridx, r] for c in range(4)]
            eq = (Ut[0] == refv[0]) & (Ut[1] == refv[1]) & (Ut[2] == refv[2]) & (Ut[3] == refv[3])
            if stationary:
                eq |= zero
            cand = _link_candidates(rel, ov, zero, eq, ridx, r, stationary) & _lattice_ok(Ut, lat)
        if not cand.any():
            return np.zeros(n, bool)
        return _neighbour_rows(cand, Ut, t, loops, A, self.su.fanouts[p])


# --------------------------------------------------------------------------------------------- #
# fast exclusion
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


def _lattice_data(t: int, loops: _SpatialLoops, A: np.ndarray):
    """Per data coordinate of tensor t at one fan-out: how many of the level's spatial loops drive
    it, and for a single driver its offset step and bound ([B] arrays); and whether some spatial
    loop is irrelevant to the tensor (two children with equal offsets)."""
    fac, sig = loops.factor, loops.step
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


def _mesh(loops: _SpatialLoops, r: np.ndarray, A_t: np.ndarray, phys_fan) -> tuple:
    """The children of the fan-outs of candidates ``r``: their offsets (mixed radix over the active
    loops, innermost least significant) ``off`` [4, n, Fq], how many there are ``F`` [n], and for
    the four directions Timeloop tests (down, up, left, right: linear index = y * h + x with
    h = max(physical, mapped) X fan-out) each child's neighbour and whether it exists [n, Fq]."""
    od = loops.order[:, r]  # [7, n] dim at each position
    f = np.take_along_axis(loops.factor[:, r], od, axis=0)  # [7, n] factor per position (1 = inactive)
    g = np.take_along_axis(loops.step[:, r], od, axis=0)
    onx = np.arange(7)[:, None] < loops.split[r][None, :]
    F = f.prod(axis=0)
    lx = np.where(onx, f, 1).prod(axis=0)
    h = np.maximum(int(phys_fan[0]), lx)
    v = np.maximum(int(phys_fan[1]), F // lx)
    Fq = int(F.max())
    k = np.arange(Fq)[None, :]  # [1, Fq]
    off = np.zeros((4, len(r), Fq), np.int64)
    rem = np.broadcast_to(k, (len(r), Fq)).copy()
    for pos in range(7):
        fp = f[pos][:, None]
        digit = rem % fp
        rem //= fp
        off += (A_t[:, od[pos]] * g[pos])[:, :, None] * digit[None]
    hh = k % h[:, None]
    vv = k // h[:, None]
    nbr = [k - h[:, None], k + h[:, None], k - 1, k + 1]
    okd = [
        (v[:, None] > 1) & (vv >= 1),
        (v[:, None] > 1) & (vv <= v[:, None] - 2),
        (h[:, None] > 1) & (hh >= 1),
        (h[:, None] > 1) & (hh <= h[:, None] - 2),
    ]
    exists = k < F[:, None]
    okd = [ok & exists & (nb >= 0) & (nb < F[:, None]) for nb, ok in zip(nbr, okd)]
    return off, Fq, nbr, okd


def _neighbour_rows(
    cand, Ut, t: int, loops: _SpatialLoops, A: np.ndarray, phys_fan, budget: int = 1 << 22
) -> np.ndarray:
    """bool [B]: some candidate visit's translation equals the offset difference of two children
    that Timeloop compares (ComputeNetworkLinkTransfers: up/down/left/right neighbours among the
    existing children, see :func:`_mesh`). ``cand``, ``Ut`` [K, B] (already filtered by
    _lattice_ok). Candidates are processed in groups of similar child counts."""
    out = np.zeros(cand.shape[1], bool)
    rsel = np.nonzero(cand.any(axis=0))[0]
    if len(rsel) == 0:
        return out
    F_all = loops.factor[:, rsel].prod(axis=0)
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
            off, Fq, nbr, okd = _mesh(loops, r, A[t], phys_fan)
            U = [u[:, q] for u in Uc]  # [Kc, n]
            km = kmask[:, q]
            hit = np.zeros(len(r), bool)
            for nb, ok in zip(nbr, okd):
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
# exact accounting
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
    # per (tensor, translation): the linked children and groups (see _TensorLinks), shared by
    # the candidates of one analysis with this layout
    memo: dict = field(default_factory=dict)
    segs: dict = field(default_factory=dict)  # tensor -> (children sorted by offset, segment starts)


def _layout_cached(cache: dict, loops: _SpatialLoops, A: np.ndarray, phys_fan) -> _Layout:
    """:func:`_layout`, memoized in ``cache`` by the fan-out's active loops."""
    fac, sig = loops.factor, loops.step
    key = (
        tuple(
            (int(d), int(fac[d]), pos < loops.split, int(sig[d]))
            for pos, d in enumerate(loops.order)
            if fac[d] > 1
        ),
        tuple(phys_fan),
    )
    lay = cache.get(key)
    if lay is None:
        lay = cache[key] = _layout(loops, A, phys_fan)
    return lay


def _layout(loops: _SpatialLoops, A: np.ndarray, phys_fan) -> _Layout:
    """The layout of one candidate's fan-out (``loops`` of one candidate)."""
    active = [
        (int(d), int(loops.factor[d]), 1 if pos < loops.split else 2, int(loops.step[d]))
        for pos, d in enumerate(loops.order)
        if loops.factor[d] > 1
    ]
    F = 1
    lx = ly = 1
    for _d, e, k, _ in active:
        F *= e
        if k == 1:
            lx *= e
        else:
            ly *= e
    keys = np.arange(F)
    op = np.zeros((F, 7), np.int64)
    rem = keys.copy()
    for d, e, _k, sg in active:  # innermost loop = least significant digit
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


@dataclass(frozen=True)
class _Visits:
    """The active loops above one fan-out of one candidate, outermost first: the translation of the
    visit carrying into each ``U`` [3, W, 4], its weight (visits carrying into it) and bound [W],
    the size of its delta [3, W] and of the tile [3] (1 at the MACs, whose deltas are ``points``),
    and per tensor the remembered translation of the ``stationary`` rule [3, 4] (None otherwise)."""

    U: np.ndarray
    weight: np.ndarray
    bound: np.ndarray
    delta: np.ndarray
    tile: np.ndarray
    ref: np.ndarray | None
    stationary: bool
    points: bool


def _exact_links(v: _Visits, lay: _Layout, tensors=None) -> list:
    """Per tensor: (extra histogram {(mc, sc): accesses}, accesses moved out of the plain histogram,
    link transfers) for the visits of one fan-out that Timeloop serves over links (see
    :class:`_TensorLinks`); ``tensors`` selects the tensors to account (others get nothing)."""
    out = []
    for t in range(NT):
        if v.U.shape[1] and (tensors is None or tensors[t]):
            out.append(_TensorLinks(t, v, lay).account())
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


class _TensorLinks:
    """Link-transfer accounting of tensor t at one fan-out.

    Visits (see the module docstring of :mod:`deepfrack.cost.analytic`): the first (no
    predecessor), visits by the innermost loop's translation after the first or after a carry into
    an outer loop m, and carries into m (after such a visit). A child can take its delta over a link
    (nest-analysis.cpp ComputeNetworkLinkTransfers) when the visit's delta and the previous visit's
    delta have the same shape (both the whole tile, both the slab left by the remembered
    translation, or single points at the MACs) and a mesh neighbour's offset differs from its own by
    the visit's translation. Timeloop then uses the links if that leaves fewer distinct deltas to
    fetch from the parent than multicast alone."""

    def __init__(self, t: int, v: _Visits, lay: _Layout):
        self.t, self.v, self.lay = t, v, lay
        self.U = [tuple(x) for x in v.U[t].tolist()]
        self.delta = v.delta[t].tolist()
        self.full = int(v.tile[t])
        self.innermost = len(self.U) - 1
        self.ref = tuple(int(x) for x in v.ref[t]) if v.ref is not None else None
        self.groups: list | None = None
        self.extra: dict[tuple[int, int], float] = {}  # {(multicast, groups): accesses}
        self.moved = 0.0  # accesses moved out of the plain histogram
        self.links = 0.0  # link transfers

    def shape(self, i: int) -> tuple[str, int]:
        """(kind, size) of the delta of a visit whose translation is U[i]."""
        if self.v.points:
            return ("pt", 1)
        u = self.U[i]
        if self.v.stationary:
            if u == (0, 0, 0, 0):
                return ("empty", 0)
            same = self.ref != (0, 0, 0, 0) and u == self.ref
        else:
            same = u == self.U[self.innermost]
            if same and u == (0, 0, 0, 0):
                return ("empty", 0)
        if same:
            return ("full", self.full) if self.delta[i] == self.full else ("slab", self.delta[i])
        return ("full", self.full)

    def visit(self, i: int, pred_shape: tuple[str, int], weight: int) -> None:
        """``weight`` visits by U[i] after a visit whose delta had ``pred_shape``."""
        if weight == 0:
            return
        kind, size = self.shape(i)
        if size == 0 or kind != pred_shape[0]:
            return
        if self.groups is None:
            self.groups = _linked_groups(self.lay, self.t, self.v.U[self.t])
        lg = self.groups[i]
        if lg is None:
            return
        nl, g = lg
        amount = float(size) * float(weight)
        self.moved += amount
        self.links += float(nl) * amount
        for m_, c_ in g.items():
            self.extra[(m_, c_)] = self.extra.get((m_, c_), 0.0) + c_ * amount

    def account(self) -> tuple[dict[tuple[int, int], float], float, float]:
        i1 = self.innermost
        n1 = int(self.v.bound[i1])
        self.visit(i1, ("pt", 1) if self.v.points else ("full", self.full), n1 - 1)  # right after the first
        for i in range(i1):
            w = int(self.v.weight[i])
            self.visit(i, self.shape(i1), w)  # carry into i (after a visit by the innermost loop)
            self.visit(i1, self.shape(i), (n1 - 1) * w)  # visits by the innermost loop after that carry
        return self.extra, self.moved, self.links


def apply_link_patches(
    acc: np.ndarray,
    mc: np.ndarray,
    hist_mc: np.ndarray,
    hist_sc: np.ndarray,
    child_acc: np.ndarray,
    patches: Patches,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rebuild the histograms of the patched (candidate, level) pairs: the plain multicast
    histogram for the accesses not served over links, plus the linked visits' own histograms.
    Arrays are [L, 3, H, B]; returns (acc, mc, link transfers [L, 3, B])."""
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
