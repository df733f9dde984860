"""`deepfrack run`: benchmark the needed shapes with the built-in mapper, then search - end to end."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepfrack.benchmark.tables_io import read_tables
from deepfrack.cli import main
from deepfrack.residency import Variant
from tests.paths import EXAMPLES

SIMBA = EXAMPLES / "AlexNet_Simba/inputs/simba_like"

NET = """network: small
input: [16, 16]
layers:
  - {name: c1, C: 3, M: 16, R: 3, S: 3, P: 16, Q: 16, pad: 1}
  - {name: p1, type: pool, C: 16, R: 2, S: 2, P: 8, Q: 8, stride: 2}
  - {name: c2, C: 16, M: 32, R: 3, S: 3, P: 8, Q: 8, pad: 1}
"""


def test_run_benchmarks_then_searches(tmp_path: Path):
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    out = tmp_path / "out"
    args = [
        "run",
        "-w",
        str(net),
        "-a",
        str(SIMBA / "arch/simba_like.yaml"),
        "-c",
        str(SIMBA / "constraints"),
        "--jobs",
        "1",
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--max-stack-depth",
        "3",
        "-o",
        str(out),
    ]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "schedule.json").read_text())
    table = read_tables(out / "tables")
    # the baseline is the sum of the benchmarked SLC costs of each whole layer
    slc = sum(
        table.get(i, Variant.SLC, q, p).energy_pJ for i, (q, p) in enumerate([(16, 16), (8, 8), (8, 8)])
    )
    assert doc["layer_by_layer"]["energy_uJ"] == pytest.approx(
        slc * 1e-6, abs=1e-6
    )  # schedule.json keeps whole pJ
    assert doc["total"]["energy_uJ"] <= doc["layer_by_layer"]["energy_uJ"]
    assert doc["inputs"]["capacity"] == {"PEWeightBuffer": 524288, "GlobalBuffer": 65536}
    assert (
        doc["total"]["cycles"] is not None
        and doc["layer_by_layer"]["macs"] == 16 * 16 * 3 * 16 * 9 + 8 * 8 * 16 * 32 * 9
    )
    # every (layer, variant, shape) the schedule uses is in the benchmarked tables
    for st in doc["stacks"]:
        for sl in st["layers"]:
            for v, (_r, _c, h, w) in zip(sl["variant_per_tile"], sl["regions"]):
                assert table.get(sl["layer"], Variant(v), h, w) is not None
    # a second run is served from the cache and gives the same schedule
    res2 = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "again")], catch_exceptions=False)
    assert res2.exit_code == 0
    again = json.loads((tmp_path / "again/schedule.json").read_text())
    assert again["stacks"] == doc["stacks"] and again["total"] == doc["total"]
    assert "0 computed" in res2.output


def test_run_on_demand_and_exhaustive_agree(tmp_path: Path):
    """The default (on-demand) run and `--exhaustive` write the same schedule; the on-demand run's tables
    hold fewer entries (only those it costed)."""
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    common = ["-w", str(net), "-a", str(SIMBA / "arch/simba_like.yaml"), "-c", str(SIMBA / "constraints")]
    common += ["--jobs", "1", "--cache", str(tmp_path / "cache.sqlite"), "--no-progress"]
    docs, sizes = {}, {}
    for mode in ("on-demand", "exhaustive"):
        out = tmp_path / mode
        extra = ["--exhaustive"] if mode == "exhaustive" else []
        res = CliRunner().invoke(main, ["run", *common, *extra, "-o", str(out)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        doc = json.loads((out / "schedule.json").read_text())
        docs[mode] = {k: doc[k] for k in ("stacks", "total", "layer_by_layer")}
        sizes[mode] = len(read_tables(out / "tables"))
    assert docs["on-demand"] == docs["exhaustive"]
    assert sizes["on-demand"] < sizes["exhaustive"]


def test_run_stops_when_entries_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An entry whose evaluator fails stops the on-demand search: exit code 1, the failure named, nothing
    written (the entries costed so far stay cached)."""
    monkeypatch.setenv("FAKE_FAIL", "layer 2 (p1), variant SLC")
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    out = tmp_path / "out"
    args = [
        "run",
        "-w",
        str(net),
        "-a",
        str(SIMBA / "arch/simba_like.yaml"),
        "-c",
        str(SIMBA / "constraints"),
    ]
    args += ["--backend", "tests.benchmark.fake_backend:make", "--jobs", "1"]
    args += ["--cache", str(tmp_path / "cache.sqlite"), "--no-progress", "-o", str(out)]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 1
    assert "failed" in res.output and "not searching" in res.output
    assert "fake crash on layer 2 (p1), variant SLC" in res.output
    assert not out.exists()
