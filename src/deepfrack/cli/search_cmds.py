"""`deepfrack optimize` (search for the best fused schedule) and `deepfrack evaluate` (cost and check a
given schedule). Both write DIR/schedule.json, DIR/deepfrack.log and DIR/energy.png."""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import click

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.benchmark.tables_io import check_table_layers, read_tables, write_text_atomic
from deepfrack.cli import main
from deepfrack.cost.table import CostTable
from deepfrack.cost.variants import Variant
from deepfrack.errors import InputError, MissingCostError
from deepfrack.search.schedule import Schedule, SearchStats
from deepfrack.search.schedule_io import read_stack_specs, schedule_to_json
from deepfrack.stats.report import plot_energy, render_log
from deepfrack.workload.layer import Network
from deepfrack.workload.loaders import load_workload


def _common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--workload", "-w", required=True, type=click.Path(path_type=Path),
                     help="Network YAML (with padding and pooling) or a folder of Timeloop problem YAMLs."),
        click.option("--tables", "-t", required=True, type=click.Path(path_type=Path),
                     help="Cost tables: a folder of the original's <VARIANT>.json files, or a costs.csv "
                          "(from `deepfrack benchmark`)."),
        click.option("--arch", "-a", "arch", multiple=True, type=click.Path(path_type=Path),
                     help="Timeloop architecture YAML (v0.3 or v0.4); repeat for component files. Gives the "
                          "on-chip capacities."),
        click.option("--components", type=click.Path(path_type=Path),
                     help="Folder of Accelergy compound-component YAMLs used by --arch."),
        click.option("--constraints", "-c", "constraints", multiple=True, type=click.Path(path_type=Path),
                     help="Architecture-constraints YAML (keep/bypass per level): gives each tensor's home level. "
                          "A folder of the seven variant files also works (its SLC file is used)."),
        click.option("--capacity", type=click.Choice(["arch", "unlimited"]), default="arch", show_default=True,
                     help="'unlimited' turns the on-chip capacity check off (then --arch is not needed)."),
        click.option("--receptive-field", "rule", type=click.Choice(["exact", "legacy"]), default="exact",
                     show_default=True,
                     help="'exact' walks regions back with padding, strides and pooling; 'legacy' reproduces the "
                          "original DeepFrack (square tiles, no padding, sizes lowered to table entries)."),
        click.option("--max-stack-depth", type=click.IntRange(min=1), default=None,
                     help="Most layers in one fused stack (default: unlimited)."),
        click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
                     help="Output folder for schedule.json, deepfrack.log and energy.png."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def constraint_files(constraints: tuple[Path, ...]) -> list[Path]:
    """The files that give on-chip keep/bypass: a folder of the seven variant files stands for its
    SLC file plus its other YAMLs (mapspace constraints); any other folder for all its YAML files."""
    files: list[Path] = []
    for c in constraints:
        if not c.is_dir():
            files.append(c)
            continue
        yamls = sorted(f for f in c.iterdir() if f.is_file() and f.suffix.lower() in (".yaml", ".yml"))
        variant_names = {v.value.lower() for v in Variant}
        variant_files = [f for f in yamls if f.stem.lower() in variant_names]
        if variant_files:
            slc = [f for f in variant_files if f.stem.lower() == "slc"]
            if not slc:
                raise InputError(c, None, "a folder of variant constraint files must hold SLC.yaml")
            files.extend(slc + [f for f in yamls if f not in variant_files])
        elif yamls:
            files.extend(yamls)
        else:
            raise InputError(c, None, "folder holds no constraint YAML files")
    return files


def capacity_from_files(arch: tuple[Path, ...], components: Path | None, constraints: tuple[Path, ...],
                        capacity: str) -> CapacitySpec | None:
    """The on-chip capacities (None for --capacity unlimited) from the architecture and its constraints
    (or the constraints the architecture file itself carries)."""
    if capacity == "unlimited":
        return None
    if not arch:
        raise InputError(None, "--arch", "give the architecture (and its constraints) for the capacity check, "
                                         "or --capacity unlimited")
    from deepfrack.arch import capacity_spec, load_architecture, load_constraints

    architecture = load_architecture(*arch, *([components] if components else []))
    if constraints:
        cons = load_constraints(*constraint_files(constraints))
    elif architecture.constraints.targets:
        cons = architecture.constraints
    else:
        raise InputError(arch[0], None, "the architecture carries no constraints: give --constraints (keep/bypass "
                                        "per level) or --capacity unlimited")
    return capacity_spec(architecture, cons)


def _inputs_record(workload: Path, tables: Path, arch: tuple[Path, ...], constraints: tuple[Path, ...],
                   cap: CapacitySpec | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"workload": str(workload), "tables": str(tables)}
    if arch:
        rec["arch"] = [str(a) for a in arch] if len(arch) > 1 else str(arch[0])
    if constraints:
        rec["constraints"] = [str(c) for c in constraints] if len(constraints) > 1 else str(constraints[0])
    rec["capacity"] = "unlimited" if cap is None else dict(cap.words)
    if extra:
        rec.update(extra)
    return rec


