"""The entry bounds (deepfrack.cost.bounds) never exceed what the model charges: on every recorded Timeloop
run of the reference data, on random architectures, layers and mappings through the model, and on the
mapper's results for random small layers; and they are not trivially loose."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.arch import builtin_energy_table
from deepfrack.arch.residency import load_variant_folder
from deepfrack.arch.spec import Constraints, TargetConstraint
from deepfrack.benchmark.builtin import make_builtin_backend
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.cost.bounds import EntryBounds, touched
from deepfrack.cost.mapping import LoopMapping
from deepfrack.cost.model import TIMELOOP_2023, TIMELOOP_2024, evaluate
from deepfrack.dims import TENSORS
from deepfrack.residency import VARIANTS
from deepfrack.workload.layer import Layer
from tests.cost.helpers import golden_arch, golden_ert, golden_lines, layer_of, random_case
from tests.paths import EXAMPLES, EXERCISES

REFERENCE_CONSTRAINTS = {
    "AlexNet_Simba": EXAMPLES / "AlexNet_Simba/inputs/simba_like/constraints",
    "AlexNet_SystolicSimba": EXAMPLES / "GAN_SimbaSystolic/inputs/SystolicSimba/SIMBA/constraints",
}


def test_touched_counts_distinct_input_rows():
    rng = np.random.default_rng(0)
    for _ in range(200):
        extent, stride, kernel, dil = (int(x) for x in rng.integers(1, 6, size=4))
        got = touched(extent, stride, kernel, dil)
        for k in range(extent + 1):
            want = len({q * stride + s * dil for q in range(k) for s in range(kernel)})
            assert got[k] == want, (extent, stride, kernel, dil, k)


@pytest.mark.parametrize("example", sorted(REFERENCE_CONSTRAINTS))
def test_bound_below_every_reference_run(example, capsys):
    """Every recorded Timeloop run (the original DeepFrack's, variants from its seven constraint files)."""
    arch, ert = golden_arch(example), golden_ert(example)
    bounds = EntryBounds(arch, ert, load_variant_folder(REFERENCE_CONSTRAINTS[example], arch), TIMELOOP_2023)
    ratios = []
    for d in golden_lines(example):
        layer = layer_of(d["problem"])
        e, c = bounds.entry(layer, d["dataflow"], layer.Q, layer.P)
        tl = d["timeloop"]
        assert e <= tl["energy_pJ"] * (1 + 1e-9), (d["path"], e, tl["energy_pJ"])
        assert c <= tl["cycles"], (d["path"], c, tl["cycles"])
        ratios.append(e / tl["energy_pJ"])
    r = np.array(ratios)
    # tight enough to prune: most of an entry's energy is compulsory (MACs, first touches, DRAM)
    assert np.median(r) > 0.5
    with capsys.disabled():
        print(
            f"\n[bounds {example}] {r.size} runs: bound/actual energy median {np.median(r):.3f}, "
            f"10th percentile {np.quantile(r, 0.1):.3f}, min {r.min():.3f}"
        )


def _random_keeps(rng: np.random.Generator, n_levels: int) -> list[tuple[bool, bool, bool]]:
    """Random keep flags per level (outermost first), every tensor kept somewhere."""
    keeps = [[bool(rng.random() < 0.6) for _ in TENSORS] for _ in range(n_levels)]
    for t in range(3):
        if not any(k[t] for k in keeps):
            keeps[int(rng.integers(n_levels))][t] = True
    return [tuple(k) for k in keeps]  # type: ignore[misc]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rules=st.sampled_from([TIMELOOP_2023, TIMELOOP_2024]))
def test_bound_below_model_on_random_mappings(seed, rules):
    """Random architectures (fan-outs, block and cluster sizes, a DRAM bandwidth, leakage), layers and
    mappings whose keep/bypass the constraints fix, so that every on-chip term of the bound is in play."""
    rng = np.random.default_rng(seed)
    arch, layer, mapping = random_case(rng)
    levels = []
    for i, lv in enumerate(arch.levels):
        block = int(rng.choice([1, 1, 2, 4]))
        cluster = int(rng.choice([1, 1, 2])) if i > 0 and lv.instances % 2 == 0 else 1
        bw = float(rng.choice([1, 3, 8])) if i == 0 and rng.random() < 0.5 else None
        levels.append(dataclasses.replace(lv, block_size=block, cluster_size=cluster, shared_bandwidth=bw))
    arch = dataclasses.replace(arch, levels=tuple(levels))
    energy = builtin_energy_table(arch)
    if rules.leakage:  # give every level some leakage
        acts = {
            k: tuple(dataclasses.replace(a, energy_pJ=0.01) if a.action == "leak" else a for a in v)
            for k, v in energy.actions.items()
        }
        energy = dataclasses.replace(energy, actions=acts)
    keeps = _random_keeps(rng, len(arch.levels))
    fixed = rng.random(len(arch.levels)) < 0.7  # some levels' keep/bypass are left to the mapper
    fixed[0] = True
    targets = tuple(
        TargetConstraint(
            lv.name,
            "datatype",
            keep=tuple(t for t, k in zip(TENSORS, keeps[i]) if k),
            bypass=tuple(t for t, k in zip(TENSORS, keeps[i]) if not k),
        )
        for i, lv in enumerate(arch.levels)
        if fixed[i]
    )
    levels = tuple(dataclasses.replace(lm, keep=keeps[i]) for i, lm in enumerate(mapping.levels))
    mapping = LoopMapping(levels)
    res = evaluate(arch, energy, layer, mapping, rules)
    if not res.valid:
        return
    bounds = EntryBounds(arch, energy, {"v": Constraints(targets)}, rules)
    e, c = bounds.entry(layer, "v", layer.Q, layer.P)
    assert e <= res.energy_pJ * (1 + 1e-9) + 1e-9
    assert c <= res.cycles


def _layer(rng: np.random.Generator) -> Layer:
    kind = str(rng.choice(["conv", "conv", "pool", "depthwise", "fc"]))
    c = int(rng.integers(1, 17))
    r, s = (1, 1) if kind == "fc" else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    return Layer(
        "x",
        C=c,
        M=c if kind in ("pool", "depthwise") else int(rng.integers(1, 17)),
        P=8,
        Q=8,
        R=r,
        S=s,
        Wstride=int(rng.integers(1, 3)),
        Hstride=int(rng.integers(1, 3)),
        Wdilation=int(rng.choice([1, 1, 2])),
        Hdilation=int(rng.choice([1, 1, 2])),
        kind=kind,
        groups=c if kind == "depthwise" else 1,
        pool="max" if kind == "pool" else None,
    )


SIMBA = EXAMPLES / "AlexNet_Simba/inputs/simba_like"


@pytest.fixture(scope="module", params=["simba_folder", "eyeriss_like", "simple_weight_stationary"])
def mapper_and_bounds(request):
    if request.param == "simba_folder":
        arch, constraints = SIMBA / "arch/simba_like.yaml", SIMBA / "constraints"
        inputs = load_inputs(arch, None, constraints, None, None, VARIANTS)
    else:
        design = EXERCISES / request.param
        inputs = load_inputs(design / "arch.yaml", EXERCISES / "_components", None, None, None, VARIANTS)
    ev = make_builtin_backend(inputs).evaluator()
    return ev, EntryBounds(inputs.architecture, ev.energy, ev.sets, ev.options.rules)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_bound_below_mapper(mapper_and_bounds, seed):
    """The mapper's best mapping of random small layers (conv, pool, depthwise, fc; strides and
    dilations) and tiles, every variant, energy and cycles."""
    ev, bounds = mapper_and_bounds
    rng = np.random.default_rng(seed)
    layer = _layer(rng)
    h, w = (int(x) for x in rng.integers(1, 9, size=2))
    grid_e, grid_c = bounds.grids(layer, "LBLC", 8, 8)
    for variant, res in ev._mapper(layer).map(h, w).items():
        e, c = bounds.entry(layer, variant, h, w)
        if variant == "LBLC":
            assert (e, c) == (grid_e[h, w], grid_c[h, w])
        if res.ok:
            assert e <= res.energy_pJ * (1 + 1e-9), (variant, layer, h, w)
            assert c <= res.cycles, (variant, layer, h, w)
