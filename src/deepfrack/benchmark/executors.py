"""Where batches of jobs run: in this process, in local worker processes, or on a Dask cluster
(``dask_executor``, imported only when asked for: ``make_executor`` chooses).

An executor takes a backend and batches of jobs and yields ``(batch index, outcomes)`` as batches
finish, in any order. It never touches the cache: the runner (in the parent process) writes results.

Interrupts: if the consumer stops (Ctrl-C in the parent, an exception, ``close()`` of the generator),
the local executor terminates its workers at once; their unfinished batches are simply lost, and the
cache holds every batch the runner already committed. Workers ignore SIGINT (the parent handles it)
and turn SIGTERM into a clean exit, so a backend's own subprocesses are killed with them. On Linux a
worker also gets SIGTERM when the parent is killed outright (``kill -9``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol

from deepfrack.benchmark.backend import Backend, Evaluator
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.errors import InputError

BatchResult = tuple[int, list[Outcome]]


class Executor(Protocol):
    workers: int

    def run(self, backend: Backend, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]:
        """Yield (index into ``batches``, one outcome per job) as batches complete."""
        ...


class ExecutorSession(Protocol):
    """Workers kept between calls of ``run`` (an executor's optional ``session(backend)`` context
    manager gives one): a search that asks for entries round after round pays the workers' start-up
    once, and their evaluators keep their state (warm starts, memos) between rounds."""

    workers: int

    def run(self, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]: ...


class _OneShot:
    """A session over an executor that has none: every ``run`` is a fresh ``executor.run``."""

    def __init__(self, executor: Executor, backend: Backend):
        self.executor = executor
        self.backend = backend
        self.workers = executor.workers

    def run(self, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]:
        return self.executor.run(self.backend, batches)


@contextlib.contextmanager
def open_session(executor: Executor, backend: Backend) -> Iterator[ExecutorSession]:
    """The executor's own session when it has one, else one that calls ``executor.run`` each time."""
    session = getattr(executor, "session", None)
    if session is None:
        yield _OneShot(executor, backend)
        return
    with session(backend) as s:
        yield s


def evaluate_batch(evaluator: Evaluator, jobs: Sequence[Job]) -> list[Outcome]:
    """Run one batch; if the evaluator raises, retry job by job so one bad entry costs only itself."""
    try:
        outcomes = list(evaluator.evaluate(jobs))
        if len(outcomes) != len(jobs):
            raise RuntimeError(f"evaluator returned {len(outcomes)} outcomes for {len(jobs)} jobs")
        return outcomes
    except Exception:
        if len(jobs) == 1:
            return [_error_outcome()]
    out: list[Outcome] = []
    for job in jobs:
        try:
            (one,) = evaluator.evaluate([job])
            out.append(one)
        except Exception:
            out.append(_error_outcome())
    return out


def _error_outcome() -> Outcome:
    lines = traceback.format_exc().strip().splitlines()
    return Outcome.error(f"evaluator failed: {lines[-1] if lines else 'unknown error'}")


class SerialExecutor:
    """Runs batches one after another in this process (``--jobs 1``; handy for debugging)."""

    workers = 1

    def run(self, backend: Backend, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]:
        with self.session(backend) as s:
            yield from s.run(batches)

    @contextlib.contextmanager
    def session(self, backend: Backend) -> Iterator[_SerialSession]:
        yield _SerialSession(backend)


class _SerialSession:
    workers = 1

    def __init__(self, backend: Backend):
        self.backend = backend
        self.evaluator: Evaluator | None = None

    def run(self, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]:
        if batches and self.evaluator is None:
            self.evaluator = self.backend.evaluator()
        for i, batch in enumerate(batches):
            yield i, evaluate_batch(self.evaluator, batch)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- #
# local worker processes
# --------------------------------------------------------------------------------------------- #
# One evaluator per worker process, built by the pool initializer (process-local by construction).
_worker_evaluator: Evaluator | None = None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies (``kill -9`` of deepfrack), so a worker does not run on,
    and neither does its ``timeloop-mapper``. Elsewhere workers exit when they next talk to the pool."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the parent died before prctl
        os._exit(1)


def _init_worker(backend: Backend) -> None:
    global _worker_evaluator
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _die_with_parent()
        _worker_evaluator = backend.evaluator()
    except SystemExit as exc:
        # SIGTERM while starting (the parent stops the pool, e.g. on Ctrl-C): leave quietly; the pool
        # would log an initializer failure with its traceback
        os._exit(exc.code if isinstance(exc.code, int) else 1)


def _run_batch(jobs: Sequence[Job]) -> list[Outcome]:
    assert _worker_evaluator is not None, "worker not initialised"
    try:
        return evaluate_batch(_worker_evaluator, jobs)
    except SystemExit as exc:
        # SIGTERM during a batch: the exception has unwound the evaluator (a running subprocess.run kills
        # its child, temporary folders are removed). Exit now: the pool's worker loop would otherwise catch
        # it, report it as the batch's result and wait for the next batch.
        os._exit(exc.code if isinstance(exc.code, int) else 1)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one, else the core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class LocalExecutor:
    """``workers`` local processes (``spawn`` start method: safe with threads, same on every OS), at
    most ``2 x workers`` batches in flight."""

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or available_cores())

    def run(self, backend: Backend, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]:
        if not batches:
            return
        with self.session(backend, max_workers=len(batches)) as s:
            yield from s.run(batches)

    @contextlib.contextmanager
    def session(self, backend: Backend, max_workers: int | None = None) -> Iterator[_PoolSession]:
        """Worker processes kept until the block ends (started on the first batch); stopped at once if
        the block ends with an exception (Ctrl-C included)."""
        s = _PoolSession(backend, min(self.workers, max_workers or self.workers))
        clean = False
        try:
            yield s
            clean = True
        finally:
            s.close(clean)


