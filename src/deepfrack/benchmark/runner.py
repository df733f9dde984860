"""Run a benchmark: jobs -> (cache | executor) -> cache -> output files.

1. Every job gets its content-hash key (``cache.job_key``); jobs with the same key (the same tile problem
   in two layers or two networks) are computed once.
2. Keys already in the cache are reused; the rest are grouped into batches (jobs of one layer and
   shape, all variants, side by side, so an evaluator can share work between them) and run by the
   executor.
3. As each batch finishes, the parent commits its outcomes to the cache in one transaction.
4. At the end the outputs are written from the complete set of outcomes, each file atomically:
   ``<VARIANT>.json`` (the original's format: square tiles, energy in uJ, layers 1-based),
   ``costs.csv`` (every entry, ``status`` ok / infeasible) and ``mappings.jsonl`` (one line per entry:
   the mapping chosen, or why there is none).

An interrupted run leaves the committed batches in the cache and the output folder untouched; the same
command then resumes where it stopped and writes the outputs from the cache.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from deepfrack.benchmark.backend import Backend
from deepfrack.benchmark.cache import ResultCache, job_key, to_plain
from deepfrack.benchmark.executors import Executor, SerialExecutor
from deepfrack.benchmark.jobs import Job, batches_of
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.progress import ProgressLines
from deepfrack.benchmark.tables_io import table_to_csv, write_json_tables, write_text_atomic
from deepfrack.cost.table import CostKey, CostTable
from deepfrack.residency import VARIANTS, Variant

#: jobs per batch when the backend has no preference: enough batches to balance the workers, few
#: enough that per-batch overhead (pickling, one SQLite commit) stays small
MAX_AUTO_BATCH = 64


@dataclass
class BenchmarkSummary:
    """entries: jobs asked for. unique: distinct cache keys among them. computed / from_cache: keys
    computed in this run / found in the cache. infeasible: entries with no valid mapping. failed: entries
    whose evaluator failed (not cached; a re-run retries them). causes: the infeasible and failed entries
    grouped by cause, ``{(status, reason): [entry, ...]}`` with each entry named as ``Job.describe`` does
    (``layer 2 (conv2), variant WCC, tile 27x27``), in job order."""

    entries: int = 0
    unique: int = 0
    computed: int = 0
    from_cache: int = 0
    infeasible: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    backend: str = ""
    workers: int = 1
    causes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)

    def text(self, max_causes: int = 10, examples: int = 3) -> str:
        """The counts, then each cause once with how many entries it concerns and a few of them (failed
        causes first, then by number of entries): a run with thousands of infeasible entries stays a
        few lines. mappings.jsonl has every entry's reason."""
        lines = [
            f"benchmark ({self.backend}, {self.workers} worker{'s' if self.workers != 1 else ''}): "
            f"{self.entries} entries ({self.unique} distinct): {self.computed} computed, "
            f"{self.from_cache} from cache, "
            f"{self.infeasible} infeasible, {self.failed} failed; {self.elapsed_s:.1f} s"
        ]
        ranked = sorted(self.causes.items(), key=lambda kv: (kv[0][0] != "failed", -len(kv[1])))
        for (status, reason), entries in ranked[:max_causes]:
            n = len(entries)
            lines.append(f"  {status}, {n} entr{'y' if n == 1 else 'ies'}: {reason}")
            more = f"; ... ({n - examples} more)" if n > examples else ""
            lines.append(f"    {'e.g. ' if n > examples else ''}{'; '.join(entries[:examples])}{more}")
        if len(ranked) > max_causes:
            rest = ranked[max_causes:]
            n = sum(len(e) for _, e in rest)
            lines.append(
                f"  ... and {len(rest)} more causes ({n} entries): see the reasons in mappings.jsonl"
            )
        return "\n".join(lines)


@dataclass
class BenchmarkResult:
    """The outcome of every job (by CostTable key), the table made from them, and the summary."""

    jobs: list[Job]
    outcomes: dict[CostKey, Outcome]
    table: CostTable
    summary: BenchmarkSummary


