"""The energy-cycles front's files (docs/search.md, "Energy and cycles together"): ``pareto.csv`` (one row
per point of the front), ``pareto.png`` (the front, the layer-by-layer point and the energy-, cycles- and
EDP-optimal points marked) and, on request, every point's schedule as ``pareto/point-NNN.json``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.ticker import EngFormatter

from deepfrack.search.pareto import Front
from deepfrack.search.schedule import Schedule, Totals
from deepfrack.search.schedule_io import schedule_to_json
from deepfrack.stats.pictures import LBL_COLOR, new_figure, png_bytes
from deepfrack.workload.layer import Network

COLUMNS = (
    "point",
    "energy_uJ",
    "cycles",
    "edp_uJ_cycles",
    "optimal_for",
    "stacks",
    "tile_shapes",
    "cached_layers",
)


def _marks(front: Front, chosen: int | None) -> dict[int, list[str]]:
    marks: dict[int, list[str]] = {}
    for name in ("energy", "cycles", "edp"):
        marks.setdefault(front.best(name), []).append(name)
    if chosen is not None:
        marks.setdefault(chosen, []).append("chosen")
    return marks


def _stack_fields(schedule: Schedule) -> tuple[str, str, str]:
    stacks = " ".join(f"{s.first}-{s.last}" if s.depth > 1 else str(s.first) for s in schedule.stacks)
    tiles = " ".join(f"{s.tile_shape[0]}x{s.tile_shape[1]}" for s in schedule.stacks)
    cached = " ".join(",".join(map(str, s.cached_layers)) or "-" for s in schedule.stacks)
    return stacks, tiles, cached


def pareto_csv(front: Front, chosen: int | None = None) -> str:
    """One row per point, energy ascending: its number, energy (uJ), cycles, EDP (uJ x cycles), what it
    is optimal for (energy, cycles, edp; chosen: the point the objective and budgets picked), and its
    schedule: per stack (space-separated, in order) its layers, its tile shape (h x w on its last layer)
    and its cached layers (comma-separated, '-' for none)."""
    marks = _marks(front, chosen)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for k, (p, sched) in enumerate(zip(front.points, front.schedules)):
        e_uJ = p.energy_pJ * 1e-6
        mark = " ".join(marks.get(k, []))
        w.writerow([k, repr(e_uJ), repr(p.cycles), repr(e_uJ * p.cycles), mark, *_stack_fields(sched)])
    return buf.getvalue()


def pareto_figure(front: Front, baseline: Totals, chosen: int | None = None, title: str = ""):
    """Energy against cycles: the front (a staircase), the layer-by-layer point and the optimal points."""
    fig = new_figure(7.0, 4.8)
    ax = fig.add_subplot()
    e = front.energy * 1e-6
    c = front.cycles
    ax.step(c, e, where="post", color="#1f77b4", linewidth=1, alpha=0.6)
    ax.plot(c, e, "o", color="#1f77b4", markersize=3, label=f"Pareto front ({len(front.points)} points)")
    if baseline.cycles is not None:
        lbl = (baseline.cycles, baseline.energy_uJ)
        ax.plot(*lbl, "s", color=LBL_COLOR, markersize=8, label="layer by layer", linestyle="none")
    styles = {"energy": ("v", "#2ca02c"), "cycles": ("<", "#d62728"), "edp": ("*", "#ff7f0e")}
    for name, (marker, color) in styles.items():
        k = front.best(name)
        ax.plot(c[k], e[k], marker, color=color, markersize=11, label=f"{name}-optimal", linestyle="none")
    if chosen is not None:
        ring = {"markerfacecolor": "none", "markeredgecolor": "black", "linestyle": "none"}
        ax.plot(c[chosen], e[chosen], "o", markersize=15, label="chosen", **ring)
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.set_xlabel("cycles")
    ax.set_ylabel("energy (uJ)")
    ax.set_title(title or "Energy against cycles: every non-dominated schedule")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def write_pareto_into(
    folder: Path,
    front: Front,
    network: Network,
    inputs: Mapping[str, Any],
    chosen: int | None = None,
    schedules: bool = False,
) -> list[Path]:
    """Write pareto.csv, pareto.png and (``schedules``) pareto/point-NNN.json into ``folder`` (a
    temporary folder the caller moves into place); returns the files."""
    baseline = front.schedules[0].layer_by_layer
    files = [folder / "pareto.csv", folder / "pareto.png"]
    files[0].write_text(pareto_csv(front, chosen))
    files[1].write_bytes(png_bytes(pareto_figure(front, baseline, chosen)))
    if schedules:
        (folder / "pareto").mkdir()
        width = max(3, len(str(len(front.points) - 1)))
        for k, sched in enumerate(front.schedules):
            path = folder / "pareto" / f"point-{k:0{width}d}.json"
            path.write_text(schedule_to_json(sched, network, {**inputs, "pareto_point": k}))
            files.append(path)
    return files
