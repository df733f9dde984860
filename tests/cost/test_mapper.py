"""The built-in mapper: constraints always met, determinism, exhaustive optimum on small spaces,
lowered constraint factors, infeasible cases, variants sharing one search, non-CNN layers."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.arch import load_architecture, load_constraints, load_ert, load_variant_folder
from deepfrack.arch.constraints import effective_keep
from deepfrack.arch.spec import Constraints, FactorBound, TargetConstraint
from deepfrack.cost.mapper import LayerMapper, MapperOptions, map_tile, tile_problem
from deepfrack.cost.mapping import layer_dims, validate_mapping
from deepfrack.cost.mapspace import Candidates, Infeasible, build_mapspace, space_template
from deepfrack.cost.model import LayerModel as Evaluator
from deepfrack.dims import DIM_INDEX, DIMS, TENSORS
from deepfrack.objective import Objective
from deepfrack.residency import VARIANTS
from deepfrack.workload.layer import Layer
from tests.paths import EXAMPLES

SIMBA = EXAMPLES / "AlexNet_Simba"
DELAY_ENERGY = Objective.parse(["delay", "energy"])


@functools.lru_cache(maxsize=1)
def _simba():
    arch = load_architecture(SIMBA / "inputs/simba_like/arch")
    ert = load_ert(SIMBA / "timeloop-samples/SLC_Layer2_Tile27/timeloop-mapper.ERT.yaml", arch)
    variants = load_variant_folder(SIMBA / "inputs/simba_like/constraints", arch)
    return arch, ert, variants


@pytest.fixture()
def simba():
    return _simba()


# --------------------------------------------------------------------------------------------- #
# an independent check that a mapping honours the constraints
# --------------------------------------------------------------------------------------------- #
def assert_satisfies(mapping, arch, constraints: Constraints, layer: Layer) -> None:
    validate_mapping(mapping, arch, layer)
    cons = arch.constraints.merged(constraints)
    bounds = dict(zip(DIMS, layer_dims(layer)))
    keep = effective_keep(arch, constraints)
    for l, (lv, lm) in enumerate(zip(arch.levels, mapping.levels)):
        inner = arch.levels[l + 1] if l + 1 < len(arch.levels) else arch.arithmetic
        fx, fy = inner.mesh_x // lv.mesh_x, inner.mesh_y // lv.mesh_y
        on_x = [d for d in lm.spatial_order[: lm.split]]
        on_y = [d for d in lm.spatial_order[lm.split :]]
        assert np.prod([lm.spatial[d] for d in on_x]) <= fx, (lv.name, "spatial X")
        assert np.prod([lm.spatial[d] for d in on_y]) <= fy, (lv.name, "spatial Y")
        for t, tensor in enumerate(TENSORS):
            if keep[lv.name][tensor] is not None:
                assert lm.keep[t] == keep[lv.name][tensor], (lv.name, tensor)
        for tc in cons.for_target(lv.name):
            if tc.type not in ("temporal", "spatial"):
                continue
            facs = lm.temporal if tc.type == "temporal" else lm.spatial
            for name, fb in tc.factors.items():
                f = facs[DIM_INDEX[name]]
                want = bounds[name] if fb.value == 0 else min(fb.value, bounds[name])
                if fb.op == "=":
                    assert f == want, (lv.name, tc.type, name, f, want)
                elif fb.op == "<=":
                    assert f <= fb.value
                else:
                    assert f >= fb.value
            if tc.permutation:
                order = lm.temporal_order if tc.type == "temporal" else lm.spatial_order
                prefix, _, suffix = tc.permutation.partition("_")
                active = [DIMS[d] for d in order if facs[d] > 1]
                pre = [c for c in prefix if c in active]
                assert active[: len(pre)] == pre, (lv.name, tc.type, "prefix", active, prefix)
                suf = [c for c in suffix if c in active]
                assert active[len(active) - len(suf) :] == suf, (lv.name, tc.type, "suffix")
            if tc.type == "spatial" and tc.split is not None:
                assert lm.split == min(tc.split, 7)  # a split past the last dimension = all on X


# --------------------------------------------------------------------------------------------- #
# constraints always satisfied (property test over layer shapes and tiles)
# --------------------------------------------------------------------------------------------- #
@settings(max_examples=12, deadline=None)
@given(
    C=st.sampled_from([3, 8, 16, 24, 48]),
    M=st.sampled_from([8, 16, 32, 40]),
    R=st.sampled_from([1, 3, 5]),
    tile=st.integers(1, 9),
    stride=st.sampled_from([1, 2]),
    seed=st.integers(0, 3),
)
def test_constraints_always_satisfied(C, M, R, tile, stride, seed):
    arch, ert, variants = _simba()
    layer = Layer("t", C=C, M=M, P=tile, Q=tile, R=R, S=R, Wstride=stride, Hstride=stride)
    out = map_tile(arch, ert, layer, variants, DELAY_ENERGY, seed=seed)
    assert set(out) == {v.value for v in VARIANTS}
    for v, res in out.items():
        assert res.ok, res.reason
        cons = variants[next(k for k in variants if k.value == v)]
        assert_satisfies(res.mapping, arch, cons, layer)
        exact = Evaluator(arch, ert, layer).evaluate(res.mapping)
        assert exact.valid
        assert exact.energy_pJ == pytest.approx(res.energy_pJ, rel=1e-12)
        assert exact.cycles == res.cycles


def test_v04_design_constraints_satisfied():
    from deepfrack.cost.model_io import load_model_inputs
    from tests.paths import EXERCISES

    d = EXERCISES / "eyeriss_like"
    comps = sorted((EXERCISES / "_components").glob("*.yaml"))
    mi = load_model_inputs(
        d / "arch.yaml",
        *comps,
        EXERCISES / "_include/default_problem.yaml",
        d / "ref_outputs/timeloop-mapper.map.yaml",
        d / "ref_outputs/timeloop-mapper.ERT.yaml",
    )
    cons = load_constraints(d / "arch.yaml")
    layer = dataclasses.replace(mi.layer, P=14, Q=14)
    res = map_tile(mi.arch, mi.energy, layer, cons, "edp", options=MapperOptions(rules=mi.rules))["default"]
    assert res.ok, res.reason
    assert_satisfies(res.mapping, mi.arch, cons, layer)
    ref = Evaluator(mi.arch, mi.energy, layer, mi.rules).evaluate(res.mapping)
    assert ref.valid and ref.energy_pJ == pytest.approx(res.energy_pJ)


# --------------------------------------------------------------------------------------------- #
# determinism
# --------------------------------------------------------------------------------------------- #
def test_deterministic_for_a_seed_and_independent_of_order(simba):
    arch, ert, variants = simba
    layer = Layer("L3", C=256, M=384, P=13, Q=13, R=3, S=3)
    opt = MapperOptions(objective=DELAY_ENERGY, seed=7)
    a = LayerMapper(arch, ert, layer, variants, opt)
    b = LayerMapper(arch, ert, layer, variants, opt)
    shapes = [(13, 13), (7, 7), (5, 9), (2, 2)]
    ra = {s: a.map(*s) for s in shapes}
    rb = {s: b.map(*s) for s in reversed(shapes)}
    for s in shapes:
        for v in ra[s]:
            assert ra[s][v].energy_pJ == rb[s][v].energy_pJ
            assert ra[s][v].cycles == rb[s][v].cycles
            assert ra[s][v].mapping == rb[s][v].mapping


def test_tiles_mapped_side_by_side_get_the_results_they_get_alone(simba):
    """map_many runs many tiles' searches side by side (shared model calls): every tile's record is the
    one it gets mapped alone, in a fresh mapper, whatever the other tiles (rungs, enumerated small
    spaces, searched ones, rectangles)."""
    arch, ert, variants = simba
    layer = Layer("L2", C=96, M=256, P=27, Q=27, R=5, S=5)
    opt = MapperOptions(objective=DELAY_ENERGY, seed=3)
    shapes = [(27, 27), (13, 9), (1, 1), (8, 8), (27, 5), (2, 3), (12, 12), (20, 27)]
    together = LayerMapper(arch, ert, layer, variants, opt).map_many(shapes)
    assert set(together) == set(shapes)
    for s in shapes:
        alone = LayerMapper(arch, ert, layer, variants, opt).map(*s)
        assert list(alone) == list(together[s])
        for v, res in alone.items():
            assert res.status == together[s][v].status
            if res.ok:
                assert res.to_record() == together[s][v].to_record()
                assert res.mapping == together[s][v].mapping


def test_models_of_several_tiles_score_together_as_alone(simba):
    """fastmodel.evaluate_many on candidates of several tile shapes' mapspaces (their loop lists
    padded to a common width) gives each exactly what its own model gives."""
    from deepfrack.cost.fastmodel import FastModel, evaluate_many
    from deepfrack.cost.timeloop_post import TIMELOOP_2023, arch_tables

    arch, ert, variants = simba
    tables = arch_tables(arch, ert, TIMELOOP_2023)
    template = space_template(arch, {v.value: c for v, c in variants.items()})
    rng = np.random.default_rng(5)
    models, batches = [], []
    for h, w in [(1, 1), (4, 6), (13, 13), (2, 27), (27, 27)]:
        layer = Layer("t", C=64, M=32, P=w, Q=h, R=3, S=3, Wstride=2, Hstride=2)
        space = build_mapspace(arch, layer, template=template)
        n = 300
        batches.append(
            Candidates(
                np.stack([rng.integers(0, len(t), n) for t in space.dims], 1),
                np.stack([rng.integers(0, len(o), n) for o in space.orders], 1),
                rng.integers(0, 1 << len(space.free_keeps), n),
            )
        )
        models.append(FastModel(space, tables, TIMELOOP_2023))
    assert len({m.decode(c).widths for m, c in zip(models, batches)}) > 1  # padding is exercised
    for m, c, got in zip(models, batches, evaluate_many(models, batches)):
        alone = m.evaluate(c)
        assert alone.valid.any()
        for f in dataclasses.fields(alone):
            np.testing.assert_array_equal(getattr(got, f.name), getattr(alone, f.name))


# --------------------------------------------------------------------------------------------- #
# equal to exhaustive enumeration on small spaces
# --------------------------------------------------------------------------------------------- #
def _brute_force(arch, ert, layer, variants, objective):
    """Every candidate of the (pruned) mapspace scored by the full model, per variant."""
    sets = {v.value: c for v, c in variants.items()}
    space = build_mapspace(arch, layer, sets)
    sizes = [len(t) for t in space.dims] + [len(o) for o in space.orders]
    digits = np.array(list(itertools.product(*[range(n) for n in sizes])), np.int64)
    c = Candidates(digits[:, :7], digits[:, 7:], np.zeros(len(digits), np.int64))
    ev = Evaluator(arch, ert, layer)
    best = {}
    for vi, name in enumerate(space.variant_names):
        res = ev.evaluate_batch(space.mapping_batch(c, [vi] * len(c)))
        last = np.zeros(len(c))
        order = objective.order(res.energy_pJ, res.cycles.astype(float), last, res.valid)
        b = order[0]
        assert res.valid[b]
        best[name] = (res.energy_pJ[b], res.cycles[b])
    return space, best


@pytest.mark.parametrize("objective", [DELAY_ENERGY, Objective.parse("energy"), Objective.parse("edp")])
@pytest.mark.parametrize("C, M, R", [(16, 8, 1), (16, 16, 1), (8, 16, 3)])
def test_equals_exhaustive_enumeration_on_small_layers(simba, objective, C, M, R):
    arch, ert, variants = simba
    layer = Layer("small", C=C, M=M, P=2, Q=2, R=R, S=R)
    space, best = _brute_force(arch, ert, layer, variants, objective)
    assert space.size <= 2000
    got = map_tile(arch, ert, layer, variants, objective)  # enumerates the space, or searches it
    for v, (e, cyc) in best.items():
        assert got[v].cycles == cyc
        assert got[v].energy_pJ == pytest.approx(e, rel=1e-12)
    # the local search (enumeration switched off) finds the same optimum on this space
    ls = map_tile(arch, ert, layer, variants, objective, options=MapperOptions(enumerate_limit=0))
    for v, (e, cyc) in best.items():
        assert ls[v].cycles == cyc
        assert ls[v].energy_pJ == pytest.approx(e, rel=1e-12)


def test_fast_scores_equal_full_model(simba):
    """The mapper's closed-form scores equal the full model on every candidate of a small space
    (where no link transfer arises), under every variant."""
    from deepfrack.cost.fastmodel import FastModel
    from deepfrack.cost.timeloop_post import TIMELOOP_2023, arch_tables

    arch, ert, variants = simba
    layer = Layer("s", C=24, M=16, P=3, Q=2, R=3, S=3, Wstride=2, Hstride=1)
    space = build_mapspace(arch, layer, {v.value: c for v, c in variants.items()})
    rng = np.random.default_rng(0)
    n = 600
    c = Candidates(
        np.stack([rng.integers(0, len(t), n) for t in space.dims], 1),
        np.stack([rng.integers(0, len(o), n) for o in space.orders], 1),
        np.zeros(n, np.int64),
    )
    fast = FastModel(space, arch_tables(arch, ert, TIMELOOP_2023), TIMELOOP_2023).evaluate(c)
    ev = Evaluator(arch, ert, layer)
    for vi in range(len(space.variant_names)):
        full = ev.evaluate_batch(space.mapping_batch(c, [vi] * n))
        assert (full.valid == fast.valid[vi]).all()
        ok = full.valid
        assert ok.sum() > 50
        np.testing.assert_allclose(fast.energy[vi, ok], full.energy_pJ[ok], rtol=1e-12)
        np.testing.assert_array_equal(fast.cycles[vi, ok], full.cycles[ok])


# --------------------------------------------------------------------------------------------- #
# lowered factors, infeasible cases
# --------------------------------------------------------------------------------------------- #
def test_oversized_constraint_factor_is_lowered_with_a_note(simba):
    arch, ert, variants = simba
    layer = Layer("conv1", C=3, M=96, P=5, Q=5, R=11, S=11, Wstride=4, Hstride=4)
    out = map_tile(arch, ert, layer, variants, DELAY_ENERGY)
    for res in out.values():
        assert res.ok
        assert res.mapping.level("PEAccuBuffer").spatial[DIM_INDEX["C"]] == 3
        assert any("C=8 exceeds the problem's C=3; lowered to C=3" in n for n in res.notes)


def _with_target(variants, target: TargetConstraint):
    return {v: Constraints((*c.targets, target), c.source) for v, c in variants.items()}


def test_unsatisfiable_constraints_are_infeasible_with_a_reason(simba):
    arch, ert, variants = simba
    cons = _with_target(variants, TargetConstraint("DRAM", "temporal", factors={"M": FactorBound("=", 5)}))
    out = map_tile(arch, ert, Layer("x", C=16, M=16, P=4, Q=4, R=3, S=3), cons)
    for res in out.values():
        assert res.status == "infeasible"
        assert "M=16" in res.reason and "DRAM temporal M=5" in res.reason


def test_tile_that_fits_no_level_is_infeasible(simba):
    arch, ert, variants = simba
    # R and S must sit at PEWeightBuffer (mapspace constraints), with C=8 spatial below it:
    # 8 x 25 x 25 = 5000 weights > 4096 words per PEWeightBuffer
    out = map_tile(arch, ert, Layer("big", C=8, M=8, P=2, Q=2, R=25, S=25), variants)
    for res in out.values():
        assert res.status == "infeasible"
        assert "PEWeightBuffer" in res.reason and "4096" in res.reason


def test_infeasible_is_a_result_not_an_exception(simba):
    arch, ert, variants = simba
    cons = _with_target(variants, TargetConstraint("DRAM", "temporal", factors={"C": FactorBound("=", 3)}))
    layer = Layer("x", C=16, M=16, P=4, Q=4)
    with pytest.raises(Infeasible):
        build_mapspace(arch, layer, {v.value: c for v, c in cons.items()})
    out = map_tile(arch, ert, layer, cons)
    assert all(r.status == "infeasible" and "C=16" in r.reason for r in out.values())
    with pytest.raises(ValueError):
        out["SLC"].to_record()


# --------------------------------------------------------------------------------------------- #
# variants share one search and differ only in DRAM's keep
# --------------------------------------------------------------------------------------------- #
def test_seven_variants_share_one_search(simba):
    arch, ert, variants = simba
    layer = Layer("L2", C=96, M=256, P=27, Q=27, R=5, S=5)
    lm = LayerMapper(arch, ert, layer, variants, MapperOptions(objective=DELAY_ENERGY))
    assert len(lm.groups) == 1 and len(lm.groups[0]) == 7
    out = lm.map(9, 9)
    counts = {r.evaluated for r in out.values()}
    assert len(counts) == 1  # one search scored every variant
    for v, res in out.items():
        on_chip = next(k for k in variants if k.value == v).on_chip
        dram = res.mapping.level("DRAM")
        assert dram.keep == tuple(not x for x in on_chip)
        for lvl in res.mapping.levels[1:]:
            assert lvl.keep == out["SLC"].mapping.level(lvl.target).keep
    # the mapspace refuses sets that differ elsewhere
    other = {k.value: c for k, c in variants.items()}
    other["SLC"] = Constraints(
        (
            *other["SLC"].targets,
            TargetConstraint("GlobalBuffer", "temporal", factors={"Q": FactorBound("=", 1)}),
        )
    )
    with pytest.raises(ValueError):
        space_template(arch, other)
    # ...and the mapper then searches them apart
    lm2 = LayerMapper(arch, ert, layer, other, MapperOptions(objective=DELAY_ENERGY))
    assert len(lm2.groups) == 2
    res = lm2.map(3, 3)
    assert res["SLC"].mapping.level("GlobalBuffer").temporal[DIM_INDEX["Q"]] == 1


def test_variants_derived_from_one_constraint_set(simba):
    from deepfrack.arch import all_variant_constraints

    arch, ert, variants = simba
    base = load_constraints(
        SIMBA / "inputs/simba_like/constraints/SLC.yaml",
        SIMBA / "inputs/simba_like/constraints/simba_like_map_constraints.yaml",
    )
    derived = all_variant_constraints(base, arch)
    layer = Layer("L4", C=384, M=384, P=4, Q=4, R=3, S=3)
    a = map_tile(arch, ert, layer, derived, DELAY_ENERGY)
    b = map_tile(arch, ert, layer, variants, DELAY_ENERGY)
    for v in a:
        assert a[v].energy_pJ == b[v].energy_pJ and a[v].cycles == b[v].cycles


# --------------------------------------------------------------------------------------------- #
# non-CNN layers
# --------------------------------------------------------------------------------------------- #
def test_depthwise_pool_add_and_fc_are_costed(simba):
    arch, ert, variants = simba
    dw = Layer("dw", C=32, M=32, P=14, Q=14, R=3, S=3, kind="depthwise", groups=32)
    pool = Layer("pool", C=64, M=64, P=7, Q=7, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max")
    add = Layer("add", C=64, M=64, P=7, Q=7, kind="add")
    fc = Layer("fc", C=512, M=256, P=1, Q=1, kind="fc")
    for layer in (dw, pool, add, fc):
        out = map_tile(arch, ert, layer, variants, DELAY_ENERGY, h=layer.Q, w=layer.P)
        for res in out.values():
            assert res.ok, (layer.kind, res.reason)
            assert res.energy_pJ > 0 and res.cycles > 0
            assert res.macs == layer.macs
    # a depthwise layer costs `groups` runs of its one-channel problem
    prob = tile_problem(dw)
    assert (prob.layer.C, prob.layer.M, prob.repeats) == (1, 1, 32)
    one = map_tile(arch, ert, prob.layer, variants, DELAY_ENERGY)["SLC"]
    assert map_tile(arch, ert, dw, variants, DELAY_ENERGY)["SLC"].energy_pJ == pytest.approx(
        32 * one.energy_pJ
    )
    # pooling moves inputs and outputs only: no weight traffic, no MAC energy
    res = map_tile(arch, ert, pool, variants, DELAY_ENERGY)["SLC"]
    assert res.macs == 0 and res.level_energy_pJ["LMAC"] == 0
    assert all("Weights" not in res.accesses[lv]["reads"] for lv in res.accesses)
    assert res.accesses["DRAM"]["reads"]["Inputs"] >= 64 * 14 * 14


def test_objective_parsing():
    assert Objective.parse(["delay", "energy"]).metrics == ("cycles", "energy")
    assert Objective.parse("cycles").metrics == ("cycles",)
    assert Objective.parse("EDP").metrics == ("edp",)
    with pytest.raises(ValueError):
        Objective.parse(["speed"])
    o = Objective.parse(["delay", "energy"])
    e = np.array([3.0, 1.0, 2.0, 0.5])
    c = np.array([10.0, 10.0, 9.0, 8.0])
    valid = np.array([True, True, True, False])
    assert o.order(e, c, np.zeros(4), valid).tolist() == [2, 1, 0, 3]
