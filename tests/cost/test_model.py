"""The model API: single and batched evaluation, validity and violations, rules, bad input."""

from __future__ import annotations

import dataclasses

import pytest

from deepfrack.arch.spec import EnergyTable
from deepfrack.cost.mapping import LoopMapping, MappingBatch, mapping_from_directives
from deepfrack.cost.model import TIMELOOP_2023, TIMELOOP_2024, LayerModel, evaluate, evaluate_batch, get_rules
from deepfrack.dims import DIMS
from deepfrack.errors import InputError
from deepfrack.workload.layer import Layer
from tests.cost.helpers import TENSORS, golden_arch, golden_ert, golden_lines, layer_of


@pytest.fixture(scope="module")
def setup():
    arch, ert = golden_arch("AlexNet_Simba"), golden_ert("AlexNet_Simba")
    d = next(
        d
        for d in golden_lines("AlexNet_Simba")
        if d["dataflow"] == "SLC" and d["layer"] == 2 and d["tile"] == 20
    )
    layer = layer_of(d["problem"])
    return arch, ert, layer, mapping_from_directives(d["mapping"], arch, layer), d


def test_evaluate_matches_reference_and_simulator(setup):
    arch, ert, layer, m, d = setup
    r = evaluate(arch, ert, layer, m)
    s = evaluate(arch, ert, layer, m, method="simulate")
    assert r.valid and r.violations == ()
    assert r.cycles == d["timeloop"]["cycles"] and r.macs == d["timeloop"]["computes"]
    assert abs(r.energy_pJ - d["timeloop"]["energy_pJ"]) < 0.1
    assert r.energy_pJ == s.energy_pJ and r.cycles == s.cycles
    assert [lv.tensors for lv in r.levels] == [lv.tensors for lv in s.levels]
    assert r.macs == layer.macs
    gb = r.level("GlobalBuffer")
    assert set(gb.tensors) == {"Inputs", "Outputs"}
    ref = next(lv for lv in d["timeloop"]["levels"] if lv["name"] == "GlobalBuffer")
    assert gb.tensors["Outputs"].updates == ref["dataspaces"]["Outputs"]["updates"]


def test_to_json(setup):
    arch, ert, layer, m, _d = setup
    j = evaluate(arch, ert, layer, m).to_json()
    assert set(j) >= {"energy_pJ", "cycles", "macs", "utilization", "valid", "violations", "levels"}
    assert [lv["name"] for lv in j["levels"]] == list(arch.level_names)
    for lv in j["levels"]:
        assert set(lv["reads"]) == set(TENSORS) == set(lv["fills"]) == set(lv["updates"])
        for tn, pi in lv["per_instance"].items():
            assert lv["fills"][tn] == pi["fills"] * pi["utilized_instances"]


def test_batch_matches_single(setup):
    arch, ert, layer, _, _ = setup
    lines = [d for d in golden_lines("AlexNet_Simba") if d["layer"] == 2 and d["tile"] == 20]
    maps = [mapping_from_directives(d["mapping"], arch, layer) for d in lines]
    br = evaluate_batch(arch, ert, layer, MappingBatch.from_mappings(maps))
    assert len(br) == len(maps) and br.reads.shape == (len(maps), 6, 3)
    for b, m in enumerate(maps):
        r = evaluate(arch, ert, layer, m)
        assert br.energy_pJ[b] == r.energy_pJ and br.cycles[b] == r.cycles
        for li, lv in enumerate(r.levels):
            assert br.level_energy_pJ[b, li] == lv.energy_pJ
            for t, tn in enumerate(TENSORS):
                st = lv.tensors.get(tn)
                assert br.fills[b, li, t] == (st.fills if st else 0)


def _move_all_to(m: LoopMapping, src: str, dst: str) -> LoopMapping:
    levels = []
    moved = m.level(src).temporal
    for lv in m.levels:
        if lv.target == src:
            lv = dataclasses.replace(lv, temporal=(1,) * 7)
        elif lv.target == dst:
            lv = dataclasses.replace(lv, temporal=tuple(a * b for a, b in zip(lv.temporal, moved)))
        levels.append(lv)
    return LoopMapping(tuple(levels))


def test_tile_too_big_is_flagged_with_numbers(setup):
    arch, ert, layer, m, _ = setup
    big = _move_all_to(m, "DRAM", "GlobalBuffer")  # the global buffer now holds whole tensors
    r = evaluate(arch, ert, layer, big)
    assert not r.valid
    assert any(
        v.startswith("GlobalBuffer: mapped tile size") and "exceeds buffer capacity 65536" in v
        for v in r.violations
    )
    assert r.energy_pJ > 0 and r.cycles > 0
    gb = r.level("GlobalBuffer")
    assert gb.tensors["Inputs"].utilized_capacity == layer.input_words(
        (layer.Q - 1) * layer.Hstride + layer.S, (layer.P - 1) * layer.Wstride + layer.R
    )


