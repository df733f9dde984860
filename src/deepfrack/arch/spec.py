"""Plain data describing an accelerator, its constraints and its energy per action.

These dataclasses are the contract between the parsers (``deepfrack.arch``) and their users (the
analytical model and mapper in ``deepfrack.cost``, the capacity check of the search). Parsers fill
them; nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class StorageLevel:
    """One storage level of the architecture (Timeloop's buffer level).

    instances: total number of instances in the whole architecture (e.g. PEWeightBuffer[0..7] inside
    PE[0..15] -> 128). mesh_x, mesh_y: Timeloop's meshX/meshY for this level (instances laid out on a
    mesh; mesh_x * mesh_y == instances). word_bits: bits per word. block_size: words per block
    (memory_width / word_bits unless ``block-size`` is given). depth: blocks per instance (None for an
    unbounded level such as DRAM). Bandwidths are words per cycle per instance (None = unlimited).
    ``attributes`` keeps every merged attribute the parser saw (class defaults included).
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

    @property
    def is_dram(self) -> bool:
        return self.cls.upper() == "DRAM" or self.depth is None

    @property
    def size_words(self) -> int | None:
        """Words per instance (depth x block size), None when unbounded."""
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


@dataclass(frozen=True)
class Architecture:
    """Storage levels from the outermost (DRAM) inward, then the arithmetic level."""

    name: str
    levels: tuple[StorageLevel, ...]
    arithmetic: ArithmeticLevel
    version: str = "0.3"
    source: str | None = None

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


@dataclass(frozen=True)
class Constraints:
    """All constraint targets that apply to a mapping search (architecture and mapspace together)."""

    targets: tuple[TargetConstraint, ...] = ()
    source: str | None = None

    def for_target(self, target: str, type_: str | None = None) -> list[TargetConstraint]:
        return [t for t in self.targets if t.target == target and (type_ is None or t.type == type_)]

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
