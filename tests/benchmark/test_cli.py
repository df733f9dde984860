"""`deepfrack benchmark` on the command line: bad input is one line and exit 2 with nothing written."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.benchmark.tables_io import read_json_tables, read_tables
from deepfrack.cli import main
from deepfrack.cost.table import CostTable
from deepfrack.residency import Variant
from deepfrack.search import optimize, required_shapes
from deepfrack.workload.loaders import load_workload
from tests.benchmark.conftest import ARCH, CONSTRAINTS, ERT, FAKE, MAPPER, WORKLOAD
from tests.synthetic import synthetic_table


def _invoke(tmp_path: Path, *extra: str, workload: Path = WORKLOAD, backend: str = FAKE):
    args = [
        "benchmark",
        "--workload",
        str(workload),
        "--arch",
        str(ARCH),
        "--constraints",
        str(CONSTRAINTS),
        "--backend",
        backend,
        "--jobs",
        "1",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]
    return CliRunner().invoke(main, args)


def _assert_one_line_error(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: "), result.stderr
    for w in words:
        assert w in lines[0]
    return lines[0]


def test_fake_backend_end_to_end(tmp_path: Path):
    r = _invoke(tmp_path, "--variants", "SLC,EWCC", "--mapper", str(MAPPER), "--ert", str(ERT))
    assert r.exit_code == 0, r.output
    assert "216 entries (216 distinct): 216 computed, 0 from cache, 0 infeasible, 0 failed" in r.stderr
    assert (
        f"deepfrack: note: {MAPPER}: the fake backend uses optimization-metrics (delay, energy) "
        "and ignores the Timeloop search options algorithm, live-status, "
        "max-permutations-per-if-visit, num-threads, timeout, victory-condition"
    ) in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "EWCC.json",
        "EWCC_cycles.json",
        "SLC.json",
        "SLC_cycles.json",
        "costs.csv",
        "mappings.jsonl",
    ]
    assert len(read_tables(tmp_path / "out")) == 216
    json_tables = read_json_tables(tmp_path / "out")
    assert len(json_tables) == 216  # AlexNet's layers are square: the JSON has every entry
    csv_table = read_tables(tmp_path / "out")
    assert all(json_tables.get(*k).cycles == r.cycles for k, r in csv_table.items())  # cycles come back too


def _bad_file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_broken_arch_yaml(tmp_path: Path):
    arch = _bad_file(tmp_path, "arch.yaml", "architecture:\n  subtree: [\n    - name: x\n")
    r = CliRunner().invoke(
        main,
        [
            "benchmark",
            "--workload",
            str(WORKLOAD),
            "--arch",
            str(arch),
            "--backend",
            FAKE,
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    _assert_one_line_error(r, str(arch), "malformed YAML")
    assert not (tmp_path / "out").exists() and not (tmp_path / "c.sqlite").exists()


def _ert_without(tmp_path: Path, name: str, component: str, action: str | None = None) -> Path:
    """The reference ERT without one action of a component (or without the component's table)."""
    doc = yaml.safe_load(ERT.read_text())
    tables = doc["ERT"]["tables"]
    if action is None:
        doc["ERT"]["tables"] = [t for t in tables if not t["name"].endswith(component)]
    else:
        for t in tables:
            if t["name"].endswith(component):
                t["actions"] = [a for a in t["actions"] if a["name"] != action]
    return _bad_file(tmp_path, name, yaml.safe_dump(doc))


def _run_builtin(tmp_path: Path, net: Path, out: str, *extra: str):
    return CliRunner().invoke(
        main,
        [
            "benchmark",
            "--workload",
            str(net),
            "--arch",
            str(ARCH),
            "--constraints",
            str(CONSTRAINTS),
            "--jobs",
            "1",
            "--cache",
            str(tmp_path / f"{out}.sqlite"),
            "--out",
            str(tmp_path / out),
            *extra,
        ],
    )


def test_an_ert_without_dram_still_serves_wcc(tmp_path: Path, tiny_net: Path):
    # WCC keeps nothing in DRAM: its entries need no DRAM energy; every other variant's mapping uses DRAM
    ert = _ert_without(tmp_path, "ERT.yaml", "System.DRAM")
    r = _run_builtin(tmp_path, tiny_net, "out", "--ert", str(ert))
    assert r.exit_code == 0, r.output
    table = read_tables(tmp_path / "out")
    assert {v for (_, v, _, _) in table} == {Variant.WCC} and len(table) == 3 * 7
    assert {v for (_, v, _, _) in table.infeasible} == set(Variant) - {Variant.WCC}
    cause = f"{ert}: ERT.tables[System.DRAM]: no entry for storage level DRAM"
    lines = r.stderr.splitlines()
    assert f"  infeasible, 126 entries: its mapping needs an action the energy table lacks: {cause}" in lines
    assert sum(line.startswith("  infeasible,") for line in lines) == 1  # one cause, printed once
    assert all(
        cause in json.loads(x).get("reason", cause) for x in (tmp_path / "out" / "mappings.jsonl").open()
    )
    # the WCC entries are what the complete ERT gives: DRAM's energies do not enter them
    full = _run_builtin(tmp_path, tiny_net, "full", "--ert", str(ERT), "--variants", "WCC")
    assert full.exit_code == 0, full.output
    assert read_tables(tmp_path / "full").records == table.records


def test_a_missing_action_makes_infeasible_only_what_needs_it(tmp_path: Path, tiny_net: Path):
    # no read energy for the weights' PE buffer: every mapping of a conv reads its weights there
    ert = _ert_without(tmp_path, "ERT.yaml", "PEWeightBuffer[0..7]", "read")
    r = _run_builtin(tmp_path, tiny_net, "out", "--ert", str(ert), "--variants", "SLC,WCC")
    assert r.exit_code == 0, r.output
    cause = (
        f"{ert}: ERT.tables[System.ws.PE[0..15].PEWeightBuffer[0..7]].actions: "
        "no read action (random_read or read or access) for storage level PEWeightBuffer (have: idle, write)"
    )
    assert (
        f"  infeasible, 42 entries: its mapping needs an action the energy table lacks: {cause}"
        in r.stderr.splitlines()
    )
    assert len(read_tables(tmp_path / "out")) == 0


def test_an_ert_without_mac_energy_still_serves_pooling(tmp_path: Path):
    # a pooling layer is costed without MACs: it needs no compute energy, the convolutions do
    net = _bad_file(tmp_path, "small.yaml", SMALL_NET)
    ert = _ert_without(tmp_path, "ERT.yaml", "LMAC[0..63]", "compute")
    r = _run_builtin(tmp_path, net, "out", "--ert", str(ert), "--variants", "SLC")
    assert r.exit_code == 0, r.output
    table = read_tables(tmp_path / "out")
    assert {l for (l, _, _, _) in table} == {1} and {l for (l, _, _, _) in table.infeasible} == {0, 2, 3}
    assert "no compute action (mac_random or mult_random or mac or mult or compute) for LMAC" in r.stderr


def test_broken_mapper_yaml(tmp_path: Path, tiny_net: Path):
    # it parses, but its settings are unusable: every entry is infeasible with the cause, once in the summary
    mapper = _bad_file(tmp_path, "mapper.yaml", "mapper:\n  optimization-metrics: [delay, speed]\n")
    r = _run_builtin(tmp_path, tiny_net, "out", "--mapper", str(mapper))
    assert r.exit_code == 0, r.output
    cause = f"unusable mapper settings: {mapper}: mapper.optimization-metrics: unknown metric 'speed'"
    infeasible = [line for line in r.stderr.splitlines() if line.startswith("  infeasible,")]
    assert len(infeasible) == 1 and infeasible[0].startswith(f"  infeasible, 147 entries: {cause}")
    table = read_tables(tmp_path / "out")
    assert len(table) == 0 and len(table.infeasible) == 147
    # the same with the Timeloop-only options wrongly typed, and an empty file
    for text, words in [
        ("mapper:\n  timeout: soon\n", "mapper.timeout: must be an integer"),
        ("", "empty file"),
    ]:
        mapper.write_text(text)
        r = _run_builtin(tmp_path, tiny_net, "out", "--mapper", str(mapper), "--variants", "SLC")
        assert (
            r.exit_code == 0 and f"infeasible, 21 entries: unusable mapper settings: {mapper}" in r.stderr
        ), r.output
        assert words in r.stderr


def test_a_mapper_yaml_that_does_not_parse_stops_the_run(tmp_path: Path):
    mapper = _bad_file(tmp_path, "mapper.yaml", "mapper:\n  optimization-metrics: [delay\n")
    _assert_one_line_error(
        _invoke(tmp_path, "--mapper", str(mapper)), f"{mapper}: line 3, column 1: malformed YAML"
    )
    assert not (tmp_path / "out").exists()
    _assert_one_line_error(
        _invoke(tmp_path, "--mapper", str(tmp_path / "none.yaml")), "none.yaml", "not found"
    )


def test_an_ert_that_is_not_an_ert_stops_the_run(tmp_path: Path):
    ert = _bad_file(
        tmp_path,
        "ERT.yaml",
        "ERT:\n  version: 0.3\n  tables:\n    - name: System.DRAM\n      actions:\n"
        "        - {name: read, energy: fast}\n",
    )
    _assert_one_line_error(_invoke(tmp_path, "--ert", str(ert)), f"{ert}: ERT.tables[0].actions[0].energy")
    assert not (tmp_path / "out").exists()


def test_non_positive_layer_dimension(tmp_path: Path):
    net = _bad_file(tmp_path, "net.yaml", "network: n\nlayers:\n  - {name: a, C: 3, M: 0, P: 4, Q: 4}\n")
    r = _invoke(tmp_path, workload=net)
    _assert_one_line_error(r, f"{net}: layers[0].M: must be positive, got 0")


def test_nothing_is_touched_in_an_existing_output_folder(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "costs.csv").write_text("previous run\n")
    net = _bad_file(tmp_path, "net.yaml", "network: n\nlayers:\n  - {name: a, C: 3, M: 4, P: -4, Q: 4}\n")
    _assert_one_line_error(_invoke(tmp_path, workload=net), "layers[0].P")
    assert [p.name for p in out.iterdir()] == ["costs.csv"] and (
        out / "costs.csv"
    ).read_text() == "previous run\n"


def test_unknown_variant_and_backend(tmp_path: Path):
    _assert_one_line_error(_invoke(tmp_path, "--variants", "SLC,XYZ"), "--variants", "unknown variant 'XYZ'")
    _assert_one_line_error(_invoke(tmp_path, backend="fastest"), "--backend", "unknown backend 'fastest'")
    _assert_one_line_error(_invoke(tmp_path, backend="no.such.module:make"), "--backend", "cannot import")


def test_needed_shapes_come_from_the_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    asked = {
        (0, Variant.Start, 11, 11),
        (0, Variant.Start, 19, 19),
        (1, Variant.LBLC, 8, 9),
        (3, Variant.EWCC, 13, 13),
    }
    seen = []
    monkeypatch.setattr(
        "deepfrack.api.required_shapes",
        lambda network, depth, capacity: seen.append((depth, capacity)) or asked,
    )
    r = _invoke(tmp_path, "--shapes", "needed", "--max-stack-depth", "3")
    assert r.exit_code == 0, r.output
    assert seen == [(3, None)]  # `benchmark` costs every tiling's shapes: it knows no capacity
    table = read_tables(tmp_path / "out" / "costs.csv")
    assert set(table) == {
        (0, Variant.Start, 11, 11),
        (0, Variant.Start, 19, 19),
        (1, Variant.LBLC, 8, 9),
        (3, Variant.EWCC, 13, 13),
    }


def test_failed_entries_exit_1_and_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_FAIL", "layer 4 (AlexNet_layer04), variant SLC, tile 13x13")
    r = _invoke(tmp_path, "--variants", "SLC")
    assert r.exit_code == 1
    assert "1 failed" in r.stderr and "run the same command again to retry them" in r.stderr
    assert "  failed, 1 entry: evaluator failed: RuntimeError" in r.stderr
    assert "\n    layer 4 (AlexNet_layer04), variant SLC, tile 13x13\n" in r.stderr
    table = read_tables(tmp_path / "out" / "costs.csv")
    assert (3, Variant.SLC, 13, 13) in table.infeasible and len(table) == 107


# Padding (symmetric and not), a stride-2 conv, a pooling layer without weights, planes that are not square.
SMALL_NET = """\
network: small
input: [19, 23]
layers:
  - {name: c1, type: conv, C: 3, M: 4, R: 3, S: 3, P: 12, Q: 10, stride: 2, pad: [1, 1, 1, 1]}
  - {name: p1, type: pool, C: 4, R: 3, S: 3, P: 5, Q: 4, stride: 2}
  - {name: c2, type: conv, C: 4, M: 8, R: 3, S: 3, P: 5, Q: 4, pad: [1, 1, 1, 1]}
  - {name: c3, type: conv, C: 8, M: 6, R: 3, S: 3, P: 4, Q: 3, pad: [1, 0, 1, 0]}
"""


@pytest.mark.parametrize("depth", [None, 2])
def test_needed_shapes_feed_optimize(tmp_path: Path, depth: int | None):
    # benchmark exactly what the search asks for, then optimize from those tables: no entry is missing,
    # and the optimum is the one a table of every rectangle gives
    net_file = _bad_file(tmp_path, "small.yaml", SMALL_NET)
    network = load_workload(net_file)
    depth_args = ["--max-stack-depth", str(depth)] if depth else []
    r = _invoke(tmp_path, "--shapes", "needed", *depth_args, workload=net_file)
    assert r.exit_code == 0, r.output
    table = read_tables(tmp_path / "out")
    keys = set(table) | table.infeasible
    assert keys == required_shapes(network, depth)
    for i, layer in enumerate(network.layers):
        assert (i, Variant.SLC, layer.Q, layer.P) in table  # the layer-by-layer baseline
    assert any(h != w for (_, _, h, w) in table)  # regions are rectangles, not only squares
    assert (3, Variant.Start, 3, 4) not in table  # the last layer is never a stack's first
    assert not any(
        v.on_chip[0] for (l, v, _, _) in table if l == 1
    )  # the pooling layer has no weights to cache

    full = synthetic_table(network, seed=5)  # every variant, every rectangle
    needed = CostTable({k: full.records[k] for k in keys}, source="needed")
    # unlimited capacity (one tile per stack is best here) and a capacity that makes the optimum tile
    # and cache: stacks 0-1 and 2-3 in rectangles, with cached weights
    small = CapacitySpec(
        home={"Weights": "WB", "Inputs": "GB", "Outputs": "GB"}, words={"WB": 1000, "GB": 150}
    )
    for capacity in (None, small):
        best, _ = optimize(network, full, capacity, max_stack_depth=depth)
        got, stats = optimize(network, needed, capacity, max_stack_depth=depth)
        assert stats.tilings_skipped_missing == 0 and stats.tilings_considered > 0
        assert got.total == best.total
        assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == [
            (s.first, s.last, s.tile_shape, s.cached_layers) for s in best.stacks
        ]
        assert any(s.first < s.last for s in got.stacks)  # the search fused something
    assert any(s.cached_layers and s.tile_shape[0] != s.tile_shape[1] for s in got.stacks)

    opt = CliRunner().invoke(
        main,
        [
            "optimize",
            "-w",
            str(net_file),
            "-t",
            str(tmp_path / "out"),
            "--capacity",
            "unlimited",
            *depth_args,
            "-o",
            str(tmp_path / "opt"),
        ],
    )
    assert opt.exit_code == 0, opt.output
    assert (tmp_path / "opt" / "schedule.json").is_file()
