"""`deepfrack optimize` (search for the best fused schedule) and `deepfrack evaluate` (cost and check a
given schedule). Both write DIR/schedule.json, DIR/deepfrack.log and DIR/energy.png."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from deepfrack.arch import CapacitySpec
from deepfrack.benchmark.progress import ProgressLines
from deepfrack.benchmark.tables_io import check_table, read_tables
from deepfrack.cli import main
from deepfrack.cli.common import (
    ARCH_OPTIONAL,
    CAPACITY,
    COMPONENTS,
    CONSTRAINTS,
    MAX_STACK_DEPTH,
    WORKLOAD,
    capacity_from_paths,
    check_out,
    inputs_record,
    load_workload_noting_chains,
    options,
    out_option,
    write_schedule_outputs,
)
from deepfrack.cost.table import CostTable
from deepfrack.errors import InputError, ScheduleError
from deepfrack.files import read_json
from deepfrack.search.schedule import Schedule
from deepfrack.search.schedule_io import read_stack_specs
from deepfrack.workload.layer import Network

TABLES = click.option(
    "--tables",
    "-t",
    required=True,
    type=click.Path(path_type=Path),
    help="Cost tables: a folder of the original's <VARIANT>.json files, "
    "or a costs.csv (from `deepfrack benchmark`).",
)
RULE_HELP = (
    "'exact' walks regions back with padding, strides and pooling; 'legacy' reproduces the original "
    "DeepFrack (square tiles, no padding or pooling, sizes lowered to table entries)."
)

_shared = options(WORKLOAD, TABLES, ARCH_OPTIONAL, COMPONENTS, CONSTRAINTS, CAPACITY)


def chain_notes(chain_warnings: list[str], rule: str) -> list[str]:
    """The workload's chain warnings for the log, with what they mean under the rule in use."""
    if not chain_warnings:
        return []
    if rule == "exact":
        advice = (
            "under the exact rule no stack spans those pairs; give a network YAML with padding and pooling, "
            "or use --receptive-field legacy to fuse them as the original DeepFrack did"
        )
    else:
        advice = (
            "the legacy rule fuses them anyway, as the original DeepFrack did: its tiles ignore padding and "
            "pooling"
        )
    return [f"{w} {advice}" for w in chain_warnings]


def load_network_and_tables(workload: Path, tables: Path) -> tuple[Network, CostTable, list[str]]:
    network, chain = load_workload_noting_chains(workload)
    table = read_tables(tables)
    check_table(table, network)
    return network, table, chain


def optimize_and_write(
    network: Network,
    table: CostTable,
    cap: CapacitySpec | None,
    rule: str,
    max_stack_depth: int | None,
    objective: str,
    inputs: dict[str, Any],
    out: Path,
    notes: list[str],
    start: float,
) -> Schedule:
    """Search (with a progress bar) and write schedule.json, deepfrack.log and energy.png to ``out``."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from deepfrack.search import optimize as run_search

    console = Console(stderr=True)  # stdout carries the log
    with Progress(
        TextColumn("searching stacks"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("search", total=None)
        lines = None if console.is_terminal else ProgressLines("searching stacks")

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            if lines is not None:  # stderr is a log or a pipe: a line every few seconds
                lines.update(done, total)

        schedule, stats = run_search(
            network,
            table,
            capacity=cap,
            rule=rule,
            max_stack_depth=max_stack_depth,
            objective=objective,
            progress=report,
        )
    write_schedule_outputs(out, schedule, network, table, inputs, stats, time.perf_counter() - start, notes)
    return schedule


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
@click.option(
    "--objective",
    type=click.Choice(["energy", "cycles"]),
    default="energy",
    show_default=True,
    help="What to minimize ('cycles' needs cycles in every table entry).",
)
@out_option("schedule.json, deepfrack.log, energy.png")
def optimize(
    workload: Path,
    tables: Path,
    arch: Path | None,
    components: Path | None,
    constraints: Path | None,
    capacity: str,
    rule: str,
    max_stack_depth: int | None,
    objective: str,
    out: Path,
) -> None:
    """Find the fused stacks, tilings and cached weights that minimize energy (or cycles).

    \b
    Example (the original DeepFrack's AlexNet tables, searched by its own rule):
      deepfrack optimize -w examples/reference/deepfrack-examples/AlexNet_Simba/inputs/AlexNet \\
        -t examples/reference/deepfrack-examples/AlexNet_Simba/cost-tables \\
        --receptive-field legacy --capacity unlimited -o out/alexnet
    """
    start = time.perf_counter()
    check_out(out)
    network, table, chain = load_network_and_tables(workload, tables)
    cap = capacity_from_paths(arch, components, constraints, capacity)
    inputs = inputs_record(
        workload=workload,
        tables=tables,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=cap,
        max_stack_depth=max_stack_depth,
    )
    optimize_and_write(
        network, table, cap, rule, max_stack_depth, objective, inputs, out, chain_notes(chain, rule), start
    )


def _schedule_setting(schedule_path: Path, key: str, allowed: tuple[str, ...], given: str | None) -> str:
    """A setting of the schedule: the option when given, else the schedule file's own, else the first
    allowed value (receptive_field: exact; objective: energy)."""
    if given is not None:
        return given
    doc = read_json(schedule_path)
    value = doc.get(key, allowed[0]) if isinstance(doc, dict) else allowed[0]
    if value not in allowed:
        raise InputError(schedule_path, key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


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
    "written by deepfrack works).",
)
@out_option("schedule.json, deepfrack.log, energy.png")
def evaluate(
    workload: Path,
    tables: Path,
    arch: Path | None,
    components: Path | None,
    constraints: Path | None,
    capacity: str,
    rule: str | None,
    schedule_path: Path,
    out: Path,
) -> None:
    """Cost a given schedule and check it (coverage, capacity, every layer in exactly one stack)."""
    from deepfrack.search import evaluate as run_evaluate

    start = time.perf_counter()
    check_out(out)
    network, table, chain = load_network_and_tables(workload, tables)
    cap = capacity_from_paths(arch, components, constraints, capacity)
    specs = read_stack_specs(schedule_path)
    rule = _schedule_setting(schedule_path, "receptive_field", ("exact", "legacy"), rule)
    objective = _schedule_setting(schedule_path, "objective", ("energy", "cycles"), None)
    try:
        schedule = run_evaluate(network, table, specs, capacity=cap, rule=rule, objective=objective)
    except ScheduleError as exc:
        raise InputError(schedule_path, None, str(exc)) from None
    inputs = inputs_record(
        workload=workload,
        tables=tables,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=cap,
        schedule=str(schedule_path.resolve()),
    )
    write_schedule_outputs(
        out, schedule, network, table, inputs, None, time.perf_counter() - start, chain_notes(chain, rule)
    )
