"""Plain data describing an accelerator, its constraints and its energy per action.

These dataclasses are the contract between the parsers (``deepfrack.arch``) and their users (the
analytical model and mapper in ``deepfrack.cost``, the capacity check of the search). Parsers fill
them; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StorageLevel:
    """One storage level of the architecture (Timeloop's buffer level).

    instances: total number of instances in the whole architecture (e.g. PEWeightBuffer[0..7] inside
    PE[0..15] -> 128). mesh_x, mesh_y: Timeloop's meshX/meshY for this level (instances laid out on a
    mesh; mesh_x * mesh_y == instances). word_bits: bits per word. block_size: words per block
    (memory_width / word_bits unless ``block-size`` is given; memory_width / cluster_size / word_bits
    when ``cluster-size`` is given). depth: blocks per instance (None for an unbounded level such as
    DRAM). entries: words per instance when the file gives them directly (Timeloop's ``entries`` or
    ``sizeKB``, which take precedence over depth x block size), else None. Bandwidths are words per
    cycle per instance (None = unlimited). technology: the process node as written (e.g. "45nm"), or
    None. path: the hierarchical name as Timeloop/Accelergy print it (e.g.
    ``System.ws.PE[0..15].PEWeightBuffer[0..7]``). ``attributes`` keeps every merged attribute the
    parser saw: the node's own, then those inherited from enclosing subtrees/containers, then the
    compound-component class defaults (lowest priority).
    """

    name: str
    cls: str
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    word_bits: int = 16
    block_size: int = 1
    depth: int | None = None
    cluster_size: int = 1
    n_banks: int = 1
    num_ports: int = 2
    read_bandwidth: float | None = None
    write_bandwidth: float | None = None
    shared_bandwidth: float | None = None
    multiple_buffering: float = 1.0
    subclass: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    entries: int | None = None
    technology: str | None = None
    path: str = ""

    @property
    def is_dram(self) -> bool:
        """A DRAM (Timeloop: class name containing "DRAM") or any unbounded level."""
        return "DRAM" in self.cls.upper() or self.size_words is None

    @property
    def is_dummy(self) -> bool:
        """One of the placeholder levels timeloopfe inserts for a v0.4 container's spatial fanout
        (``inter_<container>_spatial``, class dummy_storage): it keeps nothing."""
        return self.cls == "dummy_storage"

    @property
    def width_bits(self) -> int:
        """Physical row width in bits (word bits x block size x cluster size)."""
        return self.word_bits * self.block_size * self.cluster_size

    @property
    def size_words(self) -> int | None:
        """Words per instance (entries if given, else depth x block size), None when unbounded."""
        if self.entries is not None:
            return self.entries
        return None if self.depth is None else self.depth * self.block_size

    @property
    def total_words(self) -> int | None:
        """Words over all instances, None when unbounded."""
        size = self.size_words
        return None if size is None else size * self.instances


@dataclass(frozen=True)
class ArithmeticLevel:
    """The compute units (Timeloop's arithmetic level): total instances and their mesh."""

    name: str
    cls: str = "intmac"
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    word_bits: int = 16
    subclass: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    technology: str | None = None
    path: str = ""


@dataclass(frozen=True)
class ComponentClass:
    """A compound-component class (Accelergy ``compound_components``), e.g. smartbuffer_SRAM.

    attributes: the class's literal attribute defaults ("must_specify" placeholders left out).
    subcomponents: (name, primitive class) pairs. actions: the action names it defines."""

    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    subcomponents: tuple[tuple[str, str], ...] = ()
    actions: tuple[str, ...] = ()
    source: str | None = None


@dataclass(frozen=True)
class Architecture:
    """Storage levels from the outermost (DRAM) inward, then the arithmetic level.

    constraints: constraints the architecture file itself carries (v0.4 per-node ``constraints``, the
    generated constraints of the v0.4 ``inter_*_spatial`` placeholder levels, or a v0.3
    ``architecture.constraints`` list); empty for a plain v0.3 file. components: the compound-component
    classes that were given with it, by name. technology: the top-level process node, if stated."""

    name: str
    levels: tuple[StorageLevel, ...]
    arithmetic: ArithmeticLevel
    version: str = "0.3"
    source: str | None = None
    constraints: Constraints = field(default_factory=lambda: Constraints())
    components: Mapping[str, ComponentClass] = field(default_factory=dict)
    technology: str | None = None

    def level(self, name: str) -> StorageLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    def index(self, name: str) -> int:
        for i, lv in enumerate(self.levels):
            if lv.name == name:
                return i
        raise KeyError(name)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    def fanout(self, name: str) -> tuple[int, int]:
        """(fanout X, fanout Y) from level ``name`` to the next inner level (or the arithmetic
        units): the ratio of their meshes, as Timeloop derives it."""
        i = self.index(name)
        lv = self.levels[i]
        inner: StorageLevel | ArithmeticLevel = (
            self.levels[i + 1] if i + 1 < len(self.levels) else self.arithmetic
        )
        return inner.mesh_x // lv.mesh_x, inner.mesh_y // lv.mesh_y


# ------------------------------------------------------------------------------------------------ #
# constraints
# ------------------------------------------------------------------------------------------------ #
@dataclass(frozen=True)
class FactorBound:
    """A Timeloop factor constraint on one dimension at one level: ``op`` is "=", "<=" or ">=";
    ``value`` 0 with "=" means "the full remaining dimension" (Timeloop's convention)."""

    op: str
    value: int


@dataclass(frozen=True)
class TargetConstraint:
    """One Timeloop constraint target (architecture_constraints / mapspace_constraints entry).

    type: "datatype" (keep/bypass; the older ``type: bypass`` spelling is read as this), "temporal",
    "spatial", or "utilization". permutation: innermost loop first, as in Timeloop. split: for a
    spatial target, the first ``split`` dimensions of the permutation go on X, the rest on Y.
    source / where: the file and the field (e.g. ``architecture_constraints.targets[3]``) it came from.
    """

    target: str
    type: str
    keep: tuple[str, ...] | None = None
    bypass: tuple[str, ...] | None = None
    factors: Mapping[str, FactorBound] = field(default_factory=dict)
    permutation: str | None = None
    split: int | None = None
    min_utilization: float | None = None
    source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    where: str | None = None

    def key(self) -> tuple:
        """Everything that matters about this target, without where it came from (``source``,
        ``where``: the file and the YAML field path, for error messages), for comparing
        constraint sets: keep/bypass compare as sets, factors as sorted items)."""
        return (
            self.target,
            self.type,
            None if self.keep is None else tuple(sorted(self.keep)),
            None if self.bypass is None else tuple(sorted(self.bypass)),
            tuple(sorted((d, b.op, b.value) for d, b in self.factors.items())),
            self.permutation,
            self.split,
            self.min_utilization,
            tuple(sorted((k, repr(v)) for k, v in self.extra.items())),
        )


@dataclass(frozen=True)
class Constraints:
    """All constraint targets that apply to a mapping search (architecture and mapspace together)."""

    targets: tuple[TargetConstraint, ...] = ()
    source: str | None = None

    def for_target(self, target: str, type_: str | None = None) -> list[TargetConstraint]:
        return [t for t in self.targets if t.target == target and (type_ is None or t.type == type_)]

    def key(self) -> tuple:
        """Order-insensitive description of the constraint set (see TargetConstraint.key)."""
        return tuple(sorted(t.key() for t in self.targets))

    def merged(self, *others: Constraints) -> Constraints:
        """This set followed by the targets of ``others`` that are not already in it."""
        seen = {t.key() for t in self.targets}
        out = list(self.targets)
        for o in others:
            for t in o.targets:
                if t.key() not in seen:
                    seen.add(t.key())
                    out.append(t)
        return Constraints(tuple(out), self.source)

    def keeps(self, level: str, tensor: str) -> bool | None:
        """True/False when a datatype constraint says whether ``level`` keeps ``tensor``, None when
        no constraint mentions it (the caller applies Timeloop's default)."""
        verdict: bool | None = None
        for t in self.for_target(level, "datatype"):
            if t.keep is not None and tensor in t.keep:
                verdict = True
            if t.bypass is not None and tensor in t.bypass:
                verdict = False
        return verdict


# ------------------------------------------------------------------------------------------------ #
# energy per action
# ------------------------------------------------------------------------------------------------ #
@dataclass(frozen=True)
class ActionEnergy:
    """Energy of one action of one component, in pJ per action (one block access for storage,
    one operation for compute), with the Accelergy arguments it was estimated for."""

    action: str
    energy_pJ: float
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnergyTable:
    """Energy per action for every component, keyed by the component's (level's) name.

    Filled from an Accelergy ERT (``timeloop-mapper.ERT.yaml``) or from deepfrack's built-in 45 nm
    table. ``origin`` says which ("ert:<path>" or "builtin:<table>")."""

    actions: Mapping[str, tuple[ActionEnergy, ...]]
    origin: str = ""

    def energies(self, component: str, action: str) -> tuple[ActionEnergy, ...]:
        return tuple(a for a in self.actions.get(component, ()) if a.action == action)

    def action_energy(self, component: str, action: str) -> float | None:
        """Energy of one ERT action: the largest over its argument variants (Timeloop keeps the most
        expensive entry, i.e. the full-block access with data_delta = address_delta = 1), None when
        the component has no such action."""
        found = self.energies(component, action)
        return max(a.energy_pJ for a in found) if found else None

    def max_energy(self, component: str) -> float | None:
        """The most expensive action of ``component`` (Timeloop's "vector access energy" of a
        storage level is this divided by the level's cluster size)."""
        acts = self.actions.get(component, ())
        return max((a.energy_pJ for a in acts), default=None)

    def op_energy(self, component: str, op: str) -> float | None:
        """Energy in pJ of one Timeloop operation on ``component``: op is "read", "fill", "update",
        "leak" (storage) or "compute" (arithmetic). Resolved through Timeloop's priority lists of
        ERT action names (include/model/topology.hpp, storageOperationMappings /
        arithmeticOperationMappings): fill -> random_fill, random_write, fill, write; update ->
        random_update, random_write, update, write; read -> random_read, read; compute -> mac_random,
        mult_random, mac, mult, compute. Older Accelergy tables name one ``access`` action for a
        storage level: it is used last, for reads, fills and updates alike, when none of the
        listed actions exists (see docs/model.md). None when no listed action exists."""
        for name in OP_ACTIONS[op]:
            e = self.action_energy(component, name)
            if e is not None:
                return e
        return None


#: Timeloop operation -> ERT action names in priority order (NVlabs/timeloop
#: include/model/topology.hpp: storageOperationMappings and arithmeticOperationMappings), each storage
#: list ended by deepfrack with ``access`` (older Accelergy tables' one storage action).
OP_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "read": ("random_read", "read", "access"),
    "fill": ("random_fill", "random_write", "fill", "write", "access"),
    "update": ("random_update", "random_write", "update", "write", "access"),
    "leak": ("leak",),
    "compute": ("mac_random", "mult_random", "mac", "mult", "compute"),
}
