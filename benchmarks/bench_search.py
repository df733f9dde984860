"""How fast the search is (prints figures; not a test).

    PYTHONPATH=src python benchmarks/bench_search.py [--quick]

1. The original DeepFrack's VGG_Simba tables, legacy rule, unlimited capacity (the original took
   1 min 40 s; target <= 1 s on 2 cores).
2. How the time grows with network depth: a synthetic chain of up to 50 3x3 convolutions (64
   channels, 32 x 28 planes, padding 1), exact rule, synthetic tables with every shape, with a
   Simba-like capacity (GlobalBuffer 65,536 words, PEWeightBuffer 524,288), with and without
   --max-stack-depth.
3. The exact rule on a realistic network: examples/networks/vgg16.yaml (padding and pooling),
   synthetic tables holding every shape the search can ask for (``required_shapes``).

Times are the best of a few runs of ``optimize`` alone (the tables are built beforehand and not
timed, except where said).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the synthetic tables live with the tests

from tests.synthetic import synthetic_table

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.search import optimize
from deepfrack.search.required import required_shapes
from deepfrack.workload.layer import Layer, Network
from deepfrack.workload.loaders import load_workload

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "reference" / "deepfrack-examples"
SIMBA = CapacitySpec(
    home={"Weights": "PEWeightBuffer", "Inputs": "GlobalBuffer", "Outputs": "GlobalBuffer"},
    words={"GlobalBuffer": 65536, "PEWeightBuffer": 524288},
)
#: a quarter of Simba's weight buffer: the caching knapsack binds
TIGHT = CapacitySpec(home=SIMBA.home, words={"GlobalBuffer": 65536, "PEWeightBuffer": 131072})
CAPACITIES = ((None, "unlimited"), (SIMBA, "Simba"), (TIGHT, "Simba/4W"))


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def vgg_simba(repeats: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = load_workload(EXAMPLES / "VGG_Simba/inputs/VGG02")
    t0 = time.perf_counter()
    table = read_tables(EXAMPLES / "VGG_Simba/cost-tables")
    t_read = time.perf_counter() - t0
    dt, (sched, stats) = best_time(lambda: optimize(net, table, capacity=None, rule="legacy"), repeats)
    print(
        f"1. VGG_Simba, legacy rule, unlimited capacity: {dt:.3f} s "
        f"(reading the tables: {t_read:.3f} s; original: 100 s)"
    )
    print(
        f"   {stats.stacks_considered} stacks, {stats.tilings_considered} tilings; "
        f"total {sched.total.energy_uJ:.2f} uJ vs logged 10409.65, "
        f"layer by layer {sched.layer_by_layer.energy_uJ:.2f}"
    )


def chain(n: int) -> Network:
    layers = [
        Layer(f"conv{i}", C=3 if i == 0 else 64, M=64, P=28, Q=32, R=3, S=3, pad=(1, 1, 1, 1))
        for i in range(n)
    ]
    return Network.chain(f"chain{n}", layers, input_plane=(32, 28))


def depth_scaling(sizes: list[int], repeats: int) -> None:
    print("2. synthetic chain (3x3 conv, 64 ch, 32x28 planes), exact rule, every shape in the tables")
    print(
        f"   {'layers':>6} {'depth':>6} {'capacity':>9} {'stacks':>7} "
        f"{'tilings':>9} {'knapsacks':>9} {'time s':>8}"
    )
    for n in sizes:
        net = chain(n)
        table = synthetic_table(net, seed=n)
        for depth in (None, 8):
            for cap, cap_name in CAPACITIES:
                dt, (_, st) = best_time(
                    lambda net=net, table=table, cap=cap, depth=depth: optimize(
                        net, table, capacity=cap, max_stack_depth=depth
                    ),
                    repeats,
                )
                print(
                    f"   {n:>6} {depth or '-'!s:>6} {cap_name:>9} {st.stacks_considered:>7} "
                    f"{st.tilings_considered:>9} {st.knapsacks_solved:>9} {dt:>8.3f}"
                )


def vgg16_exact(repeats: int) -> None:
    net = load_workload(ROOT / "examples/networks/vgg16.yaml")
    t0 = time.perf_counter()
    keys = required_shapes(net)  # every shape any stack and tiling may need (unlimited depth)
    table = synthetic_table(net, seed=16, keys=keys)
    print(
        f"3. vgg16.yaml ({len(net)} layers), exact rule: {len(table):,} table entries "
        f"(every shape the search can ask for; built in {time.perf_counter() - t0:.1f} s)"
    )
    for depth in (None, 6):
        for cap, cap_name in CAPACITIES:
            dt, (sched, st) = best_time(
                lambda cap=cap, depth=depth: optimize(net, table, capacity=cap, max_stack_depth=depth),
                repeats,
            )
            print(
                f"   max depth {depth or '-'!s:>2}, capacity {cap_name:>9}: {dt:.3f} s; "
                f"{st.stacks_considered} stacks, {st.tilings_considered:,} tilings, "
                f"{st.knapsacks_solved} knapsacks; "
                f"{len(sched.stacks)} stacks chosen, {100 * sched.reduction:.1f}% less energy"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = ap.parse_args()
    repeats = 1 if args.quick else 3
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    vgg_simba(repeats if args.quick else 5)
    depth_scaling([5, 10, 20] if args.quick else [5, 10, 20, 30, 40, 50], repeats)
    vgg16_exact(repeats)


if __name__ == "__main__":
    main()
