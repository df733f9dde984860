"""`deepfrack optimize` (search for the best fused schedule) and `deepfrack evaluate` (cost and check a
given schedule). Both write DIR/schedule.json, DIR/deepfrack.log and DIR/energy.png."""

from __future__ import annotations

from pathlib import Path

import click

from deepfrack import api
from deepfrack.cli import main
from deepfrack.cli.common import (
    ARCH_OPTIONAL,
    CAPACITY,
    COMPONENTS,
    CONSTRAINTS,
    MAX_STACK_DEPTH,
    PROGRESS,
    WORKLOAD,
    options,
    out_option,
    print_result,
    search_progress,
    show_progress,
)
from deepfrack.cli.front import FRONT, OBJECTIVE, budget_exit, front_options

TABLES = click.option(
    "--tables",
    "-t",
    required=True,
    type=click.Path(path_type=Path),
    help="Cost tables: a folder of the original's <VARIANT>.json files, or a costs.csv "
    "(from `deepfrack benchmark`).",
)
RULE_HELP = (
    "'exact' walks regions back with padding, strides and pooling; 'legacy' reproduces the original "
    "DeepFrack (square tiles, no padding or pooling, sizes lowered to table entries)."
)

_shared = options(WORKLOAD, TABLES, ARCH_OPTIONAL, COMPONENTS, CONSTRAINTS, CAPACITY)


@main.command()
@_shared
@click.option(
    "--receptive-field",
    "rule",
    type=click.Choice(["exact", "legacy"]),
    default="exact",
    show_default=True,
    help=RULE_HELP,
)
@MAX_STACK_DEPTH
@OBJECTIVE
@FRONT
@PROGRESS
@out_option("schedule.json, deepfrack.log, energy.png (pareto.csv, pareto.png)")
def optimize(
    workload: Path,
    input_size: tuple[int, int] | None,
    tables: Path,
    arch: Path | None,
    components: Path | None,
    constraints: Path | None,
    capacity: str,
    rule: str,
    max_stack_depth: int | None,
    objective: str,
    pareto: bool,
    pareto_schedules: bool,
    pareto_epsilon: float,
    max_cycles: float | None,
    max_energy_uj: float | None,
    progress: bool | None,
    out: Path,
) -> None:
    """Find the fused stacks, tilings and cached weights that minimize energy (or cycles, or edp),
    within budgets when given; --pareto: the whole energy-cycles front.

    \b
    Example (the original DeepFrack's AlexNet tables, searched by its own rule):
      deepfrack optimize -w examples/reference/deepfrack-examples/AlexNet_Simba/inputs/AlexNet \\
        -t examples/reference/deepfrack-examples/AlexNet_Simba/cost-tables \\
        --receptive-field legacy --capacity unlimited -o out/alexnet
    """
    front = front_options(pareto, pareto_schedules, pareto_epsilon, max_cycles, max_energy_uj)
    with budget_exit(), search_progress(show_progress(progress)) as report:
        result = api.optimize(
            workload=workload,
            input_size=input_size or None,
            tables=tables,
            arch=arch,
            components=components,
            constraints=constraints,
            capacity=capacity,  # type: ignore[arg-type]
            receptive_field=rule,
            max_stack_depth=max_stack_depth,
            objective=objective,
            progress=report,
            front=front,
            out=out,
        )
    print_result(result)


@main.command()
@_shared
@click.option(
    "--receptive-field",
    "rule",
    type=click.Choice(["exact", "legacy"]),
    default=None,
    help=RULE_HELP + " [default: the schedule file's receptive_field, else exact]",
)
@click.option(
    "--schedule",
    "-s",
    "schedule_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Schedule JSON: per stack first, last, tile_shape [h, w] and cached_layers (a schedule.json "
    "written by deepfrack works; its tiles, regions and variants must be what the rules give).",
)
@click.option(
    "--objective",
    type=click.Choice(["energy", "cycles", "edp"]),
    default=None,
    help="What the schedule was chosen for, as recorded (cycles and edp need cycles in every table "
    "entry) [default: the schedule file's objective, else energy].",
)
@out_option("schedule.json, deepfrack.log, energy.png")
def evaluate(
    workload: Path,
    input_size: tuple[int, int] | None,
    tables: Path,
    arch: Path | None,
    components: Path | None,
    constraints: Path | None,
    capacity: str,
    rule: str | None,
    schedule_path: Path,
    objective: str | None,
    out: Path,
) -> None:
    """Cost a given schedule and check it (coverage, capacity, every layer in exactly one stack)."""
    result = api.evaluate(
        workload=workload,
        input_size=input_size or None,
        tables=tables,
        schedule=schedule_path,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=capacity,  # type: ignore[arg-type]
        receptive_field=rule,
        objective=objective,
        out=out,
    )
    print_result(result)
