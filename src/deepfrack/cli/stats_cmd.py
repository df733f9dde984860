"""``deepfrack stats``: the statistics and report of a schedule.json: components.csv, summary.csv, the
pictures, report.html and report.md (docs/stats.md)."""

from __future__ import annotations

from pathlib import Path

import click

from deepfrack import api
from deepfrack.cli import main
from deepfrack.cli.common import out_option


@main.command("stats")
@click.option(
    "--schedule",
    "-s",
    "schedule_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="schedule.json written by deepfrack run, optimize or evaluate.",
)
@click.option(
    "--tables",
    "-t",
    required=True,
    type=click.Path(path_type=Path),
    help="The cost tables the schedule was made with: a costs.csv (or a folder holding one), or a "
    "folder of the original's <VARIANT>.json files (then the per-level split is unknown).",
)
@click.option(
    "--workload",
    "-w",
    type=click.Path(path_type=Path),
    help="The network (checked against the schedule's) [default: the layers schedule.json lists].",
)
@out_option("components.csv, summary.csv, report.html, report.md and the pictures (PNG)")
def stats(schedule_path: Path, tables: Path, workload: Path | None, out: Path) -> None:
    """Where the energy of a schedule goes: per stack, layer, region shape and memory level, fused next
    to layer by layer; the tiles in compute order and the halo they recompute; one HTML report.

    \b
    Example (after `deepfrack run ... -o out/alexnet`):
      deepfrack stats -s out/alexnet/schedule.json -t out/alexnet/tables -o out/alexnet-stats
    """
    result = api.stats(schedule=schedule_path, tables=tables, workload=workload, out=out)
    click.echo(f"wrote {', '.join(str(p) for p in result.outputs)}")
