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

Arrays here index storage levels outermost first (as ``Architecture.levels``) and list the temporal
loops of a nest outermost first; results are per variant (V) and candidate (B).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from deepfrack.cost.mapspace import Candidates, MapSpace
from deepfrack.cost.nest import RELEVANT
from deepfrack.cost.timeloop_post import ArchTables, TimeloopRules
from deepfrack.dims import C, M, N, P, Q, R, S

#: Inputs data coordinate of each loop dimension:
#: N -> 0, C -> 1, P/R -> 2 (width), Q/S -> 3 (height), M -> none
_COORD = np.array([1, -1, 2, 3, 0, 2, 3], np.int64)


@dataclass
class FastResult:
    """Per variant and candidate: ``energy`` (pJ), ``cycles``, ``valid`` (fits every level, every
    tensor kept somewhere, spatial constraints met), ``last_level`` (accesses at the outermost
    level, all tensors), ``cap_used`` [V, B, L] words per instance (levels outermost first), and
    the ``over`` [V, B, L]: the levels whose tile does not fit."""

    energy: np.ndarray
    cycles: np.ndarray
    valid: np.ndarray
    last_level: np.ndarray
    cap_used: np.ndarray
    over: np.ndarray


@lru_cache(maxsize=65536)
def _distinct(a: int, fa: int, b: int, fb: int) -> int:
    return len({a * x + b * y for x in range(fa) for y in range(fb)})


class _Slots(NamedTuple):
    """The temporal loops of every candidate that can be > 1, outermost first ("slots", [B, J]):
    level 0's loops, then level 1's, ...; the slots before ``start[l]`` are the loops above level
    l's tile. ``outer_product`` [B, J + 1]: the product of the bounds of the slots before j;
    ``weight``: (bound - 1) x the bounds outside the slot (the accesses a carry into it weighs);
    ``input_coord``: the Inputs coordinate the slot moves (``_COORD``), ``input_step``: by how much."""

    dim: np.ndarray
    bound: np.ndarray
    active: np.ndarray
    start: tuple[int, ...]
    outer_product: np.ndarray
    weight: np.ndarray
    input_coord: np.ndarray
    input_step: np.ndarray

    @property
    def J(self) -> int:
        return int(self.dim.shape[1])

    def last_before(self, mask: np.ndarray) -> np.ndarray:
        """int64 [B, J + 1]: for each j, the last slot before j where ``mask`` [B, J] holds (-1: none)."""
        B, J = mask.shape
        out = np.full((B, J + 1), -1, np.int64)
        if J:
            out[:, 1:] = np.maximum.accumulate(np.where(mask, np.arange(J)[None, :], -1), axis=1)
        return out


def _slots(
    active_dims: np.ndarray, widths: tuple[int, ...], tf: np.ndarray, ext_sp: np.ndarray, coef: np.ndarray
) -> _Slots:
    """The slots of candidates whose loops that can be > 1 are ``active_dims`` [B, J] (per level
    ``widths[l]`` of them, outermost first; -1: a padding slot, bound 1)."""
    B, L = tf.shape[0], tf.shape[1]
    start = tuple(int(x) for x in np.cumsum([0, *widths]))
    J = start[-1]
    pad = active_dims < 0
    dim = np.where(pad, 0, active_dims)
    lev = np.repeat(np.arange(L), widths)[None, :]
    rows = np.arange(B)[:, None]
    bound = tf[rows, lev, dim]
    if pad.any():
        bound = np.where(pad, 1, bound)
    prod = np.ones((B, J + 1), np.int64)
    if J:
        np.cumprod(bound, axis=1, out=prod[:, 1:])
    return _Slots(
        dim=dim,
        bound=bound,
        active=bound > 1,
        start=start,
        outer_product=prod,
        weight=(bound - 1) * prod[:, :J],
        input_coord=_COORD[dim],
        input_step=coef[dim] * ext_sp[rows, lev, dim],
    )


