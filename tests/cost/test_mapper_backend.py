"""`deepfrack benchmark --backend builtin`: the mapper wired into the benchmarker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepfrack.benchmark.builtin import BuiltinBackend, make_builtin_backend
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import make_job
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.cli import main
from deepfrack.cost.mapper import LayerMapper, MapperOptions
from deepfrack.cost.mapping import mapping_from_directives
from deepfrack.cost.model import LayerModel
from deepfrack.objective import Objective
from deepfrack.residency import Variant
from deepfrack.workload.layer import Layer, Network
from tests.benchmark.conftest import ARCH, CONSTRAINTS, ERT, MAPPER, TINY_NET


def test_cli_builtin_end_to_end(tmp_path: Path):
    net = tmp_path / "tiny.yaml"
    net.write_text(TINY_NET)
    args = [
        "benchmark",
        "--workload",
        str(net),
        "--arch",
        str(ARCH),
        "--constraints",
        str(CONSTRAINTS),
        "--mapper",
        str(MAPPER),
        "--ert",
        str(ERT),
        "--variants",
        "SLC,WCC",
        "--jobs",
        "1",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(tmp_path / "out"),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert (
        "the builtin backend uses optimization-metrics (delay, energy) "
        "and ignores the Timeloop search options"
    ) in r.stderr
    # 3 layers x (6 square tiles + the whole 6 x 8 plane) x 2 variants; c2 and c3 share their entries
    table = read_tables(tmp_path / "out")
    assert len(table) == 3 * 7 * 2
    rec = table.get(1, Variant.WCC, 6, 8)
    assert rec is not None and rec.energy_pJ > 0 and rec.cycles > 0 and rec.macs == 6 * 8 * 8 * 8 * 9
    # the mapping recorded is one the model scores to the same numbers
    rows = [json.loads(x) for x in (tmp_path / "out" / "mappings.jsonl").read_text().splitlines()]
    row = next(
        x for x in rows if x["layer"] == 2 and x["variant"] == "WCC" and x["tile_h"] == 6 and x["tile_w"] == 8
    )
    inputs = load_inputs(ARCH, None, CONSTRAINTS, MAPPER, ERT)
    layer = Layer("c2", C=8, M=8, P=8, Q=6, R=3, S=3)
    m = mapping_from_directives(row["mapping"], inputs.architecture, layer)
    res = LayerModel(inputs.architecture, inputs.energy_table, layer).evaluate(m)
    assert res.valid and res.energy_pJ == pytest.approx(rec.energy_pJ) and res.cycles == rec.cycles
    # a second run is served from the cache
    r2 = CliRunner().invoke(main, args)
    assert r2.exit_code == 0 and "0 computed" in r2.stderr


def test_backend_matches_the_mapper_and_shares_work():
    inputs = load_inputs(ARCH, None, CONSTRAINTS, MAPPER, ERT)
    be = make_builtin_backend(inputs)
    assert isinstance(be, BuiltinBackend)
    assert be.fingerprint(Variant.SLC) != be.fingerprint(Variant.WCC)
    layer = Layer("conv3", C=256, M=384, P=13, Q=13, R=3, S=3)
    net = Network.chain("n", [layer])
    jobs = [make_job(net, 0, v, 5, 5) for v in (Variant.SLC, Variant.LBLC, Variant.WCC)]
    ev = be.evaluator()
    out = ev.evaluate(jobs)
    assert [o.status for o in out] == ["ok"] * 3
    assert len(ev.mappers) == 1  # one mapper (one search per tile) for all variants
    from deepfrack.arch import load_variant_folder

    variants = load_variant_folder(CONSTRAINTS, inputs.architecture)
    direct = LayerMapper(
        inputs.architecture,
        inputs.energy_table,
        layer,
        variants,
        MapperOptions(objective=Objective.parse(["delay", "energy"])),
    ).map(5, 5)
    for job, o in zip(jobs, out):
        assert o.record.energy_pJ == direct[job.variant.value].energy_pJ


def test_backend_without_ert_uses_the_builtin_energy_table(tmp_path: Path):
    inputs = load_inputs(ARCH, None, CONSTRAINTS, MAPPER, None)
    ev = make_builtin_backend(inputs).evaluator()
    net = Network.chain("n", [Layer("c", C=16, M=16, P=4, Q=4, R=3, S=3)])
    o = ev.evaluate([make_job(net, 0, Variant.SLC, 4, 4)])[0]
    assert o.status == "ok"
    with_ert = make_builtin_backend(load_inputs(ARCH, None, CONSTRAINTS, MAPPER, ERT)).evaluator()
    o2 = with_ert.evaluate([make_job(net, 0, Variant.SLC, 4, 4)])[0]
    assert o.record.energy_pJ != o2.record.energy_pJ  # DRAM at 240 pJ per word, not the ERT's 1 pJ


def test_every_layer_of_the_example_networks_gets_a_cost(tmp_path: Path):
    from deepfrack.workload.loaders import load_workload

    inputs = load_inputs(ARCH, None, CONSTRAINTS, MAPPER, ERT)
    ev = make_builtin_backend(inputs).evaluator()
    for name in ("alexnet.yaml", "vgg16.yaml"):
        net = load_workload(Path(__file__).resolve().parents[2] / "examples" / "networks" / name)
        jobs = [make_job(net, i, Variant.SLC, 2, 2) for i in range(len(net.layers))]
        out = ev.evaluate(jobs)
        assert all(o.status == "ok" for o in out), [
            (j.describe(), o.reason) for j, o in zip(jobs, out) if o.status != "ok"
        ]


def test_unsatisfiable_entry_is_infeasible_not_an_exception(tmp_path: Path):
    bad = tmp_path / "cons"
    bad.mkdir()
    for f in CONSTRAINTS.iterdir():
        (bad / f.name).write_text(f.read_text())
    (bad / "extra.yaml").write_text(
        "mapspace_constraints:\n  targets:\n    - {target: DRAM, type: temporal, factors: M=5}\n"
    )
    inputs = load_inputs(ARCH, None, bad, MAPPER, ERT)
    ev = make_builtin_backend(inputs).evaluator()
    net = Network.chain("n", [Layer("c", C=16, M=16, P=4, Q=4, R=3, S=3)])
    o = ev.evaluate([make_job(net, 0, Variant.SLC, 4, 4)])[0]
    assert o.status == "infeasible" and "M=16" in o.reason
