"""`deepfrack sweep` / ``deepfrack.api.sweep``: every row is the run of that point on its own, the outputs
are written all or nothing, bad input is one line, and an interrupted sweep resumes from the cache."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deepfrack import api
from deepfrack.arch.presets import presets
from deepfrack.arch.vary import load_study, sweep_points, vary_document
from deepfrack.arch.yamlio import load_yaml
from deepfrack.benchmark.inputs import load_inputs, with_architecture
from deepfrack.cli import main
from deepfrack.search.schedule_io import schedule_to_json
from tests.benchmark.conftest import FAKE, TINY_NET

SMALL = """\
network: small
input: [8, 8]
layers:
  - {name: c1, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: p1, type: pool, C: 8, R: 2, S: 2, P: 4, Q: 4, stride: 2}
  - {name: c2, C: 8, M: 16, R: 3, S: 3, P: 4, Q: 4, pad: 1}
"""
# a residual block: the search fuses over the graph
RESIDUAL = """\
network: residual
input: [8, 8]
layers:
  - {name: c1, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: c2, C: 8, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: c3, C: 8, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: join, type: add, inputs: [c1, c3], C: 8, P: 8, Q: 8}
"""
# the zipped points: a global buffer too small for the whole first layer's output, and the preset's
VARY = ["GlobalBuffer.memory_depth=16,2048", "DRAM.type=LPDDR4,HBM2"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text", [SMALL, RESIDUAL], ids=["chain", "residual"])
def test_rows_equal_the_single_runs(tmp_path: Path, text: str):
    """Each row of a sweep (built-in mapper) is what `deepfrack run` gives on the architecture file of that
    point, costed from a cache of its own."""
    net = _write(tmp_path, "small.yaml", text)
    res = api.sweep(
        workloads=[net],
        arch="simba-like",
        vary=VARY,
        zipped=True,
        jobs=1,
        cache=tmp_path / "sweep.sqlite",
        out=tmp_path / "out",
    )
    assert [r.values for r in res.rows] == [
        {"GlobalBuffer.memory_depth": 16, "DRAM.type": "LPDDR4"},
        {"GlobalBuffer.memory_depth": 2048, "DRAM.type": "HBM2"},
    ]
    preset = presets()["simba-like"]
    schedules = []
    for row, point in zip(res.rows, res.points, strict=True):
        arch = tmp_path / f"arch{row.point}" / "arch.yaml"
        arch.parent.mkdir()
        arch.write_text(yaml.safe_dump(vary_document(load_yaml(preset.arch), point)))
        single = api.run(
            workload=net,
            arch=arch,
            components=preset.components,
            constraints=preset.constraints,
            jobs=1,
            cache=tmp_path / f"single{row.point}.sqlite",
        )
        s = single.schedule
        assert (row.fused_uJ, row.layer_by_layer_uJ) == (
            pytest.approx(s.total.energy_uJ, abs=1e-6),
            pytest.approx(s.layer_by_layer.energy_uJ, abs=1e-6),
        )
        assert (row.fused_cycles, row.layer_by_layer_cycles) == (s.total.cycles, s.layer_by_layer.cycles)
        assert row.saving_pct == pytest.approx(100 * s.reduction, abs=1e-4)
        assert row.stacks == len(s.stacks)
        assert row.cached_layers == sum(len(st.cached_layers) for st in s.stacks)
        assert row.recompute_pct == pytest.approx(100 * s.recompute, abs=1e-4)
        assert row.capacity == dict(single.inputs["capacity"])
        doc = json.loads(
            (tmp_path / f"out/schedules/point{row.point}-{single.network.name}.json").read_text()
        )
        assert doc["inputs"]["vary"] == point
        assert doc["stacks"] == json.loads(schedule_to_json(s, single.network, single.inputs))["stacks"]
        schedules.append(doc["stacks"])
    assert res.rows[0].capacity["GlobalBuffer"] == 16 * 32 and res.rows[1].capacity["GlobalBuffer"] == 65536
    assert schedules[0] != schedules[1]  # the points are different designs
    # the rows are sweep.csv's
    lines = list(csv.DictReader(io.StringIO((tmp_path / "out/sweep.csv").read_text())))
    assert [(int(x["point"]), float(x["saving_pct"])) for x in lines] == [
        (r.point, r.saving_pct) for r in res.rows
    ]


def test_cli_writes_csv_picture_and_report(tmp_path: Path):
    """Two networks (sharing a layer) at two points: a CSV row per point and network, a PNG, a report that
    shows every row; the shared layer's entries are asked for by both runs of a point."""
    tiny = _write(tmp_path, "tiny.yaml", TINY_NET)
    other = _write(tmp_path, "other.yaml", TINY_NET.replace("network: tiny", "network: other"))
    out = tmp_path / "out"
    args = ["sweep", "-w", str(tiny), str(other), "-a", "simba-like", "--vary", "DRAM.type=LPDDR4,GDDR5"]
    args += ["--vary", "PE.instances=4,16", "--zip", "--backend", FAKE, "--jobs", "1"]
    args += ["--cache", str(tmp_path / "cache.sqlite"), "--no-progress", "-o", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    assert [(r["point"], r["DRAM.type"], r["PE.instances"], r["network"]) for r in rows] == [
        ("0", "LPDDR4", "4", "tiny"),
        ("0", "LPDDR4", "4", "other"),
        ("1", "GDDR5", "16", "tiny"),
        ("1", "GDDR5", "16", "other"),
    ]
    assert {"fused_energy_uJ", "layer_by_layer_energy_uJ", "saving_pct", "fused_cycles", "stacks"} <= set(
        rows[0]
    )
    assert {"cached_layers", "recompute_pct", "capacity_GlobalBuffer_words"} <= set(rows[0])
    # the same network at two points: the second point's entries are not the first's (another design)
    assert int(rows[0]["entries_computed"]) > 0 and int(rows[2]["entries_computed"]) > 0
    # the other network asks for the same tile problems as tiny at the same point: served from the cache
    assert rows[1]["entries_computed"] == "0"
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count('<td class="n" data-value="') >= 3 * len(rows)
    for r in rows:
        assert f'data-value="{r["fused_energy_uJ"]}"' in page
    assert 'id="shared" data-value="' in page and 'data-value="0"' not in page.split('id="shared"')[1][:20]
    assert sorted(p.name for p in (out / "schedules").iterdir()) == [
        "point0-other.json",
        "point0-tiny.json",
        "point1-other.json",
        "point1-tiny.json",
    ]
    assert "4 runs" in res.output and "asked for by more than one run" in res.output


@pytest.mark.parametrize(
    "extra, words",
    [
        (
            ["--vary", "GlobalBuffer.depth=1024"],
            "--vary: GlobalBuffer.depth: GlobalBuffer has no attribute depth",
        ),
        (
            ["--vary", "Buffer.memory_depth=1024"],
            "--vary: Buffer: the architecture has no level named Buffer",
        ),
        (
            ["--vary", "GlobalBuffer.memory_depth=1024,big"],
            "--vary: GlobalBuffer.memory_depth='big': expected an integer",
        ),
        (["--vary", "DRAM.type=HBM2,16"], "--vary: DRAM.type=16: expected a name"),
        (["--vary", "DRAM.type=XDR"], "--vary: DRAM.type=XDR: "),
        (["--vary", "GlobalBuffer.memory_depth=0"], "must be positive"),
        (
            ["--vary", "DRAM.type=HBM2", "--vary", "PE.instances=4,8", "--zip"],
            "--vary: zip needs as many values",
        ),
        (["--vary", "DRAM.type=HBM2", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler: cannot reach"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path: Path, extra: list[str], words: str):
    tiny = _write(tmp_path, "tiny.yaml", TINY_NET)
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    args = ["sweep", "-w", str(tiny), "-a", "simba-like", *extra, "--backend", FAKE, "--jobs", "1"]
    res = CliRunner().invoke(main, [*args, "--cache", str(cache), "-o", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: ") and words in lines[0], res.output
    assert not out.exists() and not cache.exists()


def test_an_interrupted_sweep_resumes_from_the_cache(tmp_path: Path):
    """Stopped before its third run, a sweep writes nothing; started again, it takes the first two runs
    from the cache and gives what an uninterrupted sweep gives."""
    tiny = _write(tmp_path, "tiny.yaml", TINY_NET)
    kw = dict(workloads=[tiny], arch="simba-like", vary=["DRAM.type=LPDDR4,HBM2,GDDR5"], backend=FAKE, jobs=1)

    def stop_at_third(done: int, total: int, point: object, network: str) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.sweep(**kw, cache=tmp_path / "cache.sqlite", on_run=stop_at_third, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    resumed = api.sweep(**kw, cache=tmp_path / "cache.sqlite", out=tmp_path / "out")
    assert [r.computed for r in resumed.rows[:2]] == [0, 0] and resumed.rows[2].computed > 0
    fresh = api.sweep(**kw, cache=tmp_path / "fresh.sqlite")
    assert all(r.computed > 0 for r in fresh.rows)
    strip = ("computed", "run_s")
    assert [{k: v for k, v in r.__dict__.items() if k not in strip} for r in resumed.rows] == [
        {k: v for k, v in r.__dict__.items() if k not in strip} for r in fresh.rows
    ]
    assert (tmp_path / "out/sweep.csv").exists()


def test_the_package_exports_sweep():
    import deepfrack

    assert deepfrack.sweep is api.sweep


def test_a_study_file_with_the_command_line_replacing_parts(tmp_path: Path):
    """--study gives the networks, the architecture and the variations; -w and --vary replace the file's
    networks and the file's values of that attribute, an attribute the file lacks is added."""
    _write(tmp_path, "tiny.yaml", TINY_NET)
    other = _write(tmp_path, "other.yaml", TINY_NET.replace("network: tiny", "network: other"))
    study = _write(
        tmp_path,
        "study.yaml",
        "workloads: [tiny.yaml]\narch: simba-like\n"
        "vary:\n  DRAM.type: [LPDDR4, HBM2, GDDR5]\n  GlobalBuffer.memory_depth: [512, 1024]\n",
    )
    common = ["--backend", FAKE, "--jobs", "1", "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]
    res = CliRunner().invoke(main, ["sweep", "--study", str(study), *common, "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a/sweep.csv").read_text())))
    assert [(r["DRAM.type"], r["GlobalBuffer.memory_depth"], r["network"]) for r in rows] == [
        (d, m, "tiny") for d in ("LPDDR4", "HBM2", "GDDR5") for m in ("512", "1024")
    ]
    args = ["sweep", "--study", str(study), "-w", str(other), "--vary", "GlobalBuffer.memory_depth=2048"]
    args += ["--vary", "PE.instances=4", *common, "-o", str(tmp_path / "b")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "b/sweep.csv").read_text())))
    assert [
        (r["DRAM.type"], r["GlobalBuffer.memory_depth"], r["PE.instances"], r["network"]) for r in rows
    ] == [(d, "2048", "4", "other") for d in ("LPDDR4", "HBM2", "GDDR5")]


@pytest.mark.parametrize(
    "text, words",
    [
        ("arch: simba-like\nvary: {DRAM.type: [HBM2]}\n", "study.yaml: workloads: missing"),
        (
            "workloads: [tiny.yaml]\narch: simba-like\nvary: {DRAM.type: [HBM2]}\nzipp: true\n",
            "zipp: unknown key",
        ),
        ("workloads: [tiny.yaml]\narch: simba-like\nvary: {DRAM.type: [HBM2, HBM2]}\n", "listed twice"),
        (
            "workloads: [tiny.yaml]\narch: simba-like\nvary: {DRAMtype: [HBM2]}\n",
            "vary.DRAMtype: write LEVEL",
        ),
        ("workloads: [tiny.yaml]\narch: simba-like\nvary: {DRAM.type: [[HBM2]]}\n", "single values"),
        (
            "workloads: [tiny.yaml]\narch: simba-like\nvary: {DRAM.kind: [HBM2]}\n",
            "DRAM has no attribute kind",
        ),
    ],
)
def test_a_bad_study_file_is_one_line(tmp_path: Path, text: str, words: str):
    _write(tmp_path, "tiny.yaml", TINY_NET)
    study = _write(tmp_path, "study.yaml", text)
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    args = ["sweep", "--study", str(study), "--backend", FAKE, "--cache", str(cache), "-o", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: ") and words in lines[0], res.output
    assert not out.exists() and not cache.exists()


def test_without_a_study_the_command_line_names_everything(tmp_path: Path):
    tiny = _write(tmp_path, "tiny.yaml", TINY_NET)
    res = CliRunner().invoke(main, ["sweep", "-w", str(tiny), "-a", "simba-like", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.output.strip() == (
        "deepfrack: error: --vary: missing: give it, or a --study file that names it"
    )


def test_the_bundled_study_reads():
    """examples/sweeps/buffer-vs-dram.yaml: three networks, 7 buffer sizes x 4 DRAM types, every point a
    valid architecture."""
    study = load_study(Path(__file__).parents[1] / "examples/sweeps/buffer-vs-dram.yaml")
    assert study.workloads == ("alexnet", "vgg16", "resnet18") and study.arch == "simba-like"
    points = sweep_points(study.vary, study.zipped)
    assert len(points) == 28
    base = load_inputs("simba-like")
    words = {
        api.capacity_of(with_architecture(base, vary_document(base.arch.doc, p))).words["GlobalBuffer"]
        for p in points
    }
    assert min(words) == 16 * 1024 and max(words) == 1024 * 1024