class _Decoded(NamedTuple):
    """Candidates of one or more mapspaces of a layer problem, decoded: temporal, spatial X and Y
    factors [B, L, 7], what is kept below the outermost level [B, L, 3], whether the spatial
    factors fit, and the loops that can be > 1 ([B, J], ``widths[l]`` per level, -1 padding)."""

    tf: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    keep: np.ndarray
    spatial_ok: np.ndarray
    active_dims: np.ndarray
    widths: tuple[int, ...]

    def take(self, rows: np.ndarray) -> _Decoded:
        return _Decoded(
            self.tf[rows],
            self.sx[rows],
            self.sy[rows],
            self.keep[rows],
            self.spatial_ok[rows],
            self.active_dims[rows],
            self.widths,
        )

    @staticmethod
    def concat(parts: list[_Decoded]) -> _Decoded:
        """One batch of several mapspaces' candidates: each level's loops padded to the widest."""
        L = len(parts[0].widths)
        widths = tuple(max(p.widths[l] for p in parts) for l in range(L))
        dims = []
        for p in parts:
            starts = np.cumsum([0, *p.widths])
            cols = []
            for l in range(L):
                cols.append(p.active_dims[:, starts[l] : starts[l + 1]])
                if widths[l] > p.widths[l]:
                    cols.append(np.full((len(p.tf), widths[l] - p.widths[l]), -1, np.int64))
            dims.append(np.concatenate(cols, axis=1) if cols else p.active_dims)
        return _Decoded(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("tf", "sx", "sy", "keep", "spatial_ok")
            ),
            np.concatenate(dims),
            widths,
        )


