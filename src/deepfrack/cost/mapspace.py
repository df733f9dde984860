"""The mapspace of one layer on one architecture under Timeloop constraints, as the mapper searches it.

A mapping (Timeloop's, see :mod:`deepfrack.cost.mapping`) is, per storage level: temporal factors
and their order, spatial factors (X and Y) with an order and split, and keep/bypass per tensor. The
space is built from the architecture, the layer (Timeloop's CNN-layer problem, P/Q = the tile) and
the constraints (architecture and mapspace constraints together, the architecture file's own
included), read as Timeloop's mapper reads them (NVlabs/timeloop ``src/mapping/constraints.cpp``,
``src/mapspaces/uber.cpp``, ``include/mapspaces/subspaces.hpp``):

* ``factors``: ``X=n`` fixes the factor (``X=0``: the whole dimension), ``X<=n`` / ``X>=n`` bound
  it; a dimension not named is free. A fixed factor larger than the dimension is lowered to the
  dimension with a note (the reference runs' ``PEAccuBuffer spatial C=8`` on AlexNet layer 1,
  C = 3, ran as C=3). Timeloop since July 2022 (commit 9ea4b94) ignores such a factor instead;
  the reference data cannot tell the two apart (C=3 is also the free optimum there).
* spatial factors of a level multiply to at most its fan-out on each axis (mesh X, mesh Y); one
  dimension sits on one axis (it appears once in the spatial permutation);
* ``permutation``: the letters before ``_`` are the innermost loops in that order (prefix), those
  after it the outermost (suffix); the others are free. For spatial levels the permutation and the
  ``split`` decide which dimensions can go on X (the first ``split`` of the permutation) and Y;
* keep/bypass: fixed by datatype constraints; the outermost level keeps everything unless told
  otherwise (Timeloop's ``XX..X1`` default); a level no constraint mentions is searched (keep or
  bypass), except that a tensor's home level (``deepfrack.arch.capacity_spec``: the outermost
  on-chip level that may keep it) always keeps it, so residency variants mean what the search's
  capacity check assumes;
* ``utilization`` (``min``): the fraction of MAC units used (Timeloop's min parallelism).

Candidates are encoded compactly (:class:`Candidates`): per dimension an index into that
dimension's table of factorizations over its free slots (:class:`DimTable`), per level an index into
a small list of temporal loop orders, and bits for the free keep/bypass choices. Only the relative
order of a level's loops with a factor > 1 matters to the model, so the order lists hold every
arrangement of the free dimensions that can be > 1 when there are at most four of them, and 24
stationarity-structured orders otherwise (the loops irrelevant to one tensor innermost, for each
order of the three groups {N, P, Q}, {M}, {C, R, S}).

Levels follow ``Architecture.levels`` (outermost first); dimensions follow ``DIMS``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from deepfrack.arch.spec import Architecture, Constraints
from deepfrack.cost.mapping import LevelMapping, LoopMapping, MappingBatch, layer_dims, level_fanouts
from deepfrack.dims import DIM_INDEX, DIMS, TENSORS
from deepfrack.workload.layer import Layer

T_SLOT, X_SLOT, Y_SLOT = 0, 1, 2
#: dimension groups for the structured loop orders: irrelevant to Weights, to Inputs, to Outputs
_GROUPS = (
    (DIM_INDEX["N"], DIM_INDEX["P"], DIM_INDEX["Q"]),
    (DIM_INDEX["M"],),
    (DIM_INDEX["C"], DIM_INDEX["R"], DIM_INDEX["S"]),
)
_GROUP_VARIANTS = (
    ((DIM_INDEX["P"], DIM_INDEX["Q"], DIM_INDEX["N"]), (DIM_INDEX["Q"], DIM_INDEX["P"], DIM_INDEX["N"])),
    ((DIM_INDEX["M"],),),
    ((DIM_INDEX["C"], DIM_INDEX["R"], DIM_INDEX["S"]), (DIM_INDEX["R"], DIM_INDEX["S"], DIM_INDEX["C"])),
)
#: full enumeration of a level's orders up to this many free dimensions that can be > 1
MAX_FULL_ORDER_DIMS = 4


class Infeasible(Exception):
    """No mapping can satisfy the constraints (or the tile fits no level); ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LevelInfo:
    """One storage level as the mapspace sees it (outermost first)."""

    name: str
    fanout_x: int
    fanout_y: int
    temporal_prefix: tuple[int, ...] = ()
    temporal_suffix: tuple[int, ...] = ()
    spatial_prefix: tuple[int, ...] = ()
    spatial_suffix: tuple[int, ...] = ()
    spatial_constrained: bool = False
    split: int | None = None

    @property
    def has_fanout(self) -> bool:
        return self.fanout_x * self.fanout_y > 1


