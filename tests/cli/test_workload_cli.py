"""`deepfrack zoo`, `workload show`, `arch list`, names for -w / -a, --input-size, and bad input through
the CLI: one line naming the file or name and the field or node, exit code 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from onnx import helper

from deepfrack.cli import main
from deepfrack.workload.zoo import ZOO, zoo_network
from tests.paths import EXAMPLES
from tests.workload.test_onnx import conv, save, weight

SIMBA = EXAMPLES / "AlexNet_Simba/inputs/simba_like"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepfrack", *args], capture_output=True, text=True)


def test_zoo_lists_every_network():
    res = CliRunner().invoke(main, ["zoo"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(ZOO)
    assert "4.089 G" in next(line for line in lines if line.startswith("resnet50"))


def test_workload_show_table_and_json():
    res = CliRunner().invoke(main, ["workload", "show", "resnet18"])
    assert res.exit_code == 0, res.output
    assert "layer1.0.add" in res.output and "total: 1,814,073,344 MACs" in res.output
    row = next(line for line in res.output.splitlines() if "layer2.0.downsample" in line).split()
    assert row[2:6] == ["conv", "layer1.1.add", "64", "128"]  # type, inputs, C, M
    res = CliRunner().invoke(main, ["workload", "show", "googlenet", "--json", "--input-size", "112", "112"])
    doc = json.loads(res.output)
    net = zoo_network("googlenet", (112, 112))
    assert set(doc) == {"network", "input", "layers", "macs", "weights"}
    assert doc["macs"] == net.macs and doc["weights"] == net.weights and doc["input"] == [112, 112]
    cat = next(layer for layer in doc["layers"] if layer["type"] == "concat")
    assert cat["inputs"] == [f"inception3a.{b}" for b in ("branch1", "branch2.1", "branch3.1", "branch4.1")]
    assert all(k in cat for k in ("C", "M", "R", "S", "P", "Q", "Wstride", "Hstride", "pad", "groups"))


def test_workload_show_reads_yaml_and_onnx(tmp_path: Path):
    res = CliRunner().invoke(main, ["workload", "show", "examples/networks/alexnet.yaml", "--json"])
    assert json.loads(res.output)["macs"] == 1_076_634_144
    onnx_file = save(
        tmp_path, [conv("c", "x", "w", pads=[1, 1, 1, 1])], [1, 3, "h", "w"], [weight("w", [8, 3, 3, 3])]
    )
    res = CliRunner().invoke(main, ["workload", "show", str(onnx_file), "--input-size", "10", "12"])
    assert res.exit_code == 0, res.output
    assert "total: 25,920 MACs" in res.output  # 8 x 3 x 9 x 10 x 12


def test_arch_list():
    res = CliRunner().invoke(main, ["arch", "list"])
    assert res.exit_code == 0
    for name, pj in (("simba-like", "240"), ("eyeriss-like", "64"), ("gemmini-like", "124.8")):
        block = res.output.split(f"{name}:", 1)[1]
        assert f"{pj} pJ per word" in block.split("\n  files:")[0]


def test_a_preset_name_is_its_files(tmp_path: Path):
    net = tmp_path / "net.yaml"
    net.write_text("network: t\nlayers:\n  - {name: a, C: 8, M: 16, R: 3, S: 3, P: 4, Q: 4}\n")
    base = ["benchmark", "-w", str(net), "--jobs", "1", "--variants", "SLC,Start,EWCC"]
    by_name = CliRunner().invoke(main, [*base, "-a", "simba-like", "-o", str(tmp_path / "a")])
    by_path = CliRunner().invoke(
        main,
        [
            *base,
            "-a",
            str(SIMBA / "arch/simba_like.yaml"),
            "-c",
            str(SIMBA / "constraints"),
            "-o",
            str(tmp_path / "b"),
        ],
    )
    assert by_name.exit_code == by_path.exit_code == 0, by_name.output + by_path.output
    a, b = ((tmp_path / d / "costs.csv").read_text() for d in "ab")
    assert a == b and len(a.splitlines()) == 1 + 3 * 4


def test_zoo_network_with_input_size_is_benchmarked(tmp_path: Path):
    res = CliRunner().invoke(
        main,
        [
            *("benchmark", "-w", "mobilenet_v1", "--input-size", "8", "8", "-a", "simba-like"),
            *("--variants", "SLC", "--shapes", "square", "--jobs", "2", "-o", str(tmp_path / "t")),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "t/costs.csv").read_text().splitlines()[1:]
    layers = {int(r.split(",")[0]) for r in rows}
    assert layers == set(range(1, len(zoo_network("mobilenet_v1", (8, 8))) + 1))
    assert all(",ok," in r for r in rows)


def _bad_onnx(tmp_path: Path, kind: str) -> Path:
    if kind == "op":
        nodes = [conv("c", "x", "w"), helper.make_node("Resize", ["c", "", "s"], ["u"], name="up")]
        return save(tmp_path, nodes, [1, 3, 4, 4], [weight("w", [4, 3, 1, 1]), weight("s", [4])])
    return save(tmp_path, [conv("c", "x", "w")], [1, 3, "H", "W"], [weight("w", [4, 3, 1, 1])])


YAML_BAD = {
    "forward": (
        "  - {name: a, inputs: [b], C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, C: 4, M: 4, P: 4, Q: 4}\n",
        "layers[0].inputs",
    ),
    "cycle": ("  - {name: a, inputs: [a], C: 3, M: 4, P: 4, Q: 4}\n", "layers[0].inputs"),
    "add": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, C: 4, M: 8, P: 4, Q: 4}\n"
        "  - {name: s, type: add, inputs: [a, b]}\n",
        "layers[2].inputs",
    ),
    "concat": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n"
        "  - {name: b, C: 4, M: 4, P: 2, Q: 2, R: 2, S: 2, stride: 2}\n"
        "  - {name: s, type: concat, inputs: [a, b]}\n",
        "layers[2].inputs",
    ),
}


@pytest.mark.parametrize(
    "case", ["onnx op", "onnx dynamic", "zoo name", "preset name", *(f"yaml {k}" for k in YAML_BAD)]
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, case: str):
    workload, arch = "alexnet", "simba-like"
    if case == "onnx op":
        workload, names = str(_bad_onnx(tmp_path, "op")), "node 'up' (Resize): unsupported operator"
    elif case == "onnx dynamic":
        workload, names = str(_bad_onnx(tmp_path, "dyn")), "node 'c' (Conv): its input 'x' has dynamic"
    elif case == "zoo name":
        workload, names = (
            "resnet",
            "resnet: no such file or folder, and not a network of the zoo (known: alexnet",
        )
    elif case == "preset name":
        arch, names = "simba", "simba: no such file, and not a bundled accelerator (known: simba-like"
    else:
        layers, field = YAML_BAD[case.split()[1]]
        net = tmp_path / "net.yaml"
        net.write_text("network: bad\nlayers:\n" + layers)
        workload, names = str(net), f"{net}: {field}: "
    out = tmp_path / "out"
    proc = _cli("run", "-w", workload, "-a", arch, "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: ") and names in lines[0], proc.stderr
    assert not out.exists()


TINY_RESIDUAL = """network: tiny-residual
input: [3, 8, 8]
layers:
  - {name: stem, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: pool, type: pool, pool: max, C: 8, R: 2, S: 2, P: 4, Q: 4, stride: 2}
  - {name: a, C: 8, M: 8, R: 3, S: 3, P: 4, Q: 4, pad: 1}
  - {name: b, C: 8, M: 8, R: 3, S: 3, P: 4, Q: 4, pad: 1}
  - {name: sum, type: add, inputs: [b, pool]}
"""


def test_run_on_a_graph(tmp_path: Path):
    """deepfrack run on a network that branches and joins: a schedule over every layer, costed from the
    entries it benchmarked."""
    net = tmp_path / "net.yaml"
    net.write_text(TINY_RESIDUAL)
    out = tmp_path / "out"
    cmd = ("run", "-w", str(net), "-a", "simba-like", "-o", str(out), "--cache", str(tmp_path / "c.sqlite"))
    proc = _cli(*cmd, "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "schedule.json").read_text())
    layers = [layer for stack in doc["stacks"] for layer in range(stack["first"], stack["last"] + 1)]
    assert layers == list(range(5))
    assert doc["total"]["energy_uJ"] < doc["layer_by_layer"]["energy_uJ"]
    assert (out / "tables" / "costs.csv").exists() and "Energy reduction" in (
        out / "deepfrack.log"
    ).read_text()
