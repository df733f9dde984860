"""The mapper's scoring function: Timeloop's model in closed form for candidates of a mapspace.

The mapper scores thousands of candidates per tile shape, under every residency variant at once, so
it needs a cheaper evaluation than :mod:`deepfrack.cost.model` (which reproduces every Timeloop
count, link transfers included, and costs about 0.2 ms per mapping). This module computes the same
energy, cycles and validity from the same formulas (NVlabs/timeloop ``src/loop-analysis/
nest-analysis.cpp``, ``tiling.cpp``, ``src/model/buffer.cpp``; their closed forms are derived in
:mod:`deepfrack.cost.analytic`) with these simplifications, which make it exact except where noted:

* **Accesses of a child tile to its parent.** For Weights and Outputs (each data dimension is one
  loop dimension) the tile moves off itself at every step of a relevant loop, so the accesses are
  ``|tile| x`` the product of the temporal loop bounds from the innermost *relevant* loop above the
  tile outward (loops irrelevant to the tensor inside it reuse the tile). For Inputs the same holds,
  except that when the innermost loop above the tile moves it along the sliding-window axes (P or R
  on the width, Q or S on the height) the overlap with the previous tile is not fetched again:
  Timeloop credits the overlap to that loop's steps and to the steps of outer loops whose translation
  equals it (``SaveAndSubtractIfSameStride``, the "legacy" rule); the correction is
  ``(|B| - D(u_1)) x sum of those steps' weights``. If the innermost loop above is irrelevant to
  Inputs (M), no overlap is credited at all — a Timeloop quirk kept on purpose.
* **Multicast.** A level's children receive distinct data in as many groups as the product of the
  spatial factors relevant to the tensor (for Inputs with P and R, or Q and S, both spatial at one
  level: the exact number of distinct offsets). Link transfers between neighbouring children
  (Timeloop's peer accesses) are not modelled: the mapper re-scores its shortlist with the full model,
  which has them.
* **Bypass, fills, reads, updates, energy, cycles** exactly as ``deepfrack.cost.timeloop_post``:
  a kept level receives its inner kept level's accesses times the distinct groups of the fan-outs in
  between; fills are its own child-tile accesses (none at the outermost kept level); Outputs reads =
  updates - partition size; energy = ceil(count / block) x action energy x utilized instances; cycles
  = compute cycles slowed by each level's bandwidth demand.

Arrays here use Timeloop's level order (0 = innermost); results are per variant (V) and candidate
(B).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from deepfrack.cost.mapspace import RELEVANT, Candidates, MapSpace
from deepfrack.cost.timeloop_post import ArchTables, TimeloopRules
from deepfrack.dims import C, M, N, P, Q, R, S

#: Inputs data coordinate of each loop dimension:
#: N -> 0, C -> 1, P/R -> 2 (width), Q/S -> 3 (height), M -> none
_COORD = np.array([1, -1, 2, 3, 0, 2, 3], np.int64)


@dataclass
class FastResult:
    """Per variant and candidate: ``energy`` (pJ), ``cycles``, ``valid`` (fits every level, every
    tensor kept somewhere, spatial constraints met), ``last_level`` (accesses at the outermost
    level, all tensors), ``cap_used`` [V, B, L] words per instance in Timeloop level order, and the
    ``over`` [V, B, L]: the levels whose tile does not fit."""

    energy: np.ndarray
    cycles: np.ndarray
    valid: np.ndarray
    last_level: np.ndarray
    cap_used: np.ndarray
    over: np.ndarray


@lru_cache(maxsize=65536)
def _distinct(a: int, fa: int, b: int, fb: int) -> int:
    return len({a * x + b * y for x in range(fa) for y in range(fb)})


class FastModel:
    """Scores candidates of one mapspace (one tile problem) under all its variants."""

    def __init__(self, space: MapSpace, tables: ArchTables, rules: TimeloopRules):
        self.space = space
        self.tables = tables
        self.rules = rules
        lay = space.layer
        self.coef = np.array([1, 0, lay.Wdilation, lay.Hdilation, 1, lay.Wstride, lay.Hstride], np.int64)
        self.L = space.n_levels
        self.eff = tables.eff_size
        self.er, self.ef, self.eu = (
            np.nan_to_num(a) for a in (tables.e_read, tables.e_fill, tables.e_update)
        )
        bw = np.stack([tables.read_bw, tables.write_bw, tables.shared_bw])
        self.bw_levels = tuple(int(l) for l in np.nonzero(~np.isnan(bw).all(axis=0))[0])
        self.min_util = tables.min_util

    def _sizes(self, e: np.ndarray) -> np.ndarray:
        """Data sizes [..., 3] of op-space extents e [..., 7]."""
        lay = self.space.layer
        w = e[..., C] * e[..., M] * e[..., R] * e[..., S]
        wx = lay.Wstride * (e[..., P] - 1) + lay.Wdilation * (e[..., R] - 1) + 1
        hx = lay.Hstride * (e[..., Q] - 1) + lay.Hdilation * (e[..., S] - 1) + 1
        i = e[..., N] * e[..., C] * wx * hx
        o = e[..., N] * e[..., M] * e[..., P] * e[..., Q]
        return np.stack([w, i, o], axis=-1)

    def evaluate(self, c: Candidates) -> FastResult:
        """Scores of every candidate under every variant; candidates that are invalid under every
        variant (spatial constraints, a tile that does not fit) are not scored (energy and cycles
        inf)."""
        space, L = self.space, self.L
        tf0, sx0, sy0 = space.factors(c)
        spatial_ok = space.spatial_ok(sx0, sy0)
        tf = np.ascontiguousarray(tf0[:, ::-1, :])
        sf = np.ascontiguousarray((sx0 * sy0)[:, ::-1, :])
        keep = np.ascontiguousarray(space.keeps(c)[:, :, ::-1, :])  # [V, B, L, 3]
        V, B = keep.shape[0], keep.shape[1]

        # ---- extents and tile sizes ------------------------------------------------------------
        ext_sp = np.empty((B, L, 7), np.int64)
        ext = np.empty((B, L, 7), np.int64)
        cur = np.ones((B, 7), np.int64)
        for s in range(L):
            cur = cur * sf[:, s]
            ext_sp[:, s] = cur
            cur = cur * tf[:, s]
            ext[:, s] = cur
        size = self._sizes(ext)  # [B, L, 3]

        # ---- validity -----------------------------------------------------------------------------
        cap = np.where(keep, size[None], 0).sum(axis=3)  # [V, B, L]
        eff = self.eff[None, None, :]
        bounded = eff >= 0
        over = bounded & (cap > eff)
        under = (
            bounded & ~over & (self.min_util[None, None, :] > 0) & (cap < eff * self.min_util[None, None, :])
        )
        unstored = ~keep.any(axis=2).all(axis=2)
        valid = ~over.any(axis=2) & ~under.any(axis=2) & ~unstored & spatial_ok[None, :]
        energy = np.full((V, B), np.inf)
        cycles = np.full((V, B), np.inf)
        last = np.full((V, B), np.inf)
        rows = np.nonzero(valid.any(axis=0))[0]
        if len(rows):
            e, cy, la = self._score(
                c.take(rows), tf[rows], sf[rows], keep[:, rows], ext[rows], ext_sp[rows], size[rows]
            )
            energy[:, rows], cycles[:, rows], last[:, rows] = e, cy, la
        return FastResult(energy, cycles, valid, last, cap, over)

    def _score(self, c, tf, sf, keep, ext, ext_sp, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        space, L, lay = self.space, self.L, self.space.layer
        V, B = keep.shape[0], keep.shape[1]
        size_sp = self._sizes(ext_sp)
        wx = lay.Wstride * (ext[..., P] - 1) + lay.Wdilation * (ext[..., R] - 1) + 1  # [B, L]
        hx = lay.Hstride * (ext[..., Q] - 1) + lay.Hdilation * (ext[..., S] - 1) + 1

        # ---- temporal loops in nest order (innermost first), only those that can be > 1 ----------
        parts = [space.active_orders[L - 1 - s][c.oidx[:, L - 1 - s]] for s in range(L)]
        starts = np.cumsum([0] + [p.shape[1] for p in parts])  # first slot of level s
        J = int(starts[-1])
        dimj = np.concatenate(parts, axis=1) if J else np.zeros((B, 0), np.int64)
        levj = np.repeat(np.arange(L), [p.shape[1] for p in parts])
        n = tf[np.arange(B)[:, None], levj[None, :], dimj]
        sig = ext_sp[np.arange(B)[:, None], levj[None, :], dimj]
        active = n > 1
        SP = np.ones((B, J + 1), np.int64)
        SP[:, :J] = np.cumprod(n[:, ::-1], axis=1)[:, ::-1]
        jidx = np.arange(J)
        rows = np.arange(B)[:, None]

        def next_index(mask: np.ndarray) -> np.ndarray:
            cand = np.where(mask, jidx[None, :], J)
            out = np.empty((B, J + 1), np.int64)
            out[:, :J] = np.minimum.accumulate(cand[:, ::-1], axis=1)[:, ::-1]
            out[:, J] = J
            return out

        nxt = [
            next_index(active & RELEVANT[t][dimj]) if keep[0, :, : L - 1, t].any() else None for t in range(3)
        ]
        nxt_any = next_index(active)
        coord = _COORD[dimj]
        tau = self.coef[dimj] * sig
        w_slot = (n - 1) * SP[:, 1:]

        acc = np.zeros((B, L, 3), np.int64)  # accesses of level s's tile to its parent
        # only the levels that keep a tensor (in some candidate) need its accesses
        need = keep[0, :, : L - 1, :].any(axis=0)  # [L-1, 3]
        for s in range(L - 1):
            start = int(starts[s + 1])
            for t in range(3):
                if need[s, t]:
                    acc[:, s, t] = size[:, s, t] * SP[rows[:, 0], nxt[t][:, start]]
            if J == 0 or not need[s, 1]:
                continue
            # Inputs: sliding-window overlap credit (see module docstring)
            l1 = nxt_any[:, start]
            has = l1 < J
            l1c = np.minimum(l1, max(J - 1, 0))
            c1 = np.where(has, coord[rows[:, 0], l1c], -1)
            slide = (c1 == 2) | (c1 == 3)
            if not slide.any():
                continue
            extc = np.where(c1 == 2, wx[:, s], hx[:, s])
            tau1 = tau[rows[:, 0], l1c]
            overlap = np.maximum(0, extc - tau1)
            slide &= overlap > 0
            if not slide.any():
                continue
            deficit = (size[:, s, 1] // np.maximum(extc, 1)) * overlap
            jj = jidx[start:]
            act_s, coord_s, tau_s, w_s = (
                active[:, start:],
                coord[:, start:],
                tau[:, start:],
                w_slot[:, start:],
            )
            after = jj[None, :] > l1[:, None]
            from_l1 = jj[None, :] >= l1[:, None]
            same = coord_s == c1[:, None]
            other = act_s & after & ~same & (coord_s >= 0)
            broken = (np.cumsum(other, axis=1) - other) > 0
            tau_c1 = np.where(act_s & same & from_l1, tau_s, 0)
            s_excl = np.cumsum(tau_c1, axis=1) - tau_c1
            eq = after & act_s & same & ~broken & (tau_s == s_excl + tau1[:, None])
            corr = w_slot[rows[:, 0], l1c] + np.where(eq, w_s, 0).sum(axis=1)
            acc[:, s, 1] -= np.where(slide, deficit * corr, 0)

        compute_acc = SP[:, 0]
        F = sf.prod(axis=2)  # [B, L]
        repl = np.ones((B, L), np.int64)
        for s in range(L - 2, -1, -1):
            repl[:, s] = repl[:, s + 1] * F[:, s + 1]
        macs = compute_acc * F.prod(axis=1)

        # distinct groups per level and tensor
        G = np.empty((B, L, 3), np.int64)
        for t in range(3):
            G[:, :, t] = np.where(RELEVANT[t][None, None, :], sf, 1).prod(axis=2)
        both_w = (sf[:, :, P] > 1) & (sf[:, :, R] > 1)
        both_h = (sf[:, :, Q] > 1) & (sf[:, :, S] > 1)
        if both_w.any() or both_h.any():
            below = np.concatenate([np.ones((B, 1, 7), np.int64), ext[:, :-1, :]], axis=1)
            for b, s in zip(*np.nonzero(both_w | both_h)):
                dw = _distinct(
                    lay.Wstride * int(below[b, s, P]),
                    int(sf[b, s, P]),
                    lay.Wdilation * int(below[b, s, R]),
                    int(sf[b, s, R]),
                )
                dh = _distinct(
                    lay.Hstride * int(below[b, s, Q]),
                    int(sf[b, s, Q]),
                    lay.Hdilation * int(below[b, s, S]),
                    int(sf[b, s, S]),
                )
                G[b, s, 1] = int(sf[b, s, N]) * int(sf[b, s, C]) * dw * dh

        # partition sizes (Outputs reads = updates - partition)
        sp_active = (sf > 1).any(axis=2)
        part = np.empty((B, L, 3), np.int64)
        p = size[:, L - 1, :].copy()
        part[:, L - 1] = p
        for s in range(L - 2, -1, -1):
            d = np.where(sp_active[:, s + 1, None], size_sp[:, s + 1, :], size[:, s, :])
            p = np.where(d != 0, (p * size[:, s, :]) // np.where(d != 0, d, 1), p)
            part[:, s] = p

        # ---- reads / fills / updates ---------------------------------------------------------------
        # The variants differ only in what the outermost level keeps (MapSpace guarantees it): the
        # inner levels are computed once; per variant only the outermost level's own counts and the
        # fills of each tensor's topmost inner kept level (none when nothing above keeps it) change.
        top = L - 1
        keep_in = keep[0, :, :top, :]  # [B, L-1, 3]
        keep_top = keep[:, :, top, :]  # [V, B, 3]
        content = np.empty((B, top, 3), np.int64)
        run = np.repeat(compute_acc[:, None], 3, axis=1)
        for s in range(top):
            run = run * G[:, s, :]
            content[:, s, :] = run
            run = np.where(keep_in[:, s, :], acc[:, s, :], run)
        content_top = run * G[:, top, :]  # [B, 3]: what the outermost level receives if it keeps t
        kept_above = np.zeros_like(keep_in)
        seen = np.zeros((B, 3), bool)
        for s in range(top - 1, -1, -1):
            kept_above[:, s, :] = seen
            seen = seen | keep_in[:, s, :]
        is_top_inner = keep_in & ~kept_above
        acc_in = acc[:, :top, :]
        part_in = part[:, :top, 2]
        fills = np.where(keep_in & kept_above, acc_in, 0)
        fills_if = np.where(is_top_inner, acc_in, 0)  # added when the outermost level keeps t
        if self.rules.fill_elision:
            fills[..., 2] = np.where(
                keep_in[..., 2] & kept_above[..., 2], np.maximum(acc_in[..., 2] - part_in, 0), 0
            )
            fills_if[..., 2] = np.where(is_top_inner[..., 2], np.maximum(acc_in[..., 2] - part_in, 0), 0)
        reads = np.where(keep_in, content, 0)
        reads[..., 2] = np.where(keep_in[..., 2], np.maximum(content[..., 2] - part_in, 0), 0)
        updates = np.zeros_like(content)
        updates[..., 2] = np.where(keep_in[..., 2], content[..., 2], 0)

        tb = self.tables
        blk = tb.block.astype(np.int64)
        er, ef, eu = self.er, self.ef, self.eu
        bi = blk[None, :top, None]
        rep_in = repl[:, :top, None].astype(np.float64)
        e_in = (
            (-(-reads // bi)) * er[None, :top, None]
            + (-(-fills // bi)) * ef[None, :top, None]
            + (-(-updates // bi)) * eu[None, :top, None]
        ) * rep_in
        e_if = ((-(-fills_if // bi)) * ef[None, :top, None] * rep_in).sum(axis=1)  # [B, 3]
        r_top = content_top.copy()
        r_top[:, 2] = np.maximum(content_top[:, 2] - part[:, top, 2], 0)
        u_top = np.zeros_like(content_top)
        u_top[:, 2] = content_top[:, 2]
        e_top = ((-(-r_top // blk[top])) * er[top] + (-(-u_top // blk[top])) * eu[top]) * float(repl[0, top])
        kt = keep_top.astype(np.float64)
        mac_e = macs.astype(np.float64) * tb.e_mac
        energy = e_in.sum(axis=(1, 2))[None, :] + (kt * (e_if + e_top)[None]).sum(axis=2) + mac_e[None, :]

        # ---- cycles (only levels with a bandwidth limit can slow the compute) ------------------------
        cc = compute_acc.astype(np.float64)
        cycles = np.broadcast_to(cc[None, :], (V, B)).copy()
        for lv in self.bw_levels:
            if lv < top:
                rd = (reads[:, lv, :] / cc[:, None]).sum(axis=1)[None, :]
                wr = ((fills[:, lv, :] + updates[:, lv, :]) / cc[:, None]).sum(axis=1)[None, :] + (
                    kt * (fills_if[:, lv, :] / cc[:, None])[None]
                ).sum(axis=2)
            else:
                rd = (kt * (r_top / cc[:, None])[None]).sum(axis=2)
                wr = (kt * (u_top / cc[:, None])[None]).sum(axis=2)
            slow = np.ones((V, B))
            with np.errstate(divide="ignore", invalid="ignore"):
                for bw, dem in ((tb.read_bw[lv], rd), (tb.write_bw[lv], wr), (tb.shared_bw[lv], rd + wr)):
                    if not np.isnan(bw):
                        slow = np.where(bw < dem, np.minimum(slow, bw / dem), slow)
                cycles = np.maximum(cycles, np.ceil(cc[None, :] / slow))
        if self.rules.leakage:
            leak_per_cycle = (tb.e_leak[None, :] * np.maximum(1, repl).astype(np.float64)).sum(axis=1)  # [B]
            energy = energy + cycles * leak_per_cycle[None, :]

        last = (kt * (r_top + u_top)[None]).sum(axis=2) * float(repl[0, top])
        return energy, cycles, last


__all__ = ["FastModel", "FastResult"]
