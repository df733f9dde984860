"""Golden test: the model against all 1,517 reference Timeloop runs of the original DeepFrack
(examples/reference/deepfrack-examples/{AlexNet_Simba,AlexNet_SystolicSimba}/timeloop-mappings.jsonl).

Counts (reads, fills, updates, partition sizes, utilized capacities and instances, per level and
tensor) and cycles (per level and total) must be equal; energies agree to the rounding of the
printed values (stats.txt prints 0.01 pJ), far inside a tolerance of "median <= 0.1 %, every line
<= 1 %"."""

from __future__ import annotations

import numpy as np
import pytest

from deepfrack.cost.mapping import MappingBatch, mapping_from_directives
from deepfrack.cost.model import TIMELOOP_2023, LayerModel
from tests.cost.helpers import TENSORS, golden_arch, golden_ert, golden_lines, group_by_problem, layer_of

EXAMPLES_ = ("AlexNet_Simba", "AlexNet_SystolicSimba")


def _evaluate_example(example: str):
    arch, ert = golden_arch(example), golden_ert(example)
    names = list(arch.level_names)
    rows = []  # (line, result arrays at index b)
    for lines in group_by_problem(golden_lines(example)).values():
        layer = layer_of(lines[0]["problem"])
        maps = [mapping_from_directives(d["mapping"], arch, layer, source=d["path"]) for d in lines]
        res = LayerModel(arch, ert, layer, TIMELOOP_2023).evaluate_batch(MappingBatch.from_mappings(maps))
        for b, d in enumerate(lines):
            rows.append((d, res, b))
    return names, rows


@pytest.fixture(scope="module", params=EXAMPLES_)
def evaluated(request):
    return request.param, *_evaluate_example(request.param)


def test_line_counts():
    assert len(golden_lines("AlexNet_Simba")) + len(golden_lines("AlexNet_SystolicSimba")) == 1517


def test_counts_and_cycles_equal(evaluated):
    example, names, rows = evaluated
    mismatches = []
    for d, res, b in rows:
        tl = d["timeloop"]
        where = f"{example} {d['dataflow']} L{d['layer']} T{d['tile']}"
        if res.cycles[b] != tl["cycles"]:
            mismatches.append(f"{where}: cycles {res.cycles[b]} != {tl['cycles']}")
        if res.macs[b] != tl["computes"]:
            mismatches.append(f"{where}: MACs {res.macs[b]} != {tl['computes']}")
        for lv in tl["levels"]:
            li = names.index(lv["name"])
            if res.level_cycles[b, li] != lv["cycles"]:
                mismatches.append(f"{where}: {lv['name']} cycles {res.level_cycles[b, li]} != {lv['cycles']}")
            for tn, ds in lv["dataspaces"].items():
                t = TENSORS.index(tn)
                for key, arr in (
                    ("reads", res.reads),
                    ("fills", res.fills),
                    ("updates", res.updates),
                    ("partition_size", res.partition_size),
                    ("utilized_capacity", res.utilized_capacity),
                    ("utilized_instances", res.utilized_instances),
                ):
                    if arr[b, li, t] != ds[key]:
                        mismatches.append(f"{where}: {lv['name']}.{tn}.{key} {arr[b, li, t]} != {ds[key]}")
            kept = set(lv["dataspaces"])
            for t, tn in enumerate(TENSORS):
                if tn not in kept:
                    assert res.reads[b, li, t] == res.fills[b, li, t] == res.updates[b, li, t] == 0
        assert res.valid[b], where  # Timeloop produced stats, so the mapping was valid
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. " + "; ".join(mismatches[:5])


def test_energy(evaluated, capsys):
    example, names, rows = evaluated
    rel = []
    for d, res, b in rows:
        tl = d["timeloop"]
        # stats.txt prints every energy to 0.01 pJ; the reference total is a sum of such numbers
        terms = 1 + sum(len(lv["dataspaces"]) for lv in tl["levels"])
        assert abs(res.energy_pJ[b] - tl["energy_pJ"]) <= 0.005 * terms + 1e-9 * tl["energy_pJ"], (
            d["path"],
            res.energy_pJ[b],
            tl["energy_pJ"],
        )
        for lv in tl["levels"]:
            li = names.index(lv["name"])
            n = max(1, len(lv["dataspaces"]))
            assert abs(res.level_energy_pJ[b, li] - lv["energy_pJ"]) <= 0.005 * n + 1e-9 * lv["energy_pJ"], (
                d["path"],
                lv["name"],
            )
        assert (
            abs(res.post.mac_energy[b] - tl["arithmetic"]["energy_pJ"])
            <= 0.005 + 1e-9 * tl["arithmetic"]["energy_pJ"]
        )
        rel.append(abs(res.energy_pJ[b] - tl["energy_pJ"]) / tl["energy_pJ"])
    rel = np.array(rel)
    assert np.median(rel) <= 1e-3 and rel.max() <= 1e-2
    with capsys.disabled():
        print(
            f"\n[golden {example}] {len(rel)} runs: energy relative error median {np.median(rel):.2e}, "
            f"p99 {np.quantile(rel, 0.99):.2e}, max {rel.max():.2e}; counts and cycles exact"
        )


def test_utilization(evaluated):
    _example, _names, rows = evaluated
    for d, res, b in rows:
        # stats.txt prints utilization to 2 decimals
        assert abs(res.utilization[b] - d["timeloop"]["utilization"]) <= 0.005 + 1e-12
