"""The runner with the fake backend: outputs, cache reuse, infeasible and failed entries, parallel runs."""

import csv
import dataclasses
import json
import multiprocessing
import time
from pathlib import Path

import pytest

from deepfrack.benchmark.cache import ResultCache
from deepfrack.benchmark.executors import LocalExecutor, SerialExecutor
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import enumerate_jobs, make_job
from deepfrack.benchmark.runner import BenchmarkSession, run_benchmark
from deepfrack.benchmark.tables_io import read_json_tables, read_tables
from deepfrack.residency import VARIANTS, Variant
from deepfrack.workload.loaders import load_network_yaml
from tests.benchmark.conftest import ARCH, CONSTRAINTS
from tests.benchmark.fake_backend import FakeBackend, fake_energy_pJ, make


@pytest.fixture
def setup(tiny_net: Path, tmp_path: Path):
    net = load_network_yaml(tiny_net)
    inputs = load_inputs(ARCH, constraints=CONSTRAINTS)
    return net, inputs, tmp_path


def _files(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


def test_outputs_and_reuse(setup):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square")
    backend = make(inputs)
    assert len(jobs) == 3 * 7 * 7
    with ResultCache(tmp / "c.sqlite") as cache:
        res = run_benchmark(jobs, backend, cache, out_dir=tmp / "out")
    s = res.summary
    # c2 and c3 have the same dimensions: their entries are computed once
    assert (s.entries, s.unique, s.computed, s.from_cache, s.infeasible, s.failed) == (147, 98, 98, 0, 0, 0)
    out = tmp / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{v.value}{s}.json" for v in VARIANTS for s in ("", "_cycles")] + ["costs.csv", "mappings.jsonl"]
    )

    # the original's JSON format: string keys, layers 1-based, square tiles only, energy in uJ
    slc = json.loads((out / "SLC.json").read_text())
    assert set(slc) == {"1", "2", "3"} and set(slc["1"]) == {str(t) for t in range(1, 7)}
    job = next(j for j in jobs if j.key == (1, Variant.SLC, 4, 4))
    assert slc["2"]["4"] == pytest.approx(fake_energy_pJ(job) * 1e-6, rel=1e-15)

    # costs.csv has every entry, rectangles included, and is what `optimize --tables` reads
    table = read_tables(out / "costs.csv")
    assert len(table) == 147 and not table.infeasible
    for j in jobs:
        rec = table.get(*j.key)
        assert rec.energy_pJ == pytest.approx(fake_energy_pJ(j), rel=1e-12)
        assert rec.macs == j.layer.macs_for(j.tile_h, j.tile_w)
        assert set(rec.level_energy_pJ) == {"MAC", "DRAM"}
    folder = read_tables(out)  # the folder reads as its CSV
    assert set(folder.records) == set(table.records) and folder.get(2, Variant.LBLC, 6, 8) is not None
    squares = read_json_tables(out)
    assert len(squares) == 3 * 7 * 6  # the JSON tables: the square tiles
    assert squares.get(0, Variant.WCC, 6, 6).energy_pJ == pytest.approx(
        table.get(0, Variant.WCC, 6, 6).energy_pJ
    )

    lines = [json.loads(x) for x in (out / "mappings.jsonl").read_text().splitlines()]
    assert len(lines) == 147
    assert lines[0] == {
        "layer": 1,
        "name": "c1",
        "variant": "SLC",
        "tile_h": 1,
        "tile_w": 1,
        "status": "ok",
        "energy_uJ": lines[0]["energy_uJ"],
        "cycles": lines[0]["cycles"],
        "mapping": [{"target": "DRAM", "type": "temporal", "factors": {"P": 1, "Q": 1}}],
    }

    # a re-run computes nothing and writes the same files
    first = _files(out)
    with ResultCache(tmp / "c.sqlite") as cache:
        again = run_benchmark(jobs, backend, cache, out_dir=out)
    assert (again.summary.computed, again.summary.from_cache) == (0, 98)
    assert _files(out) == first

    # an overlapping workload (one layer, two variants) reuses the entries too
    with ResultCache(tmp / "c.sqlite") as cache:
        part = run_benchmark(enumerate_jobs(net, "all", variants=["SLC", "WCC"]), backend, cache)
    assert part.summary.from_cache == 2 * 2 * 7  # the square tiles + whole planes of c1 and c2 (= c3)
    assert part.summary.computed == 2 * 2 * (48 - 7)


