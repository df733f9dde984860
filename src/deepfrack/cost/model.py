"""deepfrack's built-in, Timeloop-equivalent analytical cost model.

Public API::

    evaluate(arch, energy, layer, mapping, rules=None) -> ModelResult
    evaluate_batch(arch, energy, layer, batch, rules=None) -> BatchResult
    (rules None: by the architecture's format, ``default_rules``:
     v0.4 -> TIMELOOP_2024, v0.3 -> TIMELOOP_2023)
    LayerModel(arch, energy, layer, rules)      # the same, with the per-architecture tables cached

``arch`` is a :class:`~deepfrack.arch.spec.Architecture`, ``energy`` an
:class:`~deepfrack.arch.spec.EnergyTable` (an Accelergy ERT or the built-in table), ``layer`` a
:class:`~deepfrack.workload.layer.Layer` (Timeloop's CNN-layer problem; padding is not part of it),
``mapping`` a :class:`~deepfrack.cost.mapping.LoopMapping` and ``batch`` a
:class:`~deepfrack.cost.mapping.MappingBatch`.

The model reproduces Timeloop's counts exactly (per level and tensor: reads, fills, updates,
partition size, utilized capacity and instances), and its energy and cycles (see
:mod:`deepfrack.cost.analytic` for the nest analysis and :mod:`deepfrack.cost.timeloop_post` for
the tiling, buffer and arithmetic models). ``rules`` selects the Timeloop version reproduced:
``TIMELOOP_2023`` (the build the original DeepFrack used; first Outputs fills not elided, no
leakage) or ``TIMELOOP_2024`` (Timeloop v3/v4 with its v0.4 front end: first fills elided, leakage
charged). Units: energy in pJ, counts in words, cycles in cycles.

A mapping whose tiles do not fit is still evaluated: ``valid`` is False and ``violations`` says
which level breaks which limit (Timeloop's own checks: tile words per instance vs depth x block
size / multiple buffering, instances and mesh X/Y vs the spatial fan-out used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from deepfrack.arch.spec import Architecture, EnergyTable
from deepfrack.cost.analytic import analytic_setup, analyze
from deepfrack.cost.mapping import LoopMapping, MappingBatch, level_fanouts, validate_mapping
from deepfrack.cost.nest import TIME, LoopNest, build_nest
from deepfrack.cost.timeloop_post import (
    RULES,
    TIMELOOP_2023,
    TIMELOOP_2024,
    ArchTables,
    NestStats,
    PostResult,
    TimeloopRules,
    arch_tables,
    check_energy_for_keep,
    post_setup,
    postprocess,
)
from deepfrack.dims import TENSORS
from deepfrack.errors import InputError
from deepfrack.workload.layer import Layer
from deepfrack.workload.shapes import DeclaredShape

if TYPE_CHECKING:
    from deepfrack.cost.nest_sim import SimResult

__all__ = [
    "RULES",
    "TIMELOOP_2023",
    "TIMELOOP_2024",
    "BatchResult",
    "LayerModel",
    "LevelResult",
    "ModelResult",
    "TensorStats",
    "TimeloopRules",
    "evaluate",
    "evaluate_batch",
    "evaluate_shape",
    "get_rules",
]


def default_rules(arch: Architecture) -> TimeloopRules:
    """The Timeloop version whose reference outputs exist for this input format: v0.4 files are read
    by Timeloop's 2023-09+ front end (TIMELOOP_2024); v0.3 files come from the build the original
    DeepFrack used (TIMELOOP_2023)."""
    return TIMELOOP_2024 if str(arch.version).startswith("0.4") else TIMELOOP_2023


def get_rules(name: str | TimeloopRules) -> TimeloopRules:
    """Rules by name ("timeloop-2023", "timeloop-2024"); ValueError naming the known ones."""
    if isinstance(name, TimeloopRules):
        return name
    key = str(name).strip().lower()
    for alias, r in (("2023", TIMELOOP_2023), ("2024", TIMELOOP_2024)):
        if key in (r.name, alias):
            return r
    raise ValueError(f"unknown Timeloop rules {name!r}; expected one of {', '.join(RULES)}")


# --------------------------------------------------------------------------------------------- #
# results
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class TensorStats:
    """One tensor at one storage level. Counts are per instance, as Timeloop prints them;
    ``energy_pJ`` is over all utilized instances."""

    reads: int
    fills: int
    updates: int
    utilized_instances: int
    utilized_capacity: int
    partition_size: int
    energy_pJ: float


@dataclass(frozen=True)
class LevelResult:
    """One storage level: its kept tensors' statistics, energy (pJ, all instances, leakage
    included) and cycles."""

    name: str
    instances: int
    energy_pJ: float
    leakage_pJ: float
    cycles: int
    tensors: Mapping[str, TensorStats]

    def totals(self, kind: str) -> dict[str, int]:
        """{tensor: count summed over instances} for kind "reads", "fills" or "updates" (0 for a
        tensor the level does not keep)."""
        out = {}
        for t in TENSORS:
            st = self.tensors.get(t)
            out[t] = 0 if st is None else getattr(st, kind) * st.utilized_instances
        return out


@dataclass(frozen=True)
class ModelResult:
    """Timeloop's statistics for one mapping. ``levels`` follow ``Architecture.levels`` (outermost
    first)."""

    energy_pJ: float
    cycles: int
    macs: int
    utilization: float
    valid: bool
    violations: tuple[str, ...]
    levels: tuple[LevelResult, ...]
    mac_name: str
    mac_energy_pJ: float
    mac_cycles: int
    mac_utilized: int
    rules: str
    mapping: LoopMapping | None = None

    def level(self, name: str) -> LevelResult:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    @property
    def pj_per_mac(self) -> float:
        return self.energy_pJ / self.macs if self.macs else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``deepfrack model --json`` document (counts summed over instances)."""
        return {
            "energy_pJ": self.energy_pJ,
            "cycles": self.cycles,
            "macs": self.macs,
            "utilization": self.utilization,
            "valid": self.valid,
            "violations": list(self.violations),
            "rules": self.rules,
            "arithmetic": {
                "name": self.mac_name,
                "energy_pJ": self.mac_energy_pJ,
                "cycles": self.mac_cycles,
                "utilized_instances": self.mac_utilized,
            },
            "levels": [
                {
                    "name": lv.name,
                    "energy_pJ": lv.energy_pJ,
                    "leakage_pJ": lv.leakage_pJ,
                    "cycles": lv.cycles,
                    "reads": lv.totals("reads"),
                    "fills": lv.totals("fills"),
                    "updates": lv.totals("updates"),
                    "per_instance": {
                        t: {
                            "reads": st.reads,
                            "fills": st.fills,
                            "updates": st.updates,
                            "utilized_instances": st.utilized_instances,
                            "utilized_capacity": st.utilized_capacity,
                            "partition_size": st.partition_size,
                            "energy_pJ": st.energy_pJ,
                        }
                        for t, st in lv.tensors.items()
                    },
                }
                for lv in self.levels
            ],
        }


