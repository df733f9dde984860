"""``deepfrack benchmark``: cost tables for every layer, tile shape and residency variant."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from deepfrack import api
from deepfrack.benchmark.cache import default_cache_path
from deepfrack.benchmark.jobs import SHAPE_SETS
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
    SCHEDULER,
    WORKLOAD,
    options,
    out_option,
    print_benchmark_summary,
    show_progress,
)


@contextlib.contextmanager
def interrupt_message(cache_path: Path | None, out: Path) -> Iterator[None]:
    """On Ctrl-C: one line saying that ``out`` was not written and how to resume; exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        cache_file = cache_path or default_cache_path()
        click.echo(
            f"deepfrack: interrupted; {out} was not written. Finished entries are saved in "
            f"{cache_file}: run the same command again to resume.",
            err=True,
        )
        sys.exit(130)


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
@options(JOBS, SCHEDULER, BACKEND, CACHE)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Entries per batch [default: automatic]."
)
@options(PROGRESS, out_option("<VARIANT>.json, costs.csv, mappings.jsonl"))
def benchmark(
    workload: Path,
    input_size: tuple[int, int] | None,
    arch: Path,
    components: Path | None,
    constraints: Path | None,
    mapper: Path | None,
    ert: Path | None,
    shapes: str,
    variants: str | None,
    max_stack_depth: int | None,
    n_jobs: int | None,
    scheduler: str | None,
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
    with interrupt_message(cache_path, out):
        result = api.benchmark(
            workload=workload,
            input_size=input_size or None,
            arch=arch,
            components=components,
            constraints=constraints,
            mapper=mapper,
            ert=ert,
            shapes=shapes,
            variants=None if not variants else variants.split(","),
            max_stack_depth=max_stack_depth,
            jobs=n_jobs,
            scheduler=scheduler,
            backend=backend,
            cache=cache_path,
            batch_size=batch_size,
            progress=show_progress(progress),
            out=out,
        )
    print_benchmark_summary(result.summary, out)
    if result.summary.failed:
        click.echo(
            f"deepfrack: {result.summary.failed} entries failed (not cached); run the same command again "
            "to retry them",
            err=True,
        )
        sys.exit(1)
