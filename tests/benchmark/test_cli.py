"""`deepfrack benchmark` on the command line: bad input is one line and exit 2 with nothing written."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.benchmark.tables_io import read_json_tables, read_tables
from deepfrack.cli import main
from deepfrack.cost.table import CostTable
from deepfrack.cost.variants import Variant
from deepfrack.search import optimize, required_shapes
from deepfrack.search.synthetic import synthetic_table
from deepfrack.workload.loaders import load_workload

from tests.benchmark.conftest import ARCH, CONSTRAINTS, ERT, FAKE, MAPPER, WORKLOAD


def _invoke(tmp_path: Path, *extra: str, workload: Path = WORKLOAD, backend: str = FAKE):
    args = [
        "benchmark", "--workload", str(workload), "--arch", str(ARCH), "--constraints", str(CONSTRAINTS),
        "--backend", backend, "--jobs", "1", "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out"), *extra,
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
        f"deepfrack: note: {MAPPER}: the fake backend uses optimization-metrics (delay, energy) and ignores the "
        "Timeloop search options algorithm, live-status, max-permutations-per-if-visit, num-threads, timeout, "
        "victory-condition"
    ) in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["EWCC.json", "SLC.json", "costs.csv", "mappings.jsonl"]
    assert len(read_tables(tmp_path / "out")) == 216
    assert len(read_json_tables(tmp_path / "out")) == 216  # AlexNet's layers are square: the JSON has every entry


def _bad_file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_broken_arch_yaml(tmp_path: Path):
    arch = _bad_file(tmp_path, "arch.yaml", "architecture:\n  subtree: [\n    - name: x\n")
    r = CliRunner().invoke(main, [
        "benchmark", "--workload", str(WORKLOAD), "--arch", str(arch), "--backend", FAKE,
        "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "out"),
    ])
    _assert_one_line_error(r, str(arch), "malformed YAML")
    assert not (tmp_path / "out").exists() and not (tmp_path / "c.sqlite").exists()


def test_missing_ert_action(tmp_path: Path):
    doc = yaml.safe_load(ERT.read_text())
    for t in doc["ERT"]["tables"]:
        if t["name"].endswith("GlobalBuffer"):
            t["actions"] = [a for a in t["actions"] if a["name"] != "read"]
    ert = _bad_file(tmp_path, "ERT.yaml", yaml.safe_dump(doc))
    r = _invoke(tmp_path, "--ert", str(ert))
    _assert_one_line_error(r, f"{ert}: ERT.tables[System.ws.GlobalBuffer].actions: no read action for storage level GlobalBuffer")
    assert not (tmp_path / "out").exists()


def test_broken_mapper_yaml(tmp_path: Path):
    mapper = _bad_file(tmp_path, "mapper.yaml", "mapper:\n  optimization-metrics: [delay, speed]\n")
    r = _invoke(tmp_path, "--mapper", str(mapper))
    _assert_one_line_error(r, f"{mapper}: mapper.optimization-metrics: unknown metric 'speed'")


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
    assert [p.name for p in out.iterdir()] == ["costs.csv"] and (out / "costs.csv").read_text() == "previous run\n"


def test_unknown_variant_and_backend(tmp_path: Path):
    _assert_one_line_error(_invoke(tmp_path, "--variants", "SLC,XYZ"), "--variants", "unknown variant 'XYZ'")
    _assert_one_line_error(_invoke(tmp_path, backend="fastest"), "--backend", "unknown backend 'fastest'")
    _assert_one_line_error(_invoke(tmp_path, backend="no.such.module:make"), "--backend", "cannot import")


def test_needed_shapes_come_from_the_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    asked = {(0, Variant.Start): {(11, 11), (19, 19)}, (1, Variant.LBLC): {(8, 9)}, (3, Variant.EWCC): {(13, 13)}}
    seen = []
    monkeypatch.setattr("deepfrack.cli.benchmark_cmd.needed_shapes", lambda network, depth: seen.append(depth) or asked)
    r = _invoke(tmp_path, "--shapes", "needed", "--max-stack-depth", "3")
    assert r.exit_code == 0, r.output
    assert seen == [3]
    table = read_tables(tmp_path / "out" / "costs.csv")
    assert set(table) == {(0, Variant.Start, 11, 11), (0, Variant.Start, 19, 19), (1, Variant.LBLC, 8, 9), (3, Variant.EWCC, 13, 13)}


def test_failed_entries_exit_1_and_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_FAIL", "layer 4 (AlexNet_layer04), variant SLC, tile 13x13")
    r = _invoke(tmp_path, "--variants", "SLC")
    assert r.exit_code == 1
    assert "1 failed" in r.stderr and "run the same command again to retry them" in r.stderr
    assert "layer 4 (AlexNet_layer04), variant SLC, tile 13x13: failed: evaluator failed: RuntimeError" in r.stderr
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
    assert not any(v.on_chip[0] for (l, v, _, _) in table if l == 1)  # the pooling layer has no weights to cache

    full = synthetic_table(network, seed=5)  # every variant, every rectangle
    needed = CostTable({k: full.records[k] for k in keys}, source="needed")
    # unlimited capacity (one tile per stack is best here) and a capacity that makes the optimum tile
    # and cache: stacks 0-1 and 2-3 in rectangles, with cached weights
    small = CapacitySpec(home={"Weights": "WB", "Inputs": "GB", "Outputs": "GB"}, words={"WB": 1000, "GB": 150})
    for capacity in (None, small):
        best, _ = optimize(network, full, capacity, max_stack_depth=depth)
        got, stats = optimize(network, needed, capacity, max_stack_depth=depth)
        assert stats.tilings_skipped_missing == 0 and stats.tilings_considered > 0
        assert got.total == best.total
        assert [(s.first, s.last, s.tile_shape, s.cached_layers) for s in got.stacks] == \
            [(s.first, s.last, s.tile_shape, s.cached_layers) for s in best.stacks]
        assert any(s.first < s.last for s in got.stacks)  # the search fused something
    assert any(s.cached_layers and s.tile_shape[0] != s.tile_shape[1] for s in got.stacks)

    opt = CliRunner().invoke(main, [
        "optimize", "-w", str(net_file), "-t", str(tmp_path / "out"), "--capacity", "unlimited",
        *depth_args, "-o", str(tmp_path / "opt"),
    ])
    assert opt.exit_code == 0, opt.output
    assert (tmp_path / "opt" / "schedule.json").is_file()
