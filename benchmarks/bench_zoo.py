"""The zoo on a bundled accelerator, layer by layer: what each network costs when every layer runs alone
(the SLC variant on its whole output plane, the baseline a fused schedule is compared with), and how
long the built-in mapper takes to cost it.

For each network: layers, MACs, weights, the time to build (or import) it, then the layer-by-layer
energy and cycles from the built-in mapper and 45 nm energy table, with the mapper's CPU seconds
(serial, one process; no result cache and a fresh mapper per network, so every entry is computed).

    PYTHONPATH=src python benchmarks/bench_zoo.py [--arch simba-like] [--networks resnet18,googlenet]
"""

from __future__ import annotations

import argparse
import platform
import time

from deepfrack.benchmark.builtin import make_builtin_backend
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import enumerate_jobs
from deepfrack.residency import Variant
from deepfrack.workload.zoo import ZOO, zoo_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="simba-like", help="a bundled accelerator or an architecture file")
    ap.add_argument("--networks", default=",".join(ZOO), help="comma-separated zoo names")
    args = ap.parse_args()
    inputs = load_inputs(args.arch, variants=(Variant.SLC,))
    print(
        f"# {platform.machine()}, Python {platform.python_version()}; arch {args.arch}, built-in 45 nm table"
    )
    print(
        f"{'network':<13} {'layers':>6} {'GMACs':>7} {'Mweights':>8} {'build ms':>8} "
        f"{'LbL uJ':>10} {'LbL Mcycles':>11} {'mapper CPU s':>12} {'infeasible':>10}"
    )
    for name in args.networks.split(","):
        t = time.process_time()
        net = zoo_network(name)
        build = time.process_time() - t
        needed = [(i, Variant.SLC, layer.Q, layer.P) for i, layer in enumerate(net.layers)]
        jobs = enumerate_jobs(net, "needed", (Variant.SLC,), needed)
        t = time.process_time()
        evaluator = make_builtin_backend(inputs).evaluator()  # a fresh one: no memo from other networks
        outcomes = evaluator.evaluate(jobs)
        cpu = time.process_time() - t
        ok = [o.record for o in outcomes if o.record is not None]
        energy = sum(r.energy_pJ for r in ok) * 1e-6
        cycles = sum(r.cycles or 0 for r in ok) * 1e-6
        print(
            f"{name:<13} {len(net):>6} {net.macs / 1e9:>7.3f} {net.weights / 1e6:>8.2f} {build * 1e3:>8.1f} "
            f"{energy:>10.1f} {cycles:>11.2f} {cpu:>12.1f} {len(outcomes) - len(ok):>10}"
        )


if __name__ == "__main__":
    main()