def test_changed_inputs_recompute(setup, tmp_path: Path):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square", variants=["WCC"])
    with ResultCache(tmp / "c.sqlite") as cache:
        run_benchmark(jobs, make(inputs), cache)
        other = tmp_path / "WCC.yaml"
        text = (CONSTRAINTS / "WCC.yaml").read_text()
        assert "keep: []\n      bypass: [Inputs, Outputs, Weights]" in text
        other.write_text(
            text.replace(
                "keep: []\n      bypass: [Inputs, Outputs, Weights]",
                "keep: [Weights]\n      bypass: [Inputs, Outputs]",
            )
        )
        folder = tmp_path / "cons"
        folder.mkdir()
        (folder / "WCC.yaml").write_text(other.read_text())
        changed = make(load_inputs(ARCH, constraints=folder, variants=[Variant.WCC]))
        res = run_benchmark(jobs, changed, cache)
    assert res.summary.from_cache == 0 and res.summary.computed == res.summary.unique


def test_infeasible_and_failed_entries(setup, monkeypatch: pytest.MonkeyPatch):
    net, inputs, tmp = setup
    # c1 has 216 weights, c2/c3 576: the weight-cached variants do not fit 300 words for c2/c3
    monkeypatch.setenv("FAKE_WEIGHT_CAPACITY", "300")
    monkeypatch.setenv("FAKE_FAIL", "layer 1 (c1), variant LBLC, tile 2x2")
    jobs = enumerate_jobs(net, "square")
    with ResultCache(tmp / "c.sqlite") as cache:
        res = run_benchmark(jobs, make(inputs), cache, out_dir=tmp / "out", batch_size=5)
    s = res.summary
    assert s.infeasible == 2 * 3 * 7 and s.failed == 1
    # grouped by cause: c2 and c3 share their dimensions (and so their entries), c1 fits
    assert len(s.causes[("infeasible", "576 weight words do not fit 300 on chip")]) == 42
    assert (
        "layer 2 (c2), variant WCC, tile 1x1"
        in s.causes[("infeasible", "576 weight words do not fit 300 on chip")]
    )
    (((_, reason), entries),) = [(k, e) for k, e in s.causes.items() if k[0] == "failed"]
    assert reason.startswith("evaluator failed: RuntimeError: fake crash") and entries == [
        "layer 1 (c1), variant LBLC, tile 2x2"
    ]
    text = s.text().splitlines()
    assert len(text) == 5  # counts, then the failed cause and the infeasible one, each with its entries
    assert text[1].startswith("  failed, 1 entry: evaluator failed: RuntimeError: fake crash")
    assert text[2] == "    layer 1 (c1), variant LBLC, tile 2x2"
    assert text[3] == "  infeasible, 42 entries: 576 weight words do not fit 300 on chip"
    assert text[4] == (
        "    e.g. layer 2 (c2), variant WCC, tile 1x1; layer 2 (c2), variant WCC, tile 2x2; "
        "layer 2 (c2), variant WCC, tile 3x3; ... (39 more)"
    )
    # the rest of the crashing job's batch was still computed
    assert res.outcomes[(0, Variant.LBLC, 3, 3)].status == "ok"
    rows = list(csv.DictReader((tmp / "out" / "costs.csv").open()))
    bad = [r for r in rows if r["status"] == "infeasible"]
    assert len(bad) == 43
    assert all(r["energy_uJ"] == r["cycles"] == r["macs"] == "" for r in bad)
    wcc = json.loads((tmp / "out" / "WCC.json").read_text())
    assert set(wcc) == {"1"}  # the JSON format cannot say infeasible: those entries are absent
    line = next(
        json.loads(x)
        for x in (tmp / "out" / "mappings.jsonl").read_text().splitlines()
        if '"c2","variant":"EWCC"' in x
    )
    assert line["status"] == "infeasible" and "do not fit" in line["reason"]

    # infeasible entries are cached, the failed one is retried
    monkeypatch.delenv("FAKE_FAIL")
    with ResultCache(tmp / "c.sqlite") as cache:
        again = run_benchmark(jobs, make(inputs), cache)
    assert (again.summary.computed, again.summary.failed, again.summary.infeasible) == (1, 0, 42)