@dataclass
class BatchResult:
    """Statistics of many mappings of one layer, as arrays over candidates (B). Level axes follow
    ``Architecture.levels`` (outermost first); tensor axes are (Weights, Inputs, Outputs).

    energy_pJ [B], cycles [B], macs [B], utilization [B], valid [B];
    level_energy_pJ [B, L]; reads, fills, updates [B, L, 3] per instance; utilized_instances,
    utilized_capacity, partition_size [B, L, 3]; ``post``: the same as Timeloop's statistics with the
    candidate axis last (:class:`~deepfrack.cost.timeloop_post.PostResult`); ``bad_spatial`` [B]:
    spatial factors on a level without a fan-out."""

    energy_pJ: np.ndarray
    cycles: np.ndarray
    macs: np.ndarray
    utilization: np.ndarray
    valid: np.ndarray
    level_energy_pJ: np.ndarray
    level_cycles: np.ndarray
    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    utilized_instances: np.ndarray
    utilized_capacity: np.ndarray
    partition_size: np.ndarray
    energy_ds_pJ: np.ndarray
    leakage_pJ: np.ndarray
    post: PostResult = field(repr=False)
    bad_spatial: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.energy_pJ.shape[0])


# --------------------------------------------------------------------------------------------- #
# the evaluator
# --------------------------------------------------------------------------------------------- #
class LayerModel:
    """Model of one layer on one architecture with one energy table. Construct once, evaluate many
    mappings (:meth:`evaluate`, :meth:`evaluate_batch`)."""

    def __init__(
        self,
        arch: Architecture,
        energy: EnergyTable,
        layer: Layer,
        rules: TimeloopRules | str | None = None,
        source: str | None = None,
        tables: ArchTables | None = None,
    ):
        self.arch = arch
        self.energy = energy
        self.layer = _check_layer(layer)
        self.rules = default_rules(arch) if rules is None else get_rules(rules)
        self.source = source
        # ``tables``: ``arch_tables(arch, energy, rules)`` computed by the caller (a mapper builds one
        # model per tile shape of a layer and shares them)
        self.tables: ArchTables = (
            tables if tables is not None else arch_tables(arch, energy, self.rules, source)
        )
        self.fanouts = level_fanouts(arch)
        self.level_names = arch.level_names
        self._setup = analytic_setup(self.fanouts, self.layer, self.rules.translation)
        self._post = post_setup(self.tables)
        t = self.tables
        # levels whose energy table lacks read, fill or update (an error if a mapping keeps a tensor there)
        self._no_energy = bool(
            np.isnan(t.e_read).any() or np.isnan(t.e_fill).any() or np.isnan(t.e_update).any()
        )

    # ---- batch ------------------------------------------------------------------------------
    def evaluate_batch(self, batch: MappingBatch) -> BatchResult:
        """Evaluate every candidate of ``batch`` (vectorized)."""
        if batch.temporal.shape[1] != len(self.level_names):
            raise ValueError(
                f"batch has {batch.temporal.shape[1]} levels, the architecture {len(self.level_names)}"
            )
        keep = _keep_levels_first(batch)
        if self._no_energy:
            check_energy_for_keep(self.tables, keep, self.source or self.energy.origin or None)
        ar = analyze(batch, self.fanouts, self.layer, self.rules.translation, self._setup)
        post = postprocess(ar.stats, keep, self.tables, self.rules, self._post)

        def per_candidate(a: np.ndarray) -> np.ndarray:  # [L, (3,) B] -> [B, L, (3)]
            return a.transpose(2, 0, 1) if a.ndim == 3 else a.T

        return BatchResult(
            energy_pJ=post.energy,
            cycles=post.cycles,
            macs=post.macs,
            utilization=post.utilization,
            valid=post.valid & ~ar.bad_spatial,
            level_energy_pJ=per_candidate(post.level_energy),
            level_cycles=per_candidate(post.level_cycles),
            reads=per_candidate(post.reads),
            fills=per_candidate(post.fills),
            updates=per_candidate(post.updates),
            utilized_instances=per_candidate(post.utilized_instances),
            utilized_capacity=per_candidate(post.utilized_capacity),
            partition_size=per_candidate(post.partition),
            energy_ds_pJ=per_candidate(post.energy_ds),
            leakage_pJ=per_candidate(post.leak),
            post=post,
            bad_spatial=ar.bad_spatial,
        )

    # ---- one mapping ------------------------------------------------------------------------
    def evaluate(self, mapping: LoopMapping, method: str = "analytic") -> ModelResult:
        """Evaluate one mapping. ``method`` "analytic" (closed form) or "simulate" (the reference
        simulator of Timeloop's nest analysis; slow, for cross-checks)."""
        validate_mapping(mapping, self.arch, self.layer, source=mapping.source)
        batch = MappingBatch.from_mappings([mapping])
        if method == "analytic":
            br = self.evaluate_batch(batch)
            post, bad = br.post, br.bad_spatial
        elif method == "simulate":
            keep = _keep_levels_first(batch)
            check_energy_for_keep(self.tables, keep, self.source or self.energy.origin or None)
            stats = simulate_stats(self.arch, self.layer, mapping, self.rules.translation)
            post = postprocess(stats, keep, self.tables, self.rules, self._post)
            bad = np.zeros(1, bool)
        else:
            raise ValueError(f"unknown method {method!r}; expected 'analytic' or 'simulate'")
        return _result(post, 0, self.arch, self.tables, self.rules, mapping, bool(bad[0]))


