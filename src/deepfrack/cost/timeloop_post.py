"""From per-level tiles to Timeloop's counts, energy and cycles, vectorized over candidate mappings.

Input: what Timeloop's nest analysis leaves per storage level and tensor (tile size, the
accesses the level receives from its children as a histogram by multicast factor, fan-out,
partition-fraction denominator, link transfers, spatial expansion); see :class:`NestStats`. Both
the reference simulator (:mod:`deepfrack.cost.nest_sim`) and the closed-form analysis
(:mod:`deepfrack.cost.analytic`) produce it.

The steps below follow NVlabs/timeloop, in order (file names relative to its ``src/``):

1. loop-analysis/tiling.cpp ``CollapseDataMovementNest``: partition sizes, each child's share of its
   parent's accesses (``parent_access_share = sum(accesses x multicast) / fanout``), masking of
   bypassed levels (the outer level then serves the bypassed level's children: its accesses are
   scaled by ``child content x fanout / weighted accesses``), reset of bypassed outermost levels,
   peer accesses from link transfers, and the split into reads / fills / updates (read-write
   Outputs: updates = accesses, reads = accesses - partition size, the first read elided; fills =
   the parent share, minus the partition size in Timeloop >= May 2023 except at the outermost kept
   level).
2. model/buffer.cpp: capacity and instance checks, vector accesses ``ceil(scalar / block size)`` x
   the ERT energy of the action (the most expensive argument variant), times utilized instances;
   bandwidth slowdown ``min(bw / demand)`` and cycles ``ceil(compute cycles / slowdown)``; leakage
   (Timeloop >= September 2023) ``leak energy x total cycles x utilized instances``.
3. model/arithmetic.cpp and model/topology.cpp: MAC energy, compute cycles ``ceil(MACs / utilized
   MACs)``, total cycles = max over levels, utilization = MACs / (MAC instances x cycles).

Floating-point operations are done in the same order as Timeloop's C++ (IEEE doubles), so that the
truncations and roundings of counts agree bit for bit.

Every array here indexes storage levels **outermost first**, as ``Architecture.levels`` lists them
(DRAM at index 0); a level's parent is the level before it, its child the level after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from deepfrack.arch.spec import Architecture, EnergyTable
from deepfrack.dims import NT
from deepfrack.errors import InputError

RW = (False, False, True)  # Outputs is the read-write tensor


@dataclass(frozen=True)
class TimeloopRules:
    """The version-dependent parts of Timeloop's model that deepfrack reproduces.

    ``translation``: "legacy" (before timeloop a12fff5, Jan 2025) or "stationary" (after it): how
    a change of the working set's translation vector is treated (see nest_sim).
    ``fill_elision``: Outputs fills = parent share - partition size except at the outermost kept
    level (timeloop 59fdc83, May 2023, and 494c9ba, Sep 2023); before, fills = parent share.
    ``leakage``: buffer leakage = leak energy x cycles x utilized instances (feb3bd0, Sep 2023).
    ``actions``: ERT action names tried in order for each operation (include/model/topology.hpp);
    deepfrack ends the storage lists with ``access``, the one action older Accelergy tables give a
    storage component (used only where none of Timeloop's names exists; docs/model.md).
    """

    name: str
    translation: str = "legacy"
    fill_elision: bool = False
    leakage: bool = False
    actions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


#: Timeloop as the original DeepFrack ran it (a build between Nov 2022 and Apr 2023: its stats
#: print "Vector access energy source" (added 2022-11-18) and its Outputs fills are not elided
#: (elision added 2023-05-02)). The reference set's 1,517 runs match it.
TIMELOOP_2023 = TimeloopRules(
    name="timeloop-2023",
    translation="legacy",
    fill_elision=False,
    leakage=False,
    actions={
        "read": ("random_read", "read", "access"),
        "fill": ("random_fill", "write", "access"),
        "update": ("random_update", "random_fill", "write", "access"),
        "leak": ("leak",),
        "compute": ("mac_random", "mult_random", "mac", "mult", "compute"),
    },
)

#: Timeloop v3/v4 as timeloop-accelergy-exercises ran it (v0.4 front end, leakage, first-fill
#: elision). The four reference designs match it.
TIMELOOP_2024 = TimeloopRules(
    name="timeloop-2024",
    translation="legacy",
    fill_elision=True,
    leakage=True,
    actions={
        "read": ("random_read", "read", "access"),
        "fill": ("random_fill", "random_write", "fill", "write", "access"),
        "update": ("random_update", "random_write", "update", "write", "access"),
        "leak": ("leak",),
        "compute": ("mac_random", "mult_random", "mac", "mult", "compute"),
    },
)

RULES: dict[str, TimeloopRules] = {r.name: r for r in (TIMELOOP_2023, TIMELOOP_2024)}


# --------------------------------------------------------------------------------------------- #
# static architecture data
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class ArchTables:
    """Per storage level, outermost first, the numbers the model needs."""

    names: tuple[str, ...]
    block: np.ndarray  # int64 [L]
    eff_size: np.ndarray  # int64 [L], -1 = unbounded
    instances: np.ndarray  # int64 [L]
    cluster: np.ndarray  # int64 [L] cluster size
    mesh_x: np.ndarray
    mesh_y: np.ndarray
    read_bw: np.ndarray  # float [L], nan = unspecified
    write_bw: np.ndarray
    shared_bw: np.ndarray
    min_util: np.ndarray  # float [L]
    e_read: np.ndarray  # float [L], nan = no ERT action
    e_fill: np.ndarray
    e_update: np.ndarray
    e_leak: np.ndarray  # float [L] (0 when absent)
    addr_gen: np.ndarray  # float [L] user addr-gen-energy, nan = none (Timeloop's PAT adder is 0)
    mac_instances: int
    mac_mesh_x: int
    mac_mesh_y: int
    e_mac: float
    mac_name: str


def _component_actions(energy: EnergyTable, name: str) -> dict[str, float]:
    """ERT actions of one component -> energy (max over argument variants), looked up by the level
    name, or by the name Timeloop derives from a dotted ERT key (``System.ws.PE[0..15].X[0..7]`` ->
    ``X``; src/model/topology.cpp ParseAccelergyERT)."""
    keys = [name] if name in energy.actions else []
    if not keys:
        for k in energy.actions:
            base = k
            if base.endswith("]") and "[" in base:
                base = base[: base.rindex("[")]
            if base.rsplit(".", 1)[-1] == name:
                keys.append(k)
    out: dict[str, float] = {}
    for k in keys:
        for a in energy.actions[k]:
            out[a.action] = max(out.get(a.action, 0.0), float(a.energy_pJ))
    return out


def _pick(acts: dict[str, float], names: tuple[str, ...]) -> float | None:
    for n in names:
        if n in acts:
            return acts[n]
    return None


def _attr(attrs: Mapping, *names: str):
    for n in names:
        if n in attrs and attrs[n] is not None:
            return attrs[n]
    return None


def _float_or(value, default: float) -> float:
    return default if value is None else float(value)


#: ArchTables' per-level integer columns (the others are floats)
_INT_COLUMNS = ("block", "eff_size", "instances", "cluster", "mesh_x", "mesh_y")


def _buffer_row(lv, energy: EnergyTable, rules: TimeloopRules) -> dict[str, float]:
    """One storage level's entries of :class:`ArchTables` (its specs and action energies)."""
    attrs = lv.attributes or {}
    size = lv.size_words  # Timeloop checks every level whose size is given (buffer.cpp)
    acts = _component_actions(energy, lv.name)
    e_read, e_fill, e_update = (_pick(acts, rules.actions[op]) for op in ("read", "fill", "update"))
    vector = _attr(attrs, "vector-access-energy", "vector_access_energy")
    if vector is not None:  # a user-given energy wins over the ERT (buffer.cpp UpdateOpEnergyViaERT)
        e_read = e_fill = e_update = float(vector)
    leak = _pick(acts, rules.actions["leak"])
    return {
        "block": max(1, int(lv.block_size)),
        "eff_size": -1 if size is None else math.floor(size / float(lv.multiple_buffering or 1.0)),
        "instances": lv.instances,
        "cluster": max(1, int(lv.cluster_size or 1)),
        "mesh_x": lv.mesh_x,
        "mesh_y": lv.mesh_y,
        "read_bw": _float_or(lv.read_bandwidth, np.nan),
        "write_bw": _float_or(lv.write_bandwidth, np.nan),
        "shared_bw": _float_or(lv.shared_bandwidth, np.nan),
        "min_util": _float_or(_attr(attrs, "min-utilization", "min_utilization"), 0.0),
        "e_read": _float_or(e_read, np.nan),
        "e_fill": _float_or(e_fill, np.nan),
        "e_update": _float_or(e_update, np.nan),
        "e_leak": leak if (leak is not None and rules.leakage) else 0.0,
        "addr_gen": _float_or(_attr(attrs, "addr-gen-energy", "addr_gen_energy"), np.nan),
    }


def _mac_energy(arch: Architecture, energy: EnergyTable, rules: TimeloopRules, source: str | None) -> float:
    """Energy of one MAC: the ERT's compute action, else the arithmetic level's ``energy``
    attribute; InputError when neither exists."""
    e_mac = _pick(_component_actions(energy, arch.arithmetic.name), rules.actions["compute"])
    if e_mac is not None:
        return float(e_mac)
    v = _attr(arch.arithmetic.attributes or {}, "energy")
    if v is None:
        raise InputError(
            source or energy.origin or None,
            f"{arch.arithmetic.name}",
            f"no compute energy: the energy table has none of the actions "
            f"{', '.join(rules.actions['compute'])} for {arch.arithmetic.name}",
        )
    return float(v)


def arch_tables(
    arch: Architecture, energy: EnergyTable, rules: TimeloopRules, source: str | None = None
) -> ArchTables:
    """Collect per-level specs and ERT energies, outermost level first. InputError when the MACs
    have no compute energy; a level's missing read/fill/update energy is left as nan (an error only
    when a mapping keeps a tensor there: :func:`check_energy_for_keep`)."""
    rows = [_buffer_row(lv, energy, rules) for lv in arch.levels]
    floats = [key for key in rows[0] if key not in _INT_COLUMNS]
    ints = np.array([[r[key] for r in rows] for key in _INT_COLUMNS], np.int64)
    reals = np.array([[r[key] for r in rows] for key in floats], np.float64)
    columns = dict(zip(_INT_COLUMNS, ints)) | dict(zip(floats, reals))
    return ArchTables(
        names=arch.level_names,
        **columns,
        mac_instances=int(arch.arithmetic.instances),
        mac_mesh_x=int(arch.arithmetic.mesh_x),
        mac_mesh_y=int(arch.arithmetic.mesh_y),
        e_mac=_mac_energy(arch, energy, rules, source),
        mac_name=arch.arithmetic.name,
    )


def check_energy_for_keep(tables: ArchTables, keep: np.ndarray, source: str | None = None) -> None:
    """InputError when a level that keeps a tensor in some candidate has no ERT read/fill/update.
    ``keep`` is bool [L, 3, B]."""
    used = keep.any(axis=(1, 2))  # [L]
    for i in np.nonzero(used)[0]:
        for arr, op in (
            (tables.e_read, "read"),
            (tables.e_fill, "write (fill)"),
            (tables.e_update, "write (update)"),
        ):
            if np.isnan(arr[i]):
                raise InputError(
                    source, tables.names[i], f"the energy table has no '{op}' action for {tables.names[i]}"
                )


# --------------------------------------------------------------------------------------------- #
# nest statistics (the interface between nest analysis and this module)
# --------------------------------------------------------------------------------------------- #
@dataclass
class NestStats:
    """What Timeloop's nest analysis leaves, candidate axis last (B candidates, L storage levels
    outermost first, 3 tensors):

    size [L, 3, B]: tile words per instance; pfd [L, 3, B]: partition-fraction denominator (0 at
    the outermost); acc/mc [L, 3, H, B]: accesses the level receives from its children, per
    multicast factor, sorted by multicast factor (padded with acc 0); link [L, 3, B]: link
    transfers; fanout, replication (utilized instances), x_exp/y_exp (spatial expansion above the
    level) [L, B]; compute_accesses (MAC iterations per MAC instance), compute_replication (MACs
    used), mac_x/mac_y (spatial expansion of the MACs) [B].
    """

    size: np.ndarray
    pfd: np.ndarray
    acc: np.ndarray
    mc: np.ndarray
    link: np.ndarray
    fanout: np.ndarray
    replication: np.ndarray
    x_exp: np.ndarray
    y_exp: np.ndarray
    compute_accesses: np.ndarray
    compute_replication: np.ndarray
    mac_x: np.ndarray
    mac_y: np.ndarray


def _cround(x: np.ndarray) -> np.ndarray:
    """C's round() (half away from zero) for non-negative doubles, as int64."""
    f = np.floor(x)
    return (f + ((x - f) >= 0.5)).astype(np.int64)


@dataclass
class PostResult:
    """Timeloop's statistics for a batch, candidate axis last, levels outermost first."""

    reads: np.ndarray  # int64 [L, 3, B], per instance
    fills: np.ndarray
    updates: np.ndarray
    partition: np.ndarray  # int64 [L, 3, B]
    utilized_capacity: np.ndarray  # int64 [L, 3, B]
    utilized_instances: np.ndarray  # int64 [L, 3, B]
    energy_ds: np.ndarray  # float [L, 3, B], all instances
    leak: np.ndarray  # float [L, B]
    level_energy: np.ndarray  # float [L, B]
    level_cycles: np.ndarray  # int64 [L, B]
    mac_energy: np.ndarray  # float [B]
    macs: np.ndarray  # int64 [B]
    mac_cycles: np.ndarray  # int64 [B]
    mac_utilized: np.ndarray  # int64 [B]
    energy: np.ndarray  # float [B]
    cycles: np.ndarray  # int64 [B]
    utilization: np.ndarray  # float [B]
    # validity
    unstored: np.ndarray  # bool [3, B]: tensor kept nowhere
    over_capacity: np.ndarray  # bool [L, B]
    under_utilized: np.ndarray  # bool [L, B]
    over_instances: np.ndarray  # bool [L, B]
    over_mesh_x: np.ndarray
    over_mesh_y: np.ndarray
    mac_over: np.ndarray  # bool [B] (instances, X or Y)
    capacity_used: np.ndarray  # int64 [L, B]
    instances_used: np.ndarray  # int64 [L, B]

    @property
    def valid(self) -> np.ndarray:
        return ~(
            self.unstored.any(axis=0)
            | self.over_capacity.any(axis=0)
            | self.under_utilized.any(axis=0)
            | self.over_instances.any(axis=0)
            | self.over_mesh_x.any(axis=0)
            | self.over_mesh_y.any(axis=0)
            | self.mac_over
        )


@dataclass(frozen=True)
class PostSetup:
    """Per-architecture constants of :func:`postprocess` (build once with :func:`post_setup`)."""

    e_ops: np.ndarray  # float [3 ops, L, 1, 1]: read, fill, update energy (0 where the ERT has none)
    blk: np.ndarray  # float [L, 1, 1] block size
    any_blk: bool  # some block size > 1
    blk_int: tuple[int, ...]
    bw_levels: tuple[int, ...]  # levels with a bandwidth limit
    leak: bool  # some leakage energy
    addr_gen: bool  # some addr-gen-energy
    clusters_max: np.ndarray  # float [L, 1]: instances / cluster size


def post_setup(tables: ArchTables) -> PostSetup:
    no_bw = np.isnan(tables.read_bw) & np.isnan(tables.write_bw) & np.isnan(tables.shared_bw)
    e_ops = np.nan_to_num(np.stack([tables.e_read, tables.e_fill, tables.e_update]))
    return PostSetup(
        e_ops=e_ops[:, :, None, None],
        blk=tables.block.astype(np.float64)[:, None, None],
        any_blk=bool((tables.block != 1).any()),
        blk_int=tuple(tables.block.tolist()),
        bw_levels=tuple(np.nonzero(~no_bw)[0].tolist()),
        leak=bool(np.any(tables.e_leak != 0)),
        addr_gen=not bool(np.all(np.isnan(tables.addr_gen))),
        clusters_max=(tables.instances // tables.cluster)[:, None].astype(np.float64),
    )


def _kept_outside(a: np.ndarray) -> np.ndarray:
    """out[l] = a[:l].any(axis=0) for bool a [L, ...]: true at some level outside l."""
    out = np.empty_like(a)
    out[0] = False
    for l in range(1, len(a)):
        np.logical_or(out[l - 1], a[l - 1], out=out[l])
    return out


def _sum_levels_inner_first(a: np.ndarray) -> np.ndarray:
    """a [L, ...] summed over levels from the innermost outward, the order in which Timeloop adds
    its levels' energies (topology.cpp ComputeStats), whatever the batch size."""
    total = a[-1].copy()
    for l in range(len(a) - 2, -1, -1):
        total += a[l]
    return total


# --------------------------------------------------------------------------------------------- #
# tiling.cpp: partition sizes, parent shares, bypass masks
# --------------------------------------------------------------------------------------------- #
class CollapsedTiles(NamedTuple):
    """Per level and tensor [L, 3, B], after Timeloop's tiling step: what reads, fills and updates
    are made of."""

    size: np.ndarray  # int64: tile words per instance, 0 where the level keeps nothing of the tensor
    partition: np.ndarray  # int64: partition size
    content: np.ndarray  # float: accesses the level serves its children (all multicast groups)
    share: np.ndarray  # float: the level's share of its parent's accesses (0 at the outermost kept level)
    peer: np.ndarray | None  # float: accesses taken from a neighbour over a link (None: no link anywhere)
    replication: np.ndarray  # int64: utilized instances
    kept_anywhere: np.ndarray  # bool [3, B]


def _partition_sizes(size: np.ndarray, pfd: np.ndarray) -> np.ndarray:
    """The outermost level's partition is its tile; inward, each level owns partition x tile /
    partition-fraction denominator of its parent's (the denominator is its own tile, or its
    parent's spatial partition below a fan-out)."""
    part = np.empty(size.shape, np.int64)
    p = size[0].copy()
    part[0] = p
    pfd_ok = bool((pfd[1:] != 0).all())
    for cur in range(1, len(size)):
        d = pfd[cur]
        if pfd_ok:
            p = (p * size[cur]) // d
        else:
            nz = d != 0
            p = np.where(nz, (p * size[cur]) // np.where(nz, d, 1), p)
        part[cur] = p
    return part


def _parent_share(acc: np.ndarray, mc: np.ndarray, fan: np.ndarray) -> np.ndarray:
    """Each level's share of its parent's accesses: sum over multicast groups of accesses x
    multicast, over the parent's fan-out (0 at the outermost level, which has no parent)."""
    L, _, H, B = acc.shape
    share = np.zeros((L, NT, B))
    if L > 1:
        f = fan[:-1, None, :]
        sh = (acc[:-1, :, 0, :] * mc[:-1, :, 0, :]) / f
        for h in range(1, H):
            sh = sh + (acc[:-1, :, h, :] * mc[:-1, :, h, :]) / f
        share[1:] = sh
    return share


def _mask_bypassed_levels(
    masked: np.ndarray,
    level_masked: list[bool],
    acc: np.ndarray,
    mc: np.ndarray,
    fan: np.ndarray,
    content: np.ndarray,
    link: np.ndarray,
) -> None:
    """MaskTiles: a level that bypasses a tensor hands its children to its parent, innermost levels
    first (a parent's content includes what it received): the parent's accesses are scaled by the
    children's content x fan-out / its weighted accesses, and its link transfers are dropped. Works
    in place on the caller's working copies ``acc``, ``content`` and ``link``. ``level_masked``:
    per level, whether it bypasses some tensor in some candidate."""
    L, _, H, _ = acc.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        for cur in range(L - 1, 0, -1):
            if not level_masked[cur]:
                continue
            m = masked[cur]
            parent = cur - 1
            weighted = acc[parent, :, 0, :] * mc[parent, :, 0, :]
            for h in range(1, H):
                weighted = weighted + acc[parent, :, h, :] * mc[parent, :, h, :]
            factor = (content[cur] * fan[parent]) / weighted
            any_nz = np.zeros(m.shape, bool)
            tot = None
            for h in range(H):
                a = acc[parent, :, h, :]
                upd = m & (a != 0)
                a = np.where(upd, a * factor, a)
                acc[parent, :, h, :] = a
                any_nz |= upd
                tot = a if tot is None else tot + a
            link[parent] = np.where(any_nz, 0.0, link[parent])
            content[parent] = np.where(m, tot, content[parent])


def _peer_accesses(link: np.ndarray, repl: np.ndarray) -> np.ndarray | None:
    """What a level takes from its neighbours over links: its parent's link transfers spread over
    the level's instances (None when no candidate has any)."""
    if not link.any():
        return None
    peer = np.zeros(link.shape)
    for cur in range(len(link) - 1):
        nz = link[cur] != 0
        if nz.any():
            peer[cur + 1] += np.where(nz, link[cur] / np.maximum(repl[cur + 1], 1), 0.0)
    return peer


def collapse_tiles(ns: NestStats, keep: np.ndarray) -> CollapsedTiles:
    """tiling.cpp ``CollapseDataMovementNest``: partition sizes and parent shares, then
    ``MaskTiles`` (bypassed levels hand their children to their parents) and
    ``ProcessOuterMaskedLevels`` (levels outside the outermost one that keeps a tensor are reset;
    that one has no parent share), then peer accesses from link transfers. ``keep`` bool [L, 3, B]."""
    size = ns.size.astype(np.int64, copy=True)
    acc = ns.acc.astype(np.float64, copy=True)
    mc = ns.mc.astype(np.float64)
    link = ns.link.astype(np.float64, copy=True)
    fan = ns.fanout.astype(np.float64)
    repl = np.repeat(ns.replication.astype(np.int64)[:, None, :], NT, axis=1)
    content = acc[:, :, 0, :].copy()
    for h in range(1, acc.shape[2]):
        content += acc[:, :, h, :]
    part = _partition_sizes(size, ns.pfd)
    share = _parent_share(acc, mc, fan)

    masked = ~keep & (size != 0)
    level_masked = masked.any(axis=(1, 2)).tolist()
    _mask_bypassed_levels(masked, level_masked, acc, mc, fan, content, link)
    if any(level_masked):
        kept_m = ~masked
        size *= kept_m
        part *= kept_m
        content = np.where(masked, 0.0, content)
        share = np.where(masked, 0.0, share)

    kept_outside = _kept_outside(keep)
    share = np.where(~kept_outside & keep, 0.0, share)
    outside_top = ~kept_outside & ~keep
    if outside_top.any():
        for arr, val in ((size, 0), (part, 0), (content, 0.0), (share, 0.0), (link, 0.0), (repl, 0)):
            np.copyto(arr, val, where=outside_top)
    return CollapsedTiles(size, part, content, share, _peer_accesses(link, repl), repl, keep.any(axis=0))


# --------------------------------------------------------------------------------------------- #
# reads, fills, updates; buffer energy and cycles; arithmetic
# --------------------------------------------------------------------------------------------- #
class ActionCounts(NamedTuple):
    """Reads, fills and updates per instance, int64 [L, 3, B]; ``alive``: the level keeps the
    tensor (its tile is not empty)."""

    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    alive: np.ndarray


def action_counts(tiles: CollapsedTiles, rules: TimeloopRules) -> ActionCounts:
    """Read-only tensors: reads = content, fills = parent share. Outputs: updates = content, reads =
    content - partition size (the first read elided), fills = parent share (with ``fill_elision``:
    minus the partition size, except at the outermost level that keeps Outputs). Accesses over
    links count as both. C's round() for reads and updates, truncation for fills."""
    L, _, B = tiles.size.shape
    alive = tiles.size != 0
    peer = tiles.peer
    content = tiles.content
    cpa = content + peer if peer is not None else content
    spa = tiles.share + peer if peer is not None else tiles.share
    reads = _cround(cpa)
    fills = spa.astype(np.int64)
    updates = np.zeros((L, NT, B), np.int64)
    for t in range(NT):
        if not RW[t]:
            continue
        pt = tiles.partition[:, t, :].astype(np.float64)
        updates[:, t, :] = _cround(content[:, t, :])
        reads[:, t, :] = _cround(np.maximum(cpa[:, t, :] - pt, 0.0))
        if rules.fill_elision:
            sp = spa[:, t, :]
            f = np.where(_kept_outside(alive[:, t, :]), sp - pt, sp)
            fills[:, t, :] = _cround(np.maximum(f, 0.0))
    dead = ~alive
    if dead.any():
        for arr in (reads, fills, updates):
            np.copyto(arr, 0, where=dead)
    return ActionCounts(reads, fills, updates, alive)


def _vector_access_energy(counts: ActionCounts, ps: PostSetup) -> np.ndarray:
    """Energy of one cluster's vector accesses, ``ceil(count / block size)`` x action energy, summed
    over read, fill and update [L, 3, B] (in float64 where that is exact, below 2**52)."""
    reads, fills, updates = counts.reads, counts.fills, counts.updates
    er, ef, eu = ps.e_ops
    if not ps.any_blk:
        return ((0.0 + reads * er) + fills * ef) + updates * eu
    if max(int(reads.max(initial=0)), int(fills.max(initial=0)), int(updates.max(initial=0))) < 2**52:
        blk = ps.blk
        return ((0.0 + np.ceil(reads / blk) * er) + np.ceil(fills / blk) * ef) + np.ceil(updates / blk) * eu
    out = np.empty(reads.shape)
    for l, b_ in enumerate(ps.blk_int):
        r_, f_, u_ = ((a[l] + (b_ - 1)) // b_ for a in (reads, fills, updates))
        out[l] = ((0.0 + r_ * er[l]) + f_ * ef[l]) + u_ * eu[l]
    return out


def _buffer_energy(
    counts: ActionCounts, tiles: CollapsedTiles, xy: np.ndarray, tables: ArchTables, ps: PostSetup
) -> np.ndarray:
    """Access energy per level and tensor over all instances [L, 3, B] (buffer.cpp): a cluster's
    vector access energy is shared by its utilized instances (utilized clusters = min(X x Y
    expansion, instances / cluster size)); plus address generation where the architecture gives
    ``addr-gen-energy`` (Timeloop's public adder model is 0 pJ)."""
    clusters = np.minimum(xy, ps.clusters_max)
    cluster_util = (xy / clusters)[:, None, :]
    energy_ds = (_vector_access_energy(counts, ps) / cluster_util) * tiles.replication
    energy_ds *= counts.alive
    if ps.addr_gen:
        ag = np.nan_to_num(tables.addr_gen)[:, None, None]
        rw = np.array(RW)[None, :, None]
        gens = np.where(rw, counts.updates + counts.fills, counts.reads + counts.fills).astype(np.float64)
        energy_ds = energy_ds + gens * ag * clusters[:, None, :] * counts.alive
    return energy_ds


def _bandwidth_cycles(
    counts: ActionCounts,
    xy: np.ndarray,
    repl: np.ndarray,
    mac_cycles: np.ndarray,
    tables: ArchTables,
    ps: PostSetup,
) -> np.ndarray:
    """Cycles per level [L, B]: the compute cycles slowed by the level's read, write and shared
    bandwidth demand (``min(bandwidth / demand)``); levels without a limit run at compute speed."""
    cc = mac_cycles.astype(np.float64)
    L, B = xy.shape
    level_cycles = np.empty((L, B), np.int64)
    level_cycles[:] = mac_cycles
    with np.errstate(divide="ignore", invalid="ignore"):
        for l in ps.bw_levels:
            ratio = xy[l][None, :] / repl[l]  # [3, B]
            tr = np.ceil(counts.reads[l] / ratio)
            tw = np.ceil((counts.fills[l] + counts.updates[l]) / ratio)
            if not (np.isfinite(tr).all() and np.isfinite(tw).all()):
                tr = np.nan_to_num(tr)
                tw = np.nan_to_num(tw)
            rd = np.zeros(B)
            wr = np.zeros(B)
            for t in range(NT):
                rd = rd + tr[t] / cc
                wr = wr + tw[t] / cc
            slow = np.ones(B)
            for bw, demand in (
                (tables.read_bw[l], rd),
                (tables.write_bw[l], wr),
                (tables.shared_bw[l], wr + rd),
            ):
                if not np.isnan(bw):
                    slow = np.where(bw < demand, np.minimum(slow, bw / demand), slow)
            level_cycles[l] = np.ceil(cc / slow).astype(np.int64)
    return level_cycles


class _Arithmetic(NamedTuple):
    """The MACs (arithmetic.cpp), [B]."""

    macs: np.ndarray  # int64
    cycles: np.ndarray  # int64: ceil(MACs / MACs used)
    energy: np.ndarray  # float
    utilized: np.ndarray  # int64: MACs used (X x Y expansion)


def _arithmetic(ns: NestStats, tables: ArchTables) -> _Arithmetic:
    macs = np.rint(ns.compute_accesses * ns.compute_replication).astype(np.int64)
    return _Arithmetic(
        macs=macs,
        cycles=np.ceil(macs / ns.compute_replication.astype(np.float64)).astype(np.int64),
        energy=macs * tables.e_mac,
        utilized=(ns.mac_x * ns.mac_y).astype(np.int64),
    )


def _leakage(ns: NestStats, cycles: np.ndarray, tables: ArchTables, ps: PostSetup) -> np.ndarray:
    """Leak energy x cycles x utilized instances per level [L, B] (Timeloop >= 2023-09, which keeps
    the replication of reset levels: every tensor of a level shares it)."""
    if not ps.leak:
        return np.zeros(ns.replication.shape)
    return tables.e_leak[:, None] * cycles.astype(np.float64)[None, :] * np.maximum(1.0, ns.replication)


def _limit_checks(
    cap_used: np.ndarray, inst_used: np.ndarray, ns: NestStats, mac: _Arithmetic, tables: ArchTables
) -> dict[str, np.ndarray]:
    """buffer.cpp's checks per level [L, B]: the kept tiles per instance against depth x block
    size / multiple buffering (and the minimum utilization), the utilized instances and the X/Y
    fan-out against the hardware's; and the MACs used against the MAC array [B]."""
    eff = tables.eff_size[:, None]
    bounded = eff >= 0
    over_cap = bounded & (cap_used > eff)
    min_util = tables.min_util[:, None]
    under = bounded & ~over_cap & (min_util > 0) & (cap_used < eff * min_util)
    over_inst = inst_used > tables.instances[:, None]
    over_x = ~over_inst & (ns.x_exp > tables.mesh_x[:, None])
    over_y = ~over_inst & ~over_x & (ns.y_exp > tables.mesh_y[:, None])
    mac_over = (
        (mac.utilized > tables.mac_instances)
        | (ns.mac_x > tables.mac_mesh_x)
        | (ns.mac_y > tables.mac_mesh_y)
    )
    return {
        "over_capacity": over_cap,
        "under_utilized": under,
        "over_instances": over_inst,
        "over_mesh_x": over_x,
        "over_mesh_y": over_y,
        "mac_over": mac_over,
    }


def postprocess(
    ns: NestStats, keep: np.ndarray, tables: ArchTables, rules: TimeloopRules, setup: PostSetup | None = None
) -> PostResult:
    """Steps 1-3 of the module docstring. ``keep`` is bool [L, 3, B]; ``setup``:
    :func:`post_setup` of ``tables`` (built here when not given)."""
    ps = setup if setup is not None else post_setup(tables)
    tiles = collapse_tiles(ns, keep)
    counts = action_counts(tiles, rules)
    xy = (ns.x_exp * ns.y_exp).astype(np.float64)  # [L, B]
    energy_ds = _buffer_energy(counts, tiles, xy, tables, ps)
    mac = _arithmetic(ns, tables)
    level_cycles = _bandwidth_cycles(counts, xy, tiles.replication, mac.cycles, tables, ps)
    cycles = np.maximum(mac.cycles, level_cycles.max(axis=0))
    leak = _leakage(ns, cycles, tables, ps)
    level_energy = energy_ds.sum(axis=1) + leak
    cap_used = tiles.size.sum(axis=1)  # [L, B] (size is 0 where nothing is kept)
    inst_used = tiles.replication.max(axis=1)  # [L, B]
    return PostResult(
        reads=counts.reads,
        fills=counts.fills,
        updates=counts.updates,
        partition=tiles.partition,
        utilized_capacity=tiles.size,
        utilized_instances=tiles.replication * counts.alive,
        energy_ds=energy_ds,
        leak=leak,
        level_energy=level_energy,
        level_cycles=level_cycles,
        mac_energy=mac.energy,
        macs=mac.macs,
        mac_cycles=mac.cycles,
        mac_utilized=mac.utilized,
        energy=mac.energy + _sum_levels_inner_first(level_energy),
        cycles=cycles,
        utilization=(mac.macs / tables.mac_instances) / cycles,
        unstored=~tiles.kept_anywhere,
        capacity_used=cap_used,
        instances_used=inst_used,
        **_limit_checks(cap_used, inst_used, ns, mac, tables),
    )