def test_worker_processes_give_the_same_tables(setup):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square", variants=["SLC", "Start", "EWCC"])
    backend = make(inputs)
    with ResultCache(tmp / "serial.sqlite") as cache:
        serial = run_benchmark(jobs, backend, cache, SerialExecutor(), out_dir=tmp / "serial")
    with ResultCache(tmp / "parallel.sqlite") as cache:
        parallel = run_benchmark(
            jobs, backend, cache, LocalExecutor(2), out_dir=tmp / "parallel", batch_size=4
        )
    assert parallel.summary.workers == 2 and parallel.summary.computed == serial.summary.computed
    assert _files(tmp / "serial") == _files(tmp / "parallel")


def test_closing_the_stream_terminates_the_workers(setup):
    net, inputs, _ = setup
    jobs = enumerate_jobs(net, "square", variants=["SLC"])
    backend = FakeBackend(inputs_digest={v.value: inputs.content(v) for v in VARIANTS}, delay_s=1.0)
    # worker A: one job (1 s); worker B: twenty jobs (20 s), still busy when A's result arrives
    stream = LocalExecutor(2).run(backend, [jobs[:1], jobs[1:21]])
    index, outcomes = next(stream)
    assert index == 0 and outcomes[0].status == "ok" and len(multiprocessing.active_children()) == 2
    stream.close()  # what an exception or Ctrl-C in the consumer does
    # B is gone long before its batch (20 jobs x 1 s) could have finished (the pool's own thread may
    # reap it first, so the state can lag; a loaded machine may take a while: poll up to 15 s)
    deadline = time.monotonic() + 15.0
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert multiprocessing.active_children() == []


class _TwoWorkersInTurn:
    """An executor that sizes batches for two workers but runs them here in turn, recording each batch's
    entries."""

    workers = 2

    def __init__(self):
        self.batches: list[list[tuple]] = []

    def run(self, backend, batches):
        self.batches += [[j.key for j in b] for b in batches]
        yield from SerialExecutor().run(backend, batches)


def test_batches_hold_whole_tiles_about_four_per_worker(setup):
    """A tile's variants are mapped together, so batches are cut between tiles and balanced by tiles: a
    tile asked for in one variant weighs as much as one asked for in seven."""
    net, inputs, tmp = setup
    # 24 tiles of c1: the 6 of width 1 in all seven variants, the other 18 in one
    jobs = [
        make_job(net, 0, v, h, w)
        for h in range(1, 7)
        for w in range(1, 5)
        for v in (VARIANTS if w == 1 else VARIANTS[:1])
    ]
    for batch_size, most_tiles, n_batches in ((None, 3, 8), (8, 3, 9)):
        backend = dataclasses.replace(make(inputs), batch_size=batch_size)
        executor = _TwoWorkersInTurn()
        with (
            ResultCache(tmp / f"b{batch_size}.sqlite") as cache,
            BenchmarkSession(backend, cache, executor) as session,
        ):
            outcomes = session.cost(jobs)
        assert set(outcomes) == {j.key for j in jobs}
        tiles = [[(l, h, w) for l, _, h, w in b] for b in executor.batches]
        whole = [dict.fromkeys(t) for t in tiles]
        assert sum(len(t) for t in whole) == 24  # no tile in two batches
        assert max(len(t) for t in whole) == most_tiles and len(tiles) == n_batches
        if batch_size is not None:  # the backend's size: a batch takes no tile once it is full
            assert all(len(t) - t.count(t[-1]) < batch_size for t in tiles)
