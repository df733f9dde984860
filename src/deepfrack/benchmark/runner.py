"""Run a benchmark: jobs -> (cache | executor) -> cache -> output files.

1. Every job gets its content-hash key (``cache.job_key``); jobs with the same key (the same tile problem
   in two layers or two networks) are computed once.
2. Keys already in the cache are reused; the rest are grouped into batches (jobs of one layer and
   shape, all variants, side by side, so an evaluator can share work between them) and run by the
   executor. A backend with warm starts (the built-in mapper's ladders) first computes, in one job per
   layer problem, what of them is missing, and the other jobs carry it (``BenchmarkSession._warm_up``).
3. As each batch finishes, the parent commits its outcomes to the cache in one transaction.
4. At the end the outputs are written from the complete set of outcomes, each file atomically:
   ``<VARIANT>.json`` (the original's format: square tiles, energy in uJ, layers 1-based),
   ``costs.csv`` (every entry, ``status`` ok / infeasible) and ``mappings.jsonl`` (one line per entry:
   the mapping chosen, or why there is none).

An interrupted run leaves the committed batches in the cache and the output folder untouched; the same
command then resumes where it stopped and writes the outputs from the cache.

``BenchmarkSession`` does steps 1-3 call after call on the same worker processes (the on-demand search
asks for entries round by round); ``run_benchmark`` is one call and step 4.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections import Counter
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

from deepfrack.benchmark.backend import Backend, WarmStarts
from deepfrack.benchmark.cache import ResultCache, job_key, to_plain
from deepfrack.benchmark.executors import Executor, ExecutorSession, SerialExecutor, open_session
from deepfrack.benchmark.jobs import Job, Warm
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.progress import ProgressLines
from deepfrack.benchmark.tables_io import table_to_csv, write_json_tables, write_text_atomic
from deepfrack.cost.table import CostKey, CostTable
from deepfrack.residency import VARIANTS, Variant

#: most jobs per batch when the backend has no preference: few enough batches that per-batch overhead
#: (pickling, one SQLite commit) stays small
MAX_AUTO_BATCH = 64


@dataclass
class BenchmarkSummary:
    """entries: jobs asked for. unique: distinct cache keys among them. computed / from_cache: keys
    computed in this run / found in the cache. ahead: keys computed ahead of being asked for (work given
    to idle workers, ``cost(ahead=...)``; counted in ``computed`` once asked for). infeasible: entries
    with no valid mapping. failed: entries whose evaluator failed (not cached; a re-run retries them).
    causes: the infeasible and failed entries grouped by cause, ``{(status, reason): [entry, ...]}`` with
    each entry named as ``Job.describe`` does (``layer 2 (conv2), variant WCC, tile 27x27``), in job
    order."""

    entries: int = 0
    unique: int = 0
    computed: int = 0
    from_cache: int = 0
    ahead: int = 0
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
            + (f"; {self.ahead} computed ahead of being asked for" if self.ahead else "")
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
        transient=True,  # gone when the run ends: the summary says what was done, an error is one line
    )


VARIANT_ORDER = {v: i for i, v in enumerate(VARIANTS)}


def _task(job: Job) -> tuple[int, int, int]:
    """One mapper search: a layer's tile, all its variants."""
    return (job.layer_index, job.tile_h, job.tile_w)