def load_network_and_tables(workload: Path, tables: Path) -> tuple[Network, CostTable, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network = load_workload(workload)
    msgs = [str(w.message) for w in caught]  # reported in the log (printed at the end)
    table = read_tables(tables)
    check_table_layers(table, len(network))
    return network, table, msgs


def per_layer_baseline(network: Network, table: CostTable) -> list[float]:
    """SLC energy (pJ) of every layer on its whole plane (DESIGN 3.8); MissingCostError when absent."""
    out = []
    for i, layer in enumerate(network.layers):
        rec = table.get(i, Variant.SLC, layer.Q, layer.P)
        if rec is None:
            raise MissingCostError(i, layer.name, "SLC", (layer.Q, layer.P))
        out.append(rec.energy_pJ)
    return out


def _write_outputs(out: Path, schedule: Schedule, network: Network, inputs: dict[str, Any],
                   stats: SearchStats | None, elapsed: float, table: CostTable, warn_msgs: list[str]) -> None:
    baseline = per_layer_baseline(network, table)
    log = render_log(schedule, network, inputs, stats, elapsed, baseline, warn_msgs)
    doc = schedule_to_json(schedule, network, inputs)
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".energy.", suffix=".png", dir=out)
    os.close(fd)
    try:
        plot_energy(schedule, network, baseline, tmp)
        os.replace(tmp, out / "energy.png")
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_text_atomic(out / "deepfrack.log", log)
    write_text_atomic(out / "schedule.json", doc)  # last: its presence means the run completed
    click.echo(log, nl=False)
    click.echo(f"wrote {out / 'schedule.json'}, {out / 'deepfrack.log'}, {out / 'energy.png'}")


def optimize_and_write(network: Network, table: CostTable, cap: CapacitySpec | None, rule: str,
                       max_stack_depth: int | None, inputs: dict[str, Any], out: Path, warn_msgs: list[str],
                       start: float) -> Schedule:
    """Search (with a progress bar) and write schedule.json, deepfrack.log and energy.png to ``out``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from deepfrack.search import optimize as run_search

    with Progress(TextColumn("searching stacks"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), transient=True, disable=None) as progress:
        task = progress.add_task("search", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        schedule, stats = run_search(network, table, capacity=cap, rule=rule, max_stack_depth=max_stack_depth,
                                     progress=report)
    _write_outputs(out, schedule, network, inputs, stats, time.perf_counter() - start, table, warn_msgs)
    return schedule


@main.command()
@_common_options
def optimize(workload: Path, tables: Path, arch: tuple[Path, ...], components: Path | None,
             constraints: tuple[Path, ...], capacity: str, rule: str, max_stack_depth: int | None,
             out: Path) -> None:
    """Find the fused stacks, tilings and cached weights that minimize energy.

    \b
    Example (the original DeepFrack's AlexNet on Simba, reproducing its rule):
      deepfrack optimize -w examples/reference/deepfrack-examples/AlexNet_Simba/inputs/AlexNet \\
        -t examples/reference/deepfrack-examples/AlexNet_Simba/cost-tables \\
        --receptive-field legacy --capacity unlimited -o out/alexnet
    """
    start = time.perf_counter()
    network, table, warn_msgs = load_network_and_tables(workload, tables)
    cap = capacity_from_files(arch, components, constraints, capacity)
    extra = {"max_stack_depth": max_stack_depth} if max_stack_depth else None
    inputs = _inputs_record(workload, tables, arch, constraints, cap, extra)
    optimize_and_write(network, table, cap, rule, max_stack_depth, inputs, out, warn_msgs, start)


@main.command()
@_common_options
@click.option("--schedule", "-s", "schedule_path", required=True, type=click.Path(path_type=Path),
              help="Schedule JSON: per stack first, last, tile_shape [h, w] and cached_layers (a schedule.json "
                   "written by deepfrack works).")
def evaluate(workload: Path, tables: Path, arch: tuple[Path, ...], components: Path | None,
             constraints: tuple[Path, ...], capacity: str, rule: str, max_stack_depth: int | None, out: Path,
             schedule_path: Path) -> None:
    """Cost a given schedule and check it (coverage, capacity, every layer in exactly one stack)."""
    from deepfrack.search import evaluate as run_evaluate

    start = time.perf_counter()
    network, table, warn_msgs = load_network_and_tables(workload, tables)
    cap = capacity_from_files(arch, components, constraints, capacity)
    specs = read_stack_specs(schedule_path)
    if max_stack_depth is not None:
        for k, sp in enumerate(specs):
            if sp.last - sp.first + 1 > max_stack_depth:
                raise InputError(schedule_path, f"stacks[{k}]",
                                 f"has {sp.last - sp.first + 1} layers, more than --max-stack-depth {max_stack_depth}")
    schedule = run_evaluate(network, table, specs, capacity=cap, rule=rule)
    elapsed = time.perf_counter() - start
    inputs = _inputs_record(workload, tables, arch, constraints, cap, {"schedule": str(schedule_path)})
    _write_outputs(out, schedule, network, inputs, None, elapsed, table, warn_msgs)
