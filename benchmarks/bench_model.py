"""Mapping evaluations per second of deepfrack's Timeloop-equivalent model.

One layer (AlexNet conv2: C=96 M=256 R=S=5 P=Q=27) on the reference Simba architecture with its
Accelergy ERT; 10,000 random candidate mappings, evaluated as one batch by
``LayerModel.evaluate_batch``. Two candidate spaces:

* ``mapspace``: what a mapper searches, the reference Simba mapspace and architecture constraints
  (examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like/constraints: C=8 across
  the accumulators, M=8 across the PE weight buffers, R and S at the PE weight buffer, P and Q at
  the weight registers or above, M at the accumulator, nothing at the input buffer); random splits
  of the remaining factors, random loop orders;
* ``free``: every prime factor of every dimension at a random level, temporal or (where the
  constraints allow a fan-out) spatial: mostly invalid mappings, and the ones that exercise the
  exact link-transfer accounting.

Prints the best and median of several runs in CPU time of this process (one core: the figure to
compare with the 100,000/s target; the wall clock also counts time other processes take from a
shared machine) and in wall-clock time, and the machine; then the CPU time of one call on the
first 1 and 32 candidates (the fixed cost per call, which dominates small batches).

    PYTHONPATH=src python benchmarks/bench_model.py [--n 10000] [--repeat 7] [--seed 0]
        [--space mapspace|free|both]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepfrack.arch import load_architecture
from deepfrack.arch.ert import load_ert
from deepfrack.cost.mapping import MappingBatch
from deepfrack.cost.mapspace import prime_factors
from deepfrack.cost.model import TIMELOOP_2023, LayerModel
from deepfrack.dims import DIMS
from deepfrack.workload.layer import Layer

EX = ROOT / "examples/reference/deepfrack-examples"
ARCH = EX / "AlexNet_Simba/inputs/simba_like/arch"
ERT = EX / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.ERT.yaml"
LAYER = Layer("conv2", C=96, M=256, R=5, S=5, P=27, Q=27)
#: Simba: which dims each level may spread spatially (its architecture constraints)
SPATIAL = {"GlobalBuffer": "MC", "PEInputBuffer": "M", "PEAccuBuffer": "C"}
KEEP = {  # SLC keep sets (Weights, Inputs, Outputs)
    "DRAM": (1, 1, 1),
    "GlobalBuffer": (0, 1, 1),
    "PEInputBuffer": (0, 1, 0),
    "PEWeightBuffer": (1, 0, 0),
    "PEAccuBuffer": (0, 0, 1),
    "PEWeightRegs": (1, 0, 0),
}


def random_batch(arch, layer: Layer, n: int, rng: np.random.Generator) -> MappingBatch:
    """n random mappings of ``layer`` (factor products always equal the layer's dimensions)."""
    names = arch.level_names
    L = len(names)
    bounds = (layer.C, layer.M, layer.R, layer.S, layer.N, layer.P, layer.Q)
    tf = np.ones((n, L, 7), np.int64)
    sf = np.ones((n, L, 7), np.int64)
    for d, bound in enumerate(bounds):
        allowed_sp = [i for i, nm in enumerate(names) if DIMS[d] in SPATIAL.get(nm, "")]
        for p in prime_factors(bound):
            lvl = rng.integers(0, L, n)
            spatial = np.zeros(n, bool)
            if allowed_sp:
                spatial = rng.random(n) < 0.3
                lvl = np.where(spatial, rng.choice(allowed_sp, n), lvl)
            np.multiply.at(tf, (np.arange(n), lvl, d), np.where(spatial, 1, p))
            np.multiply.at(sf, (np.arange(n), lvl, d), np.where(spatial, p, 1))
    to = np.argsort(rng.random((n, L, 7)), axis=2)
    so = np.argsort(rng.random((n, L, 7)), axis=2)
    split = rng.integers(0, 8, (n, L))
    keep = np.broadcast_to(np.array([KEEP[nm] for nm in names], bool), (n, L, 3)).copy()
    return MappingBatch(tf, to, sf, so, split, keep, names)


#: the Simba mapspace (see the module docstring): per dimension, the (level, kind) slots the
#: remaining factors may go to; fixed spatial factors first
FIXED_SPATIAL = {("PEAccuBuffer", "C"): 8, ("PEInputBuffer", "M"): 8}
SLOTS = {
    "C": [("PEWeightBuffer", "T"), ("GlobalBuffer", "T"), ("GlobalBuffer", "S"), ("DRAM", "T")],
    "M": [("PEAccuBuffer", "T"), ("GlobalBuffer", "T"), ("GlobalBuffer", "S"), ("DRAM", "T")],
    "R": [("PEWeightBuffer", "T")],
    "S": [("PEWeightBuffer", "T")],
    "N": [("DRAM", "T")],
    "P": [("PEWeightRegs", "T"), ("GlobalBuffer", "T"), ("DRAM", "T")],
    "Q": [("PEWeightRegs", "T"), ("GlobalBuffer", "T"), ("DRAM", "T")],
}


def mapspace_batch(arch, layer: Layer, n: int, rng: np.random.Generator) -> MappingBatch:
    """n random mappings of ``layer`` inside the Simba mapspace constraints."""
    names = arch.level_names
    L = len(names)
    idx = {nm: i for i, nm in enumerate(names)}
    bounds = dict(zip(DIMS, (layer.C, layer.M, layer.R, layer.S, layer.N, layer.P, layer.Q)))
    tf = np.ones((n, L, 7), np.int64)
    sf = np.ones((n, L, 7), np.int64)
    rows = np.arange(n)
    for d, dim in enumerate(DIMS):
        rest = bounds[dim]
        for (lv, dd), f in FIXED_SPATIAL.items():
            if dd == dim:
                f = min(f, rest)  # Timeloop lowers a constraint above the dimension
                sf[:, idx[lv], d] = f
                rest //= f
        slots = SLOTS[dim]
        for p in prime_factors(rest):
            pick = rng.integers(0, len(slots), n)
            for j, (lv, kind) in enumerate(slots):
                sel = pick == j
                target = sf if kind == "S" else tf
                target[rows[sel], idx[lv], d] *= p
    to = np.argsort(rng.random((n, L, 7)), axis=2)
    so = np.argsort(rng.random((n, L, 7)), axis=2)
    split = rng.integers(0, 8, (n, L))
    keep = np.broadcast_to(np.array([KEEP[nm] for nm in names], bool), (n, L, 3)).copy()
    return MappingBatch(tf, to, sf, so, split, keep, names)


def run(ev, batch, repeat: int, label: str) -> None:
    from deepfrack.cost.analytic import analyze

    res = ev.evaluate_batch(batch)  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = ev.evaluate_batch(batch)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    n = len(batch)
    linked = analyze(batch, ev.fanouts, ev.layer).link_flag.mean()
    for name, ts in (("CPU time", cpu), ("wall clock", wall)):
        best, med = min(ts), statistics.median(ts)
        print(
            f"[{label}] {n} mappings, {name}: best {best * 1e3:.1f} ms, median {med * 1e3:.1f} ms -> "
            f"{n / best:,.0f} (best) / {n / med:,.0f} (median) mapping evaluations per second"
        )
    ok = res.valid
    line = f"[{label}] valid {ok.mean() * 100:.1f} %, exact link-transfer accounting for {linked * 100:.2f} %"
    if ok.any():
        i = int(np.argmin(np.where(ok, res.energy_pJ, np.inf)))
        line += f"; best valid: {res.energy_pJ[i] / 1e6:.2f} uJ, {res.cycles[i]} cycles"
    print(line)
    # the fixed cost of a call, which dominates small batches (the mapper re-scores a shortlist)
    small = []
    for k in (1, 32):
        sub = batch.take(np.arange(min(k, n)))
        ev.evaluate_batch(sub)
        ts = []
        for _ in range(100):
            c0 = time.process_time()
            ev.evaluate_batch(sub)
            ts.append(time.process_time() - c0)
        small.append(f"{len(sub)} mapping{'s' if len(sub) > 1 else ''} {statistics.median(ts) * 1e3:.2f} ms")
    print(f"[{label}] one call, CPU time (median of 100): " + ", ".join(small))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--space", choices=["mapspace", "free", "both"], default="both")
    args = ap.parse_args()

    arch = load_architecture(ARCH)
    ert = load_ert(ERT, arch)
    ev = LayerModel(arch, ert, LAYER, TIMELOOP_2023)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"layer {LAYER.name} (C=96 M=256 R=S=5 P=Q=27) on Simba ({len(arch.levels)} storage levels), "
        "one process"
    )
    rng = np.random.default_rng(args.seed)
    if args.space in ("mapspace", "both"):
        run(ev, mapspace_batch(arch, LAYER, args.n, rng), args.repeat, "mapspace")
    if args.space in ("free", "both"):
        run(ev, random_batch(arch, LAYER, args.n, rng), args.repeat, "free")


if __name__ == "__main__":
    main()
