"""Where the energy of a schedule goes: one row per (schedule, stack, layer, region shape, variant mix).

Pure functions from a :class:`~deepfrack.search.schedule.Schedule`, its network and its cost table to
plain rows. A row stands for ``tiles`` regions of one shape of one layer that cost the same: the same
cost-table entries, mixed with the same weights. A layer-tile normally costs one entry (its variant,
weight 1); a join layer whose operands come partly from the stack and partly from DRAM costs a linear
mix of two entries, ``on + f x (dram - on)`` = ``(1 - f) x on + f x dram``, which a row carries as two
weighted terms. Every quantity of a row (energy per level, cycles, DRAM words) is the same mix of the
entries' quantities, times ``tiles``; so the rows of a schedule add up to its totals.

The layer-by-layer rows are each layer alone (SLC on its whole plane). Both kinds of row carry the
fused schedule's stack index, so the two compare stack by stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deepfrack.cost.table import CostRecord, CostTable
from deepfrack.dims import TENSORS
from deepfrack.errors import MissingCostError
from deepfrack.residency import Variant
from deepfrack.search.schedule import Schedule, Stack, StackLayer
from deepfrack.workload.layer import Network

FUSED = "fused"
LAYER_BY_LAYER = "layer_by_layer"

#: one cost-table entry of a mix and its weight
Term = tuple[Variant, float]


@dataclass(frozen=True)
class ComponentRow:
    """``tiles`` regions of ``region`` (h, w) of one layer, each costing ``sum(weight x entry)`` over
    ``terms``. Energies in pJ, over all the row's tiles; ``level_energy_pJ`` None when the table has
    no per-level split; ``dram_words`` (``{"reads"|"updates": {tensor: words}}``) None when it has no
    DRAM counts; ``cycles`` None when an entry lacks cycles."""

    schedule: str
    stack: int
    layer: int
    layer_name: str
    region: tuple[int, int]
    tiles: int
    terms: tuple[Term, ...]
    macs: int
    cycles: float | None
    energy_pJ: float
    level_energy_pJ: dict[str, float] | None
    dram_words: dict[str, dict[str, float]] | None

    @property
    def variants(self) -> str:
        """'WCC', or a mix such as 'ELBLC 0.75 + SLC 0.25'."""
        if len(self.terms) == 1 and self.terms[0][1] == 1.0:
            return self.terms[0][0].value
        return " + ".join(f"{v.value} {w:.6g}" for v, w in self.terms)


def _mix(records: Sequence[tuple[CostRecord, float]], tiles: int):
    """Energy, cycles, per-level energy and DRAM words of ``tiles`` tiles of a weighted mix of records."""
    energy = tiles * sum(w * r.energy_pJ for r, w in records)
    cycles = (
        None if any(r.cycles is None for r, _ in records) else tiles * sum(w * r.cycles for r, w in records)  # type: ignore[operator]
    )
    levels: dict[str, float] | None = {}
    for r, w in records:
        if not r.level_energy_pJ or levels is None:
            levels = None
            continue
        for name, e in r.level_energy_pJ.items():
            levels[name] = levels.get(name, 0.0) + tiles * w * e
    words: dict[str, dict[str, float]] | None = {k: dict.fromkeys(TENSORS, 0.0) for k in ("reads", "updates")}
    for r, w in records:
        d = r.dram_words()
        if d is None or words is None:
            words = None
            continue
        for kind, per in d.items():
            for t, n in per.items():
                words[kind][t] += tiles * w * n
    return energy, cycles, levels, words


def row_for(
    network: Network,
    table: CostTable,
    schedule: str,
    stack: int,
    layer: int,
    region: tuple[int, int],
    tiles: int,
    terms: tuple[Term, ...],
) -> ComponentRow:
    """The row of ``tiles`` regions of shape ``region`` of ``layer`` costing the mix ``terms``.
    MissingCostError when the table lacks an entry."""
    records = []
    for v, w in terms:
        rec = table.get(layer, v, *region)
        if rec is None:
            raise MissingCostError(layer, network.layers[layer].name, v.value, region, source=table.source)
        records.append((rec, w))
    energy, cycles, levels, words = _mix(records, tiles)
    return ComponentRow(
        schedule=schedule,
        stack=stack,
        layer=layer,
        layer_name=network.layers[layer].name,
        region=region,
        tiles=tiles,
        terms=terms,
        macs=tiles * network.layers[layer].macs_for(*region),
        cycles=cycles,
        energy_pJ=energy,
        level_energy_pJ=levels,
        dram_words=words,
    )


def tile_terms(sl: StackLayer) -> list[tuple[Term, ...]]:
    """Per tile of a stack layer (compute order), the entries it costs and their weights: its variant,
    or for a join that reads from DRAM too, ``on + share x (dram - on)`` as ``(on, 1 - share), (dram,
    share)``."""
    if sl.dram_variant is None or not sl.dram_share:
        return [((v, 1.0),) for v in sl.variants]
    f = sl.dram_share
    return [((v, 1.0 - f), (sl.dram_variant, f)) for v in sl.variants]


def layer_rows(
    network: Network,
    table: CostTable,
    stack: int,
    layer: int,
    shapes: Sequence[tuple[int, int]],
    terms: Sequence[tuple[Term, ...]],
) -> list[ComponentRow]:
    """The rows of one layer of fused stack ``stack``: its tiles (``shapes`` and ``terms`` per tile, in
    compute order) grouped by (region shape, terms), in order of first appearance."""
    groups: dict[tuple[tuple[int, int], tuple[Term, ...]], int] = {}
    for shape, t in zip(shapes, terms, strict=True):
        groups[(shape, t)] = groups.get((shape, t), 0) + 1
    return [row_for(network, table, FUSED, stack, layer, shape, n, t) for (shape, t), n in groups.items()]


def stack_rows(network: Network, table: CostTable, k: int, st: Stack) -> list[ComponentRow]:
    """The rows of fused stack ``k``, layer by layer."""
    rows: list[ComponentRow] = []
    for sl in st.layers:
        shapes = [(r.h, r.w) for r in sl.regions]
        rows.extend(layer_rows(network, table, k, sl.layer, shapes, tile_terms(sl)))
    return rows


def stack_of_layers(schedule: Schedule) -> dict[int, int]:
    """Layer -> index of the fused stack that holds it."""
    return {l: k for k, st in enumerate(schedule.stacks) for l in range(st.first, st.last + 1)}


def component_rows(schedule: Schedule, network: Network, table: CostTable) -> list[ComponentRow]:
    """Every row of the fused schedule (stack by stack, layer by layer) then of layer by layer (each
    layer alone, SLC on its whole plane). MissingCostError when the table lacks an entry."""
    rows: list[ComponentRow] = []
    for k, st in enumerate(schedule.stacks):
        rows.extend(stack_rows(network, table, k, st))
    stack_of = stack_of_layers(schedule)
    for l, layer in enumerate(network.layers):
        rows.append(
            row_for(network, table, LAYER_BY_LAYER, stack_of[l], l, layer.out_plane, 1, ((Variant.SLC, 1.0),))
        )
    return rows
