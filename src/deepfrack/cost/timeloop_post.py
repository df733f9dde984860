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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
    ``actions``: ERT action names tried in order for each operation (include/model/topology.hpp).
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
        "read": ("random_read", "read"),
        "fill": ("random_fill", "write"),
        "update": ("random_update", "random_fill", "write"),
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
        "read": ("random_read", "read"),
        "fill": ("random_fill", "random_write", "fill", "write"),
        "update": ("random_update", "random_write", "update", "write"),
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
    """Per storage level in Timeloop order (0 = innermost) the numbers the model needs."""

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


def arch_tables(
    arch: Architecture, energy: EnergyTable, rules: TimeloopRules, source: str | None = None
) -> ArchTables:
    """Collect per-level specs and ERT energies. InputError when a level's ERT lacks read/fill/update
    (or the MACs lack compute); levels that can keep nothing are exempt (they are checked when a
    mapping keeps a tensor there)."""
    levels = list(reversed(arch.levels))
    L = len(levels)
    block = np.ones(L, np.int64)
    eff = np.full(L, -1, np.int64)
    inst = np.ones(L, np.int64)
    clu = np.ones(L, np.int64)
    mx = np.ones(L, np.int64)
    my = np.ones(L, np.int64)
    rbw = np.full(L, np.nan)
    wbw = np.full(L, np.nan)
    sbw = np.full(L, np.nan)
    mu = np.zeros(L)
    er = np.full(L, np.nan)
    ef = np.full(L, np.nan)
    eu = np.full(L, np.nan)
    el = np.zeros(L)
    ag = np.full(L, np.nan)
    for i, lv in enumerate(levels):
        block[i] = max(1, int(lv.block_size))
        size = lv.size_words  # Timeloop checks every level whose size is given (buffer.cpp)
        if size is not None:
            mb = float(lv.multiple_buffering or 1.0)
            eff[i] = int(np.floor(size / mb))
        inst[i] = lv.instances
        clu[i] = max(1, int(lv.cluster_size or 1))
        mx[i] = lv.mesh_x
        my[i] = lv.mesh_y
        if lv.read_bandwidth is not None:
            rbw[i] = float(lv.read_bandwidth)
        if lv.write_bandwidth is not None:
            wbw[i] = float(lv.write_bandwidth)
        if lv.shared_bandwidth is not None:
            sbw[i] = float(lv.shared_bandwidth)
        attrs = lv.attributes or {}
        v = _attr(attrs, "min-utilization", "min_utilization")
        if v is not None:
            mu[i] = float(v)
        v = _attr(attrs, "addr-gen-energy", "addr_gen_energy")
        if v is not None:
            ag[i] = float(v)
        acts = _component_actions(energy, lv.name)
        for arr, op in ((er, "read"), (ef, "fill"), (eu, "update")):
            e = _pick(acts, rules.actions[op])
            if e is not None:
                arr[i] = e
        e = _pick(acts, rules.actions["leak"])
        el[i] = e if (e is not None and rules.leakage) else 0.0
        v = _attr(attrs, "vector-access-energy", "vector_access_energy")
        if v is not None:  # a user-given energy wins over the ERT (buffer.cpp UpdateOpEnergyViaERT)
            er[i] = ef[i] = eu[i] = float(v)
    acts = _component_actions(energy, arch.arithmetic.name)
    e_mac = _pick(acts, rules.actions["compute"])
    if e_mac is None:
        v = _attr(arch.arithmetic.attributes or {}, "energy")
        if v is None:
            raise InputError(
                source or energy.origin or None,
                f"{arch.arithmetic.name}",
                f"no compute energy: the energy table has none of the actions "
                f"{', '.join(rules.actions['compute'])} for {arch.arithmetic.name}",
            )
        e_mac = float(v)
    return ArchTables(
        names=tuple(lv.name for lv in levels),
        block=block,
        eff_size=eff,
        instances=inst,
        cluster=clu,
        mesh_x=mx,
        mesh_y=my,
        read_bw=rbw,
        write_bw=wbw,
        shared_bw=sbw,
        min_util=mu,
        e_read=er,
        e_fill=ef,
        e_update=eu,
        e_leak=el,
        addr_gen=ag,
        mac_instances=int(arch.arithmetic.instances),
        mac_mesh_x=int(arch.arithmetic.mesh_x),
        mac_mesh_y=int(arch.arithmetic.mesh_y),
        e_mac=float(e_mac),
        mac_name=arch.arithmetic.name,
    )


