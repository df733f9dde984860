"""The outputs of a design-space sweep (``deepfrack sweep``): one row per point and network, and the
files made from them.

* ``sweep.csv``: one line per row (columns in ``SWEEP_COLUMNS`` order, the varied attributes first);
* ``sweep.png``: the saving against each varied attribute, one line per network (``sweep_figure``);
* ``report.html``: one self-contained page (jinja2, the picture embedded): what was varied, the best
  point per network, the rows, and how much of the work the result cache shared between runs.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from deepfrack.search.schedule import Schedule
from deepfrack.stats.page import Picture, fmt_number, input_lines, render, uJ
from deepfrack.stats.pictures import new_figure, png_bytes

#: panels of sweep.png per varied attribute: one per combination of the other attributes' values, up to
#: this many; beyond it, one panel with the best saving over the other attributes
MAX_PANELS = 8


@dataclass(frozen=True)
class SweepRow:
    """One run of a sweep: the point (its index and ``{attribute: value}``), the network, and what its
    best schedule gives against layer by layer. Energies in µJ as schedule.json gives them; ``saving_pct``
    is the energy saved (never negative: layer by layer is among the schedules the search weighs);
    ``recompute_pct`` the extra MACs of the recomputed halo; ``stack_layers`` the stacks' layer ranges
    (0-based, ``0-1 2 3-5``); ``capacity`` the words of each home level (empty: unlimited); ``entries`` the
    benchmark entries the run asked for, ``computed`` the distinct entries it mapped (layers of the same
    shape share theirs; the rest came from the result cache); ``run_s`` its wall time."""

    point: int
    values: Mapping[str, Any]
    network: str
    fused_uJ: float
    layer_by_layer_uJ: float
    fused_cycles: float | None
    layer_by_layer_cycles: float | None
    saving_pct: float
    stacks: int
    fused_stacks: int
    cached_layers: int
    recompute_pct: float
    stack_layers: str
    capacity: Mapping[str, int]
    entries: int
    computed: int
    run_s: float

    @property
    def cycles_change_pct(self) -> float | None:
        if self.fused_cycles is None or not self.layer_by_layer_cycles:
            return None
        return 100.0 * (self.fused_cycles / self.layer_by_layer_cycles - 1.0)


def stack_layers(schedule: Schedule) -> str:
    """The stacks' layer ranges, 0-based: ``0-1 2 3-5``."""
    return " ".join(f"{s.first}" if s.first == s.last else f"{s.first}-{s.last}" for s in schedule.stacks)


def sweep_row(
    point: int,
    values: Mapping[str, Any],
    network: str,
    schedule: Schedule,
    capacity: Mapping[str, int] | None,
    entries: int,
    computed: int,
    run_s: float,
) -> SweepRow:
    """The row of one run (``SweepRow``)."""
    tot, base = schedule.total, schedule.layer_by_layer
    return SweepRow(
        point=point,
        values=dict(values),
        network=network,
        fused_uJ=uJ(tot.energy_pJ),
        layer_by_layer_uJ=uJ(base.energy_pJ),
        fused_cycles=tot.cycles,
        layer_by_layer_cycles=base.cycles,
        saving_pct=round(100.0 * schedule.reduction, 4),
        stacks=len(schedule.stacks),
        fused_stacks=sum(s.first != s.last for s in schedule.stacks),
        cached_layers=sum(len(s.cached_layers) for s in schedule.stacks),
        recompute_pct=round(100.0 * schedule.recompute, 4),
        stack_layers=stack_layers(schedule),
        capacity=dict(capacity or {}),
        entries=entries,
        computed=computed,
        run_s=round(run_s, 3),
    )


# --------------------------------------------------------------------------------------------- #
# sweep.csv
# --------------------------------------------------------------------------------------------- #
SWEEP_COLUMNS = (
    "point",
    "network",
    "fused_energy_uJ",
    "layer_by_layer_energy_uJ",
    "saving_pct",
    "fused_cycles",
    "layer_by_layer_cycles",
    "cycles_change_pct",
    "stacks",
    "fused_stacks",
    "cached_layers",
    "recompute_pct",
    "stack_layers",
    "entries",
    "entries_computed",
    "run_s",
)


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def sweep_csv(rows: Sequence[SweepRow], targets: Sequence[str]) -> str:
    """``sweep.csv``: ``point``, the varied attributes (``GlobalBuffer.memory_depth``, ...), then the
    columns of ``SWEEP_COLUMNS`` after ``point``, then ``capacity_<level>_words`` per home level."""
    levels = list(dict.fromkeys(lv for r in rows for lv in r.capacity))
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["point", *targets, *SWEEP_COLUMNS[1:], *(f"capacity_{lv}_words" for lv in levels)])
    for r in rows:
        change = r.cycles_change_pct
        out.writerow(
            [
                r.point,
                *(_cell(r.values[t]) for t in targets),
                r.network,
                _cell(r.fused_uJ),
                _cell(r.layer_by_layer_uJ),
                _cell(r.saving_pct),
                _cell(r.fused_cycles),
                _cell(r.layer_by_layer_cycles),
                "" if change is None else _cell(round(change, 4)),
                r.stacks,
                r.fused_stacks,
                r.cached_layers,
                _cell(r.recompute_pct),
                r.stack_layers,
                r.entries,
                r.computed,
                _cell(r.run_s),
                *(_cell(r.capacity.get(lv)) for lv in levels),
            ]
        )
    return buf.getvalue()


