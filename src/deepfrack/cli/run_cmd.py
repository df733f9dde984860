"""``deepfrack run``: the whole job in one command - cost what the search needs, and search.

By default the search asks for entries as it needs them (``deepfrack.search.optimize_on_demand``): only
those that can still change the optimum are benchmarked. ``--exhaustive`` benchmarks every entry the
search may ask for first (``required_shapes``), then searches; both give the same schedule.

Writes DIR/tables/ (the benchmark's <VARIANT>.json, costs.csv, mappings.jsonl: the entries costed) and
DIR/schedule.json, DIR/deepfrack.log, DIR/energy.png. Interrupted, it resumes from the result cache when
run again.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click

from deepfrack.benchmark.cache import ResultCache
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.runner import BenchmarkSession
from deepfrack.cli import main
from deepfrack.cli.benchmark_cmd import (
    benchmark_tables,
    default_cache_path,
    make_executor,
    open_backend,
    report_benchmark,
    resumable,
)
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
    write_schedule_outputs,
)
from deepfrack.cli.search_cmds import chain_notes, optimize_and_write
from deepfrack.residency import VARIANTS
from deepfrack.search.ondemand import optimize_on_demand
from deepfrack.search.source import BenchmarkSource, EntriesFailed


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
@click.option(
    "--exhaustive",
    is_flag=True,
    help="Benchmark every entry the search may ask for, then search [default: only those that can win].",
)
def run(
    workload: Path,
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
    exhaustive: bool,
) -> None:
    """Benchmark what the search needs, then find the best fused schedule (exact receptive field).

    \b
    Example (AlexNet with its padding and pooling, on the Simba-like accelerator):
      deepfrack run -w examples/networks/alexnet.yaml \\
        -a examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like/arch/simba_like.yaml \\
        -c examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like/constraints -o out/alexnet
    """
    start = time.perf_counter()
    check_out(out)
    network, chain = load_workload_noting_chains(workload)
    inputs = load_inputs(arch, components, constraints, mapper, ert, VARIANTS)
    cap = None if capacity == "unlimited" else capacity_from_inputs(inputs)
    be = open_backend(backend, inputs)
    if not exhaustive and not callable(getattr(be, "entry_bounds", None)):
        click.echo(
            f"deepfrack: note: the {be.name} backend gives no lower bounds on its entries, so every entry "
            "the search may use is benchmarked first (as with --exhaustive)",
            err=True,
        )
        exhaustive = True
    tables_dir = out / "tables"
    stats = None
    if exhaustive:
        result = benchmark_tables(
            network,
            inputs,
            be,
            "needed",
            max_stack_depth,
            n_jobs,
            cache_path,
            None,
            progress,
            tables_dir,
            cap,
        )
    else:
        cache_file = cache_path or default_cache_path()
        show = sys.stderr.isatty() if progress is None else progress
        with (
            ResultCache(cache_file) as cache,
            resumable(out, cache_file),
            BenchmarkSession(be, cache, make_executor(n_jobs), progress=show) as session,
        ):
            with contextlib.suppress(EntriesFailed):  # reported below, as the benchmark reports them
                schedule, stats = optimize_on_demand(
                    network, BenchmarkSource(network, session), cap, "exact", max_stack_depth
                )
            result = session.result(tables_dir)
        report_benchmark(result, tables_dir)
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
    notes = chain_notes(chain, "exact")
    if stats is None:
        optimize_and_write(
            network, result.table, cap, "exact", max_stack_depth, "energy", record, out, notes, start
        )
    else:
        elapsed = time.perf_counter() - start
        write_schedule_outputs(out, schedule, network, stats.table, record, stats, elapsed, notes)
