"""The benchmark with the built-in mapper on local worker processes and on a Dask LocalCluster: wall and
CPU time, and how much of it is spent outside the mapper (start-up, scheduling, serialization, idle).

Every evaluator call is timed inside the workers (wall and CPU time of ``evaluate``, appended to a
file per worker process); the parent adds its own CPU time and that of its reaped child processes
(the pool's workers, the cluster's workers). Each executor starts from an empty cache, and the tables
of all runs must be identical (checked). ``--null`` measures the cost of a batch itself: batches of one
entry whose evaluator does no work (``bench_benchmark.NullBackend``), on the AlexNet_Simba problems.

    PYTHONPATH=src python benchmarks/bench_dask.py [--layers 2-7] [--jobs 2] [--batch-size N] [--null]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepfrack.benchmark.backend import Backend, resolve_backend
from deepfrack.benchmark.cache import ResultCache
from deepfrack.benchmark.executors import make_executor
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import Job, enumerate_jobs
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.runner import run_benchmark
from deepfrack.residency import Variant
from deepfrack.workload.loaders import load_workload

SIMBA = ROOT / "examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like"


@dataclass(frozen=True)
class TimedBackend:
    """Another backend, with every ``evaluate`` call timed and logged to ``log_dir/<pid>.txt``."""

    inner: Backend
    log_dir: str
    batch_size: int | None

    @property
    def name(self) -> str:
        return self.inner.name

    def fingerprint(self, variant: Variant) -> str:
        return self.inner.fingerprint(variant)

    def evaluator(self) -> TimedEvaluator:
        return TimedEvaluator(self.inner.evaluator(), Path(self.log_dir) / f"{os.getpid()}.txt")


@dataclass
class TimedEvaluator:
    inner: object
    log: Path

    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        wall, cpu = time.time(), time.thread_time()
        out = self.inner.evaluate(jobs)  # type: ignore[attr-defined]
        with self.log.open("a") as f:
            f.write(f"{wall} {time.time()} {time.thread_time() - cpu} {len(jobs)}\n")
        return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(
    label: str, jobs: list[Job], backend: Backend, batch: int | None, n: int, scheduler: str | None, tmp: Path
) -> bytes:
    logs = tmp / f"log-{label}"
    logs.mkdir()
    timed = TimedBackend(backend, str(logs), batch or backend.batch_size)
    t0, cpu0, kids0 = time.time(), time.process_time(), _children_cpu()
    with make_executor(n, scheduler) as ex, ResultCache(tmp / f"{label}.sqlite") as cache:
        res = run_benchmark(jobs, timed, cache, ex, out_dir=tmp / label)
        t_done = time.time()
    t_end, cpu, kids = time.time(), time.process_time() - cpu0, _children_cpu() - kids0
    batches = [tuple(map(float, line.split())) for p in logs.iterdir() for line in p.read_text().splitlines()]
    busy = sum(b - a for a, b, _, _ in batches)
    mapper_cpu = sum(c for _, _, c, _ in batches)
    first = min(a for a, _, _, _ in batches)
    wall = t_end - t0
    print(f"{label}: {res.summary.computed} entries in {len(batches)} batches on {n} workers")
    print(f"  wall {wall:6.2f} s (results at {t_done - t0:.2f} s, first batch at {first - t0:.2f} s)")
    print(f"  mapper busy {busy:6.2f} s wall, {mapper_cpu:6.2f} s CPU (sum over workers)")
    print(f"  CPU: parent {cpu:6.2f} s + workers {kids:6.2f} s = {cpu + kids:6.2f} s")
    if len(batches) > 1:
        span = max(b for _, b, _, _ in batches) - first
        print(f"  first batch's start to last one's end: {span * 1e3 / len(batches):.2f} ms a batch")
    print(f"  outside the mapper: {1 - busy / (n * wall):5.1%} of workers x wall,")
    print(f"                      {1 - mapper_cpu / (cpu + kids):5.1%} of the CPU time")
    return (tmp / label / "costs.csv").read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="2-7", help="0-based layer range of AlexNet, e.g. 2-7")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--null", action="store_true", help="evaluators that do no work, one entry a batch")
    args = ap.parse_args()
    lo, _, hi = args.layers.partition("-")
    wanted = set(range(int(lo), int(hi or lo) + 1))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    net = load_workload(ROOT / "examples/networks/alexnet.yaml")
    inputs = load_inputs(SIMBA / "arch/simba_like.yaml", constraints=SIMBA / "constraints")
    jobs = [j for j in enumerate_jobs(net, "square") if j.layer_index in wanted]
    backend = resolve_backend("builtin", inputs)
    if args.null:
        from bench_benchmark import NullBackend

        jobs = enumerate_jobs(net, "square")
        backend, args.batch_size = NullBackend(inputs.arch.digest), 1
    with tempfile.TemporaryDirectory() as tmp:
        tables = [
            measure("local pool", jobs, backend, args.batch_size, args.jobs, None, Path(tmp)),
            measure("dask LocalCluster", jobs, backend, args.batch_size, args.jobs, "local", Path(tmp)),
        ]
    assert tables[0] == tables[1], "the two executors gave different tables"
    print("tables identical")


if __name__ == "__main__":
    main()