def _auto_batch(n_pending: int, workers: int) -> int:
    return max(1, min(MAX_AUTO_BATCH, math.ceil(n_pending / (4 * workers))))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("entries"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def run_benchmark(
    jobs: Sequence[Job],
    backend: Backend,
    cache: ResultCache,
    executor: Executor | None = None,
    out_dir: str | Path | None = None,
    batch_size: int | None = None,
    progress: bool | str = False,
) -> BenchmarkResult:
    """Cost every job (from the cache where possible), commit new outcomes batch by batch, and write the
    outputs to ``out_dir`` (when given) at the end. KeyboardInterrupt propagates after the workers are
    stopped; everything committed so far stays in the cache.

    ``progress``: False (nothing), True or "bar" (a bar on stderr), "lines" (a plain line on stderr every
    few seconds: for logs and pipes)."""
    start = time.perf_counter()
    executor = executor or SerialExecutor()
    fingerprints = {v: backend.fingerprint(v) for v in {j.variant for j in jobs}}
    keys = [job_key(j, fingerprints[j.variant]) for j in jobs]
    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)

    found = cache.get_many(by_key)
    results: dict[str, Outcome] = dict(found)
    pending = [k for k in by_key if k not in found]
    variant_order = {v: i for i, v in enumerate(VARIANTS)}
    # one layer and shape, all variants, side by side

    def batch_order(k: str) -> tuple[int, int, int, int]:
        j = jobs[by_key[k][0]]
        return (j.layer_index, j.tile_h, j.tile_w, variant_order[j.variant])

    pending.sort(key=batch_order)
    size = batch_size or backend.batch_size or _auto_batch(len(pending), executor.workers)
    batches = batches_of([jobs[by_key[k][0]] for k in pending], size)
    batch_keys = [pending[i : i + size] for i in range(0, len(pending), size)]

    summary = BenchmarkSummary(
        entries=len(jobs),
        unique=len(by_key),
        from_cache=len(found),
        backend=backend.name,
        workers=executor.workers,
    )
    lines = ProgressLines("benchmark", "entries") if progress == "lines" else None
    done = sum(len(by_key[k]) for k in found)
    with _progress(progress in (True, "bar")) as bar:
        task = bar.add_task("benchmark", total=len(jobs), completed=done)
        with contextlib.closing(executor.run(backend, batches)) as stream:  # type: ignore[arg-type]
            for index, outcomes in stream:
                ks = batch_keys[index]
                cache.put_many(
                    ((k, batches[index][n], o) for n, (k, o) in enumerate(zip(ks, outcomes, strict=True))),
                    backend=backend.name,
                )
                for k, o in zip(ks, outcomes, strict=True):
                    results[k] = o
                summary.computed += len(ks)
                step = sum(len(by_key[k]) for k in ks)
                done += step
                bar.advance(task, step)
                if lines is not None:
                    lines.update(done, len(jobs))

    outcomes: dict[CostKey, Outcome] = {}
    for job, k in zip(jobs, keys, strict=True):
        o = results[k]
        outcomes[job.key] = o
        if o.status == "infeasible":
            summary.infeasible += 1
            summary.causes.setdefault(("infeasible", o.reason), []).append(job.describe())
        elif o.status == "error":
            summary.failed += 1
            summary.causes.setdefault(("failed", o.reason), []).append(job.describe())
    table = table_from_outcomes(jobs, outcomes)
    if out_dir is not None:
        summary.outputs = write_outputs(out_dir, jobs, outcomes, table)
    summary.elapsed_s = time.perf_counter() - start
    return BenchmarkResult(list(jobs), outcomes, table, summary)


def table_from_outcomes(
    jobs: Iterable[Job], outcomes: Mapping[CostKey, Outcome], source: str | None = None
) -> CostTable:
    """A CostTable: ok outcomes as records, infeasible and failed ones in ``table.infeasible``."""
    table = CostTable(source=source)
    for job in jobs:
        o = outcomes[job.key]
        if o.status == "ok" and o.record is not None:
            table.add(job.layer_index, job.variant, job.tile_h, job.tile_w, o.record)
        else:
            table.infeasible.add(job.key)
            if o.reason:
                table.reasons[job.key] = o.reason
    return table


def mappings_jsonl(jobs: Iterable[Job], outcomes: Mapping[CostKey, Outcome]) -> str:
    """One JSON line per entry, ordered like costs.csv: layer (1-based), name, variant, tile_h, tile_w,
    status, and ``mapping`` (map.yaml directives) when ok, ``reason`` otherwise."""
    order = {v: i for i, v in enumerate(VARIANTS)}
    lines = []
    for job in sorted(jobs, key=lambda j: (j.layer_index, order[j.variant], j.tile_h, j.tile_w)):
        o = outcomes[job.key]
        row: dict[str, object] = {
            "layer": job.layer_index + 1,
            "name": job.layer.name,
            "variant": job.variant.value,
            "tile_h": job.tile_h,
            "tile_w": job.tile_w,
            "status": "ok" if o.status == "ok" else "infeasible",
        }
        if o.record is not None:
            row["energy_uJ"] = o.record.energy_uJ
            row["cycles"] = o.record.cycles
            row["mapping"] = to_plain(o.record.mapping)
        else:
            row["reason"] = o.reason if o.status == "infeasible" else f"evaluator failed: {o.reason}"
        lines.append(json.dumps(row, separators=(",", ":")))
    return "\n".join(lines) + ("\n" if lines else "")


def write_outputs(
    out_dir: str | Path,
    jobs: Sequence[Job],
    outcomes: Mapping[CostKey, Outcome],
    table: CostTable | None = None,
) -> list[Path]:
    """Write ``mappings.jsonl``, ``costs.csv`` and one ``<VARIANT>.json`` per benchmarked variant, each
    atomically. Returns the files written."""
    out = Path(out_dir)
    table = table if table is not None else table_from_outcomes(jobs, outcomes)
    written = []
    p = out / "mappings.jsonl"
    write_text_atomic(p, mappings_jsonl(jobs, outcomes))
    written.append(p)
    p = out / "costs.csv"
    write_text_atomic(p, table_to_csv(table))
    written.append(p)
    variants: list[Variant] = [v for v in VARIANTS if any(j.variant == v for j in jobs)]
    written.extend(write_json_tables(table, out, variants))
    return written
