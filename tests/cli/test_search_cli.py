"""End-to-end tests of `deepfrack optimize` / `deepfrack evaluate` on the bundled reference examples."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

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
    assert doc["inputs"]["schedule"] == str(sched)
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
    res = run(["optimize", *ALEX_ARGS, "--receptive-field", "legacy", "--arch", str(inp / "arch/simba_like.yaml"),
               "--constraints", str(inp / "constraints/SLC.yaml"), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "schedule.json").read_text())
    assert doc["inputs"]["capacity"] == {"PEWeightBuffer": 524288, "GlobalBuffer": 65536}


def test_exact_rule_on_square_only_tables_says_why(tmp_path: Path):
    # the problem files do not chain under the exact rule, so every stack is one layer (SLC): no error,
    # but no fusion either
    res = run(["optimize", *ALEX_ARGS, "--capacity", "unlimited", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "schedule.json").read_text())
    assert all(st["first"] == st["last"] for st in doc["stacks"])
    assert doc["total"]["energy_uJ"] == pytest.approx(doc["layer_by_layer"]["energy_uJ"])


@pytest.mark.parametrize(
    "stacks, message",
    [
        ([{"first": 0, "last": 2, "tile_shape": [13, 13]}], "layer 3"),
        ([{"first": 0, "last": 3, "tile_shape": [13, 13]}, {"first": 3, "last": 3, "tile_shape": [13, 13]}], "layer 3"),
        ([{"first": 0, "last": 3, "tile_shape": [0, 13]}], "tile_shape"),
        ([{"first": 0, "last": 3}], "tile_shape"),
    ],
)
def test_evaluate_rejects_invalid_schedules(tmp_path: Path, stacks, message):
    sched = write_schedule(tmp_path, stacks)
    res = CliRunner().invoke(main, ["evaluate", *ALEX_ARGS, *LEGACY, "--schedule", str(sched), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o/schedule.json").exists()


def test_capacity_needs_arch_or_unlimited(tmp_path: Path):
    res = CliRunner().invoke(main, ["optimize", *ALEX_ARGS, "-o", str(tmp_path)])
    assert res.exit_code == 2 and "--capacity unlimited" in res.output


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepfrack", *args], capture_output=True, text=True)


@pytest.mark.parametrize("bad", ["yaml", "csv", "variant"])
def test_bad_input_is_one_line_exit_2_no_output(tmp_path: Path, bad: str):
    net = tmp_path / "net.yaml"
    net.write_text("network: t\nlayers:\n  - {name: a, C: 3, M: 4, R: 3, S: 3, P: 4, Q: 4}\n")
    tables = tmp_path / "costs.csv"
    tables.write_text("layer,variant,tile_h,tile_w,energy_uJ\n1,SLC,4,4,1.0\n")
    if bad == "yaml":
        net.write_text("network: t\nlayers: [\n")
    elif bad == "csv":
        tables.write_text("layer,variant,tile_h\n1,SLC,4\n")
    else:
        tables.write_text("layer,variant,tile_h,tile_w,energy_uJ\n1,FOO,4,4,1.0\n")
    out = tmp_path / "out"
    proc = _cli("optimize", "-w", str(net), "-t", str(tables), "--capacity", "unlimited", "-o", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: ")
    assert "Traceback" not in proc.stderr
    assert (str(net) if bad == "yaml" else str(tables)) in lines[0]
    assert not out.exists()


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
        for v, scale in [("SLC", 3.0), ("Start", 2.0), ("LBLC", 1.0), ("ELBLC", 2.0), ("WCC", 0.5),
                         ("EWCC", 1.5), ("OutWCC", 1.5)]:
            for h in range(1, plane + 1):
                for w in range(1, plane + 1):
                    rows.append(f"{layer},{v},{h},{w},{scale * (h * w + 4):.3f}")
    (tmp_path / "costs.csv").write_text("\n".join(rows) + "\n")
    res = run(["optimize", "-w", str(net), "-t", str(tmp_path / "costs.csv"), "--capacity", "unlimited",
               "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out/schedule.json").read_text())
    assert doc["total"]["energy_uJ"] < doc["layer_by_layer"]["energy_uJ"]
    assert any(st["first"] < st["last"] for st in doc["stacks"])
