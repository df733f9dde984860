"""``deepfrack run``: the whole job in one command - benchmark the shapes the search needs, then search.

Writes DIR/tables/ (the benchmark's <VARIANT>.json, costs.csv, mappings.jsonl) and DIR/schedule.json,
DIR/deepfrack.log, DIR/energy.png. Interrupted, it resumes from the result cache when run again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from deepfrack.benchmark.inputs import load_inputs
from deepfrack.cli import main
from deepfrack.cli.benchmark_cmd import benchmark_tables
from deepfrack.cli.common import (
    ARCH_REQUIRED,
    BACKEND,
    CACHE,
    CAPACITY,
    COMPONENTS,
    CONSTRAINTS,
    ERT,
    JOBS,
    MAPPER,
    MAX_STACK_DEPTH,
    PROGRESS,
    WORKLOAD,
    capacity_from_inputs,
    check_out,
    inputs_record,
    load_workload_noting_chains,
    options,
    out_option,
)
from deepfrack.cli.search_cmds import chain_notes, optimize_and_write
from deepfrack.residency import VARIANTS


@main.command("run")
@options(
    WORKLOAD,
    ARCH_REQUIRED,
    COMPONENTS,
    CONSTRAINTS,
    MAPPER,
    ERT,
    CAPACITY,
    MAX_STACK_DEPTH,
    JOBS,
    BACKEND,
    CACHE,
    PROGRESS,
    out_option("tables/, schedule.json, deepfrack.log, energy.png"),
)
def run(
    workload: Path,
    input_size: tuple[int, int] | None,
    arch: Path,
    components: Path | None,
    constraints: Path | None,
    mapper: Path | None,
    ert: Path | None,
    capacity: str,
    max_stack_depth: int | None,
    n_jobs: int | None,
    backend: str,
    cache_path: Path | None,
    progress: bool | None,
    out: Path,
) -> None:
    """Benchmark what the search needs, then find the best fused schedule (exact receptive field).

    \b
    Example (AlexNet with its padding and pooling, on the bundled Simba-like accelerator):
      deepfrack run -w examples/networks/alexnet.yaml -a simba-like -o out/alexnet
    """
    start = time.perf_counter()
    check_out(out)
    network, chain = load_workload_noting_chains(workload, input_size)
    inputs = load_inputs(arch, components, constraints, mapper, ert, VARIANTS)
    cap = None if capacity == "unlimited" else capacity_from_inputs(inputs)
    tables_dir = out / "tables"
    result = benchmark_tables(
        network, inputs, backend, "needed", max_stack_depth, n_jobs, cache_path, None, progress, tables_dir
    )
    if result.summary.failed:
        click.echo("deepfrack: not searching: some entries failed (see above)", err=True)
        sys.exit(1)
    record = inputs_record(
        workload=workload,
        tables=tables_dir,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=cap,
        ert=ert,
        mapper=mapper,
        max_stack_depth=max_stack_depth,
        energy_table="ert" if ert else "builtin 45 nm",
        backend=backend,
    )
    optimize_and_write(
        network,
        result.table,
        cap,
        "exact",
        max_stack_depth,
        "energy",
        record,
        out,
        chain_notes(chain, "exact"),
        start,
    )
