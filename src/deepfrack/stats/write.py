"""``write_stats``: the statistics of a schedule, written all or nothing.

Writes ``components.csv``, ``summary.csv``, the pictures (PNG), ``report.html`` (pictures embedded) and
``report.md`` (pictures linked). Everything is computed first, then written into a temporary folder
beside the output folder and moved into place only when complete (``deepfrack.files.output_folder``):
on any error nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfrack.cost.table import CostTable
from deepfrack.files import output_folder
from deepfrack.search.schedule import Schedule
from deepfrack.stats.components import LAYER_BY_LAYER, component_rows
from deepfrack.stats.page import Picture, render, report_context
from deepfrack.stats.pictures import (
    dram_traffic_figure,
    energy_by_level_figure,
    png_bytes,
    stack_energy_figure,
    tiling_figure,
)
from deepfrack.stats.summary import Summary, components_csv, summarize, summary_csv, summary_lines
from deepfrack.workload.layer import Network

NO_SPLIT = "the cost tables give each entry's total energy only, no per-level split"
NO_DRAM = "the cost tables give no DRAM access counts"


@dataclass(frozen=True)
class StatsFiles:
    """What ``write_stats`` wrote, and one line per picture it skipped (saying why)."""

    files: list[Path]
    skipped: list[str]


def pictures(
    schedule: Schedule, network: Network, summary: Summary, baseline_pJ: list[float]
) -> list[Picture]:
    """Every picture of the report: PNG bytes, or why it cannot be drawn from these tables."""
    name = network.name
    out = []
    title = "Energy by memory level, fused vs layer by layer"
    if summary.split_known:
        fig = energy_by_level_figure(summary, f"{name}: {title.lower()}")
        out.append(Picture("energy_levels.png", title, png_bytes(fig)))
    else:
        out.append(Picture("energy_levels.png", title, skipped=NO_SPLIT))
    fig = stack_energy_figure(schedule, network, baseline_pJ)
    out.append(Picture("energy.png", "Energy per stack, fused vs its layers alone", png_bytes(fig, dpi=120)))
    title = "DRAM traffic per tensor, fused vs layer by layer"
    if summary.dram_known:
        fig = dram_traffic_figure(summary, f"{name}: words moved to and from DRAM per tensor")
        out.append(Picture("dram_traffic.png", title, png_bytes(fig)))
    else:
        out.append(Picture("dram_traffic.png", title, skipped=NO_DRAM))
    for k, st in enumerate(schedule.stacks):
        if st.first != st.last:
            title = (
                f"Stack {k} (layers {st.first}-{st.last}): tiles in compute order and the halo they recompute"
            )
            out.append(Picture(f"tiles_stack{k}.png", title, png_bytes(tiling_figure(st, k, network))))
    return out


def stats_contents(
    schedule: Schedule, network: Network, table: CostTable, inputs: Mapping[str, Any]
) -> tuple[dict[str, bytes], list[str]]:
    """Every output file's name and bytes, and the skipped pictures' lines. MissingCostError when the
    table lacks an entry the schedule uses."""
    rows = component_rows(schedule, network, table)
    summary = summarize(rows)
    lines = summary_lines(summary)
    baseline = [r.energy_pJ for r in rows if r.schedule == LAYER_BY_LAYER]
    pics = pictures(schedule, network, summary, baseline)
    context = report_context(schedule, network, inputs, baseline, lines, pics, summary.notes())
    files = {
        "components.csv": components_csv(rows, summary).encode(),
        "summary.csv": summary_csv(lines).encode(),
        "report.html": render("report.html", context).encode(),
        "report.md": render("report.md", context).encode(),
    }
    files.update({p.name: p.png for p in pics if p.png is not None})
    skipped = [f"{p.name} not drawn: {p.skipped}" for p in pics if p.png is None]
    return files, skipped


def write_stats_into(
    folder: str | Path, schedule: Schedule, network: Network, table: CostTable, inputs: Mapping[str, Any]
) -> StatsFiles:
    """Write the statistics files into ``folder`` (which exists), for a caller that publishes a whole
    set of outputs at once (``deepfrack.api.write_outputs``)."""
    files, skipped = stats_contents(schedule, network, table, inputs)
    for name, data in files.items():
        (Path(folder) / name).write_bytes(data)
    return StatsFiles([Path(folder) / name for name in files], skipped)


def write_stats(
    out_dir: str | Path, schedule: Schedule, network: Network, table: CostTable, inputs: Mapping[str, Any]
) -> StatsFiles:
    """Write the statistics of ``schedule`` (costed from ``table``) into ``out_dir``: components.csv,
    summary.csv, the pictures, report.html and report.md. ``inputs`` is what the run was given (as in
    schedule.json). All or nothing: the files are computed first, written into a temporary folder beside
    ``out_dir`` and moved into place when complete; MissingCostError, with nothing written, when the
    table lacks an entry."""
    out = Path(out_dir)
    files, skipped = stats_contents(schedule, network, table, inputs)
    with output_folder(out) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return StatsFiles([out / name for name in files], skipped)
