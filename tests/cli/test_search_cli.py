"""End-to-end tests of `deepfrack optimize` / `deepfrack evaluate` on the bundled reference examples."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepfrack.benchmark.tables_io import read_tables, write_csv_table
from deepfrack.cli import main
from tests.paths import EXAMPLES

ALEX = EXAMPLES / "AlexNet_Simba"
ALEX_ARGS = ["-w", str(ALEX / "inputs/AlexNet"), "-t", str(ALEX / "cost-tables")]
LEGACY = ["--receptive-field", "legacy", "--capacity", "unlimited"]


def run(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def write_schedule(tmp_path: Path, stacks: list[dict]) -> Path:
    p = tmp_path / "given.json"
    p.write_text(json.dumps({"stacks": stacks}))
    return p


def test_evaluate_reproduces_alexnet_log(tmp_path: Path):
    sched = write_schedule(tmp_path, [{"first": 0, "last": 3, "tile_shape": [13, 13], "cached_layers": []}])
    res = run(["evaluate", *ALEX_ARGS, *LEGACY, "--schedule", str(sched), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out/schedule.json").read_text())
    assert doc["total"]["energy_uJ"] == pytest.approx(1633.25, abs=0.005)
    assert doc["layer_by_layer"]["energy_uJ"] == pytest.approx(2908.83, abs=0.005)
    assert doc["receptive_field"] == "legacy" and doc["inputs"]["capacity"] == "unlimited"
    assert doc["inputs"]["schedule"] == str(sched.resolve())
    [stack] = doc["stacks"]
    assert (stack["first"], stack["last"], stack["tile_shape"]) == (0, 3, [13, 13])
    assert stack["tiles"] == [{"row": 0, "col": 0, "h": 13, "w": 13}]
    assert [sl["layer"] for sl in stack["layers"]] == [0, 1, 2, 3]
    assert [sl["variant_per_tile"] for sl in stack["layers"]] == [["Start"], ["LBLC"], ["LBLC"], ["ELBLC"]]
    assert [len(sl["regions"]) for sl in stack["layers"]] == [1, 1, 1, 1]
    assert (tmp_path / "out/deepfrack.log").read_text().count("Energy reduction: 43.85%") == 1
    assert (tmp_path / "out/energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_optimize_legacy_is_at_least_as_good_as_the_original(tmp_path: Path):
    res = run(["optimize", *ALEX_ARGS, *LEGACY, "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "schedule.json").read_text())
    assert doc["total"]["energy_uJ"] <= 1633.25 + 1e-6
    covered = sorted(i for st in doc["stacks"] for i in range(st["first"], st["last"] + 1))
    assert covered == [0, 1, 2, 3]
    assert [layer["name"] for layer in doc["network"]] == [f"AlexNet_layer0{i}" for i in range(1, 5)]


def test_optimize_with_simba_capacity(tmp_path: Path):
    inp = ALEX / "inputs/simba_like"
    res = run(
        [
            "optimize",
            *ALEX_ARGS,
            "--receptive-field",
            "legacy",
            "--arch",
            str(inp / "arch/simba_like.yaml"),
            "--constraints",
            str(inp / "constraints/SLC.yaml"),
            "-o",
            str(tmp_path),
        ]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "schedule.json").read_text())
    assert doc["inputs"]["capacity"] == {"PEWeightBuffer": 524288, "GlobalBuffer": 65536}


def test_exact_rule_on_unchained_problem_files_says_why(tmp_path: Path):
    # the problem files do not chain under the exact rule, so every stack is one layer (SLC), and the log
    # says why and what to do
    res = run(["optimize", *ALEX_ARGS, "--capacity", "unlimited", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "schedule.json").read_text())
    assert all(st["first"] == st["last"] for st in doc["stacks"])
    assert doc["total"]["energy_uJ"] == pytest.approx(doc["layer_by_layer"]["energy_uJ"])
    log = (tmp_path / "deepfrack.log").read_text()
    assert "3 of 3 consecutive layer pairs do not chain" in log
    assert "under the exact rule no stack spans those pairs" in log and "legacy receptive-field rule" in log


def test_square_only_tables_under_the_exact_rule_say_so(tmp_path: Path):
    """A network that chains, with the original's square-only JSON tables: non-square tilings are skipped and
    the log says that the tables hold only square tiles."""
    net = tmp_path / "net.yaml"
    net.write_text(
        "network: t\nlayers:\n  - {name: a, C: 2, M: 2, R: 3, S: 3, P: 6, Q: 6, pad: 1}\n"
        "  - {name: b, C: 2, M: 2, R: 3, S: 3, P: 6, Q: 6, pad: 1}\n"
    )
    tables = tmp_path / "tables"
    tables.mkdir()
    for v in ("SLC", "Start", "LBLC", "ELBLC", "WCC", "EWCC", "OutWCC"):
        doc = {
            str(layer): {str(t): 0.1 * t * t + (1.0 if v == "SLC" else 0.5) for t in range(1, 7)}
            for layer in (1, 2)
        }
        (tables / f"{v}.json").write_text(json.dumps(doc))
    res = run(
        ["optimize", "-w", str(net), "-t", str(tables), "--capacity", "unlimited", "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    log = (tmp_path / "o/deepfrack.log").read_text()
    assert "skipped for shapes missing from the tables" in log
    assert "those tables hold only square tiles; use --receptive-field legacy or deepfrack benchmark" in log


def test_max_stack_depth_and_cycles_objective(tmp_path: Path):
    mob = EXAMPLES / "MobileNet_SimbaSystolic"
    args = ["optimize", "-w", str(mob / "inputs/MobileNet"), "-t", str(mob / "cost-tables"), *LEGACY]
    res = run([*args, "--max-stack-depth", "2", "-o", str(tmp_path / "d2")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "d2/schedule.json").read_text())
    assert max(st["last"] - st["first"] + 1 for st in doc["stacks"]) <= 2
    assert doc["inputs"]["max_stack_depth"] == 2
    res = run([*args, "--objective", "cycles", "-o", str(tmp_path / "cyc")])
    assert res.exit_code == 0, res.output
    cyc = json.loads((tmp_path / "cyc/schedule.json").read_text())
    assert cyc["objective"] == "cycles" and isinstance(cyc["total"]["cycles"], int)
    # the cycles optimum is no slower than the energy optimum's schedule
    res = run([*args, "-o", str(tmp_path / "en")])
    en = json.loads((tmp_path / "en/schedule.json").read_text())
    assert cyc["total"]["cycles"] <= en["total"]["cycles"]
    assert en["total"]["energy_uJ"] <= cyc["total"]["energy_uJ"] + 1e-6


def test_evaluate_takes_the_rule_from_the_schedule_file(tmp_path: Path):
    res = run(["optimize", *ALEX_ARGS, *LEGACY, "-o", str(tmp_path / "a")])
    assert res.exit_code == 0
    # no --receptive-field: the schedule's own (legacy) rule is used, so the totals agree
    res = run(
        [
            "evaluate",
            *ALEX_ARGS,
            "--capacity",
            "unlimited",
            "--schedule",
            str(tmp_path / "a/schedule.json"),
            "-o",
            str(tmp_path / "b"),
        ]
    )
    assert res.exit_code == 0, res.output
    a = json.loads((tmp_path / "a/schedule.json").read_text())
    b = json.loads((tmp_path / "b/schedule.json").read_text())
    assert b["receptive_field"] == "legacy" and b["total"] == a["total"] and b["stacks"] == a["stacks"]


@pytest.mark.parametrize(
    "stacks, message",
    [
        ([{"first": 0, "last": 2, "tile_shape": [13, 13]}], "layer 3"),
        (
            [
                {"first": 0, "last": 3, "tile_shape": [13, 13]},
                {"first": 3, "last": 3, "tile_shape": [13, 13]},
            ],
            "layer 3",
        ),
        ([{"first": 0, "last": 3, "tile_shape": [0, 13]}], "tile_shape"),
        ([{"first": 0, "last": 3}], "tile_shape"),
    ],
)
def test_evaluate_rejects_invalid_schedules(tmp_path: Path, stacks, message):
    sched = write_schedule(tmp_path, stacks)
    res = CliRunner().invoke(
        main, ["evaluate", *ALEX_ARGS, *LEGACY, "--schedule", str(sched), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o/schedule.json").exists()


def test_capacity_needs_arch_or_unlimited(tmp_path: Path):
    res = CliRunner().invoke(main, ["optimize", *ALEX_ARGS, "-o", str(tmp_path)])
    assert res.exit_code == 2 and "--arch: " in res.output and "unlimited capacity" in res.output


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepfrack", *args], capture_output=True, text=True)


BAD_INPUTS = {
    # name: (network YAML text or None for the good one, tables CSV bytes or None, what the error names)
    "yaml": ("network: t\nlayers: [\n", None, "net.yaml"),
    "csv": (None, b"layer,variant,tile_h\n1,SLC,4\n", "costs.csv"),
    "variant": (None, b"layer,variant,tile_h,tile_w,energy_uJ\n1,FOO,4,4,1.0\n", "costs.csv"),
    "binary csv": (None, b"\xff\xfe\x00\x01garbage", "costs.csv"),
    "nan": (
        "network: t\nlayers:\n  - {name: a, C: 3, M: 4, R: 3, S: 3, P: .nan, Q: 4}\n",
        None,
        "layers[0].P",
    ),
    "add": (
        "network: t\nlayers:\n  - {name: a, C: 3, M: 4, R: 1, S: 1, P: 4, Q: 4}\n"
        "  - {name: b, type: add, C: 4, P: 4, Q: 4}\n",
        None,
        "layers[1].inputs: an add layer joins two or more tensors",
    ),
    "fc": (
        "network: t\nlayers:\n  - {name: a, C: 3, M: 4, R: 1, S: 1, P: 4, Q: 4}\n"
        "  - {name: b, type: fc, C: 60, M: 10}\n",
        None,
        "layers[1].C: b takes 60 channels but a gives 4",
    ),
}


@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_no_output(tmp_path: Path, bad: str):
    net_text, csv_bytes, names = BAD_INPUTS[bad]
    net = tmp_path / "net.yaml"
    net.write_text(net_text or "network: t\nlayers:\n  - {name: a, C: 3, M: 4, R: 3, S: 3, P: 4, Q: 4}\n")
    tables = tmp_path / "costs.csv"
    tables.write_bytes(csv_bytes or b"layer,variant,tile_h,tile_w,energy_uJ\n1,SLC,4,4,1.0\n")
    out = tmp_path / "out"
    proc = _cli("optimize", "-w", str(net), "-t", str(tables), "--capacity", "unlimited", "-o", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert names in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_out_that_cannot_be_a_folder_fails_before_the_search(tmp_path: Path, where: str):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "sub"
    proc = _cli("optimize", *ALEX_ARGS, *LEGACY, "-o", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("deepfrack: error: ") and str(out) in proc.stderr
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("bad", ["folder", "binary", "no stacks"])
def test_bad_schedule_file(tmp_path: Path, bad: str):
    sched = tmp_path / "s.json"
    if bad == "folder":
        sched.mkdir()
    elif bad == "binary":
        sched.write_bytes(b"\xff\xfe\x00")
    else:
        sched.write_text('{"stacks": []}')
    res = CliRunner().invoke(
        main, ["evaluate", *ALEX_ARGS, *LEGACY, "--schedule", str(sched), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and str(sched) in res.output
    assert not (tmp_path / "o").exists()


def test_missing_cost_entry_through_the_cli(tmp_path: Path):
    tables = tmp_path / "t"
    tables.mkdir()
    for f in (ALEX / "cost-tables").iterdir():
        doc = json.loads(f.read_text())
        if f.name == "ELBLC.json":
            del doc["4"]["13"]
        (tables / f.name).write_text(json.dumps(doc))
    sched = write_schedule(tmp_path, [{"first": 0, "last": 3, "tile_shape": [13, 13], "cached_layers": []}])
    res = CliRunner().invoke(
        main,
        [
            "evaluate",
            "-w",
            str(ALEX / "inputs/AlexNet"),
            "-t",
            str(tables),
            *LEGACY,
            "--schedule",
            str(sched),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2
    assert f"{tables}: no cost entry for layer 3 (AlexNet_layer04), variant ELBLC, tile 13x13" in res.output
    assert not (tmp_path / "o").exists()


def test_network_yaml_end_to_end_with_every_shape(tmp_path: Path):
    """A network with padding and pooling and a CSV with every rectangle: exact rule, fusion possible."""
    net = tmp_path / "net.yaml"
    net.write_text(
        "network: t\ninput: [8, 8]\nlayers:\n"
        "  - {name: c1, C: 2, M: 4, R: 3, S: 3, P: 8, Q: 8, pad: 1}\n"
        "  - {name: p1, type: pool, C: 4, R: 2, S: 2, P: 4, Q: 4, stride: 2}\n"
        "  - {name: c2, C: 4, M: 4, R: 3, S: 3, P: 4, Q: 4, pad: 1}\n"
    )
    rows = ["layer,variant,tile_h,tile_w,energy_uJ"]
    for layer, plane in [(1, 8), (2, 4), (3, 4)]:
        for v, scale in [
            ("SLC", 3.0),
            ("Start", 2.0),
            ("LBLC", 1.0),
            ("ELBLC", 2.0),
            ("WCC", 0.5),
            ("EWCC", 1.5),
            ("OutWCC", 1.5),
        ]:
            for h in range(1, plane + 1):
                for w in range(1, plane + 1):
                    rows.append(f"{layer},{v},{h},{w},{scale * (h * w + 4):.3f}")
    (tmp_path / "costs.csv").write_text("\n".join(rows) + "\n")
    res = run(
        [
            "optimize",
            "-w",
            str(net),
            "-t",
            str(tmp_path / "costs.csv"),
            "--capacity",
            "unlimited",
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out/schedule.json").read_text())
    assert doc["total"]["energy_uJ"] < doc["layer_by_layer"]["energy_uJ"]
    assert any(st["first"] < st["last"] for st in doc["stacks"])


def test_outputs_get_the_usual_permissions(tmp_path: Path):
    old = os.umask(0o022)
    try:
        res = run(["optimize", *ALEX_ARGS, *LEGACY, "-o", str(tmp_path)])
        assert res.exit_code == 0, res.output
        write_csv_table(read_tables(ALEX / "cost-tables"), tmp_path / "costs.csv")
    finally:
        os.umask(old)
    for name in ("schedule.json", "deepfrack.log", "energy.png", "costs.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


@pytest.mark.parametrize(
    "args, where",
    [
        (["--bogus"], "deepfrack --help"),
        (["bogus"], "deepfrack --help"),
        (["optimize", "-w"], "deepfrack optimize --help"),
        (["optimize", "--wat", "1"], "deepfrack optimize --help"),
        (["optimize", "-w", "x"], "deepfrack optimize --help"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], where: str):
    proc = _cli(*args)  # python -m deepfrack: the program is named "python -m deepfrack" in the hint
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: ")
    assert lines[0].endswith(f"{where}')") and "(see '" in lines[0]
