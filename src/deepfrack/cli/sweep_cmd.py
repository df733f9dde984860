"""``deepfrack sweep``: ``deepfrack run`` for several networks at every point of a grid of architecture
variations (``deepfrack.api.sweep``), for hardware designers: how large must the global buffer be before
fusion pays, how does the answer change with the DRAM technology, which networks gain most.

Writes DIR/sweep.csv, DIR/sweep.png, DIR/report.html and DIR/schedules/, all or nothing. Interrupted, it
resumes from the result cache when run again.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from deepfrack import api
from deepfrack.arch.vary import Study, Variation, load_study, parse_variation
from deepfrack.cli import main
from deepfrack.cli.benchmark_cmd import interrupt_message
from deepfrack.cli.common import (
    BACKEND,
    CACHE,
    CAPACITY,
    COMPONENTS,
    CONSTRAINTS,
    ERT,
    INPUT_SIZE,
    JOBS,
    MAPPER,
    MAX_STACK_DEPTH,
    PROGRESS,
    SCHEDULER,
    options,
    out_option,
    print_benchmark_summary,
    show_progress,
)
from deepfrack.errors import InputError


def _announce(done: int, total: int, point: Mapping[str, Any], network: str) -> None:
    values = ", ".join(f"{t}={v}" for t, v in point.items())
    click.echo(f"deepfrack: sweep run {done + 1}/{total}: {values}, {network}", err=True)


def _print_sweep(result: api.SweepResult) -> None:
    """One line per run on stdout (the varied values, the network, the saving and the stacks), then how
    the runs shared the cache and the files written."""
    targets = [v.target for v in result.variations]
    width = max(len(r.network) for r in result.rows)
    for r in result.rows:
        values = "  ".join(f"{t}={r.values[t]}" for t in targets)
        click.echo(
            f"{values}  {r.network:<{width}}  {r.fused_uJ:>12,.2f} uJ fused vs {r.layer_by_layer_uJ:>12,.2f} "
            f"uJ layer by layer: {r.saving_pct:6.2f}% saved; stacks {r.stack_layers}"
        )
    c = result.cache
    click.echo(
        f"{len(result.rows)} runs in {result.elapsed_s:.1f} s; cache: {c.asked:,} entries asked for "
        f"({c.distinct:,} distinct), {c.computed:,} mapped by this sweep, {c.shared:,} asked for by more "
        "than one run"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    files = [p for p in result.outputs if p.parent.name != "schedules"]
    if files:
        click.echo(f"wrote {', '.join(str(p) for p in files)} and {len(result.runs)} schedules in schedules/")


def _combine(
    study: Study | None,
    workloads: Sequence[Path],
    arch: Path | None,
    vary: Sequence[str],
    zipped: bool,
) -> tuple[list[str | Path], str | Path, list[Variation], bool]:
    """The sweep to run: the --study file's, with -w and -a replacing its networks and architecture and
    each --vary replacing the file's values of that attribute (or adding one)."""
    given = [parse_variation(v) for v in vary]
    if study is None:
        for name, value in (("--workload", workloads), ("--arch", arch), ("--vary", given)):
            if not value:
                raise InputError(None, name, "missing: give it, or a --study file that names it")
        assert arch is not None
        return list(workloads), arch, given, zipped
    by_target = {v.target: v for v in given}
    variations = [by_target.pop(v.target, v) for v in study.vary] + list(by_target.values())
    return list(workloads or study.workloads), arch or study.arch, variations, zipped or study.zipped


