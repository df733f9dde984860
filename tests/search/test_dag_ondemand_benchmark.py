"""The on-demand search with the built-in mapper on a tiny residual network (a stem, a pool, a residual
block): the same schedule as benchmarking every needed entry and then searching, with fewer entries
costed, each with the record the full benchmark has."""

from __future__ import annotations

import pytest

from deepfrack.api import capacity_of
from deepfrack.benchmark.builtin import make_builtin_backend
from deepfrack.benchmark.cache import ResultCache, record_to_json
from deepfrack.benchmark.executors import SerialExecutor
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import enumerate_jobs
from deepfrack.benchmark.runner import BenchmarkSession, run_benchmark
from deepfrack.residency import VARIANTS
from deepfrack.search import optimize, required_shapes
from deepfrack.search.ondemand import optimize_on_demand
from deepfrack.search.source import BenchmarkSource
from deepfrack.workload.layer import Layer, Network

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


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("dag-ondemand")
    inputs = load_inputs("simba-like", None, None, None, None, VARIANTS)
    backend = make_builtin_backend(inputs)
    # a GlobalBuffer of 400 words: the whole network does not fit as one stack, the stem and the pool
    # fuse in tiles, and the block fuses with its add, which reads the skip tensor from DRAM
    cap = capacity_of(inputs)
    cap = type(cap)(dict(cap.home), {**cap.words, cap.home["Inputs"]: 400})
    keys = required_shapes(NET, None, cap)
    with ResultCache(tmp / "all.sqlite") as cache:
        full = run_benchmark(enumerate_jobs(NET, "needed", VARIANTS, keys), backend, cache, SerialExecutor())
    return tmp, backend, cap, keys, full


def test_same_schedule_as_benchmark_then_search(setup):
    tmp, backend, cap, keys, full = setup
    ref, _ = optimize(NET, full.table, cap)
    with ResultCache(tmp / "ondemand.sqlite") as cache, BenchmarkSession(backend, cache) as session:
        got, stats = optimize_on_demand(NET, BenchmarkSource(NET, session), cap)
    assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == [
        (s.first, s.last, s.tile_shape, s.cached_layers) for s in ref.stacks
    ]
    assert got.total.energy_pJ == pytest.approx(ref.total.energy_pJ, rel=1e-9)
    assert got.total.energy_pJ < got.layer_by_layer.energy_pJ
    assert [(s.first, s.last) for s in got.stacks] == [(0, 1), (2, 4)]
    assert len(got.stacks[0].tiles) > 1 and got.stacks[1].layers[-1].dram_variant is not None
    assert stats.entries_requested < len(keys)
    for key, rec in stats.table.records.items():
        assert record_to_json(rec) == record_to_json(full.table.records[key])
