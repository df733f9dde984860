"""deepfrack's mapper against Timeloop's on the reference runs.

AlexNet_Simba: the 756 Timeloop runs of the original DeepFrack (4 layers x 7 variants x every
square tile), recorded in examples/reference/deepfrack-examples/AlexNet_Simba. With Timeloop's own
energy table (that run's ERT), the same constraints (the seven files + the map constraints) and the
same mapper.yaml objective ([delay, energy]), this maps every entry and prints:

* the share of entries whose mapping is at least as good as Timeloop's under that objective:
  fewer cycles, or cycles and energy each no more than 0.5% above Timeloop's;
* the median ratios (ours / Timeloop) of energy and cycles;
* Timeloop's own recorded mappings (timeloop-mappings.jsonl) scored by deepfrack's model: the model
  error (model / Timeloop on the same mapping), and ours against Timeloop's mapping both under
  deepfrack's model (mapper quality alone).

Usage: PYTHONPATH=src python benchmarks/compare_timeloop.py [--seed N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepfrack.arch import load_architecture, load_ert, load_variant_folder
from deepfrack.cost.mapper import LayerMapper, MapperOptions
from deepfrack.cost.mapping import mapping_from_directives
from deepfrack.cost.model import LayerModel as Evaluator
from deepfrack.objective import Objective
from deepfrack.workload.layer import Layer
from deepfrack.workload.loaders import load_problem

EX = ROOT / "examples/reference/deepfrack-examples/AlexNet_Simba"
TOL = 0.005


def at_least_as_good(e: float, c: float, te: float, tc: float) -> bool:
    return c < tc or (c <= tc * (1 + TOL) and e <= te * (1 + TOL))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write every entry's figures here")
    args = ap.parse_args()

    arch = load_architecture(EX / "inputs/simba_like/arch")
    ert = load_ert(EX / "timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.ERT.yaml", arch)
    variants = load_variant_folder(EX / "inputs/simba_like/constraints", arch)
    mapper_doc = yaml.safe_load((EX / "inputs/simba_like/mapper/mapper.yaml").read_text())["mapper"]
    objective = Objective.parse(mapper_doc["optimization-metrics"])
    layers = {k: load_problem(EX / f"inputs/AlexNet/AlexNet_layer0{k}.yaml") for k in (1, 2, 3, 4)}
    runs = {}
    for line in (EX / "timeloop-mappings.jsonl").read_text().splitlines():
        d = json.loads(line)
        runs[(d["dataflow"], d["layer"], d["tile"])] = d

    opt = MapperOptions(objective=objective, seed=args.seed)
    rows = []
    t0 = time.perf_counter()
    for k, layer in layers.items():
        lm = LayerMapper(arch, ert, layer, variants, opt)
        for t in range(layer.P, 0, -1):
            for v, res in lm.map(t, t).items():
                d = runs[(v, k, t)]
                rows.append(
                    {
                        "variant": v,
                        "layer": k,
                        "tile": t,
                        "status": res.status,
                        "energy_pJ": res.energy_pJ,
                        "cycles": res.cycles,
                        "tl_energy_pJ": d["timeloop"]["energy_pJ"],
                        "tl_cycles": d["timeloop"]["cycles"],
                    }
                )
    wall = time.perf_counter() - t0

    # Timeloop's recorded mappings under deepfrack's model
    evals: dict[tuple[int, int], Evaluator] = {}
    for r in rows:
        d = runs[(r["variant"], r["layer"], r["tile"])]
        p = d["problem"]
        tile_layer = Layer(
            "t",
            C=p["C"],
            M=p["M"],
            P=p["P"],
            Q=p["Q"],
            R=p["R"],
            S=p["S"],
            N=p["N"],
            Wstride=p["Wstride"],
            Hstride=p["Hstride"],
            Wdilation=p["Wdilation"],
            Hdilation=p["Hdilation"],
        )
        ev = evals.setdefault((r["layer"], r["tile"]), Evaluator(arch, ert, tile_layer))
        m = ev.evaluate(mapping_from_directives(d["mapping"], arch, tile_layer))
        r["model_on_tl_energy_pJ"] = m.energy_pJ
        r["model_on_tl_cycles"] = m.cycles

    ok = [r for r in rows if r["status"] == "ok"]
    good = [r for r in ok if at_least_as_good(r["energy_pJ"], r["cycles"], r["tl_energy_pJ"], r["tl_cycles"])]
    good_model = [
        r
        for r in ok
        if at_least_as_good(r["energy_pJ"], r["cycles"], r["model_on_tl_energy_pJ"], r["model_on_tl_cycles"])
    ]
    e_ratio = [r["energy_pJ"] / r["tl_energy_pJ"] for r in ok]
    c_ratio = [r["cycles"] / r["tl_cycles"] for r in ok]
    me = [abs(r["model_on_tl_energy_pJ"] / r["tl_energy_pJ"] - 1) for r in rows]
    mc = [abs(r["model_on_tl_cycles"] / r["tl_cycles"] - 1) for r in rows]
    fewer = sum(r["cycles"] < r["tl_cycles"] for r in ok)
    less_e = sum(
        r["cycles"] <= r["tl_cycles"] and r["energy_pJ"] < r["tl_energy_pJ"] * (1 - 1e-9) for r in ok
    )
    print(
        f"AlexNet_Simba, objective {objective}, Timeloop's ERT, the original's constraints; seed {args.seed}"
    )
    print(
        f"entries: {len(rows)} ({len(ok)} mapped, {len(rows) - len(ok)} infeasible); "
        f"mapper wall time {wall:.1f} s (1 process)"
    )
    print(
        f"at least as good as Timeloop's (fewer cycles, or cycles and energy <= +0.5%): "
        f"{len(good)}/{len(rows)} = {len(good) / len(rows):.1%}"
    )
    print(f"  strictly fewer cycles: {fewer}; same-or-fewer cycles and less energy: {less_e}")
    print(
        f"median ratio ours/Timeloop: energy {statistics.median(e_ratio):.4f}, "
        f"cycles {statistics.median(c_ratio):.4f}; "
        f"min/max energy {min(e_ratio):.4f}/{max(e_ratio):.4f}, cycles {min(c_ratio):.4f}/{max(c_ratio):.4f}"
    )
    print(
        f"model error on Timeloop's own mappings: median |E| {statistics.median(me):.2e}, max {max(me):.2e}; "
        f"median |cycles| {statistics.median(mc):.2e}, max {max(mc):.2e}"
    )
    print(
        f"under deepfrack's model, ours at least as good as Timeloop's mapping: "
        f"{len(good_model)}/{len(rows)} = {len(good_model) / len(rows):.1%}"
    )
    bad = sorted((r for r in ok if r not in good), key=lambda r: -r["energy_pJ"] / r["tl_energy_pJ"])
    for r in bad[:10]:
        print(
            f"  worse: {r['variant']} layer {r['layer']} tile {r['tile']}: "
            f"cycles x{r['cycles'] / r['tl_cycles']:.4f}, "
            f"energy x{r['energy_pJ'] / r['tl_energy_pJ']:.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
