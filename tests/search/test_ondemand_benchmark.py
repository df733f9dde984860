"""The on-demand search with the built-in mapper on a small network: the same schedule as benchmarking
every needed entry and then searching, with fewer entries costed; and an entry's record does not depend
on what else was asked, in which order, or in how many worker processes (warm-start ladders shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfrack.api import capacity_of
from deepfrack.benchmark.builtin import make_builtin_backend
from deepfrack.benchmark.cache import ResultCache, record_to_json
from deepfrack.benchmark.executors import LocalExecutor, SerialExecutor
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import enumerate_jobs, make_job
from deepfrack.benchmark.runner import BenchmarkSession, run_benchmark
from deepfrack.residency import VARIANTS, Variant
from deepfrack.search import ondemand, optimize, required_shapes
from deepfrack.search.ondemand import optimize_on_demand
from deepfrack.search.source import BenchmarkSource
from deepfrack.workload.layer import Layer, Network
from tests.paths import EXAMPLES

SIMBA = EXAMPLES / "AlexNet_Simba/inputs/simba_like"

NET = Network.chain(
    "small",
    [
        Layer("c1", C=3, M=8, P=8, Q=8, R=3, S=3, pad=(1, 1, 1, 1)),
        Layer("p1", kind="pool", pool="max", C=8, M=8, P=4, Q=4, R=2, S=2, Wstride=2, Hstride=2),
        Layer("c2", C=8, M=16, P=4, Q=4, R=3, S=3, pad=(1, 1, 1, 1)),
    ],
    input_plane=(8, 8),
)
#: the same layers on a wider plane: the search takes a few rounds, with options left for work ahead
WIDER = Network.chain(
    "wider",
    [
        Layer("c1", C=3, M=8, P=16, Q=16, R=3, S=3, pad=(1, 1, 1, 1)),
        Layer("p1", kind="pool", pool="max", C=8, M=8, P=8, Q=8, R=2, S=2, Wstride=2, Hstride=2),
        Layer("c2", C=8, M=16, P=8, Q=8, R=3, S=3, pad=(1, 1, 1, 1)),
    ],
    input_plane=(16, 16),
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("ondemand")
    inputs = load_inputs(SIMBA / "arch/simba_like.yaml", None, SIMBA / "constraints", None, None, VARIANTS)
    backend = make_builtin_backend(inputs)
    cap = capacity_of(inputs)
    keys, full = benchmark_every_needed_entry(NET, backend, cap, tmp / "all.sqlite")
    return tmp, backend, cap, keys, full


def benchmark_every_needed_entry(net: Network, backend, cap, cache_path: Path):
    """(required_shapes, the benchmark of every one of them)."""
    keys = required_shapes(net, None, cap)
    with ResultCache(cache_path) as cache:
        full = run_benchmark(enumerate_jobs(net, "needed", VARIANTS, keys), backend, cache, SerialExecutor())
    return keys, full


def on_demand_as_benchmark_then_search(net: Network, backend, cap, keys, full, cache_path: Path):
    """The on-demand search from a fresh cache: the schedule optimize finds on the full benchmark, fewer
    entries costed, each with the record the full benchmark has. Returns the schedule and its stats."""
    ref, _ = optimize(net, full.table, cap)
    with ResultCache(cache_path) as cache, BenchmarkSession(backend, cache) as session:
        got, stats = optimize_on_demand(net, BenchmarkSource(net, session), cap)
    assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == [
        (s.first, s.last, s.tile_shape, s.cached_layers) for s in ref.stacks
    ]
    assert got.total.energy_pJ == pytest.approx(ref.total.energy_pJ, rel=1e-9)
    assert stats.entries_requested < len(keys)
    for key, rec in stats.table.records.items():
        assert record_to_json(rec) == record_to_json(full.table.records[key])
    return got, stats


def test_same_schedule_as_benchmark_then_search(setup):
    tmp, backend, cap, keys, full = setup
    got, stats = on_demand_as_benchmark_then_search(NET, backend, cap, keys, full, tmp / "ondemand.sqlite")
    assert any(s.depth > 1 for s in got.stacks)  # something is fused
    assert stats.entries_computed == stats.entries_requested


def test_an_entry_does_not_depend_on_what_else_is_asked(setup):
    """Alone (first or last), inside the full table, in reverse order in small rounds over two worker
    processes that share the ladders through the cache: the record one evaluator computes with no help
    (mapping included)."""
    tmp, backend, _, keys, full = setup
    order = sorted(keys, key=lambda k: (k[0], VARIANTS.index(k[1]), k[2], k[3]))
    evaluator = backend.evaluator()  # no shared ladders: it searches every rung itself
    plain = {k: _text(o) for k, o in zip(order, evaluator.evaluate([make_job(NET, *k) for k in order]))}
    assert {k: _text(o) for k, o in full.outcomes.items()} == plain  # the full table
    rung_tile = next(k for k in order if k[2] == k[3] == 4 and k[1] == Variant.LBLC)  # a ladder rung
    for n, key in enumerate((order[0], order[-1], rung_tile)):
        with ResultCache(tmp / f"alone{n}.sqlite") as cache, BenchmarkSession(backend, cache) as session:
            assert _records(session, [make_job(NET, *key)]) == {key: plain[key]}
    with (
        ResultCache(tmp / "two.sqlite") as cache,
        BenchmarkSession(backend, cache, LocalExecutor(2)) as session,
    ):
        got: dict = {}
        reverse = order[::-1]
        for i in range(0, len(reverse), 40):
            got.update(_records(session, [make_job(NET, *k) for k in reverse[i : i + 40]]))
        assert session.summary.computed == len(keys)
    assert got == plain
    # each layer problem's ladder was computed once, by one job, and cached
    with ResultCache(tmp / "two.sqlite") as cache:
        for layer in range(len(NET)):
            group, _ = backend.warm_plan(make_job(NET, layer, Variant.SLC, *NET.layers[layer].out_plane))
            assert cache.get_shared([backend.warm_key(group, 0)])


def _text(o) -> str:
    return record_to_json(o.record) if o.record is not None else o.reason


def _records(session: BenchmarkSession, jobs) -> dict:
    return {k: _text(o) for k, o in session.cost(jobs).items()}


def test_work_ahead_changes_what_is_computed_not_the_results(setup, tmp_path: Path, monkeypatch):
    """Two worker processes: the search hands the next options' tiles to idle workers. The schedule,
    the entries asked for and their records are those of the search without work ahead (one process).
    (Small rounds, so that there are options left for work ahead.)"""
    _, backend, cap, _, _ = setup
    monkeypatch.setattr(ondemand, "FIRST_TASKS", 1)
    monkeypatch.setattr(ondemand, "GROWTH", 1.0)
    with ResultCache(tmp_path / "plain.sqlite") as cache, BenchmarkSession(backend, cache) as session:
        ref, ref_stats = optimize_on_demand(WIDER, BenchmarkSource(WIDER, session), cap)
    with (
        ResultCache(tmp_path / "ahead.sqlite") as cache,
        BenchmarkSession(backend, cache, LocalExecutor(2)) as session,
    ):
        got, stats = optimize_on_demand(WIDER, BenchmarkSource(WIDER, session), cap)
        ahead = session.summary.ahead
    assert stats.rounds > 2 and ahead > 0
    assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == [
        (s.first, s.last, s.tile_shape, s.cached_layers) for s in ref.stacks
    ]
    assert got.total.energy_pJ == ref.total.energy_pJ
    assert stats.entries_requested == ref_stats.entries_requested  # the same questions asked
    assert stats.table.records.keys() == ref_stats.table.records.keys()
    for key, rec in stats.table.records.items():
        assert record_to_json(rec) == record_to_json(ref_stats.table.records[key])


def test_jobs_asked_for_after_running_ahead(setup, tmp_path: Path):
    """A session asked for jobs it is still computing ahead waits for them; jobs it finished ahead are
    served from memory; either way with the outcome computing them on demand gives."""
    _, backend, _, keys, full = setup
    order = sorted(keys, key=lambda k: (k[0], VARIANTS.index(k[1]), k[2], k[3]))
    first, later = order[:14], order[14:]
    with (
        ResultCache(tmp_path / "c.sqlite") as cache,
        BenchmarkSession(backend, cache, LocalExecutor(2)) as session,
    ):
        session.cost([make_job(NET, *k) for k in first], ahead=[make_job(NET, *k) for k in later])
        assert session._ahead_keys or session._ahead_done or session.summary.ahead  # work ahead given
        got = _records(session, [make_job(NET, *k) for k in later])
        assert session.summary.computed == len(order)
    assert got == {k: _text(full.outcomes[k]) for k in later}


def test_tables_written_for_the_entries_costed(setup, tmp_path: Path):
    _, backend, cap, _, _ = setup
    with ResultCache(tmp_path / "c.sqlite") as cache, BenchmarkSession(backend, cache) as session:
        _, stats = optimize_on_demand(NET, BenchmarkSource(NET, session), cap)
        result = session.result(tmp_path / "tables")
    assert {p.name for p in result.summary.outputs} >= {"costs.csv", "mappings.jsonl", "SLC.json"}
    assert len(result.jobs) == stats.entries_requested