def _partitions(size: np.ndarray, size_sp: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """Partition sizes [B, L, 3] (Outputs reads = updates - partition): the outermost level's tile,
    then inward partition x tile / (the tile, or the parent's spatial partition below a fan-out)."""
    sp_active = (sf > 1).any(axis=2)
    part = np.empty(size.shape, np.int64)
    p = size[:, 0, :].copy()
    part[:, 0] = p
    for l in range(1, size.shape[1]):
        d = np.where(sp_active[:, l - 1, None], size_sp[:, l - 1, :], size[:, l, :])
        p = np.where(d != 0, (p * size[:, l, :]) // np.where(d != 0, d, 1), p)
        part[:, l] = p
    return part


class _Counts(NamedTuple):
    """Reads, fills and updates per instance at the inner levels [B, L, 3] (level 0's entries are 0),
    which every variant shares; ``fills_if_top``: the fills of each tensor's outermost inner keeping
    level, which exist only when the outermost level keeps the tensor; ``top_reads``,
    ``top_updates`` [B, 3]: the outermost level's counts when it keeps the tensor."""

    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    fills_if_top: np.ndarray
    top_reads: np.ndarray
    top_updates: np.ndarray


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
        vk = space.variant_keep
        if any(l == 0 for l, _ in space.free_keeps) or (vk[:, 1:] != vk[:1, 1:]).any():
            raise ValueError("the variants of a mapspace may differ only in what the outermost level keeps")
        #: [V, 3]: what each variant's outermost level keeps (the variants agree everywhere else)
        self.top_keep = vk[:, 0, :]
        #: what the scoring depends on besides the decoded candidates (``evaluate_many``)
        self.signature = (
            id(tables),
            rules,
            tuple(self.coef.tolist()),
            vk.tobytes(),
            space.free_keeps,
            space.levels,
            space.min_parallelism,
        )

    def _sizes(self, e: np.ndarray) -> np.ndarray:
        """Data sizes [..., 3] of op-space extents e [..., 7]."""
        lay = self.space.layer
        w = e[..., C] * e[..., M] * e[..., R] * e[..., S]
        wx = lay.Wstride * (e[..., P] - 1) + lay.Wdilation * (e[..., R] - 1) + 1
        hx = lay.Hstride * (e[..., Q] - 1) + lay.Hdilation * (e[..., S] - 1) + 1
        i = e[..., N] * e[..., C] * wx * hx
        o = e[..., N] * e[..., M] * e[..., P] * e[..., Q]
        return np.stack([w, i, o], axis=-1)

    def decode(self, c: Candidates) -> _Decoded:
        """The candidates' factors, keeps, spatial validity and active loops (what depends on the
        mapspace; the rest of the model depends only on the layer problem and the architecture)."""
        space = self.space
        tf, sx, sy = space.factors(c)
        parts = [space.active_orders[l][c.oidx[:, l]] for l in range(self.L)]
        widths = tuple(int(p.shape[1]) for p in parts)
        dims = np.concatenate(parts, axis=1) if sum(widths) else np.zeros((len(c), 0), np.int64)
        return _Decoded(tf, sx, sy, space.inner_keeps(c), space.spatial_ok(sx, sy), dims, widths)

    def evaluate(self, c: Candidates) -> FastResult:
        """Scores of every candidate under every variant; candidates that are invalid under every
        variant (spatial constraints, a tile that does not fit) are not scored (energy and cycles
        inf)."""
        return self.evaluate_decoded(self.decode(c))

    def evaluate_decoded(self, dc: _Decoded) -> FastResult:
        """``evaluate`` of decoded candidates (of this model's mapspace, or of another mapspace of
        the same layer problem: :func:`evaluate_many`)."""
        L = self.L
        tf, sf, keep, spatial_ok = dc.tf, dc.sx * dc.sy, dc.keep, dc.spatial_ok
        vk0 = self.top_keep  # [V, 3]
        V, B = vk0.shape[0], len(tf)

        # extents of each level's tile and below its temporal loops (their strides), from the MACs out
        ext_sp = np.empty((B, L, 7), np.int64)
        ext = np.empty((B, L, 7), np.int64)
        cur = np.ones((B, 7), np.int64)
        for l in range(L - 1, -1, -1):
            cur = cur * sf[:, l]
            ext_sp[:, l] = cur
            cur = cur * tf[:, l]
            ext[:, l] = cur
        size = self._sizes(ext)  # [B, L, 3]

        # words per instance: the inner levels' are every variant's, the outermost level's per variant
        kept = np.where(keep, size, 0)
        cap = np.empty((V, B, L), np.int64)
        cap[:] = (kept[:, :, 0] + kept[:, :, 1] + kept[:, :, 2])[None]
        cap[:, :, 0] = vk0.astype(np.int64) @ size[:, 0, :].T
        eff = self.eff[None, None, :]
        bounded = eff >= 0
        over = bounded & (cap > eff)
        under = (
            bounded & ~over & (self.min_util[None, None, :] > 0) & (cap < eff * self.min_util[None, None, :])
        )
        inner_any = keep[:, 1:, :].any(axis=1) if L > 1 else np.zeros((B, 3), bool)  # [B, 3]
        stored = (inner_any[None] | vk0[:, None, :]).all(axis=2)  # [V, B]
        valid = ~(over | under).any(axis=2) & stored & spatial_ok[None, :]
        energy = np.full((V, B), np.inf)
        cycles = np.full((V, B), np.inf)
        last = np.full((V, B), np.inf)
        rows = np.nonzero(valid.any(axis=0))[0]
        if len(rows):
            e, cy, la = self._score(dc.take(rows), sf[rows], ext[rows], ext_sp[rows], size[rows])
            energy[:, rows], cycles[:, rows], last[:, rows] = e, cy, la
        return FastResult(energy, cycles, valid, last, cap, over)

    def _score(self, dc: _Decoded, sf, ext, ext_sp, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energy, cycles and outermost-level accesses [V, B] of candidates that are valid under
        some variant (``keep``: [B, L, 3], what every variant keeps below the outermost level)."""
        keep = dc.keep
        sl = _slots(dc.active_dims, dc.widths, dc.tf, ext_sp, self.coef)
        acc = self._parent_accesses(sl, size, keep, ext)
        compute_acc = sl.outer_product[:, -1]
        F = sf.prod(axis=2)  # [B, L]: fan-out used per level
        repl = np.ones(F.shape, np.int64)
        np.cumprod(F[:, :-1], axis=1, out=repl[:, 1:])
        macs = compute_acc * repl[:, -1] * F[:, -1]
        part = _partitions(size, self._sizes(ext_sp), sf)
        counts = self._counts(compute_acc, acc, self._distinct_groups(sf, ext), part, keep)
        kt = np.broadcast_to(self.top_keep[:, None, :], (self.top_keep.shape[0], len(sf), 3)).astype(
            np.float64
        )  # [V, B, 3]: the outermost level keeps the tensor
        energy = self._energy(counts, kt, repl, macs)
        cycles = self._cycles(counts, kt, compute_acc)
        if self.rules.leakage:
            leak_per_cycle = (self.tables.e_leak[None, :] * np.maximum(1, repl).astype(np.float64)).sum(
                axis=1
            )
            energy = energy + cycles * leak_per_cycle[None, :]
        last = (kt * (counts.top_reads + counts.top_updates)[None]).sum(axis=2)
        return energy, cycles, last

    # ---- accesses of each level's tile to its parent ---------------------------------------------
    def _parent_accesses(self, sl: _Slots, size: np.ndarray, keep: np.ndarray, ext: np.ndarray) -> np.ndarray:
        """int64 [B, L, 3] (see the module docstring), for the (level, tensor) pairs some candidate
        keeps at an inner level (the variants agree there); every inner level at once."""
        B, L, _ = size.shape
        acc = np.zeros((B, L, 3), np.int64)
        if L < 2:
            return acc
        need = keep.any(axis=0)  # [L, 3]
        starts = np.array(sl.start[1:L], np.int64)  # the slots above level l's tile: those before start[l]
        for t in range(3):
            if need[1:, t].any():
                lr = sl.last_before(sl.active & RELEVANT[t][sl.dim])[:, starts]  # [B, L - 1]
                acc[:, 1:, t] = size[:, 1:, t] * np.take_along_axis(sl.outer_product, lr + 1, axis=1)
        if sl.J and need[1:, 1].any():
            lay = self.space.layer
            e = ext[:, 1:]
            wx = lay.Wstride * (e[..., P] - 1) + lay.Wdilation * (e[..., R] - 1) + 1  # [B, L - 1]
            hx = lay.Hstride * (e[..., Q] - 1) + lay.Hdilation * (e[..., S] - 1) + 1
            l1 = sl.last_before(sl.active)[:, starts]
            credit = _input_overlap_credit(sl, l1, size[:, 1:, 1], wx, hx)
            acc[:, 1:, 1] -= np.where(need[None, 1:, 1], credit, 0)
        return acc

    # ---- multicast groups ------------------------------------------------------------------------
    def _distinct_groups(self, sf: np.ndarray, ext: np.ndarray) -> np.ndarray:
        """Distinct data per level and tensor among a fan-out's children [B, L, 3]: the product of
        the spatial factors relevant to the tensor, or for Inputs with P and R (or Q and S) both
        spread at one level, the number of distinct offsets."""
        lay = self.space.layer
        B = sf.shape[0]
        G = np.empty((*sf.shape[:2], 3), np.int64)
        for t in range(3):
            G[:, :, t] = np.where(RELEVANT[t][None, None, :], sf, 1).prod(axis=2)
        both_w = (sf[:, :, P] > 1) & (sf[:, :, R] > 1)
        both_h = (sf[:, :, Q] > 1) & (sf[:, :, S] > 1)
        if both_w.any() or both_h.any():
            # the step of a level's spatial loops: the extent of its child's tile
            below = np.concatenate([ext[:, 1:, :], np.ones((B, 1, 7), np.int64)], axis=1)
            for b, l in zip(*np.nonzero(both_w | both_h)):
                dw = _distinct(
                    lay.Wstride * int(below[b, l, P]),
                    int(sf[b, l, P]),
                    lay.Wdilation * int(below[b, l, R]),
                    int(sf[b, l, R]),
                )
                dh = _distinct(
                    lay.Hstride * int(below[b, l, Q]),
                    int(sf[b, l, Q]),
                    lay.Hdilation * int(below[b, l, S]),
                    int(sf[b, l, S]),
                )
                G[b, l, 1] = int(sf[b, l, N]) * int(sf[b, l, C]) * dw * dh
        return G

    # ---- reads / fills / updates, energy, cycles ------------------------------------------------
    def _counts(
        self, compute_acc: np.ndarray, acc: np.ndarray, G: np.ndarray, part: np.ndarray, keep: np.ndarray
    ) -> _Counts:
        """A kept level receives its inner kept level's accesses (or the MACs') times the distinct
        groups of the fan-outs in between; fills are its own accesses to its parent (none at the
        outermost keeping level); Outputs reads = updates - partition size. The variants differ
        only in what the outermost level keeps (MapSpace guarantees it): the inner levels are
        computed once."""
        B, L, _ = acc.shape
        inner = keep.copy()
        inner[:, 0] = False
        content = np.empty((B, L, 3), np.int64)
        run = np.repeat(compute_acc[:, None], 3, axis=1)
        for l in range(L - 1, -1, -1):  # from the MACs outward
            run = run * G[:, l, :]
            content[:, l, :] = run
            run = np.where(inner[:, l, :], acc[:, l, :], run)
        kept_outside = np.zeros_like(inner)  # kept at an inner level outside l
        kept_outside[:, 1:] = np.logical_or.accumulate(inner[:, :-1], axis=1)
        top_inner = inner & ~kept_outside
        part_o = part[:, :, 2]
        fills = np.where(inner & kept_outside, acc, 0)
        fills_if = np.where(top_inner, acc, 0)
        if self.rules.fill_elision:
            elided = np.maximum(acc[..., 2] - part_o, 0)
            fills[..., 2] = np.where(inner[..., 2] & kept_outside[..., 2], elided, 0)
            fills_if[..., 2] = np.where(top_inner[..., 2], elided, 0)
        reads = np.where(inner, content, 0)
        reads[..., 2] = np.where(inner[..., 2], np.maximum(content[..., 2] - part_o, 0), 0)
        updates = np.zeros_like(content)
        updates[..., 2] = np.where(inner[..., 2], content[..., 2], 0)
        top = content[:, 0, :]
        top_reads = top.copy()
        top_reads[:, 2] = np.maximum(top[:, 2] - part[:, 0, 2], 0)
        top_updates = np.zeros_like(top)
        top_updates[:, 2] = top[:, 2]
        return _Counts(reads, fills, updates, fills_if, top_reads, top_updates)

    def _energy(self, k: _Counts, kt: np.ndarray, repl: np.ndarray, macs: np.ndarray) -> np.ndarray:
        """[V, B]: ceil(count / block size) x action energy x utilized instances, plus the MACs."""
        blk = self.tables.block.astype(np.int64)
        er, ef, eu = self.er, self.ef, self.eu
        bi = blk[None, :, None]
        rep = repl[:, :, None].astype(np.float64)
        e_in = (
            (-(-k.reads // bi)) * er[None, :, None]
            + (-(-k.fills // bi)) * ef[None, :, None]
            + (-(-k.updates // bi)) * eu[None, :, None]
        ) * rep
        e_if = ((-(-k.fills_if_top // bi)) * ef[None, :, None] * rep).sum(axis=1)  # [B, 3]
        e_top = (-(-k.top_reads // blk[0])) * er[0] + (-(-k.top_updates // blk[0])) * eu[0]
        mac_e = macs.astype(np.float64) * self.tables.e_mac
        return e_in.sum(axis=(1, 2))[None, :] + (kt * (e_if + e_top)[None]).sum(axis=2) + mac_e[None, :]

    def _cycles(self, k: _Counts, kt: np.ndarray, compute_acc: np.ndarray) -> np.ndarray:
        """[V, B]: the compute cycles, slowed by the levels with a bandwidth limit."""
        tb = self.tables
        cc = compute_acc.astype(np.float64)
        cycles = np.broadcast_to(cc[None, :], kt.shape[:2]).copy()
        for lv in self.bw_levels:
            if lv > 0:
                rd = (k.reads[:, lv, :] / cc[:, None]).sum(axis=1)[None, :]
                wr = ((k.fills[:, lv, :] + k.updates[:, lv, :]) / cc[:, None]).sum(axis=1)[None, :] + (
                    kt * (k.fills_if_top[:, lv, :] / cc[:, None])[None]
                ).sum(axis=2)
            else:
                rd = (kt * (k.top_reads / cc[:, None])[None]).sum(axis=2)
                wr = (kt * (k.top_updates / cc[:, None])[None]).sum(axis=2)
            slow = np.ones(kt.shape[:2])
            with np.errstate(divide="ignore", invalid="ignore"):
                for bw, dem in ((tb.read_bw[lv], rd), (tb.write_bw[lv], wr), (tb.shared_bw[lv], rd + wr)):
                    if not np.isnan(bw):
                        slow = np.where(bw < dem, np.minimum(slow, bw / dem), slow)
                cycles = np.maximum(cycles, np.ceil(cc[None, :] / slow))
        return cycles


def evaluate_many(models: list[FastModel], batches: list[Candidates]) -> list[FastResult]:
    """``[m.evaluate(c) for m, c in zip(models, batches)]`` in one pass (the same numbers): the
    models are of mapspaces of one layer problem (tile shapes of one layer: the same architecture
    tables, rules, strides and variants), so that one model can score every decoded candidate."""
    parts = [(m, c) for m, c in zip(models, batches, strict=True) if len(c)]
    if len(parts) <= 1:
        return [m.evaluate(c) for m, c in zip(models, batches, strict=True)]
    head = parts[0][0]
    for m, _ in parts[1:]:
        if m.signature != head.signature:
            raise ValueError("evaluate_many needs models of one layer problem")
    res = head.evaluate_decoded(_Decoded.concat([m.decode(c) for m, c in parts]))
    out, at = [], 0
    for m, c in zip(models, batches, strict=True):
        n = len(c)
        out.append(
            FastResult(*(getattr(res, f.name)[:, at : at + n] for f in dataclasses.fields(FastResult)))
            if n
            else m.evaluate(c)
        )
        at += n
    return out


def _input_overlap_credit(
    sl: _Slots, l1: np.ndarray, tile: np.ndarray, wx: np.ndarray, hx: np.ndarray
) -> np.ndarray:
    """Inputs words not fetched again thanks to the sliding window [B, K], for K tiles of every
    candidate (see the module docstring): when the innermost active loop above a tile (slot ``l1``
    [B, K], -1: none) moves it along the width or height, the overlap with the previous tile is
    credited to that loop's steps and to the steps of outer loops whose translation equals it.
    ``tile``: the Inputs tiles [B, K]; ``wx``, ``hx``: their widths and heights [B, K]."""
    B, K = l1.shape
    rows = np.arange(B)[:, None]
    l1c = np.maximum(l1, 0)
    c1 = np.where(l1 >= 0, sl.input_coord[rows, l1c], -1)
    extc = np.where(c1 == 2, wx, hx)
    tau1 = sl.input_step[rows, l1c]
    overlap = np.maximum(0, extc - tau1)
    slide = ((c1 == 2) | (c1 == 3)) & (overlap > 0)
    if not slide.any():
        return np.zeros((B, K), np.int64)
    deficit = (tile // np.maximum(extc, 1)) * overlap
    # per (candidate, tile, slot j): the loops outside l1 whose translation repeats l1's; only the
    # candidates with a sliding tile, and the slots up to the outermost such l1, matter
    sel = np.nonzero(slide.any(axis=1))[0]
    Jm = int(l1[slide].max()) + 1
    l1s, c1s = l1[sel][:, :, None], c1[sel][:, :, None]
    jj = np.arange(Jm)[None, None, :]
    act, coord = sl.active[sel, None, :Jm], sl.input_coord[sel, None, :Jm]
    tau, w = sl.input_step[sel, None, :Jm], sl.weight[sel, None, :Jm]
    outward = jj < l1s
    same = coord == c1s
    # an active loop between the slot and l1 that moves another coordinate breaks the repetition
    other = act & outward & ~same & (coord >= 0)
    n_other = np.cumsum(other, axis=2)
    broken = (n_other[:, :, -1:] - n_other) > 0
    # the steps of the same coordinate's loops from the slot (excluded) in to l1 (included)
    tau_c1 = np.where(act & same & (jj <= l1s), tau, 0)
    cum_tau = np.cumsum(tau_c1, axis=2)
    s_excl = cum_tau[:, :, -1:] - cum_tau
    eq = outward & act & same & ~broken & (tau == s_excl + tau1[sel][:, :, None])
    corr = np.zeros((B, K), np.int64)
    corr[sel] = sl.weight[sel[:, None], l1c[sel]] + np.where(eq, w, 0).sum(axis=2)
    return np.where(slide, deficit * corr, 0)


__all__ = ["FastModel", "FastResult", "evaluate_many"]