class BenchmarkSession:
    """Costs jobs with one backend, result cache and executor, call after call (``cost``), keeping the
    executor's workers between calls (what the on-demand search needs; ``run_benchmark`` is one call).

    Per call: jobs get their content-hash keys; keys already served or in the cache are free; the rest
    run in batches (the variants of one tile side by side, so a mapper searches the tile once), and each
    batch's outcomes are committed to the cache as it finishes. A backend with warm starts
    (``backend.WarmStarts``) first computes what is missing of each layer problem's shared work in one
    job per problem, caches it, and hands it to the other jobs. ``summary`` counts everything served."""

    def __init__(
        self,
        backend: Backend,
        cache: ResultCache,
        executor: Executor | None = None,
        batch_size: int | None = None,
        progress: bool | str = False,
    ):
        self.backend = backend
        self.cache = cache
        self.executor = executor or SerialExecutor()
        self.batch_size = batch_size
        self.summary = BenchmarkSummary(backend=backend.name, workers=self.executor.workers)
        self.jobs: dict[CostKey, Job] = {}
        self.outcomes: dict[CostKey, Outcome] = {}
        self._by_key: dict[str, Outcome] = {}
        self._fingerprints: dict[Variant, str] = {}
        self._warm_known: dict[tuple[str, int], object] = {}
        self._ahead_keys: set[str] = set()  # cache keys of work ahead still running
        self._ahead_done: dict[str, Outcome] = {}  # outcomes of work ahead not asked for yet
        self._done_ahead: list[tuple[Sequence[Job], list[Outcome]]] = []
        self._stack = contextlib.ExitStack()
        self._bar = self._stack.enter_context(_progress(progress in (True, "bar")))
        self._task = self._bar.add_task("benchmark", total=0)
        # stderr not a terminal (a log, a pipe): a plain line every few seconds instead of the bar
        self._lines = ProgressLines("benchmark", "entries") if progress == "lines" else None
        self._session: ExecutorSession | None = None
        self._start = time.perf_counter()

    def __enter__(self) -> BenchmarkSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(*exc)

    def close(self) -> None:
        self._stack.close()

    @property
    def workers(self) -> int:
        return self.executor.workers

    @property
    def cache_path(self) -> str:
        return str(self.cache.path)

    def _key(self, job: Job) -> str:
        fp = self._fingerprints.get(job.variant)
        if fp is None:
            fp = self._fingerprints[job.variant] = self.backend.fingerprint(job.variant)
        return job_key(job, fp)

    def _executor(self) -> ExecutorSession:
        if self._session is None:
            self._session = self._stack.enter_context(open_session(self.executor, self.backend))
        return self._session

    def cost(self, jobs: Sequence[Job], ahead: Sequence[Job] = ()) -> dict[CostKey, Outcome]:
        """The outcome of every job, by CostTable key (class docstring). KeyboardInterrupt propagates
        after the workers are stopped; everything committed so far stays in the cache.

        ``ahead``: jobs likely to be asked for next. When the executor can (local worker processes),
        workers that would idle once every batch of ``jobs`` is under way compute them; the call does
        not wait for them, and they are committed to the cache as they finish: a later call that asks
        for them waits for them or finds them done. Only what is computed changes, never an outcome."""
        self._commit_ahead()
        keys = [self._key(j) for j in jobs]
        by_key: dict[str, Job] = {}
        fresh: dict[CostKey, str] = {}  # entries not served before -> their cache key
        for job, k in zip(jobs, keys, strict=True):
            by_key.setdefault(k, job)
            if job.key not in self.jobs:
                fresh.setdefault(job.key, k)
        copies = Counter(fresh.values())  # entries per cache key (one tile problem in two layers)
        new_keys = [k for k in by_key if k not in self._by_key]
        early = {k: self._ahead_done.pop(k) for k in new_keys if k in self._ahead_done}
        self._by_key.update(early)
        waiting = [k for k in new_keys if k in self._ahead_keys]
        found = self.cache.get_many([k for k in new_keys if k not in early and k not in self._ahead_keys])
        self._by_key.update(found)
        s = self.summary
        s.unique += len(new_keys)
        s.from_cache += len(found)
        s.computed += len(early)
        self._bar.update(self._task, total=len(self.jobs) + len(fresh))
        self._advance(sum(n for k, n in copies.items() if k in self._by_key))
        pending = [k for k in new_keys if k not in found and k not in early and k not in self._ahead_keys]
        pending.sort(key=lambda k: (*_task(by_key[k]), VARIANT_ORDER[by_key[k].variant]))
        if pending:
            todo = {k: by_key[k] for k in pending}
            if isinstance(self.backend, WarmStarts):
                pending = self._warm_up(pending, todo, copies)
            batches = [[todo[k] for k in b] for b in self._batches(pending, todo)]
            self._run(batches, copies, self._ahead_batches(ahead, set(by_key)))
        elif ahead:
            self._run([], copies, self._ahead_batches(ahead, set(by_key)))
        self._commit_ahead()
        need = {k for k in waiting if k in self._ahead_keys}
        if need:  # asked for while still running ahead: wait for those batches
            self._executor().wait_ahead(  # type: ignore[attr-defined]
                self._done_ahead, lambda batch: any(self._key(j) in need for j in batch)
            )
            self._commit_ahead()
        for k in waiting:
            self._by_key[k] = self._ahead_done.pop(k)
            s.computed += 1
            self._advance(copies[k])
        for job, k in zip(jobs, keys, strict=True):
            if job.key in self.jobs:
                continue
            self.jobs[job.key] = job
            o = self.outcomes[job.key] = self._by_key[k]
            s.entries += 1
            if o.status != "ok":
                label = "infeasible" if o.status == "infeasible" else "failed"
                s.infeasible += label == "infeasible"
                s.failed += label == "failed"
                s.causes.setdefault((label, o.reason), []).append(job.describe())
        s.elapsed_s = time.perf_counter() - self._start
        return {j.key: self._by_key[k] for j, k in zip(jobs, keys, strict=True)}

    def _advance(self, n: int) -> None:
        self._bar.advance(self._task, n)
        if self._lines is not None:
            task = next(t for t in self._bar.tasks if t.id == self._task)
            self._lines.update(int(task.completed), int(task.total or 0))

    def _batches(self, pending: list[str], jobs: dict[str, Job]) -> list[list[str]]:
        """Keys in batches: slices of ``batch_size`` when given; else cut between tiles (a tile's variants
        are mapped together, so the work is about one search per tile, whatever its number of variants)
        into about four batches per worker, each of at most the backend's preferred size in entries."""
        if self.batch_size is not None:
            size = self.batch_size
            return [pending[i : i + size] for i in range(0, len(pending), size)]
        tiles = math.ceil(len({_task(jobs[k]) for k in pending}) / (4 * self.workers))
        size = self.backend.batch_size or MAX_AUTO_BATCH
        out: list[list[str]] = []
        in_last = 0  # tiles in the last batch
        for k in pending:
            if out and _task(jobs[out[-1][-1]]) == _task(jobs[k]):
                out[-1].append(k)
            elif out and in_last < tiles and len(out[-1]) < size:
                out[-1].append(k)
                in_last += 1
            else:
                out.append([k])
                in_last = 1
        return out

    def _ahead_batches(self, ahead: Sequence[Job], asked: set[str]) -> list[list[Job]]:
        """Batches of the ``ahead`` jobs not known, asked for now, running or in the cache; none when
        the executor cannot run work ahead."""
        if not ahead or not getattr(self._executor(), "works_ahead", False):
            return []
        by_key: dict[str, Job] = {}
        for job in ahead:
            k = self._key(job)
            if k not in asked and k not in self._by_key and k not in self._ahead_keys:
                by_key.setdefault(k, job)
        keys = [k for k in by_key if k not in self._ahead_done]
        stored = self.cache.get_many(keys)
        self._ahead_done.update(stored)
        todo = [k for k in keys if k not in stored]
        todo.sort(key=lambda k: (*_task(by_key[k]), VARIANT_ORDER[by_key[k].variant]))
        plans = self.backend.warm_plan if isinstance(self.backend, WarmStarts) else None
        out = []
        for b in self._batches(todo, by_key):
            jobs = []
            for k in b:
                job = by_key[k]
                plan = plans(job) if plans is not None else None
                if plan is not None:  # the rungs known so far; the worker searches any other itself
                    known = self._warm_known
                    given = {i: known[(plan[0], i)] for i in plan[1] if (plan[0], i) in known}
                    if given:
                        job = dataclasses.replace(job, warm=Warm(given))
                jobs.append(job)
            out.append(jobs)
        return out

    def _commit_ahead(self) -> None:
        """Commit the work ahead that finished to the cache; keep its outcomes for when it is asked for."""
        done, self._done_ahead = self._done_ahead, []
        for jobs, outcomes in done:
            ks = [self._key(j) for j in jobs]
            self.cache.put_many(
                ((k, j, o) for k, j, o in zip(ks, jobs, outcomes, strict=True)), backend=self.backend.name
            )
            for k, o in zip(ks, outcomes, strict=True):
                self._ahead_keys.discard(k)
                self._ahead_done[k] = o
            self.summary.ahead += len(ks)

    def _run(
        self, batches: list[list[Job]], copies: Counter[str], ahead: list[list[Job]] | None = None
    ) -> list[list[Outcome]]:
        """Run batches of jobs and commit each as it finishes; returns the outcomes per batch. ``ahead``:
        batches of work ahead (``cost``)."""
        results: list[list[Outcome]] = [[] for _ in batches]
        if not batches and not ahead:
            return results
        keys = [[self._key(j) for j in b] for b in batches]
        session = self._executor()
        works_ahead = getattr(session, "works_ahead", False)
        runs = session.run(batches, ahead or [], self._done_ahead) if works_ahead else session.run(batches)  # type: ignore[call-arg]
        for index, outcomes in runs:
            ks = keys[index]
            self.cache.put_many(
                ((k, batches[index][n], o) for n, (k, o) in enumerate(zip(ks, outcomes, strict=True))),
                backend=self.backend.name,
            )
            for k, o in zip(ks, outcomes, strict=True):
                self._by_key[k] = o
            self.summary.computed += len(ks)
            self._advance(sum(copies[k] for k in ks))
            results[index] = outcomes
        if works_ahead:  # the work ahead under way or done, not committed yet (the session took some)
            running = [b for b in session.ahead.values()]  # type: ignore[attr-defined]
            self._ahead_keys = {self._key(j) for b in running + [b for b, _ in self._done_ahead] for j in b}
        return results

    def _warm_up(self, pending: list[str], jobs: dict[str, Job], copies: Counter[str]) -> list[str]:
        """Compute the missing shared work of each layer problem (one job per problem computes it all,
        with the other variants of its tile), cache it, and attach to every other pending job what it
        uses. Returns the keys still to run."""
        be: WarmStarts = self.backend  # type: ignore[assignment]
        plans = {k: be.warm_plan(jobs[k]) for k in pending}
        tops: dict[str, int] = {}
        for plan in plans.values():
            if plan is not None and plan[1]:
                tops[plan[0]] = max(tops.get(plan[0], -1), max(plan[1]))
        wanted = {(g, i): be.warm_key(g, i) for g, top in tops.items() for i in range(top + 1)}
        missing = {gi: ck for gi, ck in wanted.items() if gi not in self._warm_known}
        stored = self.cache.get_shared(missing.values())
        self._warm_known.update({gi: stored[ck] for gi, ck in missing.items() if ck in stored})
        carriers: dict[str, list[str]] = {}  # group -> the keys of one tile of that group
        for k in pending:
            plan = plans[k]
            if plan is None or plan[0] not in tops:
                continue
            g = plan[0]
            if all((g, i) in self._warm_known for i in range(tops[g] + 1)):
                continue
            if g not in carriers:
                carriers[g] = [k]
            elif _task(jobs[carriers[g][0]]) == _task(jobs[k]):
                carriers[g].append(k)
        batches = []
        for g, ks in carriers.items():
            given = {i: self._warm_known[(g, i)] for i in range(tops[g] + 1) if (g, i) in self._warm_known}
            head = dataclasses.replace(jobs[ks[0]], warm=Warm(given, tops[g]))
            batches.append([head, *(jobs[k] for k in ks[1:])])
        new: dict[str, object] = {}
        for g, outcomes in zip(carriers, self._run(batches, copies), strict=True):
            for i, data in (outcomes[0].shared or {}).items():
                self._warm_known[(g, int(i))] = data
                new[be.warm_key(g, int(i))] = data
        self.cache.put_shared(new)
        done = {k for ks in carriers.values() for k in ks}
        rest = []
        for k in pending:
            if k in done:
                continue
            plan = plans[k]
            if plan is not None:
                g, uses = plan
                given = {i: self._warm_known[(g, i)] for i in uses if (g, i) in self._warm_known}
                if given:
                    jobs[k] = dataclasses.replace(jobs[k], warm=Warm(given))
            rest.append(k)
        return rest

    def result(self, out_dir: str | Path | None = None) -> BenchmarkResult:
        """Every job served so far, its outcome, their table, and the summary; with ``out_dir``, the
        output files written there from them."""
        jobs = list(self.jobs.values())
        table = table_from_outcomes(jobs, self.outcomes)
        if out_dir is not None:
            self.summary.outputs = write_outputs(out_dir, jobs, self.outcomes, table)
        self.summary.elapsed_s = time.perf_counter() - self._start
        return BenchmarkResult(jobs, dict(self.outcomes), table, self.summary)


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
    stopped; everything committed so far stays in the cache. ``progress``: False (nothing), True or "bar"
    (a bar on stderr), "lines" (a plain line on stderr every few seconds: for logs and pipes)."""
    with BenchmarkSession(backend, cache, executor, batch_size, progress) as session:
        session.cost(jobs)
        result = session.result(out_dir)
    result.summary.entries = len(jobs)
    return result


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