# --------------------------------------------------------------------------------------------- #
# sweep.png
# --------------------------------------------------------------------------------------------- #
def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _panels(
    rows: Sequence[SweepRow], target: str, targets: Sequence[str]
) -> list[tuple[str, list[SweepRow]]]:
    """The panels of one attribute: (title, rows) per combination of the other attributes' values, or
    one panel of every row when there are more than ``MAX_PANELS`` combinations (the best saving is
    drawn then)."""
    others = [t for t in targets if t != target]
    combos: dict[tuple[Any, ...], list[SweepRow]] = {}
    for r in rows:
        combos.setdefault(tuple(r.values[t] for t in others), []).append(r)
    if not others:
        return [("", list(rows))]
    if len(combos) > MAX_PANELS:
        return [("best over " + ", ".join(others), list(rows))]
    return [(", ".join(f"{t}={v}" for t, v in zip(others, key)), rs) for key, rs in combos.items()]


def _draw(
    ax: Any, rows: Sequence[SweepRow], target: str, values: Sequence[Any], networks: Sequence[str]
) -> None:
    numeric = _numeric(values)
    positions = {v: (v if numeric else i) for i, v in enumerate(values)}
    for k, net in enumerate(networks):
        best: dict[Any, float] = {}
        for r in rows:
            if r.network == net:
                v = r.values[target]
                best[v] = max(best.get(v, -math.inf), r.saving_pct)
        xs = [v for v in values if v in best]
        ax.plot([positions[v] for v in xs], [best[v] for v in xs], marker="o", color=f"C{k % 10}", label=net)
    ax.axhline(0.0, color="#777777", linewidth=0.8)
    if numeric and min(values) > 0 and max(values) >= 8 * min(values):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(values))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: fmt_number(x, 0)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
    elif not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    ax.set_xlabel(target)
    ax.grid(True, alpha=0.3)


def sweep_figure(rows: Sequence[SweepRow], targets: Sequence[str]) -> Figure:
    """The saving against each varied attribute, one line per network: a row of panels per attribute,
    one panel per combination of the other attributes (``_panels``)."""
    networks = list(dict.fromkeys(r.network for r in rows))
    layout = [(t, _panels(rows, t, targets)) for t in targets]
    cols = max(len(p) for _, p in layout)
    fig = new_figure(max(6.0, 3.4 * cols), 3.2 * len(layout) + 0.6)
    axes = fig.subplots(len(layout), cols, squeeze=False, sharey=True)
    for i, (target, panels) in enumerate(layout):
        values = list(dict.fromkeys(r.values[target] for r in rows))
        for j in range(cols):
            ax = axes[i][j]
            if j >= len(panels):
                ax.set_visible(False)
                continue
            title, subset = panels[j]
            _draw(ax, subset, target, values, networks)
            ax.set_title(title, fontsize="small")
            if j == 0:
                ax.set_ylabel("energy saved (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6))
    return fig


# --------------------------------------------------------------------------------------------- #
# report.html
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class CacheUse:
    """How the runs of a sweep used the result cache: ``asked`` the cache keys each run asked for, summed
    over the runs; ``distinct`` keys among them; ``computed`` the entries this sweep mapped (the others
    were in the cache already, from an earlier sweep or run, or from an earlier run of this one);
    ``shared`` keys asked for by more than one run. A key holds the architecture's content, so runs at
    different points never share one: runs share entries at the same point (networks with layers of the
    same shape) and across sweeps (a point run again, an interrupted sweep resumed)."""

    asked: int
    distinct: int
    computed: int
    shared: int


def best_rows(rows: Sequence[SweepRow]) -> list[SweepRow]:
    """Per network, the row that saves the most energy (the first such point on ties)."""
    best: dict[str, SweepRow] = {}
    for r in rows:
        if r.network not in best or r.saving_pct > best[r.network].saving_pct:
            best[r.network] = r
    return list(best.values())


def sweep_contents(
    rows: Sequence[SweepRow],
    targets: Sequence[str],
    values: Mapping[str, Sequence[Any]],
    inputs: Mapping[str, Any],
    cache: CacheUse,
    elapsed_s: float,
    notes: Sequence[str] = (),
) -> dict[str, bytes]:
    """Every output file of a sweep by name: sweep.csv, sweep.png, and report.html
    (``templates/sweep.html.j2``, the picture embedded). ``values``: each target's values in order;
    ``inputs``: what the sweep was given; ``notes``: lines for the report."""
    title = "Energy saved by fusion against each varied attribute, one line per network"
    picture = Picture("sweep.png", title, png_bytes(sweep_figure(rows, targets)))
    page = render(
        "sweep.html",
        {
            "networks": list(dict.fromkeys(r.network for r in rows)),
            "points": len({r.point for r in rows}),
            "targets": list(targets),
            "values": {t: [str(v) for v in values[t]] for t in targets},
            "inputs": input_lines(inputs),
            "rows": list(rows),
            "best": best_rows(rows),
            "levels": list(dict.fromkeys(lv for r in rows for lv in r.capacity)),
            "cache": cache,
            "elapsed_s": elapsed_s,
            "picture": picture,
            "notes": list(notes),
        },
    )
    return {
        "sweep.csv": sweep_csv(rows, targets).encode(),
        "sweep.png": picture.png or b"",
        "report.html": page.encode(),
    }


__all__ = [
    "SWEEP_COLUMNS",
    "CacheUse",
    "SweepRow",
    "best_rows",
    "stack_layers",
    "sweep_contents",
    "sweep_csv",
    "sweep_figure",
    "sweep_row",
]
