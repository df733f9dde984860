"""Wall time and monotonicity of the built-in mapper.

For AlexNet_Simba and VGG_Simba (the original's layer files, Simba-like architecture, the seven
constraint files, the [delay, energy] objective of their mapper.yaml, Timeloop's ERT of the
AlexNet_Simba run): every variant x every square tile, mapped by N local worker processes, as
``deepfrack benchmark --shapes square`` would. Prints the wall time, the CPU time per entry, and
the count of non-monotone pairs: a tile one smaller (same layer, same variant) whose energy is
higher. For comparison, the same count in the original's JSON tables (Timeloop's random search).

Work is split into chunks of consecutive tiles of one layer, largest layers first; each worker keeps
one LayerMapper per layer, so a layer's anchor searches are repeated at most once per worker (the
results do not depend on the split: warm starts come from a fixed ladder of tile shapes).

Usage: PYTHONPATH=src python benchmarks/bench_mapper.py [--jobs 2] [--examples AlexNet_Simba VGG_Simba]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import yaml

from deepfrack.arch import load_architecture, load_ert, load_variant_folder
from deepfrack.cost.mapper import LayerMapper, MapperOptions
from deepfrack.objective import Objective
from deepfrack.workload.loaders import load_problem_folder

EX = ROOT / "examples/reference/deepfrack-examples"
ERT = EX / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.ERT.yaml"
PROBLEMS = {"AlexNet_Simba": "AlexNet", "VGG_Simba": "VGG02"}
CHUNK = 32

_STATE: dict = {}


def _setup(example: str) -> tuple:
    got = _STATE.get(example)
    if got is None:
        base = EX / example / "inputs"
        arch = load_architecture(base / "simba_like/arch")
        ert = load_ert(ERT, arch)
        variants = load_variant_folder(base / "simba_like/constraints", arch)
        doc = yaml.safe_load((base / "simba_like/mapper/mapper.yaml").read_text())["mapper"]
        net = load_problem_folder(base / PROBLEMS[example])
        got = _STATE[example] = (arch, ert, variants, Objective.parse(doc["optimization-metrics"]), net, {})
    return got


def _work(task: tuple) -> tuple[str, int, list[tuple[int, str, float, float]], float]:
    example, li, tiles, seed, metrics = task
    t0 = time.process_time()
    arch, ert, variants, objective, net, mappers = _setup(example)
    if metrics:
        objective = Objective.parse(metrics)
    lm = mappers.get(li)
    if lm is None:
        lm = mappers[li] = LayerMapper(
            arch, ert, net.layers[li], variants, MapperOptions(objective=objective, seed=seed)
        )
    out = []
    for t in tiles:
        for v, r in lm.map(t, t).items():
            out.append((t, v, r.energy_pJ if r.ok else float("nan"), r.cycles if r.ok else float("nan")))
    return example, li, out, time.process_time() - t0


def non_monotone(table: dict[tuple[int, str], dict[int, float]], margin: float = 0.0) -> tuple[int, int]:
    """(pairs where the smaller tile costs more than (1 + margin) x the larger one, pairs compared)."""
    bad = total = 0
    for series in table.values():
        for t in sorted(series):
            if t + 1 in series:
                total += 1
                bad += series[t] > series[t + 1] * (1 + margin)
    return bad, total


def _ndiv(n: int) -> int:
    return sum(1 for d in range(1, n + 1) if n % d == 0)


def fewer_divisors_share(table: dict[tuple[int, str], dict[int, float]]) -> tuple[int, int]:
    """(non-monotone pairs whose smaller tile has fewer divisors than the larger one, all
    non-monotone pairs): perfect factorization makes tiles like 223 (prime) map worse than 224."""
    n = k = 0
    for series in table.values():
        for t in sorted(series):
            if t + 1 in series and series[t] > series[t + 1]:
                n += 1
                k += _ndiv(t) < _ndiv(t + 1)
    return k, n


def original_tables(example: str) -> dict[tuple[int, str], dict[int, float]]:
    out: dict[tuple[int, str], dict[int, float]] = {}
    for f in sorted((EX / example / "cost-tables").glob("*.json")):
        if "_" in f.stem:
            continue
        for layer, row in json.loads(f.read_text()).items():
            out[(int(layer) - 1, f.stem)] = {int(t): float(e) for t, e in row.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples", nargs="+", default=["AlexNet_Simba", "VGG_Simba"])
    ap.add_argument(
        "--objective", nargs="+", default=None, help="metrics instead of mapper.yaml's (e.g. energy)"
    )
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs visible; {args.jobs} worker processes")
    for example in args.examples:
        net = _setup(example)[4]
        tasks = []
        for li, layer in enumerate(net.layers):
            tiles = list(range(layer.P, 0, -1))
            for i in range(0, len(tiles), CHUNK):
                tasks.append((example, li, tiles[i : i + CHUNK], args.seed, tuple(args.objective or ())))
        tasks.sort(key=lambda t: -sum(x * x for x in t[2]) * net.layers[t[1]].C)  # big work first
        t0 = time.perf_counter()
        table: dict[tuple[int, str], dict[int, float]] = {}
        cpu = 0.0
        n = 0
        with ProcessPoolExecutor(args.jobs) as ex:
            for _, li, rows, c in ex.map(_work, tasks):
                cpu += c
                for t, v, e, _ in rows:
                    table.setdefault((li, v), {})[t] = e
                    n += 1
        wall = time.perf_counter() - t0
        bad, total = non_monotone(table)
        obad, ototal = non_monotone(original_tables(example))
        bad1, _ = non_monotone(table, 0.01)
        obad1, _ = non_monotone(original_tables(example), 0.01)
        print(
            f"{example}: {n} entries (7 variants x every square tile) in {wall:.1f} s wall, {cpu:.1f} s CPU "
            f"({cpu / n * 1e3:.1f} ms CPU per entry) on {args.jobs} processes"
        )
        print(
            f"  non-monotone adjacent pairs (energy rises as the tile shrinks): {bad} of {total}; "
            f"the original's tables (Timeloop): {obad} of {ototal}"
        )
        print(f"  ... by more than 1%: {bad1} (original: {obad1})")
        k, nn = fewer_divisors_share(table)
        print(
            f"  of ours, {k} of {nn} have a smaller tile with fewer divisors (fewer factorizations) "
            "than the larger one"
        )


if __name__ == "__main__":
    main()
