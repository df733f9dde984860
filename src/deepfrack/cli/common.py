"""What the commands share: option declarations, loading with warnings collected, the on-chip capacity,
the record of a run's inputs, and writing a schedule's outputs all-or-nothing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from deepfrack.arch import CapacitySpec, capacity_spec
from deepfrack.benchmark.inputs import BenchmarkInputs, load_inputs
from deepfrack.errors import InputError
from deepfrack.files import make_temp
from deepfrack.residency import Variant
from deepfrack.search import layer_by_layer_records
from deepfrack.search.schedule import Schedule, SearchStats
from deepfrack.search.schedule_io import schedule_to_json
from deepfrack.stats.report import plot_energy, render_log
from deepfrack.workload.layer import Network
from deepfrack.workload.loaders import ChainWarning, load_workload

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*decorators: Decorator) -> Decorator:
    """Apply click options in the order they are listed (the order --help shows them)."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


WORKLOAD = click.option(
    "--workload",
    "-w",
    required=True,
    type=click.Path(path_type=Path),
    help="Network YAML (with padding and pooling) or a folder of Timeloop problem YAMLs.",
)
ARCH_REQUIRED = click.option(
    "--arch",
    "-a",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Timeloop architecture YAML (v0.3 or v0.4).",
)
ARCH_OPTIONAL = click.option(
    "--arch",
    "-a",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Timeloop architecture YAML (v0.3 or v0.4): gives the on-chip capacities.",
)
COMPONENTS = click.option(
    "--components",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of Accelergy compound-component classes [default: <arch folder>/components when it exists].",
)
CONSTRAINTS = click.option(
    "--constraints",
    "-c",
    type=click.Path(path_type=Path),
    help="The original's folder of seven variant constraint files (+ shared mapspace files), "
    "or one constraints file (keep/bypass per level) [default: the architecture's own].",
)
CAPACITY = click.option(
    "--capacity",
    type=click.Choice(["arch", "unlimited"]),
    default="arch",
    show_default=True,
    help="'unlimited' turns the on-chip capacity check of the search off (then --arch is not needed).",
)
MAX_STACK_DEPTH = click.option(
    "--max-stack-depth",
    type=click.IntRange(min=1),
    default=None,
    help="Most layers in one fused stack [default: unlimited].",
)
JOBS = click.option(
    "--jobs",
    "n_jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: all cores].",
)
BACKEND = click.option(
    "--backend",
    default="builtin",
    show_default=True,
    help="builtin, timeloop (timeloop-mapper on PATH), or package.module:factory.",
)
CACHE = click.option(
    "--cache",
    "cache_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQLite result cache [default: $DEEPFRACK_CACHE or ~/.cache/deepfrack/benchmark.sqlite].",
)
PROGRESS = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar [default: a bar when stderr is a terminal, else a line every few seconds].",
)
MAPPER = click.option(
    "--mapper",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Timeloop mapper.yaml (its optimization-metrics is the mapper's objective).",
)
ERT = click.option(
    "--ert",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Accelergy energy reference table [default: deepfrack's built-in 45 nm table].",
)


def out_option(what: str) -> Decorator:
    return click.option(
        "--out",
        "-o",
        required=True,
        type=click.Path(path_type=Path, file_okay=False),
        help=f"Output folder: {what}.",
    )


def check_out(out: Path) -> None:
    """Fail before any long work when --out cannot be an output folder (InputError): it is a file, it
    sits under a file, or its nearest existing folder is not writable. Nothing is created here."""
    if out.exists():
        if not out.is_dir():
            raise InputError(out, None, "--out must be a folder, and this is a file")
        probe = out
    else:
        probe = out.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise InputError(out, None, f"cannot create the output folder: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(out, None, f"cannot create the output folder: {probe} is not writable")


def make_out(out: Path) -> None:
    """Create the output folder (InputError when that fails)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(out, None, f"cannot create the output folder: {exc.strerror or exc}") from None


def load_workload_noting_chains(path: Path) -> tuple[Network, list[str]]:
    """The network and the text of its ChainWarnings (layers that do not chain), for the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ChainWarning)
        network = load_workload(path)
    chain = [str(w.message) for w in caught if issubclass(w.category, ChainWarning)]
    for w in caught:  # anything else is reported as usual
        if not issubclass(w.category, ChainWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return network, chain


def capacity_from_inputs(inputs: BenchmarkInputs) -> CapacitySpec:
    """Home levels and capacities from the architecture and its on-chip keep/bypass: the SLC variant's
    file when the seven files are given (plus the shared files), else the shared constraints, else the
    architecture's own constraints."""
    if not (inputs.constraints or inputs.variant_files or inputs.architecture.constraints.targets):
        raise InputError(
            inputs.arch.path,
            None,
            "the architecture carries no constraints: give --constraints "
            "(keep/bypass per level) or --capacity unlimited",
        )
    return capacity_spec(inputs.architecture, inputs.constraints_for(Variant.SLC))


def capacity_from_paths(
    arch: Path | None, components: Path | None, constraints: Path | None, capacity: str
) -> CapacitySpec | None:
    """The search's capacities (None with --capacity unlimited) from the architecture files."""
    if capacity == "unlimited":
        return None
    if arch is None:
        raise InputError(
            None,
            "--arch",
            "give the architecture (and its constraints) for the capacity check, or --capacity unlimited",
        )
    return capacity_from_inputs(load_inputs(arch, components, constraints, variants=(Variant.SLC,)))


def _abs(p: Path | str | None) -> str | None:
    return None if p is None else str(Path(p).resolve())


def inputs_record(
    *,
    workload: Path,
    tables: Path,
    arch: Path | None,
    components: Path | None,
    constraints: Path | None,
    capacity: CapacitySpec | None,
    ert: Path | None = None,
    mapper: Path | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What a run was given, for schedule.json: always the same keys, absolute paths (None when not
    given; the components folder also when it was found beside the architecture), the capacity per home
    level or "unlimited", then any command-specific entries."""
    if components is None and arch is not None and (arch.parent / "components").is_dir():
        components = arch.parent / "components"  # load_inputs' default
    rec: dict[str, Any] = {
        "workload": _abs(workload),
        "tables": _abs(tables),
        "arch": _abs(arch),
        "components": _abs(components),
        "constraints": _abs(constraints),
        "ert": _abs(ert),
        "mapper": _abs(mapper),
        "capacity": "unlimited" if capacity is None else dict(capacity.words),
    }
    rec.update(extra)
    return rec


def write_schedule_outputs(
    out: Path,
    schedule: Schedule,
    network: Network,
    table,
    inputs: dict[str, Any],
    stats: SearchStats | None,
    elapsed: float,
    notes: list[str],
) -> None:
    """schedule.json, deepfrack.log and energy.png, all or nothing: each is written to a temporary file
    in ``out`` first, and they are renamed into place only when all three are complete (schedule.json
    last). Prints the log."""
    baseline = [r.energy_pJ for r in layer_by_layer_records(network, table)]
    log = render_log(schedule, network, inputs, stats, elapsed, baseline, notes)
    doc = schedule_to_json(schedule, network, inputs)
    make_out(out)
    temps: dict[str, str] = {}
    try:
        for name in ("energy.png", "deepfrack.log", "schedule.json"):
            temps[name] = str(make_temp(out, name))
        plot_energy(schedule, network, baseline, temps["energy.png"])
        Path(temps["deepfrack.log"]).write_text(log)
        Path(temps["schedule.json"]).write_text(doc)
        for name in ("energy.png", "deepfrack.log", "schedule.json"):
            os.replace(temps.pop(name), out / name)
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
    click.echo(log, nl=False)
    click.echo(f"wrote {out / 'schedule.json'}, {out / 'deepfrack.log'}, {out / 'energy.png'}")