def test_unstored_tensor_and_instances(setup):
    arch, ert, layer, m, _ = setup
    levels = [dataclasses.replace(lv, keep=(False, lv.keep[1], lv.keep[2])) for lv in m.levels]
    r = evaluate(arch, ert, layer, LoopMapping(tuple(levels)))
    assert not r.valid and "Weights: bypassed at every storage level" in r.violations
    # 32-way spatial M at the global buffer (16 PEs): too many instances below it
    gb = m.level("GlobalBuffer")
    pe = m.level("PEInputBuffer")
    M = DIMS.index("M")
    levels = []
    for lv in m.levels:
        if lv.target == "GlobalBuffer":
            lv = dataclasses.replace(lv, spatial=tuple(32 if d == M else f for d, f in enumerate(gb.spatial)))
        elif lv.target == "PEInputBuffer":
            lv = dataclasses.replace(lv, spatial=tuple(4 if d == M else f for d, f in enumerate(pe.spatial)))
        levels.append(lv)
    r = evaluate(arch, ert, layer, LoopMapping(tuple(levels)))
    assert not r.valid
    assert any(v.startswith("PEInputBuffer: mapped instances 32 exceed the 16") for v in r.violations), (
        r.violations
    )


def test_batch_flags_spatial_without_fanout(setup):
    arch, ert, layer, m, _ = setup
    batch = MappingBatch.from_mappings([m, m])
    sp = batch.spatial.copy()
    li = arch.index("PEWeightBuffer")  # same instances as its inner level: no fan-out
    C = DIMS.index("C")
    t = batch.temporal.copy()
    assert t[1, li, C] > 1
    sp[1, li, C] = t[1, li, C]  # move the level's temporal C factor to a spatial loop it cannot have
    t[1, li, C] = 1
    bad = dataclasses.replace(batch, temporal=t, spatial=sp)
    res = evaluate_batch(arch, ert, layer, bad)
    assert res.valid.tolist() == [True, False]


def test_rules():
    assert get_rules("timeloop-2023") is TIMELOOP_2023 and get_rules("2024") is TIMELOOP_2024
    with pytest.raises(ValueError, match="timeloop-2023"):
        get_rules("timeloop-1999")


def test_missing_compute_energy(setup):
    arch, ert, layer, _m, _ = setup
    acts = {k: v for k, v in ert.actions.items() if k != arch.arithmetic.name}
    with pytest.raises(InputError, match="no compute energy"):
        LayerModel(arch, EnergyTable(acts), layer)


def test_missing_storage_action(setup):
    arch, ert, layer, m, _ = setup
    acts = dict(ert.actions)
    acts["GlobalBuffer"] = tuple(a for a in acts["GlobalBuffer"] if a.action != "read")
    with pytest.raises(InputError, match=r"GlobalBuffer.*no 'read' action"):
        evaluate(arch, EnergyTable(acts, origin="ert:x.yaml"), layer, m)


def test_non_conv_layer_rejected(setup):
    arch, ert, _, _, _ = setup
    with pytest.raises(InputError, match="conv and fc"):
        LayerModel(arch, ert, Layer("pool1", C=8, M=8, P=4, Q=4, R=2, S=2, kind="pool", pool="max"))


def test_2024_rules_elide_first_fill(setup):
    """Timeloop >= May 2023 elides the first fill of Outputs below the outermost kept level."""
    arch, ert, layer, m, _ = setup
    a = evaluate(arch, ert, layer, m, rules=TIMELOOP_2023).level("GlobalBuffer").tensors["Outputs"]
    b = evaluate(arch, ert, layer, m, rules=TIMELOOP_2024).level("GlobalBuffer").tensors["Outputs"]
    assert b.fills == a.fills - a.partition_size
    assert (b.reads, b.updates) == (a.reads, a.updates)


def test_default_rules_follow_the_architecture_format():
    """Without ``rules`` the model picks Timeloop's version by the file format (v0.4 -> 2024, v0.3 -> 2023),
    as the CLI and the mapper do."""
    from deepfrack.cost.model import TIMELOOP_2023, TIMELOOP_2024, default_rules, evaluate
    from deepfrack.cost.model_io import load_model_inputs
    from tests.cost.helpers import exercise_files, golden_arch

    inp = load_model_inputs(*exercise_files("simba_like"))
    assert (
        default_rules(inp.arch) is TIMELOOP_2024
        and default_rules(golden_arch("AlexNet_Simba")) is TIMELOOP_2023
    )
    implicit = evaluate(inp.arch, inp.energy, inp.layer, inp.mapping)
    assert (
        implicit.energy_pJ == evaluate(inp.arch, inp.energy, inp.layer, inp.mapping, TIMELOOP_2024).energy_pJ
    )
    assert (
        implicit.energy_pJ != evaluate(inp.arch, inp.energy, inp.layer, inp.mapping, TIMELOOP_2023).energy_pJ
    )
