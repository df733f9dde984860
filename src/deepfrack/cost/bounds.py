"""Lower bounds on what the model charges for a layer tile: energy and cycles no mapping can beat.

For one layer, one residency variant and every output tile h x w at once (numpy grids), without
running the mapper. The search uses them to cost only the entries that can still win
(docs/search.md, "On-demand search"); docs/bounds.md derives each term.

The bound follows what the mapper costs (``deepfrack.cost.mapper.tile_problem``): the tile's
Timeloop problem (padding dropped) run ``repeats`` times (a depthwise or grouped layer per group, a
pool per channel, an add per output channel), without the weights' and the MACs' energy for layers
that have none. Per run, for every mapping the model can evaluate:

* **MACs**: every multiply-accumulate of the problem costs the compute unit's energy;
* **compulsory traffic**: every word of a tensor crosses every storage level that certainly keeps it
  (the variant's constraints say so: DRAM keeps what the variant leaves off chip, an on-chip level
  that a datatype constraint makes keep the tensor). Weights and inputs are read at least once from
  each such level and filled at least once into each such level below the tensor's backing store
  (the outermost keeper); outputs are updated at least once at each. When no level on chip is
  certain to keep an on-chip tensor, its backing store is one of the levels that may keep it, and the
  cheapest read (update for outputs) of those counts. The words of an input tile are the input points
  the problem's loops touch (a stride larger than the dilated kernel skips some); a level's energy is
  ``ceil(accesses / block size)`` times the action's energy, times utilized instances, shared by a
  cluster: at least ``words x energy / (block size x cluster size)``, and exactly ``ceil(words /
  block) x energy`` at a single-instance level such as DRAM;
* **cycles**: at least ``ceil(MACs / utilizable MAC units)``, where the units a mapping can use are
  bounded by the fan-outs and the spatial factor constraints of every level, and at least DRAM's
  compulsory words over its bandwidth (read, write or shared, as the architecture states them);
* **leakage** (Timeloop >= 2023-09): every level's leak energy per cycle times the cycle bound.

Everything else the model charges (re-reads for reuse, partial sums, halos within a tile, network and
address-generation energy) is non-negative, so each bound is admissible: never above the model's
result for any valid mapping (tested against every recorded Timeloop run of the reference data and
against the mapper on random layers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepfrack.arch.capacity import capacity_spec
from deepfrack.arch.constraints import effective_keep
from deepfrack.arch.spec import Architecture, Constraints, EnergyTable
from deepfrack.cost.mapper import tile_problem
from deepfrack.cost.mapspace import space_template
from deepfrack.cost.timeloop_post import ArchTables, TimeloopRules, arch_tables
from deepfrack.dims import DIMS, TENSORS
from deepfrack.errors import DeepfrackError, InputError
from deepfrack.workload.layer import Layer

WEIGHTS, INPUTS, OUTPUTS = range(3)


def touched(extent: int, stride: int, kernel: int, dilation: int) -> np.ndarray:
    """``n[k]`` for k = 0..extent: how many distinct input rows (or columns) k output rows touch,
    ``|{q * stride + s * dilation : 0 <= q < k, 0 <= s < kernel}|`` (no padding)."""
    out = np.zeros(extent + 1, np.int64)
    if extent == 0:
        return out
    span = (extent - 1) * stride + (kernel - 1) * dilation + 1
    seen = np.zeros(span, bool)
    taps = np.arange(kernel) * dilation
    count = 0
    for q in range(extent):
        pts = q * stride + taps
        count += int((~seen[pts]).sum())
        seen[pts] = True
        out[q + 1] = count
    return out


@dataclass(frozen=True)
class Traffic:
    """What one variant certainly moves, per tensor (Weights, Inputs, Outputs): pJ per word of
    compulsory traffic at on-chip levels (``per_word``), and whether DRAM keeps it (then
    ``ceil(words / dram_block)`` accesses of ``dram_energy`` pJ each)."""

    per_word: tuple[float, float, float]
    dram_keeps: tuple[bool, bool, bool]
    dram_energy: tuple[float, float, float]


@dataclass(frozen=True)
class Parallelism:
    """Upper bound on the MAC units a mapping can use: per dimension the product over levels of the
    largest spatial factor the constraints and fan-outs allow (``caps``, before capping by the
    dimension itself), and the number of MAC units."""

    caps: tuple[int, ...]
    units: int

    def units_for(self, dims: Mapping[str, np.ndarray | int]) -> np.ndarray | int:
        n: Any = 1
        for d, name in enumerate(DIMS):
            n = n * np.minimum(self.caps[d], dims[name])
        return np.minimum(n, self.units)


class EntryBounds:
    """Lower bounds on the energy (pJ) and cycles of every (layer, variant, h, w) entry that the mapper
    (or Timeloop, with the same energy table) can return. ``constraints``: {variant: Constraints},
    as the mapper gets them; ``rules``: the Timeloop version the model reproduces."""

    def __init__(
        self,
        arch: Architecture,
        energy: EnergyTable,
        constraints: Mapping[Any, Constraints],
        rules: TimeloopRules | None = None,
    ):
        from deepfrack.cost.model import default_rules

        self.arch = arch
        self.rules = rules or default_rules(arch)
        self.tables = arch_tables(arch, energy, self.rules, energy.origin or None)
        self.sets = {getattr(k, "value", str(k)): v for k, v in constraints.items()}
        self._traffic = {name: _traffic(arch, self.tables, cons) for name, cons in self.sets.items()}
        self._parallel = {name: _parallelism(arch, cons) for name, cons in self.sets.items()}
        dram = arch.levels[0]
        bw = (dram.read_bandwidth, dram.write_bandwidth, dram.shared_bandwidth)
        self._dram_bw = tuple(None if b is None or b <= 0 else float(b) for b in bw)
        self._leak = float(np.nan_to_num(self.tables.e_leak).sum())

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(self.sets)

    def grids(self, layer: Layer, variant: Any, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """(energy pJ, cycles) bounds for every tile h x w, 0 <= h <= rows, 0 <= w <= cols, as two
        (rows + 1) x (cols + 1) arrays (row and column 0 are 0). A layer the mapper cannot cost, or a
        variant it does not know, gets 0 (a bound that always holds)."""
        name = getattr(variant, "value", str(variant))
        zero = np.zeros((rows + 1, cols + 1))
        if name not in self.sets:
            return zero, zero.copy()
        try:
            prob = tile_problem(layer, 1, 1)
        except DeepfrackError:
            return zero, zero.copy()
        run = prob.layer
        h = np.arange(rows + 1)[:, None]
        w = np.arange(cols + 1)[None, :]
        words = _run_words(run, rows, cols)
        macs = run.N * run.M * run.C * run.R * run.S * h * w
        tr = self._traffic[name]
        dram = np.zeros((3, rows + 1, cols + 1))
        energy = np.zeros((rows + 1, cols + 1))
        for t in range(3):
            if prob.drop_weights and t == WEIGHTS:
                continue
            energy = energy + tr.per_word[t] * words[t]
            if tr.dram_keeps[t]:
                dram[t] = words[t]
                blk = int(self.tables.block[0])  # DRAM, the outermost level
                energy = energy + np.ceil(words[t] / blk) * tr.dram_energy[t]
        if not prob.drop_weights:
            energy = energy + self.tables.e_mac * macs
        cycles = self._cycles(name, run, h, w, macs, dram)
        energy = energy + self._leak * cycles
        scale = prob.repeats
        empty = (h == 0) | (w == 0)
        return np.where(empty, 0.0, energy * scale), np.where(empty, 0.0, cycles * scale)

    def entry(self, layer: Layer, variant: Any, h: int, w: int) -> tuple[float, float]:
        """(energy pJ, cycles) bound of one entry."""
        e, c = self.grids(layer, variant, h, w)
        return float(e[h, w]), float(c[h, w])

    def _cycles(self, name: str, run: Layer, h, w, macs, dram: np.ndarray) -> np.ndarray:
        dims = {"C": run.C, "M": run.M, "R": run.R, "S": run.S, "N": run.N, "P": w, "Q": h}
        units = np.maximum(self._parallel[name].units_for(dims), 1)
        cycles = -(-macs // units)
        rb, wb, sb = self._dram_bw
        reads, writes = dram[WEIGHTS] + dram[INPUTS], dram[OUTPUTS]
        for words, bw in ((reads, rb), (writes, wb), (reads + writes, sb)):
            if bw is not None:
                cycles = np.maximum(cycles, np.floor(words / bw))
        return cycles.astype(float)


def _run_words(run: Layer, rows: int, cols: int) -> np.ndarray:
    """(3, rows + 1, cols + 1): words of Weights, Inputs, Outputs of one run for every tile h x w."""
    in_h = touched(rows, run.Hstride, run.S, run.Hdilation)[:, None]
    in_w = touched(cols, run.Wstride, run.R, run.Wdilation)[None, :]
    h = np.arange(rows + 1)[:, None]
    w = np.arange(cols + 1)[None, :]
    shape = (rows + 1, cols + 1)
    weights = np.full(shape, run.C * run.M * run.R * run.S, dtype=float)
    inputs = (run.N * run.C * in_h * in_w).astype(float)
    outputs = (run.N * run.M * h * w).astype(float)
    return np.stack([weights, inputs, outputs])


def _traffic(arch: Architecture, tables: ArchTables, cons: Constraints) -> Traffic:
    """Compulsory per-word energy of each tensor on chip, and DRAM's part (module docstring)."""
    keep = effective_keep(arch, cons)
    levels = arch.levels
    L = len(levels)

    def per_word(i: int, op: np.ndarray) -> float:
        e = float(np.nan_to_num(op[i]))
        return e / (float(tables.block[i]) * max(1, int(tables.cluster[i])))

    per: list[float] = []
    dram_keeps: list[bool] = []
    dram_e: list[float] = []
    for ti, tensor in enumerate(TENSORS):
        read_op = tables.e_update if ti == OUTPUTS else tables.e_read
        on_dram = bool(keep[levels[0].name][tensor])
        dram_keeps.append(on_dram)
        dram_e.append(float(np.nan_to_num(read_op[0])))
        certain = [i for i in range(1, L) if keep[levels[i].name][tensor] is True and not levels[i].is_dummy]
        total = 0.0
        for i in certain:
            if ti == OUTPUTS:  # every output word is updated at least once at every keeper
                total += per_word(i, tables.e_update)
                continue
            # read at least once by the level below; filled at least once unless it may be the
            # backing store (the outermost certain keeper when DRAM does not keep the tensor)
            total += per_word(i, tables.e_read)
            if on_dram or i != certain[0]:
                total += per_word(i, tables.e_fill)
        if not on_dram and not certain:
            options = [
                per_word(i, read_op)
                for i in range(1, L)
                if keep[levels[i].name][tensor] is None and not levels[i].is_dummy
            ]
            total += min(options, default=0.0)
        per.append(total)
    return Traffic(tuple(per), tuple(dram_keeps), tuple(dram_e))  # type: ignore[arg-type]


def _parallelism(arch: Architecture, cons: Constraints) -> Parallelism:
    """Per dimension, the product over levels with a fan-out of the largest spatial factor allowed
    there (a fixed factor, an upper bound, or the level's fan-out)."""
    try:
        homes = dict(capacity_spec(arch, cons).home)
    except InputError:
        homes = {}
    template = space_template(arch, {"v": cons}, homes)
    caps = [1] * len(DIMS)
    for l, (fx, fy) in enumerate(template.fanouts):
        fan = fx * fy
        if fan <= 1:
            continue
        _temporal, spatial = template.factor_bounds[l]
        for d in range(len(DIMS)):
            fixed = [v for dd, op, v in spatial if dd == d and op == "=" and v != 0]
            upper = [v for dd, op, v in spatial if dd == d and op == "<="]
            cap = min(fixed) if fixed else fan
            if upper:
                cap = min(cap, min(upper))
            caps[d] *= max(1, min(cap, fan))
    return Parallelism(tuple(caps), int(arch.arithmetic.instances))


__all__ = ["EntryBounds", "Parallelism", "Traffic", "touched"]
