"""How long the bundled design-space study takes (docs/designers.md), with the local process pool and
with a Dask LocalCluster, where the time goes, and how many entries the runs share (prints figures; not
a test).

    PYTHONPATH=src python benchmarks/bench_sweep.py [--networks alexnet,vgg16,resnet18]
        [--depths 512,...,32768] [--drams LPDDR4,HBM2,GDDR5,DDR4] [--executors pool,dask] [--jobs 2]
        [--out DIR] [--work DIR]

Each executor runs the whole sweep (``deepfrack.api.sweep``) in this process with a fresh result cache,
through a backend that wraps the built-in one (same results, same cache keys) and records, in every
worker process, the CPU time spent inside the mapper (``evaluate``) and the process's CPU time in all.
Printed per executor: wall time; CPU time of the client (the search, the cache, scheduling and
serialization of batches) and of the workers, split into mapper and the rest (start-up, imports,
unpickling, Dask's own threads); the share of all CPU time outside the mapper; the share of the cores'
wall time not spent mapping; the cache figures of the sweep. With ``--out``, the sweeps' files are kept
in DIR/<executor> and the two sweep.csv files are compared (they must agree but for run_s).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "src"), str(HERE)]

from deepfrack import api
from deepfrack.benchmark.builtin import BuiltinBackend, make_builtin_backend
from deepfrack.benchmark.inputs import BenchmarkInputs
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.residency import Variant

DEPTHS = "512,1024,2048,4096,8192,16384,32768"  # x 32 words per row: 16 K to 1 M words
DRAMS = "LPDDR4,HBM2,GDDR5,DDR4"
TIMING_DIR = "BENCH_SWEEP_TIMING_DIR"


@dataclasses.dataclass(frozen=True)
class TimedBackend:
    """The built-in backend, with each worker's mapper CPU time written to ``<folder>/<pid>`` after every
    batch (``mapper_s process_s``). Same fingerprint, warm starts and bounds as the built-in one."""

    inner: BuiltinBackend
    folder: str
    name: str = "builtin"
    batch_size: int | None = 224

    def fingerprint(self, variant: Variant) -> str:
        return self.inner.fingerprint(variant)

    def warm_plan(self, job: Job):
        return self.inner.warm_plan(job)

    def warm_key(self, group: str, index: int) -> str:
        return self.inner.warm_key(group, index)

    def entry_bounds(self):
        return self.inner.entry_bounds()

    def evaluator(self) -> TimedEvaluator:
        return TimedEvaluator(self.inner.evaluator(), Path(self.folder) / str(os.getpid()))


#: mapper CPU seconds of this process, over all its evaluators (a Dask worker builds one per run)
_MAPPER_S = [0.0]


class TimedEvaluator:
    def __init__(self, inner, log: Path):
        self.inner = inner
        self.log = log

    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        t0 = time.process_time()
        try:
            return self.inner.evaluate(jobs)
        finally:
            _MAPPER_S[0] += time.process_time() - t0
            self.log.write_text(f"{_MAPPER_S[0]} {time.process_time()}\n")


def make_timed(inputs: BenchmarkInputs) -> TimedBackend:
    """Backend factory (``--backend bench_sweep:make_timed``): the folder comes from the environment."""
    return TimedBackend(make_builtin_backend(inputs), os.environ[TIMING_DIR])


def worker_times(folder: Path) -> tuple[float, float, int]:
    """(mapper CPU s, process CPU s, processes) summed over the workers' last records."""
    mapper = process = 0.0
    files = list(folder.iterdir())
    for f in files:
        m, p = map(float, f.read_text().split())
        mapper += m
        process += p
    return mapper, process, len(files)


def sweep(executor: str, args: argparse.Namespace, work: Path) -> tuple[api.SweepResult, dict]:
    timing = work / f"timing-{executor}"
    timing.mkdir()
    os.environ[TIMING_DIR] = str(timing)
    vary = [f"GlobalBuffer.memory_depth={args.depths}", f"DRAM.type={args.drams}"]
    out = Path(args.out) / executor if args.out else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = api.sweep(
        workloads=args.networks.split(","),
        arch="simba-like",
        vary=vary,
        jobs=args.jobs,
        scheduler="local" if executor == "dask" else None,
        backend="bench_sweep:make_timed",
        cache=work / f"cache-{executor}.sqlite",
        on_run=lambda done, total, point, net: print(
            f"  {executor} {done + 1}/{total} {point} {net}", flush=True
        ),
        out=out,
    )
    wall, client = time.perf_counter() - t0, time.process_time() - cpu0
    mapper, workers, procs = worker_times(timing)
    return result, {"wall": wall, "client": client, "mapper": mapper, "workers": workers, "procs": procs}


def csv_without_run_s(path: Path) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    for r in rows:
        r.pop("run_s")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", default="alexnet,vgg16,resnet18")
    ap.add_argument("--depths", default=DEPTHS, help="GlobalBuffer.memory_depth values (rows of 32 words)")
    ap.add_argument("--drams", default=DRAMS)
    ap.add_argument("--executors", default="pool,dask")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="keep each sweep's files in OUT/<executor>")
    ap.add_argument("--work", help="keep the result caches (cache-<executor>.sqlite) in WORK (a new folder)")
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(HERE), os.environ.get("PYTHONPATH", "")]
    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{machine}; load {os.getloadavg()}")
    if args.work:
        Path(args.work).mkdir(parents=True)  # a new folder: the caches start empty
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for executor in args.executors.split(","):
            result, t = sweep(executor, args, Path(args.work or tmp))
            total = t["client"] + t["workers"]
            c = result.cache
            outside = 100 * (1 - t["mapper"] / total)
            idle = 100 * (1 - t["mapper"] / (args.jobs * t["wall"]))
            print(f"{executor}: {len(result.rows)} runs, wall {t['wall']:.0f} s")
            print(f"  CPU: client {t['client']:.0f} s (search, cache, scheduling, serialization)")
            w, m = t["workers"], t["mapper"]
            print(f"  CPU: {t['procs']} worker processes {w:.0f} s, of which mapper {m:.0f} s")
            print(f"  outside the mapper: {outside:.1f}% of the CPU; cores not mapping: {idle:.1f}% of wall")
            print(f"  cache: {c.asked} keys asked over the runs, {c.distinct} distinct, {c.computed} mapped,")
            print(f"  {c.shared} asked for by more than one run")
            print(f"  load after: {os.getloadavg()}")
    if args.out and {"pool", "dask"} <= set(args.executors.split(",")):
        same = csv_without_run_s(Path(args.out) / "pool/sweep.csv") == csv_without_run_s(
            Path(args.out) / "dask/sweep.csv"
        )
        print(f"sweep.csv, pool vs dask (without run_s): {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