def check_energy_for_keep(tables: ArchTables, keep: np.ndarray, source: str | None = None) -> None:
    """InputError when a level that keeps a tensor in some candidate has no ERT read/fill/update.
    ``keep`` is bool [L, 3, B] (Timeloop level order)."""
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
    """What Timeloop's nest analysis leaves, candidate axis last (B candidates, L storage levels in
    Timeloop order, 3 tensors):

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
    """Timeloop's statistics for a batch, candidate axis last, levels in Timeloop order (0 =
    innermost)."""

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


def _any_from(a: np.ndarray) -> np.ndarray:
    """out[l] = a[l:].any(axis=0) for bool a [L, ...]."""
    out = np.empty_like(a)
    out[-1] = a[-1]
    for l in range(len(a) - 2, -1, -1):
        np.logical_or(out[l + 1], a[l], out=out[l])
    return out


def postprocess(
    ns: NestStats, keep: np.ndarray, tables: ArchTables, rules: TimeloopRules, setup: PostSetup | None = None
) -> PostResult:
    """Steps 1-3 of the module docstring. ``keep`` is bool [L, 3, B] in Timeloop level order;
    ``setup``: :func:`post_setup` of ``tables`` (built here when not given)."""
    ps = setup if setup is not None else post_setup(tables)
    L, _, B = ns.size.shape
    H = ns.acc.shape[2]
    size = ns.size.astype(np.int64, copy=True)
    acc = ns.acc.astype(np.float64, copy=True)
    mc = ns.mc.astype(np.float64)
    fan = ns.fanout.astype(np.float64)
    link = ns.link.astype(np.float64, copy=True)
    repl = np.repeat(ns.replication.astype(np.int64)[:, None, :], NT, axis=1)
    content = acc[:, :, 0, :].copy()
    for h in range(1, H):
        content += acc[:, :, h, :]

    # partition sizes (before masking)
    part = np.empty((L, NT, B), np.int64)
    p = size[L - 1].copy()
    part[L - 1] = p
    pfd_ok = bool((ns.pfd[: L - 1] != 0).all())
    for cur in range(L - 2, -1, -1):
        d = ns.pfd[cur]
        if pfd_ok:
            p = (p * size[cur]) // d
        else:
            nz = d != 0
            p = np.where(nz, (p * size[cur]) // np.where(nz, d, 1), p)
        part[cur] = p

    # parent access share (before masking): the next level out serves this one
    share = np.zeros((L, NT, B))
    if L > 1:
        f = fan[1:, None, :]
        sh = (acc[1:, :, 0, :] * mc[1:, :, 0, :]) / f
        for h in range(1, H):
            sh = sh + (acc[1:, :, h, :] * mc[1:, :, h, :]) / f
        share[: L - 1] = sh

    # MaskTiles: a bypassed level hands its children to the next level out (level by level, the
    # outer level's content includes what it received); the bypassed level is emptied
    masked = ~keep & (size != 0)  # [L, 3, B]
    any_masked = masked.any(axis=(1, 2)).tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        for cur in range(L - 1):
            if not any_masked[cur]:
                continue
            m = masked[cur]
            outer = cur + 1
            weighted = acc[outer, :, 0, :] * mc[outer, :, 0, :]
            for h in range(1, H):
                weighted = weighted + acc[outer, :, h, :] * mc[outer, :, h, :]
            all_children = content[cur] * fan[outer]
            factor = all_children / weighted
            any_nz = np.zeros((NT, B), bool)
            tot = None
            for h in range(H):
                a = acc[outer, :, h, :]
                upd = m & (a != 0)
                a = np.where(upd, a * factor, a)
                acc[outer, :, h, :] = a
                any_nz |= upd
                tot = a if tot is None else tot + a
            link[outer] = np.where(any_nz, 0.0, link[outer])
            content[outer] = np.where(m, tot, content[outer])
    if any(any_masked):
        kept_m = ~masked
        size *= kept_m
        part *= kept_m
        content = np.where(masked, 0.0, content)
        share = np.where(masked, 0.0, share)

    # ProcessOuterMaskedLevels: reset bypassed levels above the outermost kept one; the outermost
    # kept level has no parent share
    kept_from = _any_from(keep)  # kept at this level or above
    kept_any = kept_from[0]  # [3, B]
    seen = np.zeros((L, NT, B), bool)  # kept above
    seen[:-1] = kept_from[1:]
    above_top = ~seen & ~keep
    share = np.where(~seen & keep, 0.0, share)
    if above_top.any():
        for arr, val in ((size, 0), (part, 0), (content, 0.0), (share, 0.0), (link, 0.0), (repl, 0)):
            np.copyto(arr, val, where=above_top)
        np.copyto(acc, 0.0, where=above_top[:, :, None, :])

    # peer accesses from link transfers (the child of a linked level, cur-1, is kept)
    has_peer = bool(link.any())
    peer = np.zeros((L, NT, B))
    if has_peer:
        for cur in range(L - 1, 0, -1):
            lt = link[cur]
            nz = lt != 0
            if nz.any():
                peer[cur - 1] += np.where(nz, lt / np.maximum(repl[cur - 1], 1), 0.0)

    # reads / fills / updates (C round() for reads and updates, truncation for fills)
    alive = size != 0
    cpa = content + peer if has_peer else content
    spa = share + peer if has_peer else share
    reads = _cround(cpa)  # (Outputs below)
    fills = spa.astype(np.int64)
    updates = np.zeros((L, NT, B), np.int64)
    for t in range(NT):
        if RW[t]:
            pt = part[:, t, :].astype(np.float64)
            updates[:, t, :] = _cround(content[:, t, :])
            reads[:, t, :] = _cround(np.maximum(cpa[:, t, :] - pt, 0.0))
            if rules.fill_elision:
                kept_above = np.zeros((L, B), bool)
                kept_above[:-1] = _any_from(alive[:, t, :])[1:]
                sp = spa[:, t, :]
                f = np.where(kept_above, sp - pt, sp)
                fills[:, t, :] = _cround(np.maximum(f, 0.0))
    dead = ~alive
    if dead.any():
        for arr in (reads, fills, updates):
            np.copyto(arr, 0, where=dead)

    # ---- buffer model ------------------------------------------------------------------------
    util_inst = repl * alive
    inst_for_check = repl.max(axis=1)  # [L, B]
    cap_used = size.sum(axis=1)  # [L, B] (size is 0 where nothing is kept)
    er, ef, eu = ps.e_ops
    # vector accesses ceil(count / block): in float64, exact below 2**52
    if not ps.any_blk:
        cluster_e = ((0.0 + reads * er) + fills * ef) + updates * eu
    elif max(int(reads.max(initial=0)), int(fills.max(initial=0)), int(updates.max(initial=0))) < 2**52:
        blk = ps.blk
        cluster_e = ((0.0 + np.ceil(reads / blk) * er) + np.ceil(fills / blk) * ef) + np.ceil(
            updates / blk
        ) * eu
    else:
        cluster_e = np.empty((L, NT, B))
        for l in range(L):
            b_ = ps.blk_int[l]
            r_, f_, u_ = (
                (reads[l] + (b_ - 1)) // b_,
                (fills[l] + (b_ - 1)) // b_,
                (updates[l] + (b_ - 1)) // b_,
            )
            cluster_e[l] = ((0.0 + r_ * er[l]) + f_ * ef[l]) + u_ * eu[l]
    # the access energy of a cluster is shared by its utilized instances (buffer.cpp
    # FinalizeBufferEnergy): utilized clusters = min(X x Y expansion, instances / cluster size)
    xy = (ns.x_exp * ns.y_exp).astype(np.float64)  # [L, B]
    clusters = np.minimum(xy, ps.clusters_max)
    cluster_util = (xy / clusters)[:, None, :]
    energy_ds = (cluster_e / cluster_util) * repl
    energy_ds *= alive
    # address generation (only when the architecture gives addr-gen-energy; Timeloop's public
    # adder model is 0 pJ)
    if ps.addr_gen:
        ag = np.nan_to_num(tables.addr_gen)[:, None, None]
        rw = np.array(RW)[None, :, None]
        gens = np.where(rw, updates + fills, reads + fills).astype(np.float64)
        energy_ds = energy_ds + gens * ag * clusters[:, None, :] * alive

    # compute
    macs = np.rint(ns.compute_accesses * ns.compute_replication).astype(np.int64)
    mac_cycles = np.ceil(macs / ns.compute_replication.astype(np.float64)).astype(np.int64)
    mac_energy = macs * tables.e_mac
    mac_utilized = (ns.mac_x * ns.mac_y).astype(np.int64)

    # bandwidth and cycles (levels without a bandwidth limit run at compute speed)
    cc = mac_cycles.astype(np.float64)
    level_cycles = np.empty((L, B), np.int64)
    level_cycles[:] = np.ceil(cc / 1.0).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for l in ps.bw_levels:
            rb, wb, sb = tables.read_bw[l], tables.write_bw[l], tables.shared_bw[l]
            ratio = xy[l][None, :] / repl[l]  # [3, B]
            tr = np.ceil(reads[l] / ratio)
            tw = np.ceil((fills[l] + updates[l]) / ratio)
            if not (np.isfinite(tr).all() and np.isfinite(tw).all()):
                tr = np.nan_to_num(tr)
                tw = np.nan_to_num(tw)
            rd = np.zeros(B)
            wr = np.zeros(B)
            for t in range(NT):
                rd = rd + tr[t] / cc
                wr = wr + tw[t] / cc
            slow = np.ones(B)
            if not np.isnan(rb):
                slow = np.where(rb < rd, np.minimum(slow, rb / rd), slow)
            if not np.isnan(wb):
                slow = np.where(wb < wr, np.minimum(slow, wb / wr), slow)
            if not np.isnan(sb):
                tot = wr + rd
                slow = np.where(sb < tot, np.minimum(slow, sb / tot), slow)
            level_cycles[l] = np.ceil(cc / slow).astype(np.int64)
    cycles = np.maximum(mac_cycles, level_cycles.max(axis=0))

    # leakage and level energy
    # Timeloop >= 2023-09 keeps the replication of reset levels; all tensors share it
    if ps.leak:
        leaks_per_cycle = np.maximum(1.0, ns.replication.astype(np.float64))
        leak = tables.e_leak[:, None] * cycles.astype(np.float64)[None, :] * leaks_per_cycle
    else:
        leak = np.zeros((L, B))
    level_energy = energy_ds.sum(axis=1) + leak
    energy = mac_energy + level_energy.sum(axis=0)
    utilization = (macs / tables.mac_instances) / cycles

    # validity
    eff = tables.eff_size[:, None]
    bounded = eff >= 0
    over_cap = bounded & (cap_used > eff)
    under = bounded & ~over_cap & (tables.min_util[:, None] > 0) & (cap_used < eff * tables.min_util[:, None])
    over_inst = inst_for_check > tables.instances[:, None]
    over_x = ~over_inst & (ns.x_exp > tables.mesh_x[:, None])
    over_y = ~over_inst & ~over_x & (ns.y_exp > tables.mesh_y[:, None])
    mac_over = (
        (mac_utilized > tables.mac_instances)
        | (ns.mac_x > tables.mac_mesh_x)
        | (ns.mac_y > tables.mac_mesh_y)
    )
    return PostResult(
        reads=reads,
        fills=fills,
        updates=updates,
        partition=part,
        utilized_capacity=size,
        utilized_instances=util_inst,
        energy_ds=energy_ds,
        leak=leak,
        level_energy=level_energy,
        level_cycles=level_cycles,
        mac_energy=mac_energy,
        macs=macs,
        mac_cycles=mac_cycles,
        mac_utilized=mac_utilized,
        energy=energy,
        cycles=cycles,
        utilization=utilization,
        unstored=~kept_any,
        over_capacity=over_cap,
        under_utilized=under,
        over_instances=over_inst,
        over_mesh_x=over_x,
        over_mesh_y=over_y,
        mac_over=mac_over,
        capacity_used=cap_used,
        instances_used=inst_for_check,
    )
