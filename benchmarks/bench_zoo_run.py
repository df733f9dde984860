"""`deepfrack run` on networks of the zoo (on demand, the default): how long it takes, where the time goes,
and what the fused schedule saves against layer by layer (prints figures; not a test).

    PYTHONPATH=src python benchmarks/bench_zoo_run.py [--networks resnet18,resnet50,mobilenet_v2]
        [--arch simba-like] [--jobs 2] [--cache FILE] [--keep DIR] [--json FILE]

Each network runs in a separate process with a fresh result cache (``--cache FILE``: one shared cache
instead, e.g. to fill in the savings table faster; then the timings are not those of a fresh run), as
``deepfrack.api.run(workload=NAME, arch=ARCH, jobs=JOBS, out=DIR)`` does for ``deepfrack run -w NAME -a
ARCH -o DIR``. Per run:

* wall and CPU seconds (the run's process and its worker processes), split into the benchmark (the
  search waiting for entries; the workers' CPU), the search (the on-demand search's own CPU, without the
  entry requests) and the rest (loading the inputs, writing tables, schedule, log and pictures); after
  the bar, CPU seconds: the workers (the mapper), the run's own process, and of that the search, the
  entry requests (sending jobs, reading results and the cache), writing tables/ and writing the report
  (pictures, report.html, report.md, CSVs);
* entries asked for and computed, tiles mapped (distinct layer x tile shape: one mapper search costs
  every variant of a tile), rounds of requests;
* fused energy and cycles against layer by layer (the exact receptive-field rule, energy objective);
* the stacks: how many fuse layers, the deepest, how the joins (add, concat) run — with every operand
  on chip (a whole residual block or inception module in one stack), with some operand read from
  DRAM, first in a stack, or alone — and the weights cached (words, and share of the network's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ZOO_DEFAULT = "resnet18,resnet50,mobilenet_v2"


def one(name: str, arch: str, jobs: int, cache: Path, out: Path) -> dict[str, Any]:
    """Run one network in this process, with timers around the search and its entry requests."""
    from deepfrack import api
    from deepfrack.search import source as source_module
    from deepfrack.stats import write as stats_write

    clock: dict[str, float] = {}

    def timed(owner: Any, name: str, key: str) -> None:
        plain = getattr(owner, name)

        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            c, w = time.process_time(), time.perf_counter()
            try:
                return plain(*args, **kwargs)
            finally:
                clock[f"{key}_cpu"] = clock.get(f"{key}_cpu", 0.0) + time.process_time() - c
                clock[f"{key}_wall"] = clock.get(f"{key}_wall", 0.0) + time.perf_counter() - w

        setattr(owner, name, wrapper)

    timed(source_module.BenchmarkSource, "cost", "cost")  # the search waiting for entries
    timed(api, "optimize_on_demand", "search")
    timed(api, "write_table_files", "tables")  # tables/: <VARIANT>.json, costs.csv, mappings.jsonl
    timed(stats_write, "write_stats_into", "report")  # pictures, report.html, report.md, CSVs
    c0, w0 = time.process_time(), time.perf_counter()
    result = api.run(workload=name, arch=arch, jobs=jobs, cache=cache, out=out)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = result.search
    sched = result.schedule
    return {
        "network": name,
        "layers": len(result.network),
        "wall": wall,
        "cpu": cpu + workers.ru_utime + workers.ru_stime,
        "workers_cpu": workers.ru_utime + workers.ru_stime,
        "benchmark_wall": clock.get("cost_wall", 0.0),
        "search_cpu": clock["search_cpu"] - clock.get("cost_cpu", 0.0),
        "search_wall": clock["search_wall"] - clock.get("cost_wall", 0.0),
        "rest_wall": wall - clock["search_wall"],
        "parent_cpu": cpu,
        "entries_cpu": clock.get("cost_cpu", 0.0),
        "tables_cpu": clock.get("tables_cpu", 0.0),
        "report_cpu": clock.get("report_cpu", 0.0),
        "entries": stats.entries_requested,
        "computed": stats.entries_computed,
        "tiles": len({(l, h, w) for l, _, h, w in (*stats.table.records, *stats.table.infeasible)}),
        "rounds": stats.rounds,
        "energy_uJ": sched.total.energy_pJ / 1e6,
        "lbl_energy_uJ": sched.layer_by_layer.energy_pJ / 1e6,
        "cycles": sched.total.cycles,
        "lbl_cycles": sched.layer_by_layer.cycles,
        **describe(result.network, sched),
    }


def describe(network, sched) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What the stacks look like: fused stacks and layers, the deepest, how the joins run, the cached
    weights."""
    joins = {"on chip": 0, "DRAM operand": 0, "first": 0, "alone": 0}
    fused = [s for s in sched.stacks if s.depth > 1]
    for s in sched.stacks:
        for sl in s.layers:
            if network.layers[sl.layer].kind not in ("add", "concat"):
                continue
            if s.depth == 1:
                joins["alone"] += 1
            elif sl.layer == s.first:
                joins["first"] += 1
            else:
                joins["on chip" if sl.dram_variant is None else "DRAM operand"] += 1
    cached = sum(network.layers[l].weights for s in sched.stacks for l in s.cached_layers)
    return {
        "stacks": len(sched.stacks),
        "fused_stacks": len(fused),
        "fused_layers": sum(s.depth for s in fused),
        "deepest": max((s.depth for s in sched.stacks), default=1),
        "joins": joins,
        "cached_words": cached,
        "cached_share": cached / max(1, network.weights),
        "recompute_pct": 100.0 * (sched.total.macs / max(1, network.macs) - 1.0),
        "schedule": [(s.first, s.last, list(s.tile_shape), list(s.cached_layers)) for s in sched.stacks],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", default=ZOO_DEFAULT, help="comma-separated zoo names")
    ap.add_argument("--arch", default="simba-like")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="one shared result cache (default: fresh)")
    ap.add_argument("--keep", type=Path, default=None, help="keep each run's folder under DIR")
    ap.add_argument("--json", type=Path, default=None, help="append each run's figures to FILE")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child process
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.arch, args.jobs, args.cache, args.out)))
        return
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"arch {args.arch}, {args.jobs} workers, load average {os.getloadavg()[0]:.1f}"
    )
    head = (
        f"{'network':<13} {'wall s':>7} {'CPU s':>7} {'bench s':>7} {'search s':>8} {'rest s':>6} "
        f"{'| workers':>9} {'parent':>7} {'search':>7} {'entries':>7} {'tables':>7} {'report':>7} | "
        f"{'entries':>8} {'computed':>8} {'tiles':>6} {'rounds':>6}"
    )
    print(head)
    runs = []
    for name in args.networks.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"bench_zoo_run_{name}_", dir=args.keep))
        cache = args.cache if args.cache is not None else work / "cache.sqlite"
        cmd = [sys.executable, __file__, "--one", name, "--arch", args.arch, "--jobs", str(args.jobs)]
        cmd += ["--cache", str(cache), "--out", str(work / "out")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(r)
        if args.json is not None:
            with args.json.open("a") as f:
                f.write(json.dumps(r) + "\n")
        print(
            f"{name:<13} {r['wall']:7.1f} {r['cpu']:7.1f} {r['benchmark_wall']:7.1f} {r['search_cpu']:8.1f} "
            f"{r['rest_wall']:6.1f} | {r['workers_cpu']:7.1f} {r['parent_cpu']:7.1f} {r['search_cpu']:7.1f} "
            f"{r['entries_cpu']:7.1f} {r['tables_cpu']:7.1f} {r['report_cpu']:7.1f} | "
            f"{r['entries']:8d} {r['computed']:8d} {r['tiles']:6d} {r['rounds']:6d}",
            flush=True,
        )
    print()
    print(
        f"{'network':<13} {'fused uJ':>10} {'LbL uJ':>10} {'energy':>7} {'fused Mcyc':>10} {'LbL Mcyc':>9} "
        f"{'cycles':>7} {'stacks':>6} {'fused':>9} {'deepest':>7} {'joins on chip/DRAM/first/alone':>31} "
        f"{'cached':>14}"
    )
    for r in runs:
        j = r["joins"]
        joins = f"{j['on chip']}/{j['DRAM operand']}/{j['first']}/{j['alone']}"
        print(
            f"{r['network']:<13} {r['energy_uJ']:10.1f} {r['lbl_energy_uJ']:10.1f} "
            f"{100 * (r['energy_uJ'] / r['lbl_energy_uJ'] - 1):+6.1f}% {r['cycles'] / 1e6:10.2f} "
            f"{r['lbl_cycles'] / 1e6:9.2f} {100 * (r['cycles'] / r['lbl_cycles'] - 1):+6.1f}% "
            f"{r['stacks']:6d} {r['fused_stacks']:3d} ({r['fused_layers']:3d}) {r['deepest']:7d} {joins:>31} "
            f"{r['cached_words'] / 1e6:6.2f} M ({100 * r['cached_share']:3.0f}%)"
        )


if __name__ == "__main__":
    main()
