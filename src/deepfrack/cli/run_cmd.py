"""``deepfrack run``: the whole job in one command - benchmark the shapes the search needs, then search.

Writes DIR/tables/ (the benchmark's <VARIANT>.json, costs.csv, mappings.jsonl) and DIR/schedule.json,
DIR/deepfrack.log, DIR/energy.png. Interrupted, it resumes from the result cache when run again.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import click

from deepfrack.arch import CapacitySpec, capacity_spec, load_constraints
from deepfrack.benchmark.inputs import BenchmarkInputs, load_inputs
from deepfrack.cli import main
from deepfrack.cli.benchmark_cmd import benchmark_tables
from deepfrack.cli.search_cmds import optimize_and_write
from deepfrack.cost.variants import VARIANTS, Variant
from deepfrack.errors import InputError
from deepfrack.workload.loaders import load_workload


def capacity_from_inputs(inputs: BenchmarkInputs) -> CapacitySpec:
    """Home levels and capacities from the benchmark's architecture and its on-chip keep/bypass (the SLC
    variant's file when the seven files are given, else the shared constraints or the architecture's own)."""
    paths = [Path(f.path) for f in inputs.constraints]
    slc = inputs.variant_files.get(Variant.SLC)
    if slc is not None:
        paths.insert(0, Path(slc.path))
    if paths:
        cons = load_constraints(*paths)
    elif inputs.architecture.constraints.targets:
        cons = inputs.architecture.constraints
    else:
        raise InputError(inputs.arch.path, None, "the architecture carries no constraints: give --constraints "
                                                 "(keep/bypass per level) or --capacity unlimited")
    return capacity_spec(inputs.architecture, cons)


@main.command("run")
@click.option("--workload", "-w", required=True, type=click.Path(path_type=Path),
              help="Network YAML (with padding and pooling) or a folder of Timeloop problem YAMLs.")
@click.option("--arch", "-a", required=True, type=click.Path(path_type=Path), help="Timeloop architecture YAML.")
@click.option("--components", type=click.Path(path_type=Path),
              help="Folder of Accelergy component classes [default: <arch folder>/components when it exists].")
@click.option("--constraints", "-c", type=click.Path(path_type=Path),
              help="Folder of the seven variant constraint files (+ shared mapspace files), or one constraints file "
                   "[default: the architecture's own].")
@click.option("--mapper", type=click.Path(path_type=Path),
              help="Timeloop mapper.yaml (its optimization-metrics is the mapper's objective).")
@click.option("--ert", type=click.Path(path_type=Path),
              help="Accelergy energy reference table [default: deepfrack's built-in 45 nm table].")
@click.option("--capacity", type=click.Choice(["arch", "unlimited"]), default="arch", show_default=True,
              help="'unlimited' turns the on-chip capacity check of the search off.")
@click.option("--max-stack-depth", type=click.IntRange(min=1), default=None,
              help="Most layers in one fused stack [default: unlimited]; bounds the shapes to benchmark.")
@click.option("--jobs", "n_jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores].")
@click.option("--backend", default="builtin", show_default=True,
              help="builtin, timeloop (timeloop-mapper on PATH), or package.module:factory.")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path),
              help="SQLite result cache [default: $DEEPFRACK_CACHE or ~/.cache/deepfrack/benchmark.sqlite].")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: when stderr is a terminal].")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output folder: tables/, schedule.json, deepfrack.log, energy.png.")
def run(workload: Path, arch: Path, components: Path | None, constraints: Path | None, mapper: Path | None,
        ert: Path | None, capacity: str, max_stack_depth: int | None, n_jobs: int | None, backend: str,
        cache_path: Path | None, progress: bool | None, out: Path) -> None:
    """Benchmark what the search needs, then find the best fused schedule (exact receptive field).

    \b
    Example (AlexNet with its padding and pooling, on the Simba-like accelerator):
      deepfrack run -w examples/networks/alexnet.yaml \\
        -a examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like/arch/simba_like.yaml \\
        -c examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like/constraints -o out/alexnet
    """
    start = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "--out must be a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network = load_workload(workload)
    warn_msgs = [str(w.message) for w in caught]
    inputs = load_inputs(arch, components, constraints, mapper, ert, VARIANTS)
    cap = None if capacity == "unlimited" else capacity_from_inputs(inputs)
    tables_dir = out / "tables"
    result = benchmark_tables(network, inputs, backend, "needed", max_stack_depth, n_jobs, cache_path, None,
                              progress, tables_dir)
    if result.summary.failed:
        click.echo("deepfrack: not searching: some entries failed (see above)", err=True)
        sys.exit(1)
    record = {
        "workload": str(workload),
        "tables": str(tables_dir),
        "arch": str(arch),
        "constraints": str(constraints) if constraints else None,
        "ert": str(ert) if ert else "builtin 45 nm table",
        "capacity": "unlimited" if cap is None else dict(cap.words),
    }
    if max_stack_depth:
        record["max_stack_depth"] = max_stack_depth
    optimize_and_write(network, result.table, cap, "exact", max_stack_depth, record, out, warn_msgs, start)
