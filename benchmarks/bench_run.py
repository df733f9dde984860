"""How long `deepfrack run` takes, on demand (the default) and with --exhaustive, and how tight the entry
bounds are (prints figures; not a test).

    PYTHONPATH=src python benchmarks/bench_run.py [--networks alexnet,vgg16] [--modes on-demand,exhaustive]
                                                  [--jobs 2] [--keep DIR] [--before SRC] [--repeat N]
                                                  [--arch NAME]

``--before SRC`` adds a run of another checkout's code (its ``src`` folder), plain ``deepfrack run``: e.g.
the code before the on-demand search, which benchmarked every needed entry first. ``--repeat N`` runs the
modes in turn N times (A/B back to back, for a shared machine) and ends with each mode's medians.

Each run is the README's main command (the Simba-like architecture and the original's seven constraint
files, the built-in 45 nm energies) on examples/networks/<network>.yaml, or on a network of the zoo by
name (``--arch simba-like``: the bundled accelerator with its own constraints instead of the original's
files), as a separate process with a fresh result cache. Per run: wall time, CPU time (the run and its
worker processes), entries costed, mapper searches (distinct layer tiles), and the schedule's energy (the
modes must agree). Then the bound's tightness, bound / actual energy: over every recorded Timeloop run of
the reference data, and over the entries each run costed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the reference helpers live with the tests

from deepfrack.arch.residency import load_variant_folder
from deepfrack.benchmark.builtin import make_builtin_backend
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.cost.bounds import EntryBounds
from deepfrack.cost.model import TIMELOOP_2023
from deepfrack.files import read_json
from deepfrack.residency import VARIANTS
from deepfrack.workload.loaders import resolve_workload

ROOT = Path(__file__).resolve().parents[1]
SIMBA = ROOT / "examples/reference/deepfrack-examples/AlexNet_Simba/inputs/simba_like"


def workload(network: str) -> str:
    """The example network's file, or else a zoo network's name."""
    path = ROOT / f"examples/networks/{network}.yaml"
    return str(path) if path.exists() else network


def arch_args(arch: str | None) -> list[str]:
    if arch is None:  # the original's files
        return ["-a", str(SIMBA / "arch/simba_like.yaml"), "-c", str(SIMBA / "constraints")]
    return ["-a", arch]


def run(
    network: str, mode: str, jobs: int, keep: Path | None, src: Path = ROOT / "src", arch: str | None = None
) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench_run_{network}_", dir=keep))
    cmd = [
        sys.executable, "-m", "deepfrack", "run", "-w", workload(network), *arch_args(arch),
        "--jobs", str(jobs), "--cache", str(work / "cache.sqlite"), "-o", str(work / "out"), "--no-progress",
    ]  # fmt: skip
    if mode == "exhaustive":
        cmd.append("--exhaustive")
    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{network} {mode} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"(\d+) entries \((\d+) distinct\): (\d+) computed", done.stderr)
    ahead = re.search(r"(\d+) computed ahead of being asked for", done.stderr)
    table = read_tables(work / "out" / "tables" / "costs.csv")
    doc = read_json(work / "out" / "schedule.json")
    return {
        "network": network,
        "mode": mode,
        "wall": wall,
        "cpu": cpu,
        "entries": int(m.group(1)) if m else len(table),
        "computed": int(m.group(3)) if m else len(table),
        "ahead": int(ahead.group(1)) if ahead else 0,
        "tiles": len({(l, h, w) for l, _, h, w in table}),
        "energy": doc["total"]["energy_uJ"],
        "stacks": [
            (s["first"], s["last"], tuple(s["tile_shape"]), tuple(s["cached_layers"])) for s in doc["stacks"]
        ],
        "table": table,
    }


def tightness_reference() -> list[str]:
    from tests.cost.helpers import golden_arch, golden_ert, golden_lines, layer_of

    ex = ROOT / "examples/reference/deepfrack-examples"
    folders = {
        "AlexNet_Simba": ex / "AlexNet_Simba/inputs/simba_like/constraints",
        "AlexNet_SystolicSimba": ex / "GAN_SimbaSystolic/inputs/SystolicSimba/SIMBA/constraints",
    }
    out = []
    for example, folder in folders.items():
        arch = golden_arch(example)
        bounds = EntryBounds(arch, golden_ert(example), load_variant_folder(folder, arch), TIMELOOP_2023)
        re_, rc = [], []
        for d in golden_lines(example):
            layer = layer_of(d["problem"])
            e, c = bounds.entry(layer, d["dataflow"], layer.Q, layer.P)
            re_.append(e / d["timeloop"]["energy_pJ"])
            rc.append(c / d["timeloop"]["cycles"])
        out.append(_line(f"reference {example} ({len(re_)} Timeloop runs)", np.array(re_), np.array(rc)))
    return out


def tightness_run(result: dict, arch: str | None) -> str:
    files = (SIMBA / "arch/simba_like.yaml", SIMBA / "constraints") if arch is None else (arch, None)
    inputs = load_inputs(files[0], None, files[1], None, None, VARIANTS)
    bounds = make_builtin_backend(inputs).entry_bounds()
    net = resolve_workload(workload(result["network"]))
    re_, rc = [], []
    for (l, v, h, w), rec in result["table"].items():
        e, c = bounds.entry(net.layers[l], v, h, w)
        re_.append(e / rec.energy_pJ)
        rc.append(c / rec.cycles)
    return _line(
        f"{result['network']} {result['mode']} ({len(re_)} entries costed)", np.array(re_), np.array(rc)
    )


def _line(what: str, energy: np.ndarray, cycles: np.ndarray) -> str:
    return (
        f"  {what}: bound/actual energy median {np.median(energy):.3f}, 10th percentile "
        f"{np.quantile(energy, 0.1):.3f}; cycles median {np.median(cycles):.3f}, 10th percentile "
        f"{np.quantile(cycles, 0.1):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", default="alexnet,vgg16")
    ap.add_argument("--modes", default="on-demand,exhaustive")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="keep each run's folder under DIR")
    ap.add_argument("--before", type=Path, default=None, help="also run this src folder's `deepfrack run`")
    ap.add_argument("--repeat", type=int, default=1, help="run the modes in turn N times; print medians")
    ap.add_argument("--arch", default=None, help="a bundled accelerator (default: the original's files)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results = []
    print(f"{'network':8s} {'mode':10s} {'wall s':>7s} {'CPU s':>7s} {'entries':>8s} {'computed':>8s} "
          f"{'ahead':>6s} {'tiles':>6s} {'energy uJ':>10s}")  # fmt: skip
    for network in args.networks.split(","):
        modes = args.modes.split(",") + (["before"] if args.before else [])
        for mode in modes * args.repeat:
            src = args.before if mode == "before" else ROOT / "src"
            r = run(network, mode, args.jobs, args.keep, src, args.arch)
            results.append(r)
            cols = (
                f"{r['wall']:7.1f} {r['cpu']:7.1f} {r['entries']:8d} {r['computed']:8d} {r['ahead']:6d} "
                f"{r['tiles']:6d}"
            )
            print(f"{network:8s} {mode:10s} {cols} {r['energy']:10.2f}", flush=True)
        same = {tuple(r["stacks"]) for r in results if r["network"] == network}
        if len(same) > 1:
            print(f"  {network}: the schedules differ!")
    if args.repeat > 1:
        print(f"medians of {args.repeat} runs:")
        for (network, mode), rs in {(r["network"], r["mode"]): [] for r in results}.items():
            rs.extend(r for r in results if (r["network"], r["mode"]) == (network, mode))
            wall, cpu = (statistics.median(r[k] for r in rs) for k in ("wall", "cpu"))
            print(f"{network:8s} {mode:10s} {wall:7.1f} {cpu:7.1f}")
    print("bound tightness (bound / actual):")
    for line in tightness_reference():
        print(line)
    for r in {(r["network"], r["mode"]): r for r in results}.values():
        print(tightness_run(r, args.arch))


if __name__ == "__main__":
    main()
