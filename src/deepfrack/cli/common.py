"""What the commands share: option declarations, progress on stderr, and printing a result."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from deepfrack.api import RunResult
from deepfrack.benchmark.progress import ProgressLines

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*decorators: Decorator) -> Decorator:
    """Apply click options in the order they are listed (the order --help shows them)."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


INPUT_SIZE = click.option(
    "--input-size",
    nargs=2,
    type=click.IntRange(min=1),
    default=None,
    metavar="H W",
    help="Input plane of a zoo network (default 224 224) or an ONNX model.",
)
WORKLOAD = options(
    click.option(
        "--workload",
        "-w",
        required=True,
        type=click.Path(path_type=Path),
        metavar="NAME|PATH",
        help="A network of the zoo by name (deepfrack zoo), a network YAML, an ONNX model, "
        "or a folder of Timeloop problem YAMLs.",
    ),
    INPUT_SIZE,
)
ARCH_REQUIRED = click.option(
    "--arch",
    "-a",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="NAME|FILE",
    help="A bundled accelerator by name (deepfrack arch list) or a Timeloop architecture YAML "
    "(v0.3 or v0.4).",
)
ARCH_OPTIONAL = click.option(
    "--arch",
    "-a",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="NAME|FILE",
    help="A bundled accelerator by name (deepfrack arch list) or a Timeloop architecture YAML: gives "
    "the on-chip capacities.",
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
SCHEDULER = click.option(
    "--scheduler",
    envvar="DEEPFRACK_SCHEDULER",
    metavar="ADDRESS",
    help="Run the benchmark on a Dask cluster: its scheduler (tcp://HOST:PORT or a scheduler file), or "
    "'local' for a Dask LocalCluster of --jobs processes [env: DEEPFRACK_SCHEDULER; default: local "
    "processes without Dask]. Needs pip install 'deepfrack[dask]'; see docs/cluster.md.",
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


def show_progress(flag: bool | None) -> bool | str:
    """--progress/--no-progress: True (a bar) or False (nothing); by default a bar when stderr is a
    terminal, else "lines" (a plain line every few seconds, for a log or a pipe)."""
    if flag is None:
        return True if sys.stderr.isatty() else "lines"
    return flag


@contextlib.contextmanager
def search_progress(enabled: bool | str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback for the search (stacks costed) that shows a bar on stderr from its first
    call (so that it never overlaps the benchmark's bar), or a line every few seconds (``"lines"``), or
    None when disabled."""
    if not enabled:
        yield None
        return
    if enabled == "lines":
        yield ProgressLines("searching stacks", "stacks").update
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("searching stacks"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),  # stdout carries the log
        transient=True,
    )
    task = None

    def report(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("search", total=total)
        bar.update(task, completed=done, total=total)

    try:
        yield report
    finally:
        if task is not None:
            bar.stop()


def print_result(result: RunResult) -> None:
    """The log on stdout, then which files were written."""
    click.echo(result.log, nl=False)
    files = [p for p in result.outputs if p.parent.name not in ("tables", "pareto")]
    if files:
        click.echo(f"wrote {', '.join(str(p) for p in files)}")


def print_benchmark_summary(summary: Any, out_dir: Path | None) -> None:
    """The benchmark's summary on stderr, and the table files written."""
    click.echo(summary.text(), err=True)
    if out_dir is not None:
        tables = [p.name for p in summary.outputs if p.suffix == ".json"]
        click.echo(
            f"wrote {out_dir}: costs.csv, mappings.jsonl and {len(tables)} variant tables "
            f"({', '.join(tables)})",
            err=True,
        )
