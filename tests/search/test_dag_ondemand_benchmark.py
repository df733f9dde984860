"""The on-demand search with the built-in mapper on a tiny residual network (a stem, a pool, a residual
block): the same schedule as benchmarking every needed entry and then searching, with fewer entries
costed, each with the record the full benchmark has."""

from __future__ import annotations

from pathlib import Path

from deepfrack.api import capacity_of
from deepfrack.benchmark.builtin import make_builtin_backend
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.residency import VARIANTS, Variant
from deepfrack.workload.layer import Layer, Network
from tests.search.test_ondemand_benchmark import (
    benchmark_every_needed_entry,
    on_demand_as_benchmark_then_search,
)

PAD = (1, 1, 1, 1)
NET = Network(
    "tiny-residual",
    (
        Layer("stem", C=3, M=8, P=8, Q=8, R=3, S=3, pad=PAD),
        Layer("pool", kind="pool", pool="max", C=8, M=8, P=4, Q=4, R=2, S=2, Wstride=2, Hstride=2),
        Layer("a", C=8, M=8, P=4, Q=4, R=3, S=3, pad=PAD),
        Layer("b", C=8, M=8, P=4, Q=4, R=3, S=3, pad=PAD),
        Layer("add", kind="add", C=8, M=8, P=4, Q=4, n_inputs=2),
    ),
    ((-1,), (0,), (1,), (2,), (3, 1)),
    input_plane=(8, 8),
)


def test_same_schedule_as_benchmark_then_search(tmp_path: Path):
    backend = make_builtin_backend(load_inputs("simba-like", None, None, None, None, VARIANTS))
    # a GlobalBuffer of 400 words: the whole network does not fit as one stack, the stem and the pool
    # fuse in tiles, and the block fuses with its add, which reads the skip tensor from DRAM
    cap = capacity_of(load_inputs("simba-like", variants=(Variant.SLC,)))
    cap = type(cap)(dict(cap.home), {**cap.words, cap.home["Inputs"]: 400})
    keys, full = benchmark_every_needed_entry(NET, backend, cap, tmp_path / "all.sqlite")
    got, _ = on_demand_as_benchmark_then_search(NET, backend, cap, keys, full, tmp_path / "ondemand.sqlite")
    assert got.total.energy_pJ < got.layer_by_layer.energy_pJ
    assert [(s.first, s.last) for s in got.stacks] == [(0, 1), (2, 4)]
    assert len(got.stacks[0].tiles) > 1 and got.stacks[1].layers[-1].dram_variant is not None
