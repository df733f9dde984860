"""Backends: what turns benchmark jobs into cost records.

A **Backend** is a small picklable recipe (plain data: parsed inputs, settings). It is sent once to
every worker process, which calls ``backend.evaluator()`` to build its **Evaluator** (the heavy part:
parsed architecture, model tables, a temp folder, ...) and then feeds it batches of jobs.

``fingerprint(variant)`` hashes everything a result depends on besides the job itself; with the job's
problem, variant and shape it makes the cache key (``cache.job_key``). Change anything it covers and
the cache recomputes; keep it all and the cache reuses.

Backends by name (``--backend``):

* ``builtin``: deepfrack's own mapper over the Timeloop-equivalent model (``deepfrack.benchmark.builtin``).
* ``timeloop``: ``timeloop-mapper`` run per entry (``deepfrack.benchmark.timeloop``).
* ``package.module:factory``: any importable callable ``factory(inputs: BenchmarkInputs) -> Backend``
  (custom evaluators, test doubles).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from deepfrack.benchmark.inputs import BenchmarkInputs
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.errors import DeepfrackError, InputError
from deepfrack.residency import Variant


@runtime_checkable
class Evaluator(Protocol):
    """Costs batches of jobs. One per worker process; may keep state between batches (warm starts)."""

    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        """One outcome per job, in order. An exception fails the whole batch; the runner then retries the
        jobs one by one and records the exception as the failing job's error."""
        ...


@runtime_checkable
class Backend(Protocol):
    """Picklable recipe for evaluators. ``name``: for messages and the cache. ``batch_size``: preferred
    jobs per batch (None: let the runner choose; 1 for slow backends so an interruption loses little)."""

    name: str
    batch_size: int | None

    def fingerprint(self, variant: Variant) -> str: ...

    def evaluator(self) -> Evaluator: ...


@runtime_checkable
class WarmStarts(Protocol):
    """Optional: a backend whose jobs of one layer problem share work that is computed once (the built-in
    mapper's warm-start ladder: the best mappings of a fixed ladder of square tiles, each rung
    warm-started from the one below). The runner computes what is missing of it first, in one job per
    layer problem, keeps it in the result cache, and hands each job the parts it uses (``Job.warm``).
    Results never depend on it; it only saves the work.

    ``warm_plan(job)``: (the key of the job's layer problem's shared work, the indices of the parts its
    evaluation uses), or None. Part ``i`` may need the parts below it; asked to compute up to ``i``
    (``Warm.compute_to``), an evaluator computes them all and returns them in ``Outcome.shared``.
    ``warm_key(group, i)``: the cache key of one part."""

    def warm_plan(self, job: Job) -> tuple[str, tuple[int, ...]] | None: ...

    def warm_key(self, group: str, index: int) -> str: ...


BackendFactory = Callable[[BenchmarkInputs], Backend]


class BackendUnavailable(DeepfrackError):
    """The backend cannot run here (binary missing, not implemented yet)."""


def _builtin(inputs: BenchmarkInputs) -> Backend:
    from deepfrack.benchmark.builtin import make_builtin_backend

    return make_builtin_backend(inputs)


def _timeloop(inputs: BenchmarkInputs) -> Backend:
    from deepfrack.benchmark.timeloop import make_timeloop_backend

    return make_timeloop_backend(inputs)


_FACTORIES: dict[str, BackendFactory] = {"builtin": _builtin, "timeloop": _timeloop}


def resolve_backend(name: str, inputs: BenchmarkInputs) -> Backend:
    """The backend named ``name`` (see module docstring), built from ``inputs``."""
    factory = _FACTORIES.get(name)
    if factory is None:
        if ":" not in name:
            raise InputError(
                None,
                "--backend",
                f"unknown backend {name!r}; expected builtin, timeloop or package.module:factory",
            )
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InputError(None, "--backend", f"cannot import {module_name!r}: {exc}") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise InputError(None, "--backend", f"{module_name!r} has no callable {attr!r}")
    backend = factory(inputs)
    if not isinstance(backend, Backend):
        raise InputError(
            None,
            "--backend",
            f"{name!r} did not return a backend (needs name, batch_size, fingerprint, evaluator)",
        )
    return backend
