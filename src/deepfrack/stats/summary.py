"""Totals of component rows: per memory level and the compute unit, fused next to layer by layer, and
the CSV text of ``components.csv`` and ``summary.csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deepfrack.dims import TENSORS
from deepfrack.stats.components import FUSED, LAYER_BY_LAYER, ComponentRow

#: the component that holds energy no level accounts for (Timeloop's network energy)
OTHER = "other"
SPLIT_UNAVAILABLE = "per-level energy unavailable: the cost tables give each entry's total energy only"
DRAM_UNAVAILABLE = "DRAM words unavailable: the cost tables give no access counts"


@dataclass(frozen=True)
class ScheduleTotals:
    """Sums over one schedule's rows. ``level_energy_pJ`` (levels in ``Summary.levels`` order, plus
    ``OTHER`` when the levels do not account for all the energy) and ``dram_words`` (``{"reads"|
    "updates": {tensor: words}}``) are None when any row lacks them; cycles None likewise."""

    energy_pJ: float
    cycles: float | None
    macs: int
    level_energy_pJ: dict[str, float] | None
    dram_words: dict[str, dict[str, float]] | None

    def dram_total(self, tensor: str) -> float | None:
        """Words of ``tensor`` moved to and from DRAM (reads + updates)."""
        if self.dram_words is None:
            return None
        return self.dram_words["reads"][tensor] + self.dram_words["updates"][tensor]


@dataclass(frozen=True)
class Summary:
    """Both schedules' totals. ``levels``: the levels of the per-level split, from the outermost
    storage level (DRAM) inward, the compute unit last (``compute``), then ``OTHER`` if any."""

    levels: tuple[str, ...]
    compute: str | None
    fused: ScheduleTotals
    layer_by_layer: ScheduleTotals

    @property
    def split_known(self) -> bool:
        return self.fused.level_energy_pJ is not None and self.layer_by_layer.level_energy_pJ is not None

    @property
    def dram_known(self) -> bool:
        return self.fused.dram_words is not None and self.layer_by_layer.dram_words is not None

    def notes(self) -> list[str]:
        """What the tables cannot tell."""
        return ([] if self.split_known else [SPLIT_UNAVAILABLE]) + (
            [] if self.dram_known else [DRAM_UNAVAILABLE]
        )

    def of(self, schedule: str) -> ScheduleTotals:
        return self.fused if schedule == FUSED else self.layer_by_layer


def level_order(rows: Iterable[ComponentRow]) -> list[str]:
    """The levels of the rows' per-level split, in first-seen order (the cost records' order: the
    outermost storage level first, the compute unit last)."""
    seen: dict[str, None] = {}
    for r in rows:
        for name in r.level_energy_pJ or {}:
            seen.setdefault(name, None)
    return list(seen)


def _other(row: ComponentRow) -> float:
    return row.energy_pJ - sum((row.level_energy_pJ or {}).values())


def has_other(rows: Sequence[ComponentRow]) -> bool:
    """True when some row's levels leave energy unaccounted for (beyond float rounding)."""
    return any(
        r.level_energy_pJ is not None and abs(_other(r)) > 1e-9 * abs(r.energy_pJ) + 1e-6 for r in rows
    )


def schedule_totals(rows: Sequence[ComponentRow], levels: Sequence[str], other: bool) -> ScheduleTotals:
    """Sums of ``rows`` (one schedule's)."""
    energy = sum(r.energy_pJ for r in rows)
    cycles = None if any(r.cycles is None for r in rows) else sum(r.cycles for r in rows)  # type: ignore[misc]
    split: dict[str, float] | None = None
    if all(r.level_energy_pJ is not None for r in rows):
        split = {name: sum(r.level_energy_pJ.get(name, 0.0) for r in rows) for name in levels}  # type: ignore[union-attr]
        if other:
            split[OTHER] = sum(_other(r) for r in rows)
    words: dict[str, dict[str, float]] | None = None
    if all(r.dram_words is not None for r in rows):
        words = {
            kind: {t: sum(r.dram_words[kind][t] for r in rows) for t in TENSORS}  # type: ignore[index]
            for kind in ("reads", "updates")
        }
    return ScheduleTotals(energy, cycles, sum(r.macs for r in rows), split, words)


def summarize(rows: Sequence[ComponentRow]) -> Summary:
    levels = level_order(rows)
    other = has_other(rows)
    by = {s: [r for r in rows if r.schedule == s] for s in (FUSED, LAYER_BY_LAYER)}
    return Summary(
        levels=tuple(levels) + ((OTHER,) if other else ()),
        compute=levels[-1] if levels else None,
        fused=schedule_totals(by[FUSED], levels, other),
        layer_by_layer=schedule_totals(by[LAYER_BY_LAYER], levels, other),
    )


