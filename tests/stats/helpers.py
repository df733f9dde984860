"""Cost tables with a per-level split and DRAM counts, built from the synthetic tables (not a cost
model: each entry's energy is divided among levels by fixed per-layer fractions)."""

from __future__ import annotations

import numpy as np

from deepfrack.cost.table import CostRecord, CostTable
from deepfrack.workload.layer import Network
from tests.synthetic import synthetic_table

LEVELS = ("DRAM", "GlobalBuffer", "PEBuffer", "MAC")


def split_table(network: Network, seed: int = 0, keys=None, cycles: bool = True) -> CostTable:
    """The synthetic table of ``network`` with every record's energy split over LEVELS (outermost
    first, the compute unit last) by random per-(layer, variant) fractions, and DRAM counts that
    grow with the DRAM share of the entry's energy."""
    base = synthetic_table(network, seed=seed, keys=keys, cycles=cycles)
    rng = np.random.default_rng(seed + 1)
    fractions: dict = {}
    table = CostTable(source=f"split-synthetic(seed={seed})")
    for key, rec in base.items():
        f = fractions.setdefault(key[:2], rng.dirichlet(np.ones(len(LEVELS))))
        levels = {name: float(rec.energy_pJ * x) for name, x in zip(LEVELS, f)}
        levels["MAC"] = rec.energy_pJ - sum(v for k, v in levels.items() if k != "MAC")
        dram = round(levels["DRAM"] / 20.0)
        accesses = {
            "DRAM": {
                "reads": {"Weights": dram // 2, "Inputs": dram // 3},
                "updates": {"Outputs": dram - dram // 2 - dram // 3},
                "utilized_instances": {"Weights": 1, "Inputs": 1, "Outputs": 1},
            },
            "GlobalBuffer": {"reads": {"Inputs": 5}, "fills": {"Inputs": 5}, "updates": {}},
        }
        table.records[key] = CostRecord(rec.energy_pJ, rec.cycles, rec.macs, levels, accesses)
    return table
