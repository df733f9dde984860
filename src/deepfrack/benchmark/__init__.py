"""The benchmarker: cost tables for every (layer, residency variant, tile shape) a search may ask for.

Jobs (``jobs``) are costed by a backend (``backend``: built-in mapper, ``timeloop-mapper``, or a custom
one) in local worker processes (``executors``), cached by content hash in SQLite (``cache``), and
written as the original's JSON tables, ``costs.csv`` and ``mappings.jsonl`` (``runner``, ``tables_io``).
"""

from deepfrack.benchmark.backend import Backend, BackendUnavailable, Evaluator, resolve_backend
from deepfrack.benchmark.cache import ResultCache, job_key
from deepfrack.benchmark.executors import LocalExecutor, SerialExecutor
from deepfrack.benchmark.inputs import BenchmarkInputs, load_inputs
from deepfrack.benchmark.jobs import Job, enumerate_jobs, make_job
from deepfrack.benchmark.mapper_config import MapperSettings, load_mapper_settings
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.runner import BenchmarkResult, BenchmarkSummary, run_benchmark, write_outputs

__all__ = [
    "Backend",
    "BackendUnavailable",
    "BenchmarkInputs",
    "BenchmarkResult",
    "BenchmarkSummary",
    "Evaluator",
    "Job",
    "LocalExecutor",
    "MapperSettings",
    "Outcome",
    "ResultCache",
    "SerialExecutor",
    "enumerate_jobs",
    "job_key",
    "load_inputs",
    "load_mapper_settings",
    "make_job",
    "resolve_backend",
    "run_benchmark",
    "write_outputs",
]