@dataclass(frozen=True)
class DimTable:
    """Every factorization of one dimension over the levels' temporal / spatial-X / spatial-Y
    slots that the constraints allow: ``factors`` int64 [n, L, 3] (fixed slots included)."""

    dim: int
    bound: int
    factors: np.ndarray

    def __len__(self) -> int:
        return int(self.factors.shape[0])


@dataclass(frozen=True)
class Candidates:
    """A batch of candidates: ``fidx`` int64 [B, 7] (row of each dimension's table), ``oidx`` int64
    [B, L] (temporal order of each level), ``kbits`` int64 [B] (free keep choices: bit i set =
    keep the i-th free (level, tensor) pair of ``MapSpace.free_keeps``)."""

    fidx: np.ndarray
    oidx: np.ndarray
    kbits: np.ndarray

    def __len__(self) -> int:
        return int(self.fidx.shape[0])

    def take(self, idx: np.ndarray | Sequence[int]) -> Candidates:
        idx = np.asarray(idx, dtype=np.int64)
        return Candidates(self.fidx[idx], self.oidx[idx], self.kbits[idx])

    @staticmethod
    def concat(parts: Sequence[Candidates]) -> Candidates:
        return Candidates(
            np.concatenate([p.fidx for p in parts]),
            np.concatenate([p.oidx for p in parts]),
            np.concatenate([p.kbits for p in parts]),
        )

    def keys(self) -> np.ndarray:
        """One row per candidate, for deduplication (int64 [B, 7 + L + 1])."""
        return np.concatenate([self.fidx, self.oidx, self.kbits[:, None]], axis=1)

    def unique(self) -> Candidates:
        """Distinct candidates, in order of first appearance."""
        if len(self) == 0:
            return self
        _, first = np.unique(self.keys(), axis=0, return_index=True)
        return self.take(np.sort(first))

    def codes(self, radix: np.ndarray) -> np.ndarray:
        """One integer per candidate (mixed radix over fidx, oidx, kbits; ``radix`` from
        ``MapSpace.radix``)."""
        k = self.keys()
        code = np.zeros(len(self), np.int64)
        for j in range(k.shape[1]):
            code = code * radix[j] + k[:, j]
        return code