@main.command("sweep")
@click.option(
    "--study",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="A study file (workloads, arch, vary, zip; examples/sweeps/buffer-vs-dram.yaml). -w, -a and "
    "--vary given as well replace its networks, its architecture and its values of that attribute.",
)
@click.option(
    "--workload",
    "-w",
    "workloads",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="NAME|PATH [NAME|PATH ...]",
    help="Networks: zoo names (deepfrack zoo), network YAMLs, ONNX models or folders of Timeloop "
    "problem YAMLs (-w alexnet vgg16, or -w once per network).",
)
@click.argument("more_workloads", nargs=-1, type=click.Path(path_type=Path), metavar="")
@options(INPUT_SIZE)
@click.option(
    "--arch",
    "-a",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="NAME|FILE",
    help="The architecture to vary: a bundled accelerator by name (deepfrack arch list) or a Timeloop "
    "architecture YAML (v0.3 or v0.4) [default: the --study file's].",
)
@click.option(
    "--vary",
    multiple=True,
    metavar="LEVEL.ATTRIBUTE=V1,V2,...",
    help="An attribute of the architecture as its file names it, and its values: "
    "GlobalBuffer.memory_depth=512,2048,8192, DRAM.type=LPDDR4,HBM2,GDDR5,DDR4; PE.instances=4,16,64 "
    "for the instance count of a PE[0..N] level (its meshes follow). Repeat for more attributes.",
)
@click.option(
    "--zip",
    "zipped",
    is_flag=True,
    help="The i-th values of every --vary together [default: every combination].",
)
@options(
    COMPONENTS,
    CONSTRAINTS,
    MAPPER,
    ERT,
    CAPACITY,
    MAX_STACK_DEPTH,
    JOBS,
    SCHEDULER,
    BACKEND,
    CACHE,
    PROGRESS,
    out_option("sweep.csv, sweep.png, report.html, schedules/"),
)
def sweep(
    study: Path | None,
    workloads: tuple[Path, ...],
    more_workloads: tuple[Path, ...],
    input_size: tuple[int, int] | None,
    arch: Path | None,
    vary: tuple[str, ...],
    zipped: bool,
    components: Path | None,
    constraints: Path | None,
    mapper: Path | None,
    ert: Path | None,
    capacity: str,
    max_stack_depth: int | None,
    n_jobs: int | None,
    scheduler: str | None,
    backend: str,
    cache_path: Path | None,
    progress: bool | None,
    out: Path,
) -> None:
    """Run every network at every point of a grid of architecture variations: the cartesian product of
    the --vary values (--zip: their i-th values together), each point a full `deepfrack run` on a
    changed copy of the architecture (the file is not touched), all sharing one result cache.

    \b
    The bundled study (docs/designers.md), on two of its networks:
      deepfrack sweep --study examples/sweeps/buffer-vs-dram.yaml -w alexnet vgg16 -o out/study

    \b
    Example (the global buffer from 16 K to 1 M words x four DRAM types; docs/designers.md):
      deepfrack sweep -w alexnet vgg16 -a simba-like \\
        --vary GlobalBuffer.memory_depth=512,1024,2048,4096,8192,16384,32768 \\
        --vary DRAM.type=LPDDR4,HBM2,GDDR5,DDR4 -o out/buffer-vs-dram
    """
    nets, arch_given, variations, zipped = _combine(
        load_study(study) if study is not None else None, [*workloads, *more_workloads], arch, vary, zipped
    )
    with interrupt_message(cache_path, out):
        try:
            result = api.sweep(
                workloads=nets,
                input_size=input_size or None,
                arch=arch_given,
                vary=variations,
                zipped=zipped,
                components=components,
                constraints=constraints,
                mapper=mapper,
                ert=ert,
                capacity=capacity,  # type: ignore[arg-type]
                max_stack_depth=max_stack_depth,
                jobs=n_jobs,
                scheduler=scheduler,
                backend=backend,
                cache=cache_path,
                progress=show_progress(progress),
                on_run=_announce,
                out=out,
            )
        except api.EntriesFailed as exc:
            print_benchmark_summary(exc.result.summary, None)
            click.echo(f"deepfrack: sweep stopped: {exc}", err=True)
            sys.exit(1)
    _print_sweep(result)
