"""Run the benchmark's batches on a Dask cluster (``--scheduler``): docs/cluster.md.

This module imports ``distributed`` at the top; it is imported only when a scheduler is asked for
(``executors.make_executor``), so deepfrack runs without Dask installed.

* **The backend goes to the workers once**: it travels inside a worker plugin
  (``distributed.WorkerPlugin``) registered for the run; the scheduler hands it to every worker, to
  those that join (or are restarted) later too. Each worker thread builds its evaluator from it on its
  first batch and keeps it, as a local worker process does.
* **Batches** are submitted as tasks, at most ``2 x`` the cluster's worker threads in flight (re-read as
  the cluster grows or shrinks), and come back as they complete (``distributed.as_completed``).
* **Failures**: a worker that dies mid-batch makes the scheduler run the batch again elsewhere (up to
  its ``distributed.scheduler.allowed-failures``, 3 by default); an exception that escapes a batch
  (the evaluator could not be built on that worker, say) is retried twice (``retries=``). A batch that
  still fails becomes failed entries with the cause: not cached, exit code 1, a re-run retries them.
* **Same code**: the cache key holds a digest of the code that computes the results, taken on the
  client; a worker whose deepfrack computes otherwise (another version) refuses the batch.
* **Interrupts**: closing the stream (Ctrl-C in the client) cancels every batch in flight. A batch a
  worker has already started runs to its end there and its result is dropped; a cluster started here
  (``--scheduler local``) is shut down, and its workers ignore the terminal's Ctrl-C.
* The client alone writes the cache (the runner commits each finished batch), so resume works exactly
  as with local processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import distributed
from distributed.comm.addressing import parse_address, parse_host_port
from distributed.diagnostics.plugin import WorkerPlugin

from deepfrack._version import __version__
from deepfrack.benchmark.backend import Backend, Evaluator
from deepfrack.benchmark.executors import BatchResult, _sigint_ignored, available_cores, evaluate_batch
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.provenance import code_digest
from deepfrack.errors import DeepfrackError, InputError

#: seconds to wait for a scheduler to answer before giving up
CONNECT_TIMEOUT_S = 5.0
#: how often the scheduler retries a batch whose task raised (not counting workers that died)
RETRIES = 2
#: batches in flight per worker thread of the cluster
IN_FLIGHT_PER_THREAD = 2
#: the modules whose code computes the built-in and Timeloop backends' results (and what they import
#: within the model packages; see ``provenance``): a worker must run the same code as the client
CODE_ROOTS: tuple[str, ...] = ("deepfrack.benchmark.builtin", "deepfrack.benchmark.timeloop")

_ADDRESS = re.compile(r"[A-Za-z0-9+.-]+://\S+|[A-Za-z0-9.-]+:\d+|\[[0-9A-Fa-f:.]+\]:\d+")


def deepfrack_code() -> str:
    """deepfrack's version and a digest of the code that computes the backends' results."""
    return code_digest(CODE_ROOTS)


class WorkerMismatch(RuntimeError):
    """A worker runs other deepfrack code than the client: its results would be cached under the
    client's code digest, so it refuses the batch."""


class EvaluatorPlugin(WorkerPlugin):
    """Carries a run's backend to the workers; each worker thread builds one evaluator from it."""

    def __init__(self, backend: Backend, code: str, ignore_sigint: bool = False):
        self.backend = backend
        self.code = code
        self.ignore_sigint = ignore_sigint

    def setup(self, worker: distributed.Worker) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._mismatch: str | None = None
        self._checked = False
        # workers of a cluster started here share the terminal: its Ctrl-C is the client's to handle
        if self.ignore_sigint and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def evaluator(self) -> Evaluator:
        """This thread's evaluator, built on first use (after checking the worker's code)."""
        with self._lock:
            if not self._checked:
                here = deepfrack_code()
                if here != self.code:
                    self._mismatch = (
                        f"the Dask worker runs other deepfrack code than the client (deepfrack "
                        f"{__version__}, code {here[:12]} vs {self.code[:12]}): install the "
                        "same deepfrack on the workers"
                    )
                self._checked = True
        if self._mismatch:
            raise WorkerMismatch(self._mismatch)
        ev = getattr(self._local, "evaluator", None)
        if ev is None:
            ev = self._local.evaluator = self.backend.evaluator()
        return ev


def _run_batch(plugin_name: str, jobs: Sequence[Job]) -> list[Outcome]:
    """A task on a worker: cost one batch with this worker thread's evaluator."""
    plugin = distributed.get_worker().plugins[plugin_name]
    assert isinstance(plugin, EvaluatorPlugin)
    return evaluate_batch(plugin.evaluator(), jobs)


def _failed(exc: BaseException, n: int) -> list[Outcome]:
    if isinstance(exc, distributed.KilledWorker):
        reason = (
            "the Dask workers that ran this batch died each time (killed, or out of memory?); "
            "the scheduler gave up on it"
        )
    else:
        reason = f"on the Dask worker: {type(exc).__name__}: {exc}"
    return [Outcome.error(reason)] * n


