"""On-chip capacity as the search sees it: each tensor's home level and each level's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class CapacitySpec:
    """``home`` maps each tensor ("Weights", "Inputs", "Outputs") to the name of its home level
    (the outermost non-DRAM level that keeps it); ``words`` maps each home level to its total
    capacity in words (depth x block size x instances). DESIGN.md section 3.4."""

    home: Mapping[str, str]
    words: Mapping[str, int]

    def as_dict(self) -> dict[str, int]:
        return dict(self.words)
