"""On-chip capacity as the search sees it: each tensor's home level and each level's words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deepfrack.errors import InputError

if TYPE_CHECKING:
    from deepfrack.arch.spec import Architecture, Constraints


@dataclass(frozen=True)
class CapacitySpec:
    """``home`` maps each tensor ("Weights", "Inputs", "Outputs") to the name of its home level
    (the outermost non-DRAM level that keeps it); ``words`` maps each home level to its total
    capacity in words (depth x block size x instances); docs/search.md, "Capacity".

    A tensor that no on-chip level keeps has no entry in ``home``: it can never stay on chip."""

    home: Mapping[str, str]
    words: Mapping[str, int]

    def capacity_of(self, tensor: str) -> int:
        """Words available to ``tensor`` at its home level (0 when it has none)."""
        level = self.home.get(tensor)
        return 0 if level is None else int(self.words[level])


def capacity_spec(arch: Architecture, constraints: Constraints) -> CapacitySpec:
    """Each tensor's home level and the capacity of every home level.

    The home level of a tensor is the outermost level that is not a DRAM (nor a v0.4 spatial
    placeholder) and keeps it, according to the datatype (keep/bypass) constraints of ``constraints``
    together with those the architecture file carries. A level that no datatype constraint mentions
    keeps everything (what deepfrack assumes, as the original DeepFrack did; Timeloop's mapper would
    be free to choose). The capacity is the level's size per instance (depth x block size, or its
    ``entries``) times its instances.

    InputError (naming the constraints file and target) when the constraints name a level the
    architecture does not have."""
    from deepfrack.arch.constraints import TENSORS, check_constraints

    check_constraints(arch, constraints)
    cons = arch.constraints.merged(constraints)
    home: dict[str, str] = {}
    words: dict[str, int] = {}
    for tensor in TENSORS:
        for lv in arch.levels:
            if lv.is_dram or lv.is_dummy:
                continue
            keeps = cons.keeps(lv.name, tensor)
            if keeps is None or keeps:
                total = lv.total_words
                if total is None:  # pragma: no cover - a bounded non-DRAM level always has a size
                    raise InputError(arch.source, lv.name, "on-chip level without a size")
                home[tensor] = lv.name
                words[lv.name] = int(total)
                break
    return CapacitySpec(home=home, words=words)