class DaskExecutor:
    """Runs batches on a Dask cluster: the one at ``scheduler`` (an address such as
    ``tcp://HOST:8786``, or the path of a scheduler file), or, when ``scheduler`` is None, a
    ``distributed.LocalCluster`` of ``workers`` processes with one thread each, started on the first
    batch and shut down by ``close``. Connecting happens here, so an unreachable scheduler is an
    InputError before any work. Use it as a context manager (or call ``close``)."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ):
        self._cluster: distributed.LocalCluster | None = None
        self._client: distributed.Client | None = None
        self._threads = (0, 0.0)  # (count, when read)
        self._code = deepfrack_code()
        if scheduler is None:
            self.workers = max(1, workers or available_cores())
            return
        self._client = _connect(scheduler, connect_timeout)
        try:
            _check_workers(self._client, self._code, scheduler)
            self.workers = max(1, self._thread_count(self._client, fresh=True))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect; shut down the cluster if it was started here."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()
        with contextlib.suppress(Exception):
            if cluster is not None:
                cluster.close()

    def _ensure_client(self) -> distributed.Client:
        if self._client is None:
            # the workers start with SIGINT ignored: the terminal's Ctrl-C is the client's to handle
            with _sigint_ignored(True):
                self._cluster = distributed.LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # a free port: never in the way of another cluster
                    silence_logs=logging.ERROR,
                )
            self._client = distributed.Client(self._cluster, set_as_default=False)
        return self._client

    def _thread_count(self, client: distributed.Client, fresh: bool = False) -> int:
        """The cluster's worker threads, re-read at most once a second."""
        count, when = self._threads
        now = time.monotonic()
        if fresh or now - when > 1.0:
            count = sum(client.nthreads().values())
            self._threads = (count, now)
        return count

    def run(self, backend: Backend, batches: Sequence[Sequence[Job]]) -> Iterator[BatchResult]:
        if not batches:
            return
        client = self._ensure_client()
        name = f"deepfrack-{uuid.uuid4().hex}"
        try:
            client.register_plugin(EvaluatorPlugin(backend, self._code, self._cluster is not None), name=name)
        except Exception as exc:  # a worker could not take it (cannot unpickle the backend, say)
            raise DeepfrackError(f"cannot send the backend to the Dask workers: {exc}") from None
        pending: dict[distributed.Future, int] = {}
        done = distributed.as_completed(loop=client.loop)
        next_batch = 0
        try:
            while next_batch < len(batches) or pending:
                limit = IN_FLIGHT_PER_THREAD * max(1, self._thread_count(client))
                while next_batch < len(batches) and len(pending) < limit:
                    fut = client.submit(
                        _run_batch,
                        name,
                        list(batches[next_batch]),
                        key=f"{name}-batch-{next_batch}",
                        pure=False,
                        retries=RETRIES,
                    )
                    pending[fut] = next_batch
                    done.add(fut)
                    next_batch += 1
                fut = next(done)
                index = pending.pop(fut)
                yield index, self._outcomes(fut, len(batches[index]))
        finally:
            if pending:
                with contextlib.suppress(Exception):
                    client.cancel(list(pending))
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(name)

    def _outcomes(self, fut: distributed.Future, n: int) -> list[Outcome]:
        if fut.status == "finished":
            return fut.result()
        if fut.status == "error":
            return _failed(fut.exception(), n)
        raise DeepfrackError(
            f"the Dask scheduler dropped a batch ({fut.status}): did it stop? Finished batches are "
            "in the cache: run the same command again to resume"
        )


def _connect(scheduler: str, timeout: float) -> distributed.Client:
    """A client of the scheduler at an address, or at the address in a scheduler file (the JSON file
    ``dask scheduler --scheduler-file`` writes). InputError when there is none or it does not answer."""
    path = Path(scheduler)
    if path.is_file():
        address = _address_in(path)
        what = f"the Dask scheduler at {address} (from {scheduler})"
    elif _ADDRESS.fullmatch(scheduler):
        address, what = scheduler, f"the Dask scheduler at {scheduler}"
    else:
        raise InputError(
            None,
            "scheduler",
            f"{scheduler!r} is neither 'local', a scheduler address (tcp://HOST:PORT) nor a scheduler file",
        )
    try:
        _probe(address, timeout)
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc).lower()
        detail = f"no answer within {timeout:g} s" if timed_out else (exc.strerror or str(exc)).lower()
        raise InputError(None, "scheduler", f"cannot reach {what}: {detail}") from None


def _probe(address: str, timeout: float) -> None:
    """OSError or TimeoutError unless a Dask scheduler answers at ``address`` within ``timeout``. For
    TCP, a plain connection first: a refused one fails at once, with the reason, where Dask retries
    until its timeout. Then Dask's handshake, bounded: its client waits without end on a port where
    another kind of server accepts the connection but never answers. (In a thread of its own, so that
    it runs under an event loop already running, as in a notebook.)"""
    scheme, location = parse_address(address)
    if scheme == "tcp":
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=timeout).close()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _handshake(address, timeout)).result()


async def _handshake(address: str, timeout: float) -> None:
    comm = await asyncio.wait_for(distributed.comm.connect(address, timeout=timeout), timeout)
    await comm.close()


def _address_in(path: Path) -> str:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, None, f"not a Dask scheduler file: {exc}") from None
    address = doc.get("address") if isinstance(doc, dict) else None
    if not isinstance(address, str) or not address:
        raise InputError(path, "address", "a Dask scheduler file names the scheduler's address")
    return address


def _check_workers(client: distributed.Client, code: str, scheduler: str) -> None:
    """Every worker present runs the client's deepfrack code (workers that join later are checked on
    their first batch)."""
    answers = client.run(deepfrack_code, on_error="return")
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            raise InputError(
                None,
                "scheduler",
                f"{scheduler}: worker {address} cannot run deepfrack ({answer}); "
                "install the same deepfrack on the workers",
            )
        if answer != code:
            raise InputError(
                None,
                "scheduler",
                f"{scheduler}: worker {address} runs other deepfrack code than this client; "
                "install the same deepfrack on the workers",
            )


__all__ = ["DaskExecutor", "EvaluatorPlugin", "WorkerMismatch", "deepfrack_code"]