@dataclass(frozen=True)
class MapSpace:
    """The mapspace of one layer (see the module docstring).

    ``variant_keep`` bool [V, L, 3]: the fixed keep/bypass of every variant (levels outermost first;
    the variants differ only at DRAM); ``free_keeps``: the (level, tensor) pairs the mapper chooses;
    ``orders[l]`` int64 [n_l, 7]: the candidate temporal orders of level l, innermost first.
    ``notes``: what was adjusted (lowered factors)."""

    arch: Architecture
    layer: Layer
    levels: tuple[LevelInfo, ...]
    dims: tuple[DimTable, ...]
    orders: tuple[np.ndarray, ...]
    variant_names: tuple[str, ...]
    variant_keep: np.ndarray
    free_keeps: tuple[tuple[int, int], ...]
    min_parallelism: float = 0.0
    notes: tuple[str, ...] = ()
    bounds: tuple[int, ...] = field(default=(1,) * 7)
    #: per level, its orders restricted to the dimensions that can be > 1 there, outermost loop
    #: first ([n_l, a_l])
    active_orders: tuple[np.ndarray, ...] = ()

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    @property
    def size(self) -> int:
        """Number of encoded candidates (valid or not)."""
        n = 1
        for t in self.dims:
            n *= len(t)
        for o in self.orders:
            n *= len(o)
        return n * (1 << len(self.free_keeps))

    @property
    def radix(self) -> np.ndarray:
        """Digit sizes of :meth:`Candidates.codes` (fidx, oidx, kbits)."""
        return np.array(
            [len(t) for t in self.dims] + [len(o) for o in self.orders] + [1 << len(self.free_keeps)],
            np.int64,
        )

    # ---- decoding -------------------------------------------------------------------------------
    def factors(self, c: Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(temporal, spatial X, spatial Y) factors, int64 [B, L, 7] each."""
        B = len(c)
        L = self.n_levels
        out = np.empty((B, L, 3, 7), np.int64)
        for d, tab in enumerate(self.dims):
            out[:, :, :, d] = tab.factors[c.fidx[:, d]]
        return out[:, :, T_SLOT, :], out[:, :, X_SLOT, :], out[:, :, Y_SLOT, :]

    def temporal_orders(self, c: Candidates) -> np.ndarray:
        """int64 [B, L, 7], innermost first."""
        B = len(c)
        out = np.empty((B, self.n_levels, 7), np.int64)
        for l, o in enumerate(self.orders):
            out[:, l, :] = o[c.oidx[:, l]]
        return out

    def keeps(self, c: Candidates) -> np.ndarray:
        """bool [V, B, L, 3]: what each candidate keeps under each variant."""
        base = np.broadcast_to(
            self.variant_keep[:, None, :, :],
            (self.variant_keep.shape[0], len(c), *self.variant_keep.shape[1:]),
        ).copy()
        for i, (l, t) in enumerate(self.free_keeps):
            base[:, :, l, t] = ((c.kbits >> i) & 1).astype(bool)[None, :]
        return base

    def inner_keeps(self, c: Candidates) -> np.ndarray:
        """bool [B, L, 3]: what each candidate keeps under the first variant -- under every variant
        below the outermost level, where the variants agree (the outermost level keeps what
        ``variant_keep[:, 0]`` says)."""
        base = np.empty((len(c), *self.variant_keep.shape[1:]), bool)
        base[:] = self.variant_keep[0]
        for i, (l, t) in enumerate(self.free_keeps):
            base[:, l, t] = (c.kbits >> i) & 1
        return base

    def spatial_ok(self, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
        """bool [B]: spatial factors fit every fan-out (per axis) and can be ordered as the spatial
        permutation and split constraints require; min parallelism met."""
        ok = np.ones(sx.shape[0], bool)
        for l, lv in enumerate(self.levels):
            if not lv.has_fanout:
                continue
            ok &= sx[:, l, :].prod(axis=1) <= lv.fanout_x
            ok &= sy[:, l, :].prod(axis=1) <= lv.fanout_y
            if lv.spatial_constrained and lv.fanout_x > 1 and lv.fanout_y > 1:
                xm = ((sx[:, l, :] > 1) * (1 << np.arange(7))).sum(axis=1)
                ym = ((sy[:, l, :] > 1) * (1 << np.arange(7))).sum(axis=1)
                pairs, inv = np.unique(np.stack([xm, ym], axis=1), axis=0, return_inverse=True)
                good = np.array(
                    [spatial_arrangement(lv, _bits(int(a)), _bits(int(b))) is not None for a, b in pairs]
                )
                ok &= good[inv.reshape(-1)]
        if self.min_parallelism > 0:
            used = (sx * sy).reshape(sx.shape[0], -1).prod(axis=1)
            ok &= used >= self.min_parallelism * self.arch.arithmetic.instances - 1e-9
        return ok

    # ---- to Timeloop mappings ----------------------------------------------------------------------
    def mapping(self, c: Candidates, b: int, variant: int) -> LoopMapping:
        """Candidate ``b`` under variant index ``variant`` as a :class:`LoopMapping`."""
        tf, sx, sy = self.factors(c.take([b]))
        to = self.temporal_orders(c.take([b]))[0]
        keep = self.keeps(c.take([b]))[variant, 0]
        levels = []
        for l, lv in enumerate(self.levels):
            xd = [d for d in range(7) if sx[0, l, d] > 1]
            yd = [d for d in range(7) if sy[0, l, d] > 1]
            arr = spatial_arrangement(lv, xd, yd) if lv.has_fanout else None
            if arr is None:
                order, split = tuple(range(7)), 7
            else:
                order, split = arr
            levels.append(
                LevelMapping(
                    target=lv.name,
                    temporal=tuple(int(x) for x in tf[0, l]),
                    temporal_order=tuple(int(x) for x in to[l]),
                    spatial=tuple(int(sx[0, l, d] * sy[0, l, d]) for d in range(7)),
                    spatial_order=tuple(order),
                    split=int(split),
                    keep=tuple(bool(x) for x in keep[l]),  # type: ignore[arg-type]
                )
            )
        return LoopMapping(tuple(levels), source="deepfrack mapper")

    def mapping_batch(self, c: Candidates, variants: Sequence[int]) -> MappingBatch:
        """Candidates (paired with ``variants``, one variant index per candidate) as a MappingBatch."""
        B, L = len(c), self.n_levels
        tf, sx, sy = self.factors(c)
        to = self.temporal_orders(c)
        keep = self.keeps(c)[np.asarray(variants, np.int64), np.arange(B)]
        so = np.tile(np.arange(7, dtype=np.int64), (B, L, 1))
        split = np.full((B, L), 7, np.int64)
        for l, lv in enumerate(self.levels):
            if not lv.has_fanout:
                continue
            for b in range(B):
                xd = tuple(d for d in range(7) if sx[b, l, d] > 1)
                yd = tuple(d for d in range(7) if sy[b, l, d] > 1)
                arr = _arrangement_cached(lv, xd, yd)
                if arr is not None:
                    so[b, l], split[b, l] = arr
        return MappingBatch(tf, to, sx * sy, so, split, keep, self.level_names)


@functools.lru_cache(maxsize=4096)
def _arrangement_cached(lv: LevelInfo, xd: tuple[int, ...], yd: tuple[int, ...]):
    arr = spatial_arrangement(lv, xd, yd)
    return None if arr is None else (np.array(arr[0], np.int64), arr[1])


def _bits(mask: int) -> list[int]:
    return [d for d in range(7) if mask >> d & 1]


def spatial_arrangement(
    lv: LevelInfo, xdims: Sequence[int], ydims: Sequence[int]
) -> tuple[tuple[int, ...], int] | None:
    """(spatial order, split) putting ``xdims`` on X and ``ydims`` on Y under the level's spatial
    permutation (prefix/suffix) and split constraints; None when impossible. Dimensions with factor
    1 fill the remaining places."""
    xs, ys = set(xdims), set(ydims)
    if xs & ys:
        return None
    pre, suf = list(lv.spatial_prefix), list(lv.spatial_suffix)
    inf = [d for d in range(7) if d not in pre and d not in suf]
    # free dims: X ones first, then unit ones, then Y ones (the best chance to separate X and Y)
    inf_x = [d for d in inf if d in xs]
    inf_y = [d for d in inf if d in ys]
    inf_u = [d for d in inf if d not in xs and d not in ys]
    candidates_inf = [inf_x + inf_u + inf_y]
    if lv.split is not None:
        # with a fixed split the unit dims may be needed on either side: try every cut of the units
        candidates_inf = [inf_x + inf_u[:k] + inf_y + inf_u[k:] for k in range(len(inf_u) + 1)]
        candidates_inf += [inf_x + inf_u[k:] + inf_y + inf_u[:k] for k in range(len(inf_u) + 1)]
    for infix in candidates_inf:
        order = pre + infix + suf
        pos = {d: i for i, d in enumerate(order)}
        last_x = max((pos[d] for d in xs), default=-1)
        first_y = min((pos[d] for d in ys), default=7)
        if lv.split is not None:
            if last_x < lv.split <= first_y:
                return tuple(order), lv.split
            continue
        if last_x < first_y:
            # split right after the last X dimension (all of them on X when nothing is on Y)
            split = last_x + 1 if ys else 7
            if lv.fanout_x == 1:
                split = 0 if not xs else split
            return tuple(order), split
    return None


# ------------------------------------------------------------------------------------------------ #
# building the space
# ------------------------------------------------------------------------------------------------ #
def _parse_perm(p: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not p:
        return (), ()
    pre, _, suf = p.partition("_")
    return tuple(DIM_INDEX[c] for c in pre), tuple(DIM_INDEX[c] for c in suf)


def prime_factors(n: int) -> list[int]:
    """The prime factors of n >= 1 with multiplicity, ascending (12 -> [2, 2, 3])."""
    out, d = [], 2
    while d * d <= n:
        while n % d == 0:
            out.append(d)
            n //= d
        d += 1
    if n > 1:
        out.append(n)
    return out


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@functools.lru_cache(maxsize=4096)
def _enumerate_dim(
    bound: int, slot_opts: tuple[tuple[int, int, tuple[int | None, int | None, int | None], int], ...]
) -> tuple[tuple[int, ...], ...]:
    """Ordered factorizations of ``bound`` over the slots. slot_opts: (level, kind, (fixed, min,
    max), cap) per slot, where cap bounds the factor (fan-out of a spatial axis)."""
    n = len(slot_opts)
    res: list[tuple[int, ...]] = []
    choice = [1] * n

    def rec(i: int, rem: int) -> None:
        if i == n:
            if rem == 1:
                res.append(tuple(choice))
            return
        _, _, (fixed, lo, hi), cap = slot_opts[i]
        opts = ([fixed] if rem % fixed == 0 else []) if fixed is not None else _divisors(rem)
        for f in opts:
            if f > cap or (lo is not None and f < lo) or (hi is not None and f > hi):
                continue
            choice[i] = f
            rec(i + 1, rem // f)
        choice[i] = 1

    rec(0, bound)
    return tuple(res)


@dataclass(frozen=True)
class SpaceTemplate:
    """The part of a mapspace that does not depend on the layer's bounds: levels, factor
    constraints (unresolved), keep/bypass per variant, min parallelism. Build once per architecture
    and constraint group with :func:`space_template`; :func:`build_mapspace` takes it."""

    arch: Architecture
    levels: tuple[LevelInfo, ...]
    fanouts: tuple[tuple[int, int], ...]
    #: per level: {kind: tuple of (dim, op, value)} from the factor constraints (op "=", "<=", ">=")
    factor_bounds: tuple[tuple[tuple[tuple[int, str, int], ...], tuple[tuple[int, str, int], ...]], ...]
    variant_names: tuple[str, ...]
    variant_keep: np.ndarray
    free_keeps: tuple[tuple[int, int], ...]
    min_parallelism: float


def shared_key(arch: Architecture, constraints: Constraints) -> tuple:
    """Everything a constraint set (merged with the architecture's own) says except what the
    outermost level keeps: sets with equal keys are searched together, as residency variants."""
    outer = arch.levels[0].name
    return tuple(
        sorted(
            t.key()
            for t in arch.constraints.merged(constraints).targets
            if not (t.target == outer and t.type == "datatype")
        )
    )


def _level_info(lv, constraints: Constraints, fanout: tuple[int, int]) -> tuple[LevelInfo, tuple, float]:
    """One level's loop-order and split constraints, its factor constraints as (dim, op, value)
    per kind (temporal, spatial), and its minimum MAC utilization (0: none)."""
    temporal = constraints.for_target(lv.name, "temporal")
    spatial = constraints.for_target(lv.name, "spatial")
    tperm = next((t.permutation for t in temporal if t.permutation), None)
    sperm = next((t.permutation for t in spatial if t.permutation), None)
    split = next((t.split for t in spatial if t.split is not None), None)
    if split is not None:
        split = min(split, 7)  # Timeloop: a split past the last dimension puts them all on X
    tpre, tsuf = _parse_perm(tperm)
    spre, ssuf = _parse_perm(sperm)
    info = LevelInfo(lv.name, *fanout, tpre, tsuf, spre, ssuf, bool(sperm) or split is not None, split)
    bounds = tuple(
        tuple((DIM_INDEX[name], fb.op, fb.value) for t in tl for name, fb in t.factors.items())
        for tl in (temporal, spatial)
    )
    util = [t.min_utilization for t in constraints.for_target(lv.name, "utilization")]
    return info, bounds, max([u for u in util if u is not None], default=0.0)


def _variant_keeps(
    arch: Architecture, variant_constraints: Mapping[str, Constraints], home_levels: Mapping[str, str] | None
) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """bool [V, L, 3]: what each variant's constraints make every level keep; and the (level,
    tensor) pairs they leave free (the mapper chooses), except a tensor's home level, which keeps it."""
    from deepfrack.arch.constraints import effective_keep

    L = len(arch.levels)
    vkeep = np.zeros((len(variant_constraints), L, 3), bool)
    free = np.zeros((L, 3), bool)
    for v, cons in enumerate(variant_constraints.values()):
        ek = effective_keep(arch, cons)
        for l, lv in enumerate(arch.levels):
            for t, tensor in enumerate(TENSORS):
                k = ek[lv.name][tensor]
                if k is None:
                    if home_levels and home_levels.get(tensor) == lv.name:
                        vkeep[v, l, t] = True
                    else:
                        free[l, t] = True
                else:
                    vkeep[v, l, t] = k
    return vkeep, tuple((int(l), int(t)) for l, t in zip(*np.nonzero(free)))


def space_template(
    arch: Architecture,
    variant_constraints: Mapping[str, Constraints],
    home_levels: Mapping[str, str] | None = None,
) -> SpaceTemplate:
    """See :class:`SpaceTemplate` and :func:`build_mapspace`."""
    names = tuple(variant_constraints)
    if not names:
        raise ValueError("no constraint set given")
    if len({shared_key(arch, cons) for cons in variant_constraints.values()}) != 1:
        raise ValueError(
            "the constraint sets differ elsewhere than in what the outermost level keeps; search them apart"
        )
    first = arch.constraints.merged(variant_constraints[names[0]])
    fan = level_fanouts(arch)
    per_level = [_level_info(lv, first, fan[l]) for l, lv in enumerate(arch.levels)]
    vkeep, free_keeps = _variant_keeps(arch, variant_constraints, home_levels)
    return SpaceTemplate(
        arch,
        tuple(info for info, _, _ in per_level),
        tuple(fan),
        tuple(bounds for _, bounds, _ in per_level),
        names,
        vkeep,
        free_keeps,
        max([0.0] + [util for _, _, util in per_level]),
    )


def _resolve(
    entries: tuple[tuple[int, str, int], ...], bounds: Sequence[int], where: str, notes: list[str]
) -> dict[int, tuple[int | None, int | None, int | None]]:
    """{dim: (fixed, min, max)} from one level's factor constraints of one kind, with X=0 read as
    the whole dimension and a fixed factor above the dimension lowered to it (with a note)."""
    out: dict[int, list[int | None]] = {}
    for d, op, v in entries:
        ent = out.setdefault(d, [None, None, None])
        if op == "=":
            if v == 0:
                v = bounds[d]
            elif v > bounds[d]:
                notes.append(
                    f"{where}: factor {DIMS[d]}={v} exceeds the problem's {DIMS[d]}={bounds[d]}; "
                    f"lowered to {DIMS[d]}={bounds[d]}"
                )
                v = bounds[d]
            ent[0] = v
        elif op == "<=":
            ent[2] = v if ent[2] is None else min(ent[2], v)
        elif op == ">=":
            ent[1] = v if ent[1] is None else max(ent[1], v)
    return {d: (e[0], e[1], e[2]) for d, e in out.items()}


@functools.lru_cache(maxsize=4096)
def _dim_table(
    d: int, bound: int, L: int, slots: tuple, spatial_filters: tuple, temporal_mins: tuple
) -> np.ndarray | None:
    rows = _enumerate_dim(bound, slots)
    arr = np.ones((len(rows), L, 3), np.int64)
    if rows:
        ls = np.array([sl[0] for sl in slots])
        ks = np.array([sl[1] for sl in slots])
        arr[:, ls, ks] = np.array(rows, np.int64)
    keep_rows = np.ones(len(rows), bool)
    for l, fixed, lo in spatial_filters:
        both = (arr[:, l, X_SLOT] > 1) & (arr[:, l, Y_SLOT] > 1)
        keep_rows &= ~both
        tot = arr[:, l, X_SLOT] * arr[:, l, Y_SLOT]
        if fixed is not None:
            keep_rows &= tot == fixed
        if lo is not None:
            keep_rows &= tot >= lo
    for l, lo in temporal_mins:
        keep_rows &= arr[:, l, T_SLOT] >= lo
    arr = arr[keep_rows]
    arr.setflags(write=False)
    return arr if len(arr) else None


@functools.lru_cache(maxsize=4096)
def _orders_cached(
    prefix: tuple[int, ...], suffix: tuple[int, ...], active: frozenset[int]
) -> tuple[np.ndarray, np.ndarray]:
    o = _level_orders(prefix, suffix, set(active))
    # the loops that can be > 1, outermost first: the order in which the fast model walks a nest
    # (a permutation lists the innermost loop first)
    act = np.array([[d for d in reversed(row) if d in active] for row in o.tolist()], np.int64).reshape(
        len(o), len(active)
    )
    o.setflags(write=False)
    act.setflags(write=False)
    return o, act


def build_mapspace(
    arch: Architecture,
    layer: Layer,
    variant_constraints: Mapping[str, Constraints] | None = None,
    home_levels: Mapping[str, str] | None = None,
    template: SpaceTemplate | None = None,
) -> MapSpace:
    """The mapspace of ``layer`` on ``arch`` for one or more constraint sets that differ only in
    what the outermost level (DRAM) keeps (``{variant name: Constraints}``; the residency variants),
    or for a prepared ``template``.

    ``home_levels``: {tensor: level} that must keep the tensor when the constraints leave it free
    (see the module docstring; default: none). Raises :class:`Infeasible` when no mapping can satisfy
    the constraints; ValueError when the constraint sets differ elsewhere than at DRAM."""
    if template is None:
        if variant_constraints is None:
            raise ValueError("give variant_constraints or a template")
        template = space_template(arch, variant_constraints, home_levels)
    bounds = layer_dims(layer)
    notes: list[str] = []
    L = len(arch.levels)
    fan = template.fanouts
    per_level_bounds = []
    for l, lv in enumerate(template.levels):
        tb, sb = template.factor_bounds[l]
        per_level_bounds.append(
            {
                T_SLOT: _resolve(tb, bounds, f"{lv.name} temporal", notes),
                X_SLOT: _resolve(sb, bounds, f"{lv.name} spatial", notes),
            }
        )
    dims: list[DimTable] = []
    for d in range(7):
        arr = _dim_table(d, bounds[d], L, *_factor_slots(d, bounds[d], fan, per_level_bounds))
        if arr is None:
            raise Infeasible(_dim_reason(d, bounds[d], arch, fan, per_level_bounds))
        dims.append(DimTable(d, bounds[d], arr))
    orders = []
    active_orders = []
    for l, lv in enumerate(template.levels):
        can_be_active = frozenset(d for d in range(7) if (dims[d].factors[:, l, T_SLOT] > 1).any())
        o, act = _orders_cached(lv.temporal_prefix, lv.temporal_suffix, can_be_active)
        orders.append(o)
        active_orders.append(act)
    return MapSpace(
        arch=arch,
        layer=layer,
        levels=template.levels,
        dims=tuple(dims),
        orders=tuple(orders),
        variant_names=template.variant_names,
        variant_keep=template.variant_keep,
        free_keeps=template.free_keeps,
        min_parallelism=template.min_parallelism,
        notes=tuple(dict.fromkeys(notes)),
        bounds=tuple(bounds),
        active_orders=tuple(active_orders),
    )


def _factor_slots(d: int, bound: int, fan, per_level_bounds) -> tuple[tuple, tuple, tuple]:
    """The slots dimension d's factors can go to, as :func:`_dim_table` takes them: per level its
    temporal slot (level, kind, (fixed, min, max), cap), and where the level has a fan-out its X and
    Y slots (capped by the fan-out; a spatial constraint bounds the level's factor on whichever axis
    carries it); the spatial filters (level, fixed, min) and the temporal minimums (level, min)."""
    slots, sfilt, tmins = [], [], []
    for l, (fx, fy) in enumerate(fan):
        tb = per_level_bounds[l][T_SLOT].get(d, (None, None, None))
        slots.append((l, T_SLOT, tb, bound))
        if tb[1] is not None:
            tmins.append((l, tb[1]))
        if fx * fy > 1:
            fixed, lo, hi = per_level_bounds[l][X_SLOT].get(d, (None, None, None))
            if fx > 1:
                slots.append((l, X_SLOT, (None, None, hi), fx))
            if fy > 1:
                slots.append((l, Y_SLOT, (None, None, hi), fy))
            sfilt.append((l, fixed, lo))
    return tuple(slots), tuple(sfilt), tuple(tmins)


def _dim_reason(d: int, bound: int, arch: Architecture, fan, per_level_bounds) -> str:
    parts = []
    for l, lv in enumerate(arch.levels):
        for kind, label in ((T_SLOT, "temporal"), (X_SLOT, "spatial")):
            b = per_level_bounds[l][kind].get(d)
            if b is None:
                continue
            fixed, lo, hi = b
            if fixed is not None:
                parts.append(f"{lv.name} {label} {DIMS[d]}={fixed}")
            if lo is not None:
                parts.append(f"{lv.name} {label} {DIMS[d]}>={lo}")
            if hi is not None:
                parts.append(f"{lv.name} {label} {DIMS[d]}<={hi}")
    cons = ", ".join(parts) if parts else "no factor constraints"
    return f"no factorization of {DIMS[d]}={bound} satisfies the constraints ({cons}) and the fan-outs"


def _level_orders(prefix: tuple[int, ...], suffix: tuple[int, ...], active: set[int]) -> np.ndarray:
    """Candidate temporal orders of one level (innermost first), see the module docstring."""
    infix = [d for d in range(7) if d not in prefix and d not in suffix]
    act = [d for d in infix if d in active]
    rest = [d for d in infix if d not in active]
    arrangements: list[tuple[int, ...]]
    if len(act) <= MAX_FULL_ORDER_DIMS:
        arrangements = list(itertools.permutations(act))
    else:
        seen: dict[tuple[int, ...], None] = {}
        for gperm in itertools.permutations(range(3)):
            for variants in itertools.product(*[_GROUP_VARIANTS[g] for g in gperm]):
                seq = tuple(d for grp in variants for d in grp if d in act)
                seen.setdefault(seq, None)
        arrangements = list(seen)
    out = [tuple(prefix) + arr + tuple(rest) + tuple(suffix) for arr in arrangements] or [
        tuple(prefix) + tuple(rest) + tuple(suffix)
    ]
    return np.array(out, np.int64)


def minimal_candidate(space: MapSpace) -> Candidates:
    """For every dimension, the factorization that puts as much as it can in the outermost
    temporal slots (the smallest tiles everywhere); order 0 everywhere; free keeps bypassed."""
    fidx = np.zeros((1, 7), np.int64)
    L = space.n_levels
    weights = np.array([(L - l) for l in range(L)], np.float64)  # outer levels weigh more
    for d, tab in enumerate(space.dims):
        f = np.log(tab.factors[:, :, T_SLOT].astype(np.float64))
        score = (f * weights[None, :]).sum(axis=1)
        fidx[0, d] = int(np.argmax(score))
    return Candidates(fidx, np.zeros((1, L), np.int64), np.zeros(1, np.int64))


__all__ = [
    "Candidates",
    "DimTable",
    "Infeasible",
    "LevelInfo",
    "MapSpace",
    "SpaceTemplate",
    "build_mapspace",
    "minimal_candidate",
    "space_template",
    "spatial_arrangement",
]
