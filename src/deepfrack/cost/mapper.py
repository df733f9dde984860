"""deepfrack's built-in mapper: the best mapping of a layer tile under Timeloop constraints.

Public API::

    map_tile(arch, energy, layer, constraints, objective="energy", seed=0, variants=None)
        -> {variant: MapResult}
    LayerMapper(arch, energy, layer, constraints, options).map(h, w) -> {variant: MapResult}
    LayerMapper(...).map_many([(h, w), ...]) -> {(h, w): {variant: MapResult}}  (the same results,
        the tiles' searches run side by side: one model call scores the candidates of all of them)

``constraints`` is one :class:`~deepfrack.arch.spec.Constraints` (searched as it is, under the name
"default") or ``{variant: Constraints}`` (e.g. the seven residency variants from
``deepfrack.arch.all_variant_constraints`` or ``load_variant_folder``); sets that differ only in what
DRAM keeps are searched together: every candidate is scored under all of them at once.

The search (per tile shape, all variants together):

1. the mapspace (:mod:`deepfrack.cost.mapspace`): divisor factorizations of every dimension over the
   levels' temporal and spatial slots within the factor constraints and fan-outs, a small set of loop
   orders per level, free keep/bypass bits. Constraints no mapping can meet -> infeasible, with the
   reason; so is a tile whose smallest possible tiles overflow a level;
2. when the space has at most ``enumerate_limit`` candidates it is enumerated; otherwise a seeded
   local search: starts from warm starts (the best mappings of the nearest square tiles of a fixed
   ladder, ``LADDER``, each rung warm-started from the rung below, adapted to the shape: for P and Q
   every pair of their factorizations, and seeds that no longer fit pushed outward until they do),
   the smallest-tiles mapping and random samples. The result of a tile therefore depends only on the
   tile problem, the constraints and the seed, not on the layer's plane or on what was mapped before;
   moves = one prime factor of one dimension to another slot (or a whole slot's factor), another loop
   order at one level, a keep/bypass flip; best improvement per variant, over the union of all
   incumbents' neighbourhoods, until no variant improves; then perturbed restarts;
3. candidates are scored by :class:`~deepfrack.cost.fastmodel.FastModel` (Timeloop's model in closed
   form, every variant at once); the best few per variant are re-scored by the full model
   (:class:`deepfrack.cost.model.LayerModel`, link transfers included), which gives the reported
   numbers.

Objective (``deepfrack.objective.Objective``): a lexicographic list of metrics, compared exactly
(Timeloop's mapper compares with a 0.1% tolerance per metric; deepfrack does not, so "fewest cycles
first" means fewest cycles).

Layers beyond Timeloop's CNN-layer problem (see docs/mapper.md): a depthwise or grouped convolution
is costed as ``groups`` runs of its per-group problem (C/groups -> M/groups channels), one after the
other (energy, cycles and counts x groups); a pooling layer as ``C`` runs of a one-channel problem
with its window as the kernel, with the weights' energy and the MAC energy removed and MACs = 0 (the
data movement of inputs and outputs, and the comparisons' cycles); an ``add`` of n operands as ``C``
runs of an n-operand reduction (C=n -> M=1, 1x1), likewise without weights and MACs. A ``concat`` is a
view of its inputs: it costs nothing (energy, cycles and MACs 0) under a constraint set where DRAM
keeps both its inputs and its output or neither (they live in the same place), and otherwise the copy
of its C channels from one place to the other: C runs of a one-channel 1x1 window, costed as a pool.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from deepfrack.arch.capacity import capacity_spec
from deepfrack.arch.spec import Architecture, Constraints, EnergyTable
from deepfrack.cost.fastmodel import FastModel, FastResult, evaluate_many
from deepfrack.cost.mapping import LevelMapping, LoopMapping, MappingBatch
from deepfrack.cost.mapspace import (
    Candidates,
    DimTable,
    Infeasible,
    MapSpace,
    SpaceTemplate,
    build_mapspace,
    minimal_candidate,
    prime_factors,
    shared_key,
    space_template,
)
from deepfrack.cost.table import CostRecord
from deepfrack.cost.timeloop_post import TimeloopRules, arch_tables
from deepfrack.dims import DIMS, TENSORS
from deepfrack.errors import InputError
from deepfrack.objective import ENERGY, Objective
from deepfrack.workload.layer import Layer

T = TypeVar("T")

#: square tile sides whose best mappings warm-start the other shapes (every 4 up to 32, every 8 up to
#: 64, every 16 up to 128, every 32 up to 512, every 128 beyond): fixed, so that the result of a
#: tile depends on the tile problem only, not on the layer's plane or the order of the work
LADDER: tuple[int, ...] = tuple(
    list(range(4, 33, 4))
    + list(range(40, 65, 8))
    + list(range(80, 129, 16))
    + list(range(160, 513, 32))
    + list(range(640, 8193, 128))
)


def ladder_uses(h: int, w: int) -> tuple[int, ...]:
    """Indices of the ``LADDER`` rungs whose best mappings warm-start the search of a tile h x w: the
    nearest rungs below and above each side; for a rung's own square tile, the rung below it."""
    if h == w:
        i = bisect.bisect_left(LADDER, h)
        if i < len(LADDER) and LADDER[i] == h:
            return (i - 1,) if i > 0 else ()
    picked: set[int] = set()
    for side in {h, w}:
        i = bisect.bisect_left(LADDER, side)  # LADDER[i] >= side
        picked.update(j for j in (i - 1, i) if 0 <= j < len(LADDER))
    return tuple(sorted(picked))