def evaluate(
    arch: Architecture,
    energy: EnergyTable,
    layer: Layer,
    mapping: LoopMapping,
    rules: TimeloopRules | str | None = None,
    method: str = "analytic",
) -> ModelResult:
    """Energy, cycles, counts and validity of ``mapping`` for ``layer`` on ``arch`` (see the
    module docstring)."""
    return LayerModel(arch, energy, layer, rules).evaluate(mapping, method)


def evaluate_batch(
    arch: Architecture,
    energy: EnergyTable,
    layer: Layer,
    batch: MappingBatch,
    rules: TimeloopRules | str | None = None,
) -> BatchResult:
    """:meth:`LayerModel.evaluate_batch` without keeping the evaluator."""
    return LayerModel(arch, energy, layer, rules).evaluate_batch(batch)


#: the most non-trivial temporal loops :func:`evaluate_shape` simulates (2^k steps; 16 loops take
#: about 7 s of CPU time, each further loop doubles that)
MAX_SIMULATED_LOOPS = 18


def evaluate_shape(
    arch: Architecture,
    energy: EnergyTable,
    shape: DeclaredShape,
    mapping: LoopMapping,
    rules: TimeloopRules | str | None = None,
    source: str | None = None,
) -> ModelResult:
    """Energy, cycles, counts and validity of ``mapping`` (over the shape's own dimensions, as
    ``mapping_from_directives`` builds it for a problem with a ``declared`` shape) for a declared
    problem shape that does not embed in the CNN layer, such as a grouped convolution with G > 1.
    The nest analysis is the reference simulator of Timeloop's recursion run on the shape's own
    projections (exact, but 2^k steps for k non-trivial temporal loops: more than
    ``MAX_SIMULATED_LOOPS`` is an InputError); tiling, buffers, energy and cycles are the same
    post-processing as for the CNN layer."""
    validate_mapping(mapping, arch, None, source=mapping.source, bounds=shape.bounds)
    rules_ = default_rules(arch) if rules is None else get_rules(rules)
    tables = arch_tables(arch, energy, rules_, source)
    keep = np.array([[lv.keep for lv in mapping.levels]], bool).transpose(1, 2, 0)  # [L, 3, 1]
    check_energy_for_keep(tables, keep, source or energy.origin or None)
    stats = shape_stats(arch, shape, mapping, rules_.translation)
    post = postprocess(stats, keep, tables, rules_, post_setup(tables))
    return _result(post, 0, arch, tables, rules_, mapping, False)