#: a batch of work ahead (``_PoolSession.run(ahead=...)``) and its outcomes
AheadResult = tuple[Sequence[Job], list[Outcome]]


class _PoolSession:
    #: ``run`` takes work ahead (see there)
    works_ahead = True

    def __init__(self, backend: Backend, workers: int):
        self.backend = backend
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        #: batches of work ahead still running or queued (they outlive the call that started them)
        self.ahead: dict[Future[list[Outcome]], Sequence[Job]] = {}

    def _start(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.backend,),
            )
        return self.pool

    def run(
        self,
        batches: Sequence[Sequence[Job]],
        ahead: Sequence[Sequence[Job]] = (),
        done_ahead: list[AheadResult] | None = None,
    ) -> Iterator[BatchResult]:
        """Yield (index, outcomes) as ``batches`` finish. ``ahead``: batches of work that may be asked for
        later, run on workers that would otherwise idle once every batch is submitted; they keep running
        after this call returns (the outcomes of those that finish during this or a later call are added
        to ``done_ahead``, which the caller keeps). They never delay the call."""
        for fut in [f for f in self.ahead if f.done()]:
            jobs = self.ahead.pop(fut)
            if done_ahead is not None:
                done_ahead.append((jobs, fut.result()))
        if not batches and not ahead:
            return
        pool = self._start()
        pending: dict[Future[list[Outcome]], int] = {}
        next_batch = next_ahead = 0
        finished = False
        try:
            while next_batch < len(batches) or pending:
                # workers start on submits: started with SIGINT ignored, they never see a Ctrl-C (not
                # even before their initializer runs); the parent handles it
                with _sigint_ignored(True):
                    while next_batch < len(batches) and len(pending) + len(self.ahead) < 2 * self.workers:
                        pending[pool.submit(_run_batch, batches[next_batch])] = next_batch
                        next_batch += 1
                    while (
                        next_batch == len(batches)
                        and next_ahead < len(ahead)
                        and len(pending) + len(self.ahead) < self.workers
                    ):
                        self.ahead[pool.submit(_run_batch, ahead[next_ahead])] = ahead[next_ahead]
                        next_ahead += 1
                done, _ = wait([*pending, *self.ahead], return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut in self.ahead:
                        jobs = self.ahead.pop(fut)
                        if done_ahead is not None:
                            done_ahead.append((jobs, fut.result()))
                        continue
                    index = pending.pop(fut)
                    yield index, fut.result()
            with _sigint_ignored(True):  # the rest of the work ahead, while the caller decides what next
                while next_ahead < len(ahead) and len(self.ahead) < self.workers:
                    self.ahead[pool.submit(_run_batch, ahead[next_ahead])] = ahead[next_ahead]
                    next_ahead += 1
            finished = True
        finally:
            if not finished:  # the consumer stopped early (an exception, Ctrl-C, close())
                self.close(False)

    def wait_ahead(self, done_ahead: list[AheadResult], needed: Callable[[Sequence[Job]], bool]) -> None:
        """Wait for the batches of work ahead that ``needed`` picks; their outcomes (and those of any
        other batch ahead that finished meanwhile) go to ``done_ahead``."""
        for fut in [f for f, jobs in self.ahead.items() if needed(jobs) or f.done()]:
            jobs = self.ahead.pop(fut)
            done_ahead.append((jobs, fut.result()))

    def close(self, clean: bool) -> None:
        if self.pool is None:
            return
        if clean and not any(f.running() for f in self.ahead):
            for fut in self.ahead:
                fut.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
        else:  # an interruption, or work ahead nobody asked for: stop it now
            _terminate(self.pool)
        self.ahead = {}
        self.pool = None


@contextlib.contextmanager
def _sigint_ignored(active: bool) -> Iterator[None]:
    """Ignore SIGINT in this process for the duration (main thread only; a no-op elsewhere). Child
    processes started meanwhile inherit the ignored disposition across exec."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel queued batches and terminate the workers (there is no public API for the
    last part before Python 3.14's ``terminate_workers``)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()


@contextlib.contextmanager
def make_executor(jobs: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """The executor for ``--jobs`` and ``--scheduler``, as a context manager that releases it.

    No scheduler: ``jobs`` local worker processes (default: every core), or this process for
    ``jobs == 1``. ``scheduler="local"``: a Dask ``LocalCluster`` of ``jobs`` processes with one thread
    each. Anything else is a Dask scheduler's address (``tcp://HOST:PORT``) or the path of its scheduler
    file; ``jobs`` is then ignored (the cluster has the workers it has). InputError, before any work,
    when Dask is not installed or the scheduler cannot be reached."""
    if not scheduler:
        yield SerialExecutor() if jobs == 1 else LocalExecutor(jobs)
        return
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError(
            None, "scheduler", "running on Dask needs the dask extra: pip install 'deepfrack[dask]'"
        ) from None
    from deepfrack.benchmark.dask_executor import DaskExecutor

    with DaskExecutor(None if scheduler == "local" else scheduler, jobs) as executor:
        yield executor