def ladder_to_plain(rungs: Mapping[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """One rung ({constraint group: best mappings}) as JSON data (``ladder_from_plain`` reads it back
    exactly)."""
    return {
        str(gi): [
            {
                "factors": [np.asarray(f).tolist() for f in sd["factors"]],
                "orders": [[int(x) for x in o] for o in sd["orders"]],
                "kbits": int(sd["kbits"]),
                "free": [list(map(int, p)) for p in sd["free"]],
            }
            for sd in portable
        ]
        for gi, portable in rungs.items()
    }


def ladder_from_plain(doc: Mapping[str, Any]) -> dict[int, list[dict[str, Any]]]:
    return {
        int(gi): [
            {
                "factors": [np.array(f, dtype=np.int64) for f in sd["factors"]],
                "orders": [tuple(o) for o in sd["orders"]],
                "kbits": int(sd["kbits"]),
                "free": tuple(tuple(p) for p in sd["free"]),
            }
            for sd in portable
        ]
        for gi, portable in doc.items()
    }


@dataclass(frozen=True)
class MapperOptions:
    """Search settings. ``enumerate_limit``: enumerate spaces up to this many candidates;
    ``random_samples``: random candidates per shape; ``restarts``: perturbed restarts after the
    first local optimum; ``max_rounds``: local-search rounds per descent; ``shortlist``: candidates
    per variant re-scored by the full model; ``rules``: the Timeloop version reproduced (None: by the
    architecture's format, as ``deepfrack.cost.model.default_rules``); ``anchor``: warm-start
    every shape from the best mappings of the nearest rungs of ``LADDER`` (square tiles, each
    warm-started from the rung below); ``sweep``: dimensions whose table has at most this many
    rows are re-optimized whole in one move; ``pair_moves``: also try two dimensions changed at
    once (True, False, or "anchors": only in the searches of the ladder rungs); ``batch``:
    candidates per model call. Ladder rungs get twice the random samples, two more restarts and
    pair moves."""

    objective: Objective = ENERGY
    seed: int = 0
    enumerate_limit: int = 1000
    random_samples: int = 64
    restarts: int = 0
    max_rounds: int = 60
    shortlist: int = 1
    rules: TimeloopRules | None = None
    anchor: bool = True
    batch: int = 4096
    sweep: int = 256
    pair_moves: bool | str = "anchors"
    beam: int = 1
    repair_keep: int = 32
    repair_keep_rungs_only: bool = True
    rung_samples: int = 1024
    rung_restarts: int = 0
    rung_beam: int = 1


# --------------------------------------------------------------------------------------------- #
# results
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class MapResult:
    """The mapper's answer for one (tile, variant).

    status "ok": energy_pJ, cycles, macs, utilization, level_energy_pJ ({level: pJ}, the arithmetic
    level included), accesses ({level: {"reads"|"fills"|"updates": {tensor: words per instance},
    "utilized_instances": {tensor: n}}}, the tensors the level keeps, as Timeloop prints them) and the mapping
    (Timeloop map.yaml terms, of the problem actually mapped: the per-group / per-channel problem for
    depthwise, pool and add layers, whose counts are multiplied by ``repeats``).
    status "infeasible": ``reason``. ``notes``: adjustments (lowered constraint factors, how a
    non-CNN layer was costed)."""

    variant: str
    status: str
    reason: str = ""
    energy_pJ: float = math.nan
    cycles: float = math.nan
    macs: int = 0
    utilization: float = math.nan
    level_energy_pJ: Mapping[str, float] = field(default_factory=dict)
    accesses: Mapping[str, Any] = field(default_factory=dict)
    mapping: LoopMapping | None = None
    repeats: int = 1
    notes: tuple[str, ...] = ()
    evaluated: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_record(self) -> CostRecord:
        """The CostRecord of an ok result (ValueError otherwise): per-level energy (the arithmetic
        level included), per-level counts as the Timeloop backend records them (per instance, with
        the utilized instances) and the mapping as map.yaml directives."""
        if not self.ok:
            raise ValueError(f"no cost: {self.reason}")
        return CostRecord(
            energy_pJ=self.energy_pJ,
            cycles=self.cycles,
            macs=self.macs,
            level_energy_pJ=dict(self.level_energy_pJ),
            accesses={k: {kk: dict(vv) for kk, vv in v.items()} for k, v in self.accesses.items()},
            mapping=mapping_directives(self.mapping, self.repeats) if self.mapping is not None else None,
        )


def mapping_directives(mapping: LoopMapping, repeats: int = 1) -> list[dict[str, Any]]:
    """The mapping as Timeloop map.yaml directives (:meth:`LoopMapping.directives`); ``repeats`` > 1
    (a depthwise, pool or add layer run as that many copies of the mapped problem) is recorded in a
    last ``{type: repeats, count}`` entry."""
    out = mapping.directives()
    if repeats != 1:
        out.append({"type": "repeats", "count": int(repeats)})
    return out


# --------------------------------------------------------------------------------------------- #
# non-CNN layers
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Problem:
    """The Timeloop CNN-layer problem that stands for a layer tile, how many times it runs, and what
    to drop from its cost."""

    layer: Layer
    repeats: int
    drop_weights: bool
    note: str | None
    macs: int
    view: bool = False  # free where its inputs and output live in the same place (a concat)


def tile_problem(layer: Layer, h: int | None = None, w: int | None = None) -> Problem:
    """The problem the mapper maps for ``layer`` with output tile h x w (default: the whole plane).
    See the module docstring for depthwise, pool and add layers."""
    h = layer.Q if h is None else h
    w = layer.P if w is None else w
    base = dataclasses.replace(layer, P=w, Q=h, pad=(0, 0, 0, 0))
    macs = layer.macs_for(h, w)
    if layer.kind in ("conv", "fc") and layer.groups == 1:
        return Problem(dataclasses.replace(base, kind="conv"), 1, False, None, macs)
    if layer.kind in ("conv", "fc", "depthwise"):
        g = layer.groups
        if g < 1 or layer.C % g or layer.M % g:
            raise InputError(
                None, f"layer {layer.name}", f"groups={g} must divide C={layer.C} and M={layer.M}"
            )
        prob = dataclasses.replace(base, C=layer.C // g, M=layer.M // g, groups=1, kind="conv")
        note = (
            f"{layer.kind} layer {layer.name}: costed as {g} runs of its per-group problem "
            f"(C={prob.C}, M={prob.M}), one after the other"
        )
        return Problem(prob, g, False, note, macs)
    if layer.kind == "pool":
        prob = dataclasses.replace(base, C=1, M=1, groups=1, kind="conv", pool=None)
        note = (
            f"pool layer {layer.name}: costed as {layer.C} runs of a one-channel "
            f"{layer.R}x{layer.S} window problem, without weights and MAC energy "
            "(data movement of inputs and outputs, comparison cycles), MACs = 0"
        )
        return Problem(prob, layer.C, True, note, 0)
    if layer.kind in ("add", "concat"):
        one = dict(
            R=1, S=1, Wstride=1, Hstride=1, Wdilation=1, Hdilation=1, groups=1, kind="conv", n_inputs=1
        )
        if layer.kind == "add":
            n = max(layer.n_inputs, 2)
            prob = dataclasses.replace(base, C=n, M=1, **one)
            note = (
                f"add layer {layer.name}: costed as {layer.M} runs of a {n}-operand 1x1 reduction, "
                "without weights and MAC energy, MACs = 0"
            )
            return Problem(prob, layer.M, True, note, 0)
        prob = dataclasses.replace(base, C=1, M=1, **one)
        note = (
            f"concat layer {layer.name}: a view of its inputs, free where they and its output live in the "
            f"same place; else costed as copying its {layer.C} channels (a 1x1 one-channel window per "
            "channel, without weights and MAC energy), MACs = 0"
        )
        return Problem(prob, layer.C, True, note, 0, view=True)
    raise InputError(None, f"layer {layer.name}", f"unknown layer kind {layer.kind!r}")


# --------------------------------------------------------------------------------------------- #
# neighbourhoods
# --------------------------------------------------------------------------------------------- #
_INDEX_CACHE: dict[int, _TableIndex] = {}


def _table_index(tab: DimTable) -> _TableIndex:
    """The (cached) index of a dimension table; tables are shared between tile shapes (they are
    cached by bound and constraints in deepfrack.cost.mapspace), so is their index."""
    key = id(tab.factors)
    got = _INDEX_CACHE.get(key)
    if got is None or got.tab.factors is not tab.factors:
        if len(_INDEX_CACHE) > 4096:
            _INDEX_CACHE.clear()
        got = _INDEX_CACHE[key] = _TableIndex(tab)
    return got


class _TableIndex:
    """Row lookup and move neighbours of one DimTable (built lazily)."""

    CSR_ROWS = 2048

    def __init__(self, tab: DimTable):
        self.tab = tab
        flat = tab.factors.reshape(len(tab), -1)
        self.flat = flat
        self.rows = {tuple(r): i for i, r in enumerate(flat.tolist())}
        self.nb: dict[int, np.ndarray] = {}
        self._csr: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def csr(self, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(ptr, idx) of every row's move ("move") or outward ("out") neighbours; None for big
        tables (then per row, lazily)."""
        n = len(self.flat)
        if n > self.CSR_ROWS:
            return None
        got = self._csr.get(kind)
        if got is None:
            lists = [self.neighbours(r) if kind == "move" else self.outward(r) for r in range(n)]
            ptr = np.zeros(n + 1, np.int64)
            ptr[1:] = np.cumsum([len(x) for x in lists])
            idx = np.concatenate(lists) if ptr[-1] else np.zeros(0, np.int64)
            got = self._csr[kind] = (ptr, idx.astype(np.int64))
        return got

    def neighbours(self, r: int, sweep: int = 0) -> np.ndarray:
        """Rows one move away from row r: one prime factor (or a slot's whole factor) moved to another
        slot; tables of at most ``sweep`` rows give every other row (a full re-optimization of the
        dimension)."""
        if len(self.flat) <= sweep:
            return np.delete(np.arange(len(self.flat)), r)
        got = self.nb.get(r)
        if got is not None:
            return got
        f = self.flat[r].tolist()
        out = set()
        k = len(f)
        for a in range(k):
            if f[a] == 1:
                continue
            moves = [(p, True) for p in sorted(set(prime_factors(f[a])))] + [(f[a], False)]
            for amount, _ in moves:
                for b in range(k):
                    if b == a:
                        continue
                    g = list(f)
                    g[a] //= amount
                    g[b] *= amount
                    j = self.rows.get(tuple(g))
                    if j is not None:
                        out.add(j)
        arr = np.array(sorted(out), np.int64)
        self.nb[r] = arr
        return arr

    def outward(self, r: int) -> np.ndarray:
        """Rows with one prime factor of row r moved to the outermost temporal slot (every inner
        tile shrinks or stays: a capacity repair move)."""
        key = -1 - r
        got = self.nb.get(key)
        if got is not None:
            return got
        f = self.flat[r].tolist()
        out = set()
        for a in range(1, len(f)):
            for p in sorted(set(prime_factors(f[a]))):
                g = list(f)
                g[a] //= p
                g[0] *= p
                j = self.rows.get(tuple(g))
                if j is not None:
                    out.add(j)
        arr = np.array(sorted(out), np.int64)
        self.nb[key] = arr
        return arr

    def closest(self, target: np.ndarray) -> np.ndarray:
        """Rows ordered by distance (sum of |log factor differences|) to ``target`` [L, 3]."""
        lt = np.log(self.flat.astype(np.float64))
        d = np.abs(lt - np.log(target.reshape(1, -1).astype(np.float64))).sum(axis=1)
        return np.argsort(d, kind="stable")


# --------------------------------------------------------------------------------------------- #
# the search for one tile problem
# --------------------------------------------------------------------------------------------- #
class _Search:
    def __init__(
        self,
        space: MapSpace,
        fm: FastModel,
        objective: Objective,
        rng: np.random.Generator,
        options: MapperOptions,
    ):
        self.space = space
        self.fm = fm
        self.obj = objective
        self.rng = rng
        self.opt = options
        self.V = len(space.variant_names)
        self.idx = [_table_index(t) for t in space.dims]
        self.seen: set = set()
        self.radix = space.radix
        self.use_codes = float(np.prod(self.radix.astype(np.float64))) < 2.0**62
        self.evaluated = 0
        # per variant, its best candidates so far, best first: (objective key, fidx row, oidx row, kbits)
        self.short: list[list[tuple]] = [[] for _ in range(self.V)]
        self.cap_min: np.ndarray | None = None

    # ---- evaluation ----------------------------------------------------------------------------
    def _fresh(self, c: Candidates) -> Candidates:
        """The candidates not evaluated before (each once)."""
        if len(c) == 0:
            return c
        seen = self.seen
        if self.use_codes:
            codes = c.codes(self.radix)
            u, first = np.unique(codes, return_index=True)
            new = [i for i, k in zip(first.tolist(), u.tolist()) if k not in seen]
            seen.update(codes[new].tolist())
        else:
            new = []
            for i, row in enumerate(c.keys()):
                k = row.tobytes()
                if k not in seen:
                    seen.add(k)
                    new.append(i)
        return c.take(np.sort(np.array(new, np.int64)))

    def evaluate(self, c: Candidates, dedupe: bool = True) -> Steps[tuple[Candidates, FastResult | None]]:
        """Score candidates (the fresh ones, with ``dedupe``) and record them: a generator that yields
        batches of at most ``batch`` candidates to score and receives their FastResults (``drive``
        runs it), returning the candidates scored and their scores."""
        if dedupe:
            c = self._fresh(c)
        if len(c) == 0:
            return c, None
        res_parts = []
        for i in range(0, len(c), self.opt.batch):
            res_parts.append((yield c.take(np.arange(i, min(len(c), i + self.opt.batch)))))
        if len(res_parts) == 1:
            r = res_parts[0]
        else:
            r = FastResult(
                *[
                    np.concatenate([getattr(p, f.name) for p in res_parts], axis=1)
                    for f in dataclasses.fields(FastResult)
                ]
            )
        self.evaluated += len(c)
        self._record(c, r)
        return c, r

    def _record(self, c: Candidates, r: FastResult) -> None:
        capm = r.cap_used.min(axis=1)  # [V, L]
        self.cap_min = capm if self.cap_min is None else np.minimum(self.cap_min, capm)
        K = max(1, self.opt.shortlist, self.opt.beam)
        for v in range(self.V):
            valid = r.valid[v]
            if not valid.any():
                continue
            order = self.obj.order(r.energy[v], r.cycles[v], r.last_level[v], valid)
            cols = self.obj.columns(r.energy[v], r.cycles[v], r.last_level[v])
            entries = list(self.short[v])
            for b in order[:K]:
                if not valid[b]:
                    break
                key = tuple(float(col[b]) for col in cols)
                entries.append((key, c.fidx[b].copy(), c.oidx[b].copy(), int(c.kbits[b])))
            entries.sort(key=lambda e: e[0])
            dedup, seen = [], set()
            for e in entries:
                k = (e[1].tobytes(), e[2].tobytes(), e[3])
                if k in seen:
                    continue
                seen.add(k)
                dedup.append(e)
            self.short[v] = dedup[:K]

    def incumbents(self) -> Candidates:
        """The current best candidates: per variant its ``beam`` best (distinct)."""
        rows = [e for v in range(self.V) for e in self.short[v][: self.opt.beam]]
        if not rows:
            return Candidates(
                np.zeros((0, 7), np.int64),
                np.zeros((0, self.space.n_levels), np.int64),
                np.zeros(0, np.int64),
            )
        return Candidates(
            np.stack([r[1] for r in rows]),
            np.stack([r[2] for r in rows]),
            np.array([r[3] for r in rows], np.int64),
        ).unique()

    # ---- neighbourhoods --------------------------------------------------------------------------
    def neighbours(self, c: Candidates) -> Candidates:
        parts = []
        L = self.space.n_levels
        for d in range(7):
            if len(self.idx[d].flat) <= self.opt.sweep:
                n_d = len(self.idx[d].flat)
                if n_d > 1:
                    src = np.repeat(np.arange(len(c)), n_d)
                    e = c.take(src)
                    e.fidx[:, d] = np.tile(np.arange(n_d), len(c))
                    parts.append(e)
            else:
                e = self._expand(c, d, "move")
                if e is not None:
                    parts.append(e)
        for b in range(len(c)):
            f, o, k = c.fidx[b], c.oidx[b], c.kbits[b]
            for l in range(L):
                n_o = len(self.space.orders[l])
                if n_o > 1:
                    oi = np.repeat(o[None, :], n_o, axis=0)
                    oi[:, l] = np.arange(n_o)
                    parts.append(Candidates(np.repeat(f[None, :], n_o, axis=0), oi, np.full(n_o, k)))
            for i in range(len(self.space.free_keeps)):
                parts.append(Candidates(f[None, :].copy(), o[None, :].copy(), np.array([k ^ (1 << i)])))
        if not parts:
            return Candidates(np.zeros((0, 7), np.int64), np.zeros((0, L), np.int64), np.zeros(0, np.int64))
        return Candidates.concat(parts)

    def _expand(self, c: Candidates, d: int, kind: str) -> Candidates | None:
        """Every candidate of ``c`` with dimension d replaced by each of its row's neighbours."""
        tab = self.idx[d]
        csr = tab.csr(kind)
        rows = c.fidx[:, d]
        if csr is None:
            lists = [tab.neighbours(int(r)) if kind == "move" else tab.outward(int(r)) for r in rows]
            counts = np.array([len(x) for x in lists], np.int64)
            new = np.concatenate(lists) if counts.sum() else np.zeros(0, np.int64)
        else:
            ptr, idx = csr
            counts = ptr[rows + 1] - ptr[rows]
            total = int(counts.sum())
            if total == 0:
                return None
            starts = np.repeat(ptr[rows], counts)
            offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            new = idx[starts + offs]
        if len(new) == 0:
            return None
        src = np.repeat(np.arange(len(c)), counts)
        out = c.take(src)
        out.fidx[:, d] = new
        return out

    def outward_neighbours(self, c: Candidates) -> Candidates:
        parts = [p for d in range(7) if (p := self._expand(c, d, "out")) is not None]
        if not parts:
            return c.take(np.zeros(0, np.int64))
        return Candidates.concat(parts)

    def repair(self, c: Candidates, r: FastResult, rounds: int = 2, keep: int = 32) -> Steps[None]:
        """Push factors of seeds that fit no level outward (to the outermost temporal slot) until
        they fit: a seed adapted from another tile shape is often one or two moves from valid."""
        for _ in range(rounds):
            bad = ~r.valid.any(axis=0)
            if not bad.any():
                return
            eff = self.fm.eff.astype(np.float64)
            excess = (
                np.where(
                    eff[None, None, :] >= 0,
                    np.maximum(r.cap_used - eff[None, None, :], 0) / np.maximum(eff, 1)[None, None, :],
                    0,
                )
                .sum(axis=2)
                .min(axis=0)
            )
            idx = np.nonzero(bad)[0]
            idx = idx[np.argsort(excess[idx], kind="stable")[:keep]]
            c, r2 = yield from self.evaluate(self.outward_neighbours(c.take(idx)))
            if r2 is None:
                return
            r = r2

    def pair_neighbours(self, c: Candidates) -> Candidates:
        """Two dimensions changed at once, each by one move (prime-factor moves only): the moves
        that a capacity limit couples (e.g. one dimension's factor out of a buffer, another's in)."""
        parts = []
        L = self.space.n_levels
        for b in range(len(c)):
            f, o, k = c.fidx[b], c.oidx[b], c.kbits[b]
            nbs = [self.idx[d].neighbours(int(f[d])) for d in range(7)]
            for d1 in range(7):
                for d2 in range(d1 + 1, 7):
                    a1, a2 = nbs[d1], nbs[d2]
                    if not len(a1) or not len(a2):
                        continue
                    g1, g2 = np.meshgrid(a1, a2, indexing="ij")
                    m = g1.size
                    fi = np.repeat(f[None, :], m, axis=0)
                    fi[:, d1] = g1.reshape(-1)
                    fi[:, d2] = g2.reshape(-1)
                    parts.append(Candidates(fi, np.repeat(o[None, :], m, axis=0), np.full(m, k)))
        if not parts:
            return Candidates(np.zeros((0, 7), np.int64), np.zeros((0, L), np.int64), np.zeros(0, np.int64))
        return Candidates.concat(parts)

    def random(self, n: int) -> Candidates:
        sp = self.space
        fidx = np.stack([self.rng.integers(0, len(t), n) for t in sp.dims], axis=1)
        oidx = (
            np.stack([self.rng.integers(0, len(o), n) for o in sp.orders], axis=1)
            if sp.n_levels
            else np.zeros((n, 0), np.int64)
        )
        kb = self.rng.integers(0, 1 << len(sp.free_keeps), n) if sp.free_keeps else np.zeros(n, np.int64)
        return Candidates(fidx, oidx, kb.astype(np.int64))

    def perturb(self, c: Candidates, moves: int = 3) -> Candidates:
        out = []
        for b in range(len(c)):
            cur = c.take([b])
            for _ in range(moves):
                nb = self.neighbours(cur)
                if len(nb) == 0:
                    break
                cur = nb.take([int(self.rng.integers(0, len(nb)))])
            out.append(cur)
        return Candidates.concat(out)

    # ---- drivers ---------------------------------------------------------------------------------
    def loop_classes(self, c: Candidates) -> np.ndarray:
        """int64 [B, 7 + L + 1]: equal rows for candidates that differ only in where their loops of
        bound 1 stand in a level's order (the model cannot tell them apart: same factors, keeps and
        order of the loops > 1 at every level)."""
        sp = self.space
        tf, _, _ = sp.factors(c)
        rows = np.arange(len(c))[:, None]
        cols = [c.fidx, c.kbits[:, None]]
        for l in range(sp.n_levels):
            loops = sp.active_orders[l][c.oidx[:, l]]  # [B, a], outermost first
            on = tf[rows, l, loops] > 1
            code = np.zeros(len(c), np.int64)
            for j in range(loops.shape[1]):
                code = np.where(on[:, j], code * 8 + loops[:, j] + 1, code)
            cols.append(code[:, None])
        return np.concatenate(cols, axis=1)

    def enumerate_all(self) -> Steps[None]:
        """Every candidate of the space, one per loop class (``loop_classes``): the first of each class
        in enumeration order, which is the one the objective's stable order would keep among equals."""
        sp = self.space
        sizes = [len(t) for t in sp.dims] + [len(o) for o in sp.orders] + [1 << len(sp.free_keeps)]
        total = int(np.prod(sizes))
        seen: set[bytes] = set()
        for start in range(0, total, self.opt.batch):
            idx = np.arange(start, min(total, start + self.opt.batch))
            digits = np.stack(np.unravel_index(idx, sizes), axis=1).astype(np.int64)
            c = Candidates(digits[:, :7], digits[:, 7 : 7 + sp.n_levels], digits[:, -1])
            classes = self.loop_classes(c)
            _, first = np.unique(classes, axis=0, return_index=True)
            first = [i for i in np.sort(first).tolist() if classes[i].tobytes() not in seen]
            seen.update(classes[i].tobytes() for i in first)
            yield from self.evaluate(c.take(np.array(first, np.int64)), dedupe=False)

    def descend(self, max_rounds: int) -> Steps[None]:
        """Best-improvement local search from the current incumbents (every variant at once):
        single moves until none improves any variant; then single moves that overflow a buffer,
        repaired by pushing factors outward (a move that needs room made elsewhere); then, when
        enabled, pair moves; back to single moves whenever something improves."""
        stage = 0  # 0 single moves, 1 repaired moves, 2 pair moves
        for _ in range(max_rounds):
            before = [tuple(e[0] for e in sh[: self.opt.beam]) for sh in self.short]
            inc = self.incumbents()
            if len(inc) == 0:
                return
            if stage == 0:
                yield from self.evaluate(self.neighbours(inc))
            elif stage == 1:
                nb = self.neighbours(inc)
                if len(nb):
                    r = yield nb  # validity of the (already seen) single moves
                    yield from self.repair(nb, r, rounds=1, keep=self.opt.repair_keep)
            else:
                yield from self.evaluate(self.pair_neighbours(inc))
            after = [tuple(e[0] for e in sh[: self.opt.beam]) for sh in self.short]
            if after != before:
                stage = 0
            elif stage == 0 and self.opt.repair_keep > 0:
                stage = 1
            elif stage <= 1 and self.opt.pair_moves is True:
                stage = 2
            else:
                return

    def run(self, seeds: Candidates | None) -> Steps[None]:
        """The whole search (module docstring), as a generator of the batches to score (``drive``)."""
        sp = self.space
        if sp.size <= self.opt.enumerate_limit:
            yield from self.enumerate_all()
            return
        if seeds is not None and len(seeds):
            sc, sr = yield from self.evaluate(seeds)
            if sr is not None:
                yield from self.repair(sc, sr)
        yield from self.evaluate(
            Candidates.concat([minimal_candidate(sp), self.random(self.opt.random_samples)])
        )
        yield from self.descend(self.opt.max_rounds)
        for _ in range(self.opt.restarts):
            inc = self.incumbents()
            if len(inc) == 0:
                # nothing valid yet: more random samples
                yield from self.evaluate(self.random(self.opt.random_samples))
                yield from self.descend(self.opt.max_rounds)
                continue
            yield from self.evaluate(self.perturb(inc))
            yield from self.descend(self.opt.max_rounds)


#: a search step generator: yields batches of candidates to score, is sent their FastResults
Steps = Generator[Candidates, FastResult, T]

#: candidates scored together by one model call when the searches of several tiles run side by side
JOINT_BATCH = 8192


def drive(searches: Sequence[tuple[_Search, Steps[None]]]) -> None:
    """Run search generators to the end, side by side: each step, the batches every live search asks
    for are scored together (``fastmodel.evaluate_many``; the searches are of tile shapes of one
    layer problem and constraint group), up to ``JOINT_BATCH`` candidates per model call. Each search
    gets exactly the scores it would get alone, so its result does not depend on its companions."""
    live: list[tuple[_Search, Steps[None], Candidates]] = []

    def step(search: _Search, gen: Steps[None], value: FastResult | None) -> None:
        try:
            req = gen.send(value) if value is not None else next(gen)
        except StopIteration:
            return
        live.append((search, gen, req))

    for search, gen in searches:
        step(search, gen, None)
    while live:
        current, live = live, []
        chunk: list[tuple[_Search, Steps[None], Candidates]] = []
        total = 0
        for i, item in enumerate(current):
            chunk.append(item)
            total += len(item[2])
            if total >= JOINT_BATCH or i == len(current) - 1:
                results = evaluate_many([s.fm for s, _, _ in chunk], [c for _, _, c in chunk])
                for (search, gen, _), r in zip(chunk, results, strict=True):
                    step(search, gen, r)
                chunk, total = [], 0


# --------------------------------------------------------------------------------------------- #
# layer mapper
# --------------------------------------------------------------------------------------------- #
def _as_constraint_sets(constraints: Constraints | Mapping[Any, Constraints]) -> dict[str, Constraints]:
    if isinstance(constraints, Constraints):
        return {"default": constraints}
    out = {}
    for k, v in constraints.items():
        out[getattr(k, "value", str(k))] = v
    if not out:
        raise ValueError("no constraint set given")
    return out


def _groups_by_shared(arch: Architecture, sets: dict[str, Constraints]) -> list[dict[str, Constraints]]:
    """Constraint sets grouped by everything but the outermost level's keep/bypass."""
    groups: dict[tuple, dict[str, Constraints]] = {}
    for name, cons in sets.items():
        groups.setdefault(shared_key(arch, cons), {})[name] = cons
    return list(groups.values())


class LayerMapper:
    """Maps the tiles of one layer under one or more constraint sets (variants), sharing work: one
    search per shape for all variants that differ only in DRAM's keep/bypass, warm starts from the
    ladder's best mappings, and a memo of shapes already mapped. The layer's P and Q only give the
    default tile of :meth:`map`."""

    def __init__(
        self,
        arch: Architecture,
        energy: EnergyTable,
        layer: Layer,
        constraints: Constraints | Mapping[Any, Constraints],
        options: MapperOptions | None = None,
    ):
        from deepfrack.cost.model import default_rules

        self.arch = arch
        self.energy = energy
        self.layer = layer
        self.options = options or MapperOptions()
        self.rules = self.options.rules or default_rules(arch)
        self.sets = _as_constraint_sets(constraints)
        self.groups = _groups_by_shared(arch, self.sets)
        self.tables = arch_tables(arch, energy, self.rules, energy.origin or None)
        self._memo: dict[tuple[int, int], dict[str, MapResult]] = {}
        self._rungs: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._memo_group: dict[tuple[int, int, int], dict[str, MapResult]] = {}
        self._templates: dict[int, SpaceTemplate] = {}
        self._seed_memo: dict = {}  # _adapt_seeds' per-seed work, shared between tile shapes
        for gi, g in enumerate(self.groups):
            try:
                homes = dict(capacity_spec(arch, next(iter(g.values()))).home)
            except InputError:
                homes = {}
            self._templates[gi] = space_template(arch, g, homes)

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(self.sets)

    def map(self, h: int | None = None, w: int | None = None) -> dict[str, MapResult]:
        """{variant: MapResult} for the output tile h x w (default: the whole layer)."""
        h = self.layer.Q if h is None else h
        w = self.layer.P if w is None else w
        return self.map_many([(h, w)])[(h, w)]

    def map_many(self, tiles: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict[str, MapResult]]:
        """``{(h, w): map(h, w)}`` for many tiles at once: their searches run side by side, so that
        one model call scores the candidates of many tiles (``drive``), and their shortlists are
        re-scored by one full-model call. Every tile's result is the one ``map`` gives it alone."""
        out: dict[tuple[int, int], dict[str, MapResult]] = {}
        plans: dict[tuple[int, int], list[tuple[dict[str, MapResult], dict[str, MapResult] | _Task]]] = {}
        tasks: list[_Task] = []
        for h, w in tiles:
            key = (h, w)
            got = self._memo.get(key)
            if got is not None:
                out[key] = got
                continue
            if key in plans:
                continue
            prob = tile_problem(self.layer, h, w)
            plan = plans[key] = []
            for gi, g in enumerate(self.groups):
                free = {
                    n: self._view_result(n, prob) for n, c in g.items() if prob.view and self._same_place(c)
                }
                started: dict[str, MapResult] | _Task = {}
                if len(free) < len(g):
                    started = self._start_group(gi, g, h, w)
                    if isinstance(started, _Task):
                        tasks.append(started)
                plan.append((free, started))
        finished: dict[int, dict[str, MapResult]] = {}
        for gi in range(len(self.groups)):
            mine = [t for t in tasks if t.group == gi]
            drive([(t.search, t.steps) for t in mine])
            for t, (results, _) in zip(mine, self._finish(mine), strict=True):
                finished[id(t)] = results
        for key, plan in plans.items():
            res: dict[str, MapResult] = {}
            for free, started in plan:
                res.update(finished[id(started)] if isinstance(started, _Task) else started)
                res.update(free)
            self._memo[key] = out[key] = res
        return out

    def _same_place(self, constraints: Constraints) -> bool:
        """Whether DRAM keeps both Inputs and Outputs, or neither, under these constraints (Timeloop's
        default: the outermost level keeps what no constraint bypasses)."""
        merged = self.arch.constraints.merged(constraints)
        dram = self.arch.levels[0].name
        return (merged.keeps(dram, "Inputs") is not False) == (merged.keeps(dram, "Outputs") is not False)

    def _view_result(self, variant: str, prob: Problem) -> MapResult:
        """A view's (concat's) cost where its inputs and output live in the same place: nothing moves."""
        levels = {lv.name: 0.0 for lv in self.arch.levels} | {self.arch.arithmetic.name: 0.0}
        note = (
            f"{self.layer.kind} layer {self.layer.name}: its inputs and output live in the same place: cost 0"
        )
        return MapResult(
            variant,
            "ok",
            energy_pJ=0.0,
            cycles=0.0,
            macs=0,
            utilization=0.0,
            level_energy_pJ=levels,
            notes=(note,),
        )

    # ---- one group of variants ------------------------------------------------------------------
    def _rung(self, gi: int, g: dict[str, Constraints], i: int) -> list[dict[str, Any]]:
        """Best mappings of the square tile ``LADDER[i]``, searched with extra effort and warm-
        started from the rung below (so a rung depends only on the layer's C, M, R, S, N, strides
        and the constraints: never on the layer's plane nor on what else was mapped)."""
        key = (gi, i)
        got = self._rungs.get(key)
        if got is not None:
            return got
        t = LADDER[i]
        below = self._rung(gi, g, i - 1) if i > 0 else []
        results, portable = self._search(gi, g, t, t, below, extra_effort=True)
        self._memo_group[(gi, t, t)] = results
        self._rungs[key] = portable
        return portable

    def _seeds_for(self, gi: int, g: dict[str, Constraints], h: int, w: int) -> list[dict[str, Any]]:
        """Warm starts of a tile h x w: the best mappings of the ladder rungs nearest below and
        above h and w (``ladder_uses``)."""
        if not self.options.anchor:
            return []
        seeds: list[dict[str, Any]] = []
        for i in ladder_uses(h, w):
            seeds += self._rung(gi, g, i)
        return seeds

    def _start_group(
        self, gi: int, g: dict[str, Constraints], h: int, w: int
    ) -> dict[str, MapResult] | _Task:
        """The results of a tile for one constraint group, or its search to run (``_Task``). A ladder
        rung's own square tile is searched now, as the rung."""
        if h == w and self.options.anchor:
            i = bisect.bisect_left(LADDER, h)
            if i < len(LADDER) and LADDER[i] == h:
                if (gi, h, w) not in self._memo_group and (gi, i) in self._rungs:
                    # the rung was given (``add_ladder``) without its results: the same search again
                    below = self._rung(gi, g, i - 1) if i > 0 else []
                    self._memo_group[(gi, h, w)] = self._search(gi, g, h, w, below, extra_effort=True)[0]
                self._rung(gi, g, i)
                return self._memo_group[(gi, h, w)]
        return self._start(gi, g, h, w, self._seeds_for(gi, g, h, w), extra_effort=False)

    # ---- the ladder, shared between processes ---------------------------------------------------
    def ladder(self, top: int) -> dict[int, dict[int, list[dict[str, Any]]]]:
        """{rung index: {constraint group: best mappings}} of rungs 0..top, searched where not known."""
        if not self.options.anchor:
            return {}
        return {i: {gi: self._rung(gi, g, i) for gi, g in enumerate(self.groups)} for i in range(top + 1)}

    def add_ladder(self, rungs: Mapping[int, Mapping[int, list[dict[str, Any]]]]) -> None:
        """Take rungs computed elsewhere (by ``ladder`` on the same layer problem, constraints and
        options, so exactly what this mapper would find): the tiles that start from them skip the
        ladder's searches."""
        for i, groups in rungs.items():
            for gi, portable in groups.items():
                self._rungs.setdefault((int(gi), int(i)), portable)

    def _search(
        self,
        gi: int,
        g: dict[str, Constraints],
        h: int,
        w: int,
        seeds: list[dict[str, Any]],
        extra_effort: bool,
    ) -> tuple[dict[str, MapResult], list[dict[str, Any]]]:
        """The results and the portable best mappings of one tile, searched alone."""
        task = self._start(gi, g, h, w, seeds, extra_effort)
        if not isinstance(task, _Task):
            return task, []
        drive([(task.search, task.steps)])
        return self._finish([task])[0]

    def _start(
        self,
        gi: int,
        g: dict[str, Constraints],
        h: int,
        w: int,
        seeds: list[dict[str, Any]],
        extra_effort: bool,
    ) -> dict[str, MapResult] | _Task:
        """The search of one tile for one constraint group, ready to run (or its results when no
        mapspace exists)."""
        names = tuple(g)
        prob = tile_problem(self.layer, h, w)
        notes = [prob.note] if prob.note else []
        try:
            space = build_mapspace(self.arch, prob.layer, template=self._templates[gi])
        except Infeasible as exc:
            return {v: MapResult(v, "infeasible", exc.reason, notes=tuple(notes)) for v in names}
        notes.extend(space.notes)
        opt = self.options
        if extra_effort:
            opt = dataclasses.replace(
                opt,
                random_samples=opt.rung_samples,
                restarts=opt.rung_restarts,
                pair_moves=True,
                beam=opt.rung_beam,
            )
        elif opt.pair_moves == "anchors":
            opt = dataclasses.replace(
                opt, pair_moves=False, repair_keep=0 if opt.repair_keep_rungs_only else opt.repair_keep
            )
        fm = FastModel(space, self.tables, self.rules)
        seed = (opt.seed * 1_000_003 + h * 10_007 + w) & 0xFFFFFFFF
        search = _Search(space, fm, opt.objective, np.random.default_rng(seed), opt)
        steps = search.run(_adapt_seeds(space, search.idx, seeds, memo=self._seed_memo))
        return _Task(gi, names, prob, notes, space, search, steps)

    def _finish(self, tasks: Sequence[_Task]) -> list[tuple[dict[str, MapResult], list[dict[str, Any]]]]:
        """The results and portable best mappings of searches run to the end (their shortlists re-
        scored by the full model in one call)."""
        out = []
        for task, finals in zip(tasks, self._finalize(tasks), strict=True):
            results = dict(zip(task.names, finals, strict=True))
            portable = []
            seen_p: set = set()
            for v in range(len(task.names)):
                for e in task.search.short[v][:1]:
                    k = (e[1].tobytes(), e[2].tobytes(), e[3])
                    if k not in seen_p:
                        seen_p.add(k)
                        portable.append(_portable(task.space, e))
            out.append((results, portable))
        return out

    def _finalize(self, tasks: Sequence[_Task]) -> list[list[MapResult]]:
        """Each task's result per variant: its shortlist re-scored by the full model (every task's in
        one batch: the model's numbers for a mapping do not depend on the batch), best first."""
        from deepfrack.cost.model import LayerModel

        shortlists = []
        for t in tasks:
            pairs = [(v, e) for v in range(len(t.names)) for e in t.search.short[v]]
            batch = None
            if pairs:
                cands = Candidates(
                    np.stack([e[1] for _, e in pairs]),
                    np.stack([e[2] for _, e in pairs]),
                    np.array([e[3] for _, e in pairs], np.int64),
                )
                batch = t.space.mapping_batch(cands, [v for v, _ in pairs])
            shortlists.append((np.array([v for v, _ in pairs], np.int64), batch))
        batches = [b for _, b in shortlists if b is not None]
        if not batches:
            return [self._finalize_one(t, np.zeros(0, np.int64), None, None, 0) for t in tasks]
        models = {}

        def model(t: _Task) -> LayerModel:
            got = models.get(id(t.prob.layer))
            if got is None:
                got = models[id(t.prob.layer)] = LayerModel(
                    self.arch, self.energy, t.prob.layer, self.rules, tables=self.tables
                )
            return got

        joint = model(tasks[0])
        if joint._no_energy:  # a missing energy is an error of the mapping's own tile: score them apart
            out = []
            for t, (of_variant, batch) in zip(tasks, shortlists, strict=True):
                res = model(t).evaluate_batch(batch) if batch is not None else None
                out.append(self._finalize_one(t, of_variant, batch, res, 0, model))
            return out
        big = batches[0] if len(batches) == 1 else _concat_batches(batches)
        res = joint.evaluate_batch(big)
        out, at = [], 0
        for t, (of_variant, _) in zip(tasks, shortlists, strict=True):
            out.append(self._finalize_one(t, of_variant, big, res, at, model))
            at += len(of_variant)
        return out

    def _finalize_one(self, t: _Task, of_variant, batch, res, at: int, model=None) -> list[MapResult]:
        """One task's results from its rows ``at`` .. ``at + len(of_variant)`` of the full model's
        ``res`` on ``batch``."""
        space, search, prob, notes = t.space, t.search, t.prob, t.notes
        names = space.variant_names
        if not len(of_variant):
            reason = _infeasible_reason(space, search, self.tables)
            return [
                MapResult(n, "infeasible", reason, notes=tuple(notes), evaluated=search.evaluated)
                for n in names
            ]
        rows = np.arange(at, at + len(of_variant))
        energy = np.array(res.energy_pJ[rows], np.float64)
        if prob.drop_weights:
            energy = energy - res.energy_ds_pJ[rows, :, 0].sum(axis=1) - res.post.mac_energy[rows]
        last = (res.reads[rows, 0, :] + res.fills[rows, 0, :] + res.updates[rows, 0, :]).astype(np.float64)
        last = (last * res.utilized_instances[rows, 0, :]).sum(axis=1)
        cycles = res.cycles[rows].astype(np.float64)
        out: list[MapResult] = []
        for v, name in enumerate(names):
            idx = np.nonzero(of_variant == v)[0]
            if len(idx) == 0:
                reason = _infeasible_reason(space, search, self.tables, v)
                out.append(
                    MapResult(name, "infeasible", reason, notes=tuple(notes), evaluated=search.evaluated)
                )
                continue
            valid = res.valid[rows[idx]]
            order = search.obj.order(energy[idx], cycles[idx], last[idx], valid)
            j = int(idx[order[0]])
            b = int(rows[j])
            if not res.valid[b]:
                out.append(
                    MapResult(
                        name,
                        "infeasible",
                        "the full model rejects every shortlisted mapping: "
                        + "; ".join(model(t).evaluate(batch.mapping(b)).violations),
                        notes=tuple(notes),
                        evaluated=search.evaluated,
                    )
                )
                continue
            out.append(self._result(name, space, batch, res, b, energy[j], prob, notes, search.evaluated))
        return out

    def _result(self, name, space, batch, res, b, energy, prob: Problem, notes, evaluated) -> MapResult:
        k = prob.repeats
        lvl_e = {}
        acc = {}
        level_energy = res.level_energy_pJ[b].tolist()
        weights_energy = res.energy_ds_pJ[b, :, 0].tolist()
        counts = {kind: getattr(res, kind)[b].tolist() for kind in ("reads", "fills", "updates")}
        instances = res.utilized_instances[b].tolist()
        keeps = batch.keep[b].tolist()
        for l, lname in enumerate(space.level_names):
            e = level_energy[l]
            if prob.drop_weights:
                e -= weights_energy[l]
            lvl_e[lname] = e * k
            kept = [ti for ti in range(3) if keeps[l][ti] and not (prob.drop_weights and ti == 0)]
            acc[lname] = {
                kind: {TENSORS[ti]: int(counts[kind][l][ti]) * k for ti in kept}
                for kind in ("reads", "fills", "updates")
            }
            acc[lname]["utilized_instances"] = {TENSORS[ti]: int(instances[l][ti]) for ti in kept}
        mac_e = float(res.post.mac_energy[b]) if not prob.drop_weights else 0.0
        lvl_e[self.arch.arithmetic.name] = mac_e * k
        mapping = _loop_mapping(
            batch, b, f"deepfrack mapper, {prob.layer.name} {prob.layer.Q}x{prob.layer.P}"
        )
        return MapResult(
            variant=name,
            status="ok",
            energy_pJ=float(energy) * k,
            cycles=float(res.cycles[b]) * k,
            macs=prob.macs,
            utilization=float(res.utilization[b]),
            level_energy_pJ=lvl_e,
            accesses=acc,
            mapping=mapping,
            repeats=k,
            notes=tuple(notes),
            evaluated=evaluated,
        )


@dataclass
class _Task:
    """The search of one tile for one constraint group: its generator of steps (``drive``) and what
    its results need."""

    group: int
    names: tuple[str, ...]
    prob: Problem
    notes: list[str]
    space: MapSpace
    search: _Search
    steps: Steps[None]


def _concat_batches(batches: Sequence[MappingBatch]) -> MappingBatch:
    return MappingBatch(
        *(
            np.concatenate([getattr(b, f) for b in batches])
            for f in ("temporal", "temporal_order", "spatial", "spatial_order", "split", "keep")
        ),
        batches[0].level_names,
    )


def _loop_mapping(batch: MappingBatch, b: int, source: str) -> LoopMapping:
    """Candidate ``b`` of a batch as a LoopMapping (what ``MappingBatch.mapping`` gives, built from
    Python lists at once)."""
    rows = zip(
        batch.level_names,
        batch.temporal[b].tolist(),
        batch.temporal_order[b].tolist(),
        batch.spatial[b].tolist(),
        batch.spatial_order[b].tolist(),
        batch.split[b].tolist(),
        batch.keep[b].tolist(),
        strict=True,
    )
    levels = tuple(
        LevelMapping(name, tuple(t), tuple(to), tuple(sp), tuple(so), split, tuple(kp))  # type: ignore[arg-type]
        for name, t, to, sp, so, split, kp in rows
    )
    return LoopMapping(levels, source=source)


def _infeasible_reason(space: MapSpace, search: _Search, tables, v: int | None = None) -> str:
    """Why nothing valid was found: levels whose smallest tile seen does not fit, else generic."""
    parts = []
    if search.cap_min is not None:
        capm = search.cap_min if v is None else search.cap_min[v : v + 1]
        capm = capm.min(axis=0)  # [L]
        for l in range(space.n_levels):
            eff = int(tables.eff_size[l])
            if eff >= 0 and capm[l] > eff:
                parts.append(
                    f"{tables.names[l]} needs at least {int(capm[l])} words per instance for this tile, "
                    f"more than its {eff}"
                )
    if parts:
        return "the tile fits no mapping: " + "; ".join(parts)
    return (
        f"no valid mapping found among {search.evaluated} candidates (spatial constraints, fan-outs, "
        "minimum utilization or capacity)"
    )


def _portable(space: MapSpace, e: tuple) -> dict[str, Any]:
    """A best candidate in a form another tile shape's mapspace can read."""
    _, f, o, kb = e
    return {
        "factors": [space.dims[d].factors[int(f[d])] for d in range(7)],
        "orders": [tuple(space.orders[l][int(o[l])]) for l in range(space.n_levels)],
        "kbits": int(kb),
        "free": space.free_keeps,
    }


def _memoized(memo: dict | None, tag: tuple, objs: tuple, compute: Any) -> Any:
    """``compute()``, remembered in ``memo`` under ``tag`` and the identity of ``objs`` (kept with the
    value, so that a recycled id never matches)."""
    if memo is None:
        return compute()
    key = (tag, *map(id, objs))
    got = memo.get(key)
    if got is not None and all(a is b for a, b in zip(got[0], objs, strict=True)):
        return got[1]
    value = compute()
    memo[key] = (objs, value)
    return value


def _adapt_seeds(
    space: MapSpace,
    idx: list[_TableIndex],
    seeds: list[dict[str, Any]],
    pq_limit: int = 25,
    memo: dict | None = None,
) -> Candidates | None:
    """Portable candidates mapped into ``space``: the same factorization where a dimension's table
    has it; for the output-plane dimensions P and Q (the ones a tile shape changes) every pair of
    their factorizations (the ``pq_limit`` pairs closest to the seed's when there are more); the same
    loop orders when present, else the first. ``memo`` keeps what depends only on a seed and a
    dimension's table or a level's orders (tables and orders are shared between the tile shapes of a
    layer)."""
    if not seeds:
        return None
    P_, Q_ = DIMS.index("P"), DIMS.index("Q")
    nP, nQ = len(space.dims[P_]), len(space.dims[Q_])
    k = max(1, int(pq_limit**0.5))

    def row(sd: dict[str, Any], d: int) -> int:
        tgt = sd["factors"][d]
        j = (
            idx[d].rows.get(tuple(np.asarray(tgt).reshape(-1).tolist()))
            if tgt.shape == space.dims[d].factors.shape[1:]
            else None
        )
        return j if j is not None else int(idx[d].closest(tgt)[0])

    def order(sd: dict[str, Any], l: int) -> int:
        hit = (
            np.nonzero((space.orders[l] == np.array(sd["orders"][l])[None, :]).all(axis=1))[0]
            if l < len(sd["orders"])
            else []
        )
        return int(hit[0]) if len(hit) else 0

    def closest(sd: dict[str, Any], d: int, n: int) -> np.ndarray:
        if sd["factors"][d].shape == space.dims[d].factors.shape[1:]:
            return idx[d].closest(sd["factors"][d])[:k]
        return np.arange(min(k, n))

    others = [d for d in range(7) if d not in (P_, Q_)]  # P and Q take every pair below
    parts = []
    for sd in seeds:
        base = np.zeros(7, np.int64)
        base[others] = _memoized(
            memo,
            ("rows",),
            (sd, *(space.dims[d].factors for d in others)),
            lambda sd=sd: [row(sd, d) for d in others],
        )
        o = _memoized(
            memo,
            ("orders",),
            (sd, *space.orders),
            lambda sd=sd: np.array([order(sd, l) for l in range(space.n_levels)], np.int64),
        )
        kb = sd["kbits"] if sd["free"] == space.free_keeps else 0
        if nP * nQ <= pq_limit:
            ps, qs = np.arange(nP), np.arange(nQ)
        else:
            ps = _memoized(
                memo, ("near", P_), (sd, space.dims[P_].factors), lambda sd=sd: closest(sd, P_, nP)
            )
            qs = _memoized(
                memo, ("near", Q_), (sd, space.dims[Q_].factors), lambda sd=sd: closest(sd, Q_, nQ)
            )
        m = len(ps) * len(qs)
        f = np.repeat(base[None, :], m, axis=0)
        f[:, P_] = np.repeat(ps, len(qs))  # every (P, Q) pair, P major
        f[:, Q_] = np.tile(qs, len(ps))
        parts.append(Candidates(f, np.repeat(o[None, :], m, axis=0), np.full(m, kb, np.int64)))
    return Candidates.concat(parts)


# --------------------------------------------------------------------------------------------- #
# one-shot API
# --------------------------------------------------------------------------------------------- #
def map_tile(
    arch: Architecture,
    energy: EnergyTable,
    layer: Layer,
    constraints: Constraints | Mapping[Any, Constraints],
    objective: Objective | str | Sequence[str] = "energy",
    seed: int = 0,
    h: int | None = None,
    w: int | None = None,
    options: MapperOptions | None = None,
) -> dict[str, MapResult]:
    """The best mapping of ``layer``'s output tile h x w (default: the whole plane) under every
    constraint set; see the module docstring."""
    opt = options or MapperOptions()
    opt = dataclasses.replace(opt, objective=Objective.parse(objective), seed=seed)
    return LayerMapper(arch, energy, layer, constraints, opt).map(h, w)


__all__ = [
    "LADDER",
    "LayerMapper",
    "MapResult",
    "MapperOptions",
    "Problem",
    "ladder_from_plain",
    "ladder_to_plain",
    "ladder_uses",
    "map_tile",
    "tile_problem",
]
