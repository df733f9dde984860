"""The closed-form, vectorized nest analysis equals the reference simulator of Timeloop's recursion
(deepfrack.cost.nest_sim), on the reference runs and on random architectures, layers and mappings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.cost.analytic import analyze
from deepfrack.cost.mapping import MappingBatch, level_fanouts, mapping_from_directives
from deepfrack.cost.model import simulate_stats
from tests.cost.helpers import golden_arch, golden_lines, layer_of, random_case, stats_equal


@pytest.mark.parametrize("example", ["AlexNet_Simba", "AlexNet_SystolicSimba"])
def test_golden_sample_matches_simulator(example):
    arch = golden_arch(example)
    lines = golden_lines(example)[::37]  # ~20 runs spread over dataflows, layers and tiles
    for d in lines:
        layer = layer_of(d["problem"])
        m = mapping_from_directives(d["mapping"], arch, layer)
        a = analyze(MappingBatch.from_mappings([m]), level_fanouts(arch), layer).stats
        b = simulate_stats(arch, layer, m)
        assert stats_equal(a, b) == [], d["path"]


@pytest.mark.parametrize("rule", ["legacy", "stationary"])
def test_random_sweep_matches_simulator(rule):
    """120 seeded random cases per rule, analysed as one batch. Random fan-outs make link
    transfers frequent: the sweep must contain some, and they must agree too."""
    rng = np.random.default_rng(2024 if rule == "legacy" else 2025)
    n_links = 0
    mismatches = []
    for _ in range(120):
        arch, layer, m = random_case(rng)
        a = analyze(MappingBatch.from_mappings([m]), level_fanouts(arch), layer, rule).stats
        b = simulate_stats(arch, layer, m, rule)
        n_links += bool(np.any(b.link != 0))
        errs = stats_equal(a, b)
        if errs:
            mismatches.append((layer, m, errs))
    assert not mismatches, mismatches[:2]
    assert n_links >= 5


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rule=st.sampled_from(["legacy", "stationary"]))
def test_property_matches_simulator(seed, rule):
    arch, layer, m = random_case(np.random.default_rng(seed))
    a = analyze(MappingBatch.from_mappings([m]), level_fanouts(arch), layer, rule).stats
    b = simulate_stats(arch, layer, m, rule)
    assert stats_equal(a, b) == []


def test_batch_equals_one_by_one():
    """Analysing 30 mappings of one layer as a batch gives each the statistics it gets alone."""
    rng = np.random.default_rng(7)
    arch, layer, _ = random_case(rng)
    # many random mappings of this one layer on this one architecture
    from deepfrack.cost.mapping import LevelMapping, LoopMapping

    fan = level_fanouts(arch)
    maps = []
    dims = (layer.C, layer.M, layer.R, layer.S, layer.N, layer.P, layer.Q)
    for _ in range(30):
        tf = [[1] * 7 for _ in arch.levels]
        sf = [[1] * 7 for _ in arch.levels]
        for d, n in enumerate(dims):
            for p in [x for x in range(2, n + 1) for _ in range(_mult(n, x))]:
                i = int(rng.integers(0, len(arch.levels)))
                if fan[i][0] * fan[i][1] > 1 and rng.random() < 0.4:
                    sf[i][d] *= p
                else:
                    tf[i][d] *= p
        maps.append(
            LoopMapping(
                tuple(
                    LevelMapping(
                        lv.name,
                        tuple(tf[i]),
                        tuple(int(x) for x in rng.permutation(7)),
                        tuple(sf[i]),
                        tuple(int(x) for x in rng.permutation(7)),
                        int(rng.integers(0, 8)),
                        (True, True, True),
                    )
                    for i, lv in enumerate(arch.levels)
                )
            )
        )
    batch = analyze(MappingBatch.from_mappings(maps), level_fanouts(arch), layer).stats
    for bi, m in enumerate(maps):
        one = analyze(MappingBatch.from_mappings([m]), level_fanouts(arch), layer).stats
        assert stats_equal(batch, one, bi) == []


def _mult(n: int, p: int) -> int:
    """Multiplicity of prime p in n (0 for non-primes)."""
    if any(p % q == 0 for q in range(2, p)):
        return 0
    k = 0
    while n % p == 0:
        n //= p
        k += 1
    return k
