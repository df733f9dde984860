"""``deepfrack run``: the whole job in one command (``deepfrack.api.run``) - the best fused schedule,
benchmarking entries as the search needs them (``--exhaustive``: every entry it may use first).

Writes DIR/tables/ (the benchmark's <VARIANT>.json, costs.csv, mappings.jsonl: the entries costed) and
DIR/schedule.json, DIR/deepfrack.log, the statistics. Interrupted, it resumes from the result cache when
run again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deepfrack import api
from deepfrack.cli import main
from deepfrack.cli.benchmark_cmd import interrupt_message
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
    SCHEDULER,
    WORKLOAD,
    options,
    out_option,
    print_benchmark_summary,
    print_result,
    search_progress,
    show_progress,
)
from deepfrack.cli.front import FRONT, OBJECTIVE, budget_exit, front_options


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
    SCHEDULER,
    BACKEND,
    CACHE,
    OBJECTIVE,
    FRONT,
    PROGRESS,
    out_option("tables/, schedule.json, deepfrack.log, energy.png (pareto.csv, pareto.png)"),
)
@click.option(
    "--exhaustive",
    is_flag=True,
    help="Benchmark every entry the search may use, then search [default: only those that can still win].",
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
    scheduler: str | None,
    backend: str,
    cache_path: Path | None,
    objective: str,
    pareto: bool,
    pareto_schedules: bool,
    pareto_epsilon: float,
    max_cycles: float | None,
    max_energy_uj: float | None,
    progress: bool | None,
    out: Path,
    exhaustive: bool,
) -> None:
    """Find the best fused schedule (exact receptive field), benchmarking only the entries that can
    still change it, as the search asks for them (--exhaustive: every entry it may use first; edp,
    --pareto and the budgets need them all, so they imply it).

    \b
    Example (AlexNet with its padding and pooling, on the bundled Simba-like accelerator):
      deepfrack run -w examples/networks/alexnet.yaml -a simba-like -o out/alexnet
    """
    show = show_progress(progress)
    front = front_options(pareto, pareto_schedules, pareto_epsilon, max_cycles, max_energy_uj)
    with interrupt_message(cache_path, out), budget_exit(), search_progress(show) as report:
        try:
            result = api.run(
                workload=workload,
                input_size=input_size or None,
                arch=arch,
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
                progress=show,
                search_progress=report,
                exhaustive=exhaustive,
                objective=objective,
                front=front,
                out=out,
            )
        except api.EntriesFailed as exc:
            print_benchmark_summary(exc.result.summary, None)
            click.echo(f"deepfrack: not searching: {exc}", err=True)
            sys.exit(1)
    assert result.benchmark is not None
    print_benchmark_summary(result.benchmark.summary, None)
    print_result(result)