def shape_stats(
    arch: Architecture, shape: DeclaredShape, mapping: LoopMapping, translation: str = "legacy"
) -> NestStats:
    """NestStats (batch of one) of a mapping of a declared shape, from the reference simulator run on
    the shape's projections (see :func:`evaluate_shape`)."""
    from deepfrack.cost.nest_sim import simulate

    nest = build_nest(arch, mapping)
    k = sum(1 for lp in nest.loops if lp.kind == TIME and lp.end > 1)
    if k > MAX_SIMULATED_LOOPS:
        raise InputError(
            mapping.source,
            "mapping",
            f"{k} temporal loops: a problem whose shape deepfrack's closed form does not cover is "
            f"simulated loop by loop, 2^k steps, at most {MAX_SIMULATED_LOOPS} loops",
        )
    res = simulate(nest, None, translation, projection=shape.projection, n_dims=len(shape.bounds))
    return stats_of_simulation(res, nest)


# --------------------------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------------------------- #
def _keep_levels_first(batch: MappingBatch) -> np.ndarray:
    """The batch's keep flags as bool [L, 3, B] (candidate axis last, as the kernels take them)."""
    return np.ascontiguousarray(batch.keep.transpose(1, 2, 0))


def _check_layer(layer: Layer) -> Layer:
    if layer.kind not in ("conv", "fc") or layer.groups != 1:
        raise InputError(
            None,
            f"layer {layer.name}",
            f"the Timeloop CNN-layer model covers conv and fc layers with groups=1, "
            f"not {layer.kind} (groups={layer.groups})",
        )
    return layer


def simulate_stats(
    arch: Architecture, layer: Layer, mapping: LoopMapping, translation: str = "legacy"
) -> NestStats:
    """NestStats of one mapping from the reference simulator (batch of one)."""
    from deepfrack.cost.nest_sim import simulate

    nest = build_nest(arch, mapping)
    return stats_of_simulation(simulate(nest, layer, translation), nest)


def stats_of_simulation(res: SimResult, nest: LoopNest) -> NestStats:
    """The NestStats (batch of one) of a reference simulation of ``nest``."""
    from deepfrack.cost.nest import SPACE_X, SPACE_Y

    L = len(res.tiles)
    H = max([len(res.tiles[l][t].access) for l in range(L) for t in range(3)] + [1])
    size = np.zeros((L, 3, 1), np.int64)
    pfd = np.zeros((L, 3, 1), np.int64)
    acc = np.zeros((L, 3, H, 1))
    mc = np.ones((L, 3, H, 1), np.int64)
    link = np.zeros((L, 3, 1))
    fan = np.ones((L, 1), np.int64)
    rep = np.ones((L, 1), np.int64)
    for l in range(L):
        for t in range(3):
            ct = res.tiles[l][t]
            size[l, t, 0] = ct.size
            pfd[l, t, 0] = ct.pfd
            link[l, t, 0] = ct.link_transfers
            for h, ((m, _s), a) in enumerate(sorted(ct.access.items())):
                acc[l, t, h, 0] = a
                mc[l, t, h, 0] = m
            fan[l, 0] = ct.fanout
            rep[l, 0] = ct.replication
    mx = int(np.prod([lp.end for lp in nest.loops if lp.kind == SPACE_X] or [1]))
    my = int(np.prod([lp.end for lp in nest.loops if lp.kind == SPACE_Y] or [1]))
    return NestStats(
        size=size,
        pfd=pfd,
        acc=acc,
        mc=mc,
        link=link,
        fanout=fan,
        replication=rep,
        x_exp=np.array(res.x_expansion, np.int64)[:, None],
        y_exp=np.array(res.y_expansion, np.int64)[:, None],
        compute_accesses=np.array([res.compute_accesses]),
        compute_replication=np.array([res.compute_replication], np.int64),
        mac_x=np.array([mx], np.int64),
        mac_y=np.array([my], np.int64),
    )


