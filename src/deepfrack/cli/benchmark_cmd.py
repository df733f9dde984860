"""``deepfrack benchmark``: cost tables for every layer, tile shape and residency variant."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import click

from deepfrack.benchmark.backend import resolve_backend
from deepfrack.benchmark.cache import ResultCache
from deepfrack.benchmark.executors import LocalExecutor, SerialExecutor
from deepfrack.benchmark.inputs import BenchmarkInputs, load_inputs
from deepfrack.benchmark.jobs import SHAPE_SETS, check_layers, enumerate_jobs
from deepfrack.benchmark.runner import BenchmarkResult, run_benchmark
from deepfrack.cli import main
from deepfrack.cli.common import (
    ARCH_REQUIRED,
    BACKEND,
    CACHE,
    COMPONENTS,
    CONSTRAINTS,
    ERT,
    JOBS,
    MAPPER,
    PROGRESS,
    WORKLOAD,
    check_out,
    options,
    out_option,
)
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS, parse_variant
from deepfrack.search.required import required_shapes
from deepfrack.workload.layer import Network
from deepfrack.workload.loaders import ChainWarning, load_workload


def default_cache_path() -> Path:
    """``$DEEPFRACK_CACHE``, else ``$XDG_CACHE_HOME/deepfrack/benchmark.sqlite`` (``~/.cache`` by default):
    one cache shared by every run, so overlapping workloads reuse entries."""
    env = os.environ.get("DEEPFRACK_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deepfrack" / "benchmark.sqlite"


def _parse_variants(text: str | None):
    if not text:
        return VARIANTS
    out = []
    for part in text.split(","):
        try:
            out.append(parse_variant(part))
        except ValueError as exc:
            raise InputError(None, "--variants", str(exc)) from None
    return tuple(out)


@main.command("benchmark")
@options(WORKLOAD, ARCH_REQUIRED, COMPONENTS, CONSTRAINTS, MAPPER, ERT)
@click.option(
    "--shapes",
    type=click.Choice(SHAPE_SETS),
    default="square",
    show_default=True,
    help="square: t x t tiles (+ the whole plane); all: every rectangle; needed: what the search asks for.",
)
@click.option("--variants", "variants", metavar="LIST", help="Comma-separated variants [default: all seven].")
@click.option(
    "--max-stack-depth",
    type=click.IntRange(min=1),
    default=None,
    help="With --shapes needed: the deepest stack `optimize` will consider [default: unlimited].",
)
@options(JOBS, BACKEND, CACHE)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Entries per batch [default: automatic]."
)
@options(PROGRESS, out_option("<VARIANT>.json, costs.csv, mappings.jsonl"))
def benchmark(
    workload: Path,
    arch: Path,
    components: Path | None,
    constraints: Path | None,
    mapper: Path | None,
    ert: Path | None,
    shapes: str,
    variants: str | None,
    max_stack_depth: int | None,
    n_jobs: int | None,
    backend: str,
    cache_path: Path | None,
    batch_size: int | None,
    progress: bool | None,
    out: Path,
) -> None:
    """Cost every (layer, residency variant, tile shape): the tables `deepfrack optimize --tables` reads.

    Results are cached by content (architecture, energy table, constraints, layer, variant, shape,
    mapper settings): a re-run, or an interrupted run started again, reuses every finished entry.
    """
    check_out(out)
    with warnings.catch_warnings():
        if shapes != "needed":  # unchained layers matter to fusion, not to per-layer costs
            warnings.simplefilter("ignore", ChainWarning)
        network = load_workload(workload)
    vs = _parse_variants(variants)
    inputs = load_inputs(arch, components, constraints, mapper, ert, vs)
    result = benchmark_tables(
        network, inputs, backend, shapes, max_stack_depth, n_jobs, cache_path, batch_size, progress, out
    )
    if result.summary.failed:
        sys.exit(1)


def benchmark_tables(
    network: Network,
    inputs: BenchmarkInputs,
    backend: str,
    shapes: str,
    max_stack_depth: int | None,
    n_jobs: int | None,
    cache_path: Path | None,
    batch_size: int | None,
    progress: bool | None,
    out_dir: Path,
) -> BenchmarkResult:
    """Benchmark ``network`` (the shared core of `deepfrack benchmark` and `deepfrack run`): cost every
    entry the shape set asks for, from the cache where possible, write the tables to ``out_dir`` and print
    the summary. Exits 130 on Ctrl-C (finished entries stay in the cache)."""
    be = resolve_backend(backend, inputs)
    if inputs.mapper.error:  # issue 4: every entry is recorded as infeasible with this cause; say it up front
        click.echo(f"deepfrack: warning: {inputs.mapper.error}: every entry will be infeasible", err=True)
    if (
        be.name != "timeloop" and inputs.mapper.ignored
    ):  # Timeloop gets every option; other mappers the metrics
        click.echo(
            f"deepfrack: note: {inputs.mapper.source}: the {be.name} backend uses optimization-metrics "
            f"({', '.join(inputs.mapper.optimization_metrics)}) and ignores the Timeloop search options "
            f"{', '.join(inputs.mapper.ignored)}",
            err=True,
        )
    check_layers(network)  # before working out the shapes of a network too large to benchmark
    needed = required_shapes(network, max_stack_depth) if shapes == "needed" else None
    jobs = enumerate_jobs(network, shapes, inputs.variants, needed)
    executor = SerialExecutor() if n_jobs == 1 else LocalExecutor(n_jobs)
    cache_file = cache_path or default_cache_path()
    # a bar on a terminal, else a line every few seconds (a log or a pipe); --no-progress: nothing
    show: bool | str = ("bar" if sys.stderr.isatty() else "lines") if progress is None else progress
    with ResultCache(cache_file) as cache:
        try:
            result = run_benchmark(jobs, be, cache, executor, out_dir, batch_size=batch_size, progress=show)
        except KeyboardInterrupt:
            click.echo(
                f"deepfrack: interrupted; {out_dir} was not written. "
                f"Finished entries are saved in {cache_file}: run the same command again to resume.",
                err=True,
            )
            sys.exit(130)
    s = result.summary
    click.echo(s.text(), err=True)
    tables = [p.name for p in s.outputs if p.suffix == ".json"]
    click.echo(
        f"wrote {out_dir}: costs.csv, mappings.jsonl and {len(tables)} variant tables ({', '.join(tables)})",
        err=True,
    )
    if s.failed:
        click.echo(
            f"deepfrack: {s.failed} entries failed (not cached); run the same command again to retry them",
            err=True,
        )
    return result