# --------------------------------------------------------------------------------------------- #
# CSV text
# --------------------------------------------------------------------------------------------- #
def _fmt(x: float | int | None) -> str:
    if x is None:
        return ""
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def _csv(lines: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    return buf.getvalue()


DRAM_KEYS = tuple((kind, t) for kind in ("reads", "updates") for t in TENSORS)


def components_csv(rows: Sequence[ComponentRow], summary: Summary) -> str:
    """``components.csv``: one line per row. Columns: schedule, stack (the fused schedule's stack, 0-based
    as in schedule.json), layer (0-based), layer_name, region_h, region_w, tiles, variants, macs,
    cycles, ``energy_pJ_<level>`` per level (when the tables split the energy), energy_pJ_total,
    ``dram_reads_<tensor>`` / ``dram_updates_<tensor>`` (words, when the tables count them), and a
    ``note`` saying what the tables cannot tell (only when they cannot)."""
    levels = list(summary.levels) if summary.split_known else []
    dram = summary.dram_known
    notes = "; ".join(summary.notes())
    header = ["schedule", "stack", "layer", "layer_name", "region_h", "region_w", "tiles", "variants"]
    header += ["macs", "cycles", *(f"energy_pJ_{n}" for n in levels), "energy_pJ_total"]
    header += [f"dram_{kind}_{t}" for kind, t in DRAM_KEYS] if dram else []
    header += ["note"] if notes else []
    lines = [header]
    for r in rows:
        split = r.level_energy_pJ or {}
        line = [r.schedule, str(r.stack), str(r.layer), r.layer_name, str(r.region[0]), str(r.region[1])]
        line += [str(r.tiles), r.variants, str(r.macs), _fmt(r.cycles)]
        line += [_fmt(_other(r) if n == OTHER else split.get(n, 0.0)) for n in levels]
        line.append(_fmt(r.energy_pJ))
        if dram:
            line += [_fmt(r.dram_words[kind][t]) for kind, t in DRAM_KEYS]  # type: ignore[index]
        if notes:
            line.append(notes)
        lines.append(line)
    return _csv(lines)


@dataclass(frozen=True)
class SummaryLine:
    """One line of summary.csv: a quantity of one component, fused and layer by layer."""

    quantity: str
    component: str
    unit: str
    fused: float | None
    layer_by_layer: float | None
    note: str = ""

    @property
    def change_pct(self) -> float | None:
        """Fused relative to layer by layer, in percent (negative: the fused schedule spends less)."""
        if self.fused is None or not self.layer_by_layer:
            return None
        return 100.0 * (self.fused / self.layer_by_layer - 1.0)


def summary_lines(summary: Summary) -> list[SummaryLine]:
    """Per level (energy, pJ per MAC, share of the total), then the totals: energy, cycles, MACs and
    the DRAM words per tensor (reads + updates)."""
    f, b = summary.fused, summary.layer_by_layer
    out: list[SummaryLine] = []
    if summary.split_known:
        fl, bl = f.level_energy_pJ or {}, b.level_energy_pJ or {}
        for n in summary.levels:
            out.append(SummaryLine("energy", n, "pJ", fl[n], bl[n]))
        for n in summary.levels:
            out.append(SummaryLine("energy_per_mac", n, "pJ/MAC", _per(fl[n], f.macs), _per(bl[n], b.macs)))
        for n in summary.levels:
            out.append(
                SummaryLine("share", n, "%", _per(100 * fl[n], f.energy_pJ), _per(100 * bl[n], b.energy_pJ))
            )
    else:
        out.append(SummaryLine("energy", "per level", "pJ", None, None, SPLIT_UNAVAILABLE))
    out.append(SummaryLine("energy", "total", "pJ", f.energy_pJ, b.energy_pJ))
    out.append(
        SummaryLine("energy_per_mac", "total", "pJ/MAC", _per(f.energy_pJ, f.macs), _per(b.energy_pJ, b.macs))
    )
    out.append(SummaryLine("cycles", "total", "cycles", f.cycles, b.cycles))
    out.append(SummaryLine("macs", "total", "MACs", f.macs, b.macs))
    if summary.dram_known:
        for t in TENSORS:
            out.append(SummaryLine("dram_words", t, "words", f.dram_total(t), b.dram_total(t)))
        out.append(
            SummaryLine(
                "dram_words",
                "total",
                "words",
                sum(f.dram_total(t) or 0.0 for t in TENSORS),
                sum(b.dram_total(t) or 0.0 for t in TENSORS),
            )
        )
    else:
        out.append(SummaryLine("dram_words", "total", "words", None, None, DRAM_UNAVAILABLE))
    return out


def _per(x: float, n: float) -> float | None:
    return None if not n else x / n


def summary_csv(lines: Sequence[SummaryLine]) -> str:
    """``summary.csv``: quantity, component, unit, fused, layer_by_layer, change_pct, note."""
    out = [["quantity", "component", "unit", "fused", "layer_by_layer", "change_pct", "note"]]
    for ln in lines:
        out.append(
            [
                ln.quantity,
                ln.component,
                ln.unit,
                _fmt(ln.fused),
                _fmt(ln.layer_by_layer),
                _fmt(ln.change_pct),
                ln.note,
            ]
        )
    return _csv(out)
