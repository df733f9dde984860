"""Cost records and cost tables: the plain data between the benchmarker and the search."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deepfrack.dims import TENSORS
from deepfrack.residency import Variant

#: (layer index 0-based, variant, tile height, tile width)
CostKey = tuple[int, Variant, int, int]


@dataclass(frozen=True)
class CostRecord:
    """Cost of computing one output region (tile_h x tile_w, full channels) of one layer under one
    residency variant.

    energy_pJ: total energy in picojoules. cycles: latency in cycles (None when unknown).
    macs: multiply-accumulates (None when unknown). level_energy_pJ: energy per architecture level, in
    the architecture's order: storage levels from the outermost (DRAM) inward, then the compute unit
    (empty when unknown, e.g. the original's JSON tables).
    accesses: optional per-level counts of storage levels, ``{level: {"reads"|"fills"|"updates":
    {tensor: words per instance}, "utilized_instances": {tensor: n}}}`` (instances 1 when absent).
    mapping: optional mapping that produced the record (Timeloop map.yaml terms).
    """

    energy_pJ: float
    cycles: float | None = None
    macs: int | None = None
    level_energy_pJ: Mapping[str, float] = field(default_factory=dict)
    accesses: Mapping[str, Any] = field(default_factory=dict)
    mapping: Any = None

    @property
    def energy_uJ(self) -> float:
        return self.energy_pJ * 1e-6

    @property
    def outermost_level(self) -> str | None:
        """The outermost storage level (DRAM): the first level of ``level_energy_pJ`` that has access
        counts (the compute unit has none), else its first level; None without a per-level split."""
        return next(
            (n for n in self.level_energy_pJ if n in self.accesses), next(iter(self.level_energy_pJ), None)
        )

    def dram_words(self) -> dict[str, dict[str, float]] | None:
        """Words each tensor moves between the outermost storage level (DRAM) and the chip, over all
        instances: ``{"reads": {tensor: words}, "updates": {tensor: words}}`` (reads leave DRAM,
        updates arrive; the outermost level is never filled). A tensor DRAM does not keep moves 0
        words. None when the record has no counts for that level."""
        level = self.outermost_level
        counts = self.accesses.get(level) if level is not None else None
        if not counts:
            return None
        inst = counts.get("utilized_instances") or {}
        return {
            kind: {
                t: float((counts.get(kind) or {}).get(t, 0) or 0) * float(inst.get(t, 1) or 1)
                for t in TENSORS
            }
            for kind in ("reads", "updates")
        }


@dataclass
class CostTable:
    """(layer, variant, tile_h, tile_w) -> CostRecord, layers 0-based in network order.

    ``infeasible`` holds keys that were benchmarked and found to have no valid mapping (kept apart
    from keys that were never benchmarked, so messages can tell the two apart); ``reasons`` says why,
    where the benchmark said so. ``square_only``
    says whether every entry is a square tile (the original's JSON tables, ``benchmark --shapes
    square`` on square layers), derived from the keys whatever format the table came from.
    """

    records: dict[CostKey, CostRecord] = field(default_factory=dict)
    infeasible: set[CostKey] = field(default_factory=set)
    source: str | None = None
    reasons: dict[CostKey, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[CostKey]:
        return iter(self.records)

    def __contains__(self, key: object) -> bool:
        return key in self.records

    def add(self, layer: int, variant: Variant, h: int, w: int, record: CostRecord) -> None:
        self.records[(layer, Variant(variant), h, w)] = record

    def get(self, layer: int, variant: Variant, h: int, w: int) -> CostRecord | None:
        return self.records.get((layer, variant, h, w))

    def items(self) -> Iterable[tuple[CostKey, CostRecord]]:
        return self.records.items()

    @property
    def layers(self) -> set[int]:
        return {k[0] for k in self.records}

    def shapes(self, layer: int, variant: Variant) -> set[tuple[int, int]]:
        """Every (h, w) the table has for this layer and variant."""
        return {(h, w) for (l, v, h, w) in self.records if l == layer and v == variant}

    @property
    def square_only(self) -> bool:
        """True when the table has entries and every one (infeasible ones included) is a square
        tile h == w: the search then says why a rectangle is missing."""
        keys = [*self.records, *self.infeasible]
        return bool(keys) and all(h == w for (_, _, h, w) in keys)

    @property
    def has_cycles(self) -> bool:
        return bool(self.records) and all(r.cycles is not None for r in self.records.values())
