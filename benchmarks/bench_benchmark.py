"""The benchmarker's own overhead (everything but the mapper): job enumeration, cache keys, SQLite reads and
writes, batching and worker processes, output files.

It runs the AlexNet_Simba and VGG_Simba square benchmarks (7 variants x every square tile) with a backend
whose evaluator does no work (it returns a constant record), so the times are what the infrastructure adds
to whatever the mapper costs. Prints one line per phase.

    PYTHONPATH=src python benchmarks/bench_benchmark.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepfrack.benchmark.cache import ResultCache, content_hash, job_key
from deepfrack.benchmark.executors import LocalExecutor, SerialExecutor
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import Job, enumerate_jobs
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.runner import run_benchmark
from deepfrack.cost.table import CostRecord
from deepfrack.residency import VARIANTS, Variant
from deepfrack.workload.loaders import load_problem_folder

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "reference" / "deepfrack-examples"


@dataclass(frozen=True)
class NullBackend:
    """Measures overhead only: a constant record per job (never a real backend)."""

    digest: str
    name: str = "null"
    batch_size: int | None = None

    def fingerprint(self, variant: Variant) -> str:
        return content_hash({"null": self.digest, "variant": variant.value})

    def evaluator(self) -> NullEvaluator:
        return NullEvaluator()


class NullEvaluator:
    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        rec = CostRecord(energy_pJ=1.0, cycles=1.0, macs=1, level_energy_pJ={"LMAC": 0.5, "DRAM": 0.5})
        return [Outcome.ok(rec) for _ in jobs]


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench(example: str, workload: str, workers: int) -> None:
    inp_dir = EXAMPLES / example / "inputs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = load_problem_folder(inp_dir / workload)
    inputs = load_inputs(
        inp_dir / "simba_like" / "arch" / "simba_like.yaml",
        constraints=inp_dir / "simba_like" / "constraints",
    )
    backend = NullBackend(inputs.arch.digest)
    jobs, t_enum = _time(lambda: enumerate_jobs(net, "square"))
    fps = {v: backend.fingerprint(v) for v in VARIANTS}
    _, t_keys = _time(lambda: [job_key(j, fps[j.variant]) for j in jobs])
    print(f"{example}: {len(jobs)} entries")
    print(f"  enumerate jobs            {t_enum * 1e3:8.1f} ms")
    print(f"  cache keys (sha256)       {t_keys * 1e3:8.1f} ms  ({t_keys / len(jobs) * 1e6:.1f} us/entry)")
    with tempfile.TemporaryDirectory() as tmp:
        for label, executor, cache_name in (
            ("serial, cold cache", SerialExecutor(), "a.sqlite"),
            (f"{workers} workers, cold cache", LocalExecutor(workers), "b.sqlite"),
            (f"{workers} workers, warm cache", LocalExecutor(workers), "b.sqlite"),
        ):
            with ResultCache(Path(tmp) / cache_name) as cache:
                start = time.perf_counter()
                res = run_benchmark(jobs, backend, cache, executor, out_dir=Path(tmp) / "out")
                t = time.perf_counter() - start
            s = res.summary
            print(
                f"  run + outputs, {label:22s}{t * 1e3:8.1f} ms  "
                f"(computed {s.computed}, from cache {s.from_cache})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    bench("AlexNet_Simba", "AlexNet", args.jobs)
    bench("VGG_Simba", "VGG02", args.jobs)


if __name__ == "__main__":
    main()
