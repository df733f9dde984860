"""Shared helpers of the cost-model tests: reference architectures, ERTs, golden lines, stats.txt."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from deepfrack.arch import load_architecture
from deepfrack.arch.ert import load_ert
from deepfrack.cost.mapspace import prime_factors
from deepfrack.workload.layer import Layer
from tests.paths import EXAMPLES, EXERCISES

SIMBA_DIR = EXAMPLES / "AlexNet_Simba/inputs/simba_like"
SYSTOLIC_DIR = EXAMPLES / "GAN_SimbaSystolic/inputs/SystolicSimba/SIMBA"
TENSORS = ("Weights", "Inputs", "Outputs")
V04_DESIGNS = ("eyeriss_like", "simba_like", "simple_output_stationary", "simple_weight_stationary")

#: example -> (architecture folder, ERT used by every run of that example)
GOLDEN = {
    "AlexNet_Simba": (
        SIMBA_DIR / "arch",
        EXAMPLES / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.ERT.yaml",
    ),
    "AlexNet_SystolicSimba": (
        SYSTOLIC_DIR / "arch",
        EXAMPLES / "AlexNet_SystolicSimba/timeloop-samples/SLC_Layer2_Tile28/timeloop-mapper.ERT.yaml",
    ),
}


@cache
def golden_arch(example: str):
    return load_architecture(GOLDEN[example][0])


@cache
def golden_ert(example: str):
    return load_ert(GOLDEN[example][1], golden_arch(example))


@cache
def golden_lines(example: str) -> tuple[dict, ...]:
    path = EXAMPLES / example / "timeloop-mappings.jsonl"
    return tuple(json.loads(line) for line in path.read_text().splitlines() if line.strip())


def layer_of(problem: dict, name: str = "layer") -> Layer:
    return Layer(
        name,
        C=problem["C"],
        M=problem["M"],
        P=problem["P"],
        Q=problem["Q"],
        R=problem["R"],
        S=problem["S"],
        N=problem["N"],
        Wstride=problem["Wstride"],
        Hstride=problem["Hstride"],
        Wdilation=problem["Wdilation"],
        Hdilation=problem["Hdilation"],
    )


def group_by_problem(lines) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in lines:
        out.setdefault(json.dumps(d["problem"], sort_keys=True), []).append(d)
    return out


def read_stats(path: Path) -> tuple[dict[str, dict], dict[str, float]]:
    """Per level name: its numeric STATS/SPECS fields and, under "ds", per tensor its fields; and
    the summary (cycles, energy_uJ, computes)."""
    text = path.read_text()
    head = text.split("\nNetworks\n", 1)[0]
    out: dict[str, dict] = {}
    cur = None
    ds = None
    for line in head.splitlines():
        m = re.match(r"=== (\S+) ===", line)
        if m:
            cur = m.group(1)
            out[cur] = {"ds": {}}
            ds = None
            continue
        m = re.match(r"\s+(Weights|Inputs|Outputs):$", line)
        if m and cur:
            ds = m.group(1)
            out[cur]["ds"][ds] = {}
            continue
        m = re.match(r"\s+([A-Za-z][^:]*?)\s*:\s*([-0-9.e+]+)", line)
        if m and cur:
            try:
                v = float(m.group(2))
            except ValueError:
                continue
            (out[cur]["ds"][ds] if ds else out[cur])[m.group(1).strip()] = v
    summary = {
        "cycles": int(re.search(r"\nCycles: (\d+)", text).group(1)),
        "energy_uJ": float(re.search(r"\nEnergy: ([0-9.]+) uJ", text).group(1)),
        "computes": int(re.search(r"\nComputes = (\d+)", text).group(1)),
    }
    return out, summary


def exercise_files(design: str, with_ert: bool = True) -> list[Path]:
    ref = EXERCISES / design / "ref_outputs"
    files = [
        EXERCISES / design / "arch.yaml",
        EXERCISES / "_components",
        EXERCISES / "_include/default_problem.yaml",
        ref / "timeloop-mapper.map.yaml",
    ]
    if with_ert:
        files.append(ref / "timeloop-mapper.ERT.yaml")
    return files


# --------------------------------------------------------------------------------------------- #
# random small cases (for closed form vs simulator)
# --------------------------------------------------------------------------------------------- #
def random_case(rng):
    """(Architecture, Layer, LoopMapping) with 1-4 levels, random fan-outs (X and Y, also to the MACs),
    a small layer with strides and dilations, and a random mapping (factors, orders, splits)."""
    from deepfrack.arch.spec import Architecture, ArithmeticLevel, StorageLevel
    from deepfrack.cost.mapping import LevelMapping, LoopMapping

    L = int(rng.integers(1, 5))
    fans = [(int(rng.choice([1, 1, 2])), 1)] + [
        (int(rng.choice([1, 1, 2, 3, 4])), int(rng.choice([1, 1, 2, 3]))) for _ in range(L - 1)
    ]
    levels = []
    mx = my = 1
    for i in range(L):
        levels.append(
            StorageLevel(
                f"L{i}", "DRAM" if i == 0 else "storage", mx * my, mx, my, 16, 1, None if i == 0 else 10**6
            )
        )
        mx *= fans[i][0]
        my *= fans[i][1]
    arch = Architecture("random", tuple(levels), ArithmeticLevel("mac", "intmac", mx * my, mx, my))
    dims = {
        "C": int(rng.integers(1, 7)),
        "M": int(rng.integers(1, 7)),
        "R": int(rng.integers(1, 4)),
        "S": int(rng.integers(1, 4)),
        "N": int(rng.choice([1, 1, 2])),
        "P": int(rng.integers(1, 8)),
        "Q": int(rng.integers(1, 8)),
    }
    layer = Layer(
        "random",
        **dims,
        Wstride=int(rng.choice([1, 2])),
        Hstride=int(rng.choice([1, 2])),
        Wdilation=int(rng.choice([1, 1, 2])),
        Hdilation=int(rng.choice([1, 2])),
    )
    tf = [[1] * 7 for _ in range(L)]
    sf = [[1] * 7 for _ in range(L)]
    for di, dn in enumerate("CMRSNPQ"):
        for p in prime_factors(dims[dn]):
            i = int(rng.integers(0, L))
            if fans[i][0] * fans[i][1] > 1 and rng.random() < 0.4:
                sf[i][di] *= p
            else:
                tf[i][di] *= p
    lms = []
    for i in range(L):
        lms.append(
            LevelMapping(
                f"L{i}",
                tuple(tf[i]),
                tuple(int(x) for x in rng.permutation(7)),
                tuple(sf[i]),
                tuple(int(x) for x in rng.permutation(7)),
                int(rng.integers(0, 8)),
                (True, True, True),
            )
        )
    return arch, layer, LoopMapping(tuple(lms))


def stats_equal(a, b, bi: int = 0) -> list[str]:
    """Differences between two NestStats (candidate bi of a, candidate 0 of b)."""
    import numpy as np

    errs = []
    for f in ("size", "pfd", "link"):
        if not np.array_equal(getattr(a, f)[..., bi], getattr(b, f)[..., 0]):
            errs.append(f)
    for f in ("fanout", "replication", "x_exp", "y_exp"):
        if not np.array_equal(getattr(a, f)[:, bi], getattr(b, f)[:, 0]):
            errs.append(f)
    for f in ("compute_replication", "mac_x", "mac_y", "compute_accesses"):
        if getattr(a, f)[bi] != getattr(b, f)[0]:
            errs.append(f)
    L = a.size.shape[0]
    for lv in range(L):
        for t in range(3):
            da = {int(m): float(v) for m, v in zip(a.mc[lv, t, :, bi], a.acc[lv, t, :, bi]) if v != 0}
            db = {int(m): float(v) for m, v in zip(b.mc[lv, t, :, 0], b.acc[lv, t, :, 0]) if v != 0}
            if da != db:
                errs.append(f"acc[{lv},{t}] {da} != {db}")
    return errs