def _violations(
    post: PostResult, b: int, arch: Architecture, tables: ArchTables, bad_spatial: bool
) -> list[str]:
    """Timeloop's failure reasons for candidate b, in architecture order."""
    out: list[str] = []
    for t, name in enumerate(TENSORS):
        if post.unstored[t, b]:
            out.append(f"{name}: bypassed at every storage level")
    if bad_spatial:
        out.append("spatial factors on a level without spatial fan-out")
    for l, n in enumerate(tables.names):
        if post.over_capacity[l, b]:
            out.append(
                f"{n}: mapped tile size {int(post.capacity_used[l, b])} words exceeds buffer capacity "
                f"{int(tables.eff_size[l])} words"
            )
        if post.under_utilized[l, b]:
            out.append(
                f"{n}: mapped tile size {int(post.capacity_used[l, b])} words is less than "
                f"the minimum utilization {tables.min_util[l]:g} of {int(tables.eff_size[l])} words"
            )
        if post.over_instances[l, b]:
            out.append(
                f"{n}: mapped instances {int(post.instances_used[l, b])} "
                f"exceed the {int(tables.instances[l])} available"
            )
        if post.over_mesh_x[l, b]:
            out.append(f"{n}: the mapping's X fan-out exceeds meshX = {int(tables.mesh_x[l])}")
        if post.over_mesh_y[l, b]:
            out.append(f"{n}: the mapping's Y fan-out exceeds meshY = {int(tables.mesh_y[l])}")
    if post.mac_over[b]:
        out.append(
            f"{tables.mac_name}: the mapping uses {int(post.mac_utilized[b])} MACs, "
            f"more than the {tables.mac_instances} available ({tables.mac_mesh_x} x {tables.mac_mesh_y})"
        )
    return out


def _result(
    post: PostResult,
    b: int,
    arch: Architecture,
    tables: ArchTables,
    rules: TimeloopRules,
    mapping: LoopMapping | None,
    bad_spatial: bool,
) -> ModelResult:
    levels = []
    for l, level_name in enumerate(tables.names):
        tensors = {}
        for t, name in enumerate(TENSORS):
            kept = mapping.levels[l].keep[t] if mapping is not None else post.utilized_capacity[l, t, b] > 0
            if not kept or post.utilized_capacity[l, t, b] == 0:
                continue
            tensors[name] = TensorStats(
                reads=int(post.reads[l, t, b]),
                fills=int(post.fills[l, t, b]),
                updates=int(post.updates[l, t, b]),
                utilized_instances=int(post.utilized_instances[l, t, b]),
                utilized_capacity=int(post.utilized_capacity[l, t, b]),
                partition_size=int(post.partition[l, t, b]),
                energy_pJ=float(post.energy_ds[l, t, b]),
            )
        levels.append(
            LevelResult(
                name=level_name,
                instances=int(tables.instances[l]),
                energy_pJ=float(post.level_energy[l, b]),
                leakage_pJ=float(post.leak[l, b]),
                cycles=int(post.level_cycles[l, b]),
                tensors=tensors,
            )
        )
    viol = _violations(post, b, arch, tables, bad_spatial)
    return ModelResult(
        energy_pJ=float(post.energy[b]),
        cycles=int(post.cycles[b]),
        macs=int(post.macs[b]),
        utilization=float(post.utilization[b]),
        valid=not viol,
        violations=tuple(viol),
        levels=tuple(levels),
        mac_name=tables.mac_name,
        mac_energy_pJ=float(post.mac_energy[b]),
        mac_cycles=int(post.mac_cycles[b]),
        mac_utilized=int(post.mac_utilized[b]),
        rules=rules.name,
        mapping=mapping,
    )
