"""write_stats and `deepfrack stats`: the files, the page, the pictures, and bad input."""

from __future__ import annotations

import base64
import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepfrack.benchmark.tables_io import read_csv_table, read_tables, table_to_csv, write_csv_table
from deepfrack.cli import main
from deepfrack.rect import Rect
from deepfrack.search import evaluate, optimize
from deepfrack.search.schedule import StackSpec
from deepfrack.search.schedule_io import schedule_to_dict, schedule_to_json
from deepfrack.stats.pictures import coverage, numbered_tiles
from deepfrack.stats.report import render_log
from deepfrack.stats.write import write_stats
from deepfrack.workload.layer import Layer, Network
from deepfrack.workload.loaders import load_workload
from tests.paths import EXAMPLES
from tests.stats.helpers import split_table

ALEX = EXAMPLES / "AlexNet_Simba"
PNG = b"\x89PNG\r\n\x1a\n"


def small_net() -> Network:
    return Network.chain(
        "small",
        [
            Layer("c1", C=3, M=4, P=12, Q=10, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("c2", C=4, M=4, P=12, Q=10, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("p1", C=4, M=4, P=6, Q=5, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max"),
            Layer("c3", C=4, M=6, P=6, Q=5, R=3, S=3, pad=(1, 1, 1, 1)),
        ],
    )


SPECS = [StackSpec(0, 2, (2, 3), (0, 1)), StackSpec(3, 3, (5, 6))]


class Page(HTMLParser):
    """The images, links and data-value cells of a page, by id."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.values: dict[str, str] = {}
        self.tables: dict[str, list[str]] = {}
        self._table: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.links.append(a[key])
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        if "data-value" in a:
            if "id" in a:
                self.values[a["id"]] = a["data-value"]
            elif self._table is not None:
                self.tables[self._table].append(a["data-value"])


def write(tmp_path: Path, table, specs=SPECS, net=None):
    net = net or small_net()
    schedule = evaluate(net, table, specs)
    out = tmp_path / "stats"
    result = write_stats(out, schedule, net, table, {"workload": "small.yaml", "tables": "t"})
    return out, result, schedule_to_dict(schedule, net, {}), schedule, net


def test_the_page_parses_embeds_every_picture_and_gives_schedule_json_numbers(tmp_path: Path):
    table = split_table(small_net(), seed=4)
    out, result, doc, _, _ = write(tmp_path, table)
    names = {p.name for p in result.files}
    assert names == {
        "components.csv",
        "summary.csv",
        "report.html",
        "report.md",
        "energy_levels.png",
        "energy.png",
        "dram_traffic.png",
        "tiles_stack0.png",
    }
    assert result.skipped == []
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary left behind
    page = Page()
    page.feed((out / "report.html").read_text())
    assert len(page.images) == 4
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert page.links == []  # nothing to fetch: the page opens from disk
    v = page.values
    assert float(v["fused-energy"]) == doc["total"]["energy_uJ"]
    assert float(v["layer-by-layer-energy"]) == doc["layer_by_layer"]["energy_uJ"]
    assert float(v["reduction"]) == doc["reduction_pct"]
    assert float(v["recompute"]) == doc["recompute_pct"]
    assert int(v["fused-macs"]) == doc["total"]["macs"]
    assert float(v["fused-cycles"]) == doc["total"]["cycles"]
    stack_values = page.tables["stacks"]  # per stack: fused uJ, layer-by-layer uJ, recomputed MACs
    assert [float(x) for x in stack_values[0::3]] == [s["energy_uJ"] for s in doc["stacks"]]
    md = (out / "report.md").read_text()
    assert f"{doc['total']['energy_uJ']:,.2f} µJ" in md and "![" in md
    for name in names - {"components.csv", "summary.csv", "report.html", "report.md"}:
        assert (out / name).read_bytes().startswith(PNG)
        assert f"]({name})" in md


def test_components_csv_adds_up_to_schedule_json(tmp_path: Path):
    table = split_table(small_net(), seed=5)
    out, _, doc, _, _ = write(tmp_path, table)
    with (out / "components.csv").open() as f:
        rows = list(csv.DictReader(f))
    for name, key in (("fused", "total"), ("layer_by_layer", "layer_by_layer")):
        mine = [r for r in rows if r["schedule"] == name]
        energy_uJ = sum(float(r["energy_pJ_total"]) for r in mine) * 1e-6
        assert energy_uJ == pytest.approx(doc[key]["energy_uJ"], rel=1e-9, abs=1e-6)
        assert sum(int(r["macs"]) for r in mine) == doc[key]["macs"]
        assert sum(float(r["cycles"]) for r in mine) == pytest.approx(doc[key]["cycles"], rel=1e-9)
    for k, stack in enumerate(doc["stacks"]):
        mine = [r for r in rows if r["schedule"] == "fused" and r["stack"] == str(k)]
        assert sum(float(r["energy_pJ_total"]) for r in mine) * 1e-6 == pytest.approx(
            stack["energy_uJ"], rel=1e-9, abs=1e-6
        )


def test_json_tables_skip_the_pictures_that_need_a_split(tmp_path: Path):
    net = load_workload(ALEX / "inputs/AlexNet")
    table = read_tables(ALEX / "cost-tables")
    schedule = evaluate(net, table, [StackSpec(0, 3, (13, 13))], rule="legacy")
    result = write_stats(tmp_path / "s", schedule, net, table, {})
    assert result.skipped == [
        "energy_levels.png not drawn: the cost tables give each entry's total energy only, "
        "no per-level split",
        "dram_traffic.png not drawn: the cost tables give no DRAM access counts",
    ]
    names = {p.name for p in result.files}
    assert "energy_levels.png" not in names and "dram_traffic.png" not in names
    assert "tiles_stack0.png" in names
    html = (tmp_path / "s/report.html").read_text()
    assert "Not drawn: Energy by memory level" in html and "per-level energy unavailable" in html
    header = (tmp_path / "s/components.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "note" and "energy_pJ_total" in header
    # legacy tiles leave most of layer 1 uncomputed: the picture says so rather than failing
    assert (tmp_path / "s/tiles_stack0.png").read_bytes().startswith(PNG)


def test_the_log_states_the_compute_order_and_the_recompute():
    net = small_net()
    table = split_table(net, seed=6)
    schedule = evaluate(net, table, SPECS)
    log = render_log(schedule, net, {}, None, 0.0)
    assert log.count("compute order: row-major from the top-left") == 1  # the one multi-layer stack
    extra = schedule.stacks[0].macs - sum(net.layers[l].macs for l in range(3))
    assert extra > 0 and f"recomputed MACs (halo): {extra:,}" in log


def test_coverage_counts_every_region():
    rng = np.random.default_rng(0)
    regions = []
    for _ in range(30):
        r, c = (int(x) for x in rng.integers(0, 9, 2))
        regions.append(Rect(r, c, int(rng.integers(1, 10 - r)), int(rng.integers(1, 10 - c))))
    brute = np.zeros((9, 9), dtype=int)
    for g in regions:
        brute[g.row : g.row + g.h, g.col : g.col + g.w] += 1
    assert (coverage((9, 9), regions) == brute).all()


def test_many_tiles_number_one_per_row():
    tiles = [Rect(r, c, 2, 2) for r in range(0, 224, 2) for c in range(0, 224, 2)]
    chosen, size = numbered_tiles(tiles, (400.0, 400.0), (224, 224))
    assert size >= 6 and 0 in chosen and len(tiles) - 1 in chosen and len(chosen) < 112
    few = [Rect(r, c, 56, 56) for r in range(0, 224, 56) for c in range(0, 224, 56)]
    chosen, size = numbered_tiles(few, (400.0, 400.0), (224, 224))
    assert chosen == list(range(16)) and size >= 6


def test_costs_csv_carries_dram_words(tmp_path: Path):
    table = split_table(small_net(), seed=1)
    text = table_to_csv(table)
    assert "dram_reads_Weights" in text.splitlines()[0]
    p = tmp_path / "costs.csv"
    write_csv_table(table, p)
    back = read_csv_table(p)
    for key, rec in table.items():
        assert back.records[key].dram_words() == rec.dram_words()
        assert list(back.records[key].level_energy_pJ) == list(rec.level_energy_pJ)
    # a file without the columns reads as before: no DRAM counts
    old = "\n".join(
        line.split(",dram_reads_Weights")[0] if i == 0 else ",".join(line.split(",")[:-6])
        for i, line in enumerate(text.splitlines())
    )
    p.write_text(old + "\n")
    assert all(r.dram_words() is None for r in read_csv_table(p).records.values())


# --------------------------------------------------------------------------------------------- #
# the command
# --------------------------------------------------------------------------------------------- #
def run(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """A schedule.json and the costs.csv it was made from."""
    folder = tmp_path_factory.mktemp("made")
    net = small_net()
    table = split_table(net, seed=9)
    write_csv_table(table, folder / "costs.csv")
    table = read_tables(folder / "costs.csv")
    schedule, _ = optimize(net, table)
    (folder / "schedule.json").write_text(schedule_to_json(schedule, net, {"workload": "small.yaml"}))
    net_yaml = folder / "small.yaml"
    net_yaml.write_text(
        "network: small\nlayers:\n"
        + "".join(
            f"  - {{name: {x.name}, type: {x.kind}, C: {x.C}, M: {x.M}, R: {x.R}, S: {x.S}, P: {x.P}, "
            f"Q: {x.Q}, Wstride: {x.Wstride}, Hstride: {x.Hstride}, pad: {list(x.pad)}"
            + (f", pool: {x.pool}" if x.pool else "")
            + "}\n"
            for x in net.layers
        )
    )
    return folder


def test_stats_command(made: Path, tmp_path: Path):
    res = run(["stats", "-s", made / "schedule.json", "-t", made / "costs.csv", "-o", tmp_path / "a"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a/report.html").is_file() and (tmp_path / "a/components.csv").is_file()
    res = run(
        ["stats", "-s", made / "schedule.json", "-t", made, "-w", made / "small.yaml", "-o", tmp_path / "b"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a/summary.csv").read_text() == (tmp_path / "b/summary.csv").read_text()


def bad(made: Path, tmp_path: Path, args: list, expect: str) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, [str(a) for a in ["stats", *args, "-o", out]], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: "), res.output
    assert expect in lines[0], lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_stats_refuses_a_schedule_from_other_tables(made: Path, tmp_path: Path):
    doc = json.loads((made / "schedule.json").read_text())
    doc["stacks"][0]["energy_uJ"] += 0.5
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    bad(made, tmp_path, ["-s", p, "-t", made / "costs.csv"], f"{p}: stacks[0].energy_uJ: ")


def test_stats_refuses_tables_that_lack_an_entry(made: Path, tmp_path: Path):
    doc = json.loads((made / "schedule.json").read_text())
    lines = (made / "costs.csv").read_text().splitlines()
    st = doc["stacks"][-1]
    layer = st["last"] + 1  # 1-based in the file
    shape = f"{doc['network'][st['last']]['Q']},{doc['network'][st['last']]['P']}"
    keep = [ln for ln in lines if not ln.startswith(f"{layer},SLC,{shape},")]
    assert len(keep) == len(lines) - 1
    t = tmp_path / "costs.csv"
    t.write_text("\n".join(keep) + "\n")
    bad(made, tmp_path, ["-s", made / "schedule.json", "-t", t], "no cost entry for layer")


def test_stats_refuses_a_schedule_of_another_network(made: Path, tmp_path: Path):
    # the original's AlexNet schedule against these tables: they lack its entries
    sched = tmp_path / "alex.json"
    net = load_workload(ALEX / "inputs/AlexNet")
    table = read_tables(ALEX / "cost-tables")
    s = evaluate(net, table, [StackSpec(0, 3, (13, 13))], rule="legacy")
    sched.write_text(schedule_to_json(s, net, {}))
    bad(made, tmp_path, ["-s", sched, "-t", made / "costs.csv"], "does not match the tables or the network: ")
    # and a workload that is not the schedule's network
    bad(
        made,
        tmp_path,
        ["-s", made / "schedule.json", "-t", made / "costs.csv", "-w", ALEX / "inputs/AlexNet"],
        "network[0].name: 'c1' in the file but 'AlexNet_layer01'",
    )


def test_stats_refuses_a_malformed_network_list(made: Path, tmp_path: Path):
    doc = json.loads((made / "schedule.json").read_text())
    doc["network"][1]["C"] = "four"
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    bad(made, tmp_path, ["-s", p, "-t", made / "costs.csv"], "network[1].C: must be an integer")
