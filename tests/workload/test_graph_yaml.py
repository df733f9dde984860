"""Network YAML graphs: inputs, add, concat, groups, flattening fc, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfrack.errors import InputError
from deepfrack.workload.graph import check_network
from deepfrack.workload.layer import NETWORK_INPUT, Layer
from deepfrack.workload.loaders import load_network_yaml, load_workload
from tests.paths import ROOT

RESIDUAL = """
network: block
input: [16, 16]
layers:
  - {name: stem, C: 3, M: 8, R: 3, S: 3, P: 16, Q: 16, pad: 1}
  - {name: a, C: 8, M: 16, R: 3, S: 3, P: 8, Q: 8, stride: 2, pad: 1}
  - {name: b, C: 16, M: 16, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: down, inputs: [stem], C: 8, M: 16, P: 8, Q: 8, stride: 2}
  - {name: sum, type: add, inputs: [b, down]}
  - {name: cat, type: concat, inputs: [sum, b, a]}
  - {name: g, C: 48, M: 32, R: 3, S: 3, P: 8, Q: 8, pad: [1, 1, 1, 1], groups: 4}
  - {name: dw, type: depthwise, C: 32, R: 3, S: 3, P: 4, Q: 4, stride: 2, pad: [0, 1, 0, 1]}
  - {name: fc1, type: fc, C: 512, M: 10}
  - {name: fc2, type: fc, C: 10, M: 5}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "net.yaml"
    p.write_text(text)
    return p


def test_graph_with_residual_add_concat_groups_and_flattening_fc(tmp_path: Path):
    net = load_network_yaml(_write(tmp_path, RESIDUAL))
    names = [layer.name for layer in net.layers]
    assert not net.is_chain
    assert net.inputs == ((NETWORK_INPUT,), (0,), (1,), (0,), (2, 3), (4, 2, 1), (5,), (6,), (7,), (8,))
    assert net.consumers(0) == (1, 3) and net.producers(5) == (4, 2, 1)
    add, cat, g, dw, fc1, fc2 = (net.layers[names.index(n)] for n in ("sum", "cat", "g", "dw", "fc1", "fc2"))
    # an add takes its inputs' shape; a concat the sum of their channels, on their plane
    assert (add.kind, add.C, add.M, add.Q, add.P, add.n_inputs) == ("add", 16, 16, 8, 8, 2)
    assert (cat.kind, cat.C, cat.M, cat.Q, cat.P, cat.n_inputs) == ("concat", 48, 48, 8, 8, 3)
    assert add.weights == 0 and cat.weights == 0 and add.macs == 0 and cat.macs == 0
    # grouped conv: weights C/groups x M x R x S
    assert g.groups == 4 and g.weights == 48 // 4 * 32 * 9 and g.macs == 8 * 8 * 32 * 9 * 12
    assert dw.groups == 32 and dw.weights == 32 * 9
    # the first fc reads dw's 4x4 plane whole: C = dw's channels, R x S = its plane, P = Q = 1
    assert (fc1.kind, fc1.C, fc1.R, fc1.S, fc1.P, fc1.Q) == ("fc", 32, 4, 4, 1, 1)
    assert fc1.weights == 512 * 10 and fc1.macs == 512 * 10
    assert (fc2.C, fc2.R, fc2.S) == (10, 1, 1)
    check_network(net)  # the shared rules agree with the loader


def test_fc_after_a_plane_may_give_the_channels_or_the_flattened_size(tmp_path: Path):
    head = "network: f\nlayers:\n  - {name: a, C: 3, M: 4, R: 1, S: 1, P: 6, Q: 5}\n"
    flat = load_network_yaml(_write(tmp_path, head + "  - {name: fc, type: fc, C: 120, M: 7}\n"))
    chans = load_network_yaml(_write(tmp_path, head + "  - {name: fc, type: fc, C: 4, M: 7}\n"))
    assert flat.layers[1] == chans.layers[1] == Layer("fc", C=4, M=7, R=6, S=5, P=1, Q=1, kind="fc")
    # the receptive field of one output is the whole 5x6 plane
    assert flat.layers[1].min_input_plane == (5, 6)


def test_an_fc_reading_the_input_plane_needs_its_channels(tmp_path: Path):
    text = "network: f\ninput: [4, 4]\nlayers:\n  - {name: fc, type: fc, C: 48, M: 7}\n"
    with pytest.raises(InputError) as err:
        load_network_yaml(_write(tmp_path, text))
    assert err.value.field == "layers[0].C" and "input: [C, H, W]" in err.value.message
    net = load_network_yaml(_write(tmp_path, text.replace("[4, 4]", "[3, 4, 4]")))
    assert (net.layers[0].C, net.layers[0].R, net.layers[0].S) == (3, 4, 4)
    assert net.input_plane == (4, 4)


def test_every_chain_file_keeps_its_meaning():
    for f in sorted((ROOT / "examples/networks").glob("*.yaml")):
        net = load_workload(f)
        assert net.is_chain, f
        for i in range(1, len(net)):
            assert net.layers[i].accepts_input_plane(*net.layers[i - 1].out_plane)
        check_network(net)


def test_the_network_input_can_be_read_by_several_layers(tmp_path: Path):
    text = """
network: two
input: [8, 8]
layers:
  - {name: a, C: 3, M: 4, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: b, inputs: [input], C: 3, M: 4, P: 8, Q: 8}
  - {name: s, type: add, inputs: [a, b]}
"""
    net = load_network_yaml(_write(tmp_path, text))
    assert net.inputs == ((NETWORK_INPUT,), (NETWORK_INPUT,), (0, 1))
    with pytest.raises(InputError) as err:
        load_network_yaml(_write(tmp_path, text.replace("input: [8, 8]\n", "")))
    assert err.value.field == "layers[1].inputs" and "input: [H, W]" in err.value.message


BAD = {
    "forward reference": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, inputs: [c], C: 4, M: 4, P: 4, Q: 4}\n"
        "  - {name: c, C: 4, M: 4, P: 4, Q: 4}\n",
        "layers[1].inputs",
        "b reads c, which comes later in the file",
    ),
    "cycle": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, inputs: [b], C: 4, M: 4, P: 4, Q: 4}\n",
        "layers[1].inputs",
        "b reads itself",
    ),
    "two-layer cycle": (
        "  - {name: a, inputs: [b], C: 4, M: 4, P: 4, Q: 4}\n"
        "  - {name: b, inputs: [a], C: 4, M: 4, P: 4, Q: 4}\n",
        "layers[0].inputs",
        "a reads b, which comes later",
    ),
    "unknown input": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, inputs: [zz], C: 4, M: 4, P: 4, Q: 4}\n",
        "layers[1].inputs",
        "no layer named 'zz' above b",
    ),
    "add of unequal shapes": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, C: 4, M: 8, P: 4, Q: 4}\n"
        "  - {name: s, type: add, inputs: [a, b]}\n",
        "layers[2].inputs",
        "the inputs of add s differ in shape: a (4x4x4), b (8x4x4)",
    ),
    "add of unequal planes": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n"
        "  - {name: b, C: 4, M: 4, R: 2, S: 2, P: 2, Q: 2, stride: 2}\n"
        "  - {name: s, type: add, inputs: [a, b]}\n",
        "layers[2].inputs",
        "differ in shape",
    ),
    "add of one tensor": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: s, type: add, C: 4, P: 4, Q: 4}\n",
        "layers[1].inputs",
        "joins two or more tensors",
    ),
    "concat of unequal planes": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n"
        "  - {name: b, C: 4, M: 4, R: 2, S: 2, P: 2, Q: 2, stride: 2}\n"
        "  - {name: c, type: concat, inputs: [a, b]}\n",
        "layers[2].inputs",
        "the inputs of concat c differ in plane",
    ),
    "concat with wrong channels": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, C: 4, M: 6, P: 4, Q: 4}\n"
        "  - {name: c, type: concat, inputs: [a, b], C: 12}\n",
        "layers[2].C",
        "its inputs give 10 channels",
    ),
    "two operands of a conv": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, C: 4, M: 4, P: 4, Q: 4}\n"
        "  - {name: c, inputs: [a, b], C: 4, M: 4, P: 4, Q: 4}\n",
        "layers[2].inputs",
        "a conv layer reads one tensor",
    ),
    "groups that do not divide": (
        "  - {name: a, C: 6, M: 8, P: 4, Q: 4, groups: 4}\n",
        "layers[0].groups",
        "must divide C (6)",
    ),
    "a layer named input": (
        "  - {name: input, C: 3, M: 4, P: 4, Q: 4}\n",
        "layers[0].name",
        "network's input",
    ),
    "channels across a branch": (
        "  - {name: a, C: 3, M: 4, P: 4, Q: 4}\n  - {name: b, C: 4, M: 8, P: 4, Q: 4}\n"
        "  - {name: c, inputs: [a], C: 8, M: 4, P: 4, Q: 4}\n",
        "layers[2].C",
        "c takes 8 channels but a gives 4",
    ),
    "plane across a branch": (
        "  - {name: a, C: 3, M: 4, P: 8, Q: 8}\n"
        "  - {name: b, C: 4, M: 4, P: 4, Q: 4, R: 2, S: 2, stride: 2}\n"
        "  - {name: c, inputs: [a], C: 4, M: 4, P: 3, Q: 4, R: 2, S: 2, stride: 2}\n",
        "layers[2].P",
        "c's output width 3 does not follow from a's width 8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_graphs_name_the_layer_and_field(tmp_path: Path, case: str):
    layers, field, message = BAD[case]
    p = _write(tmp_path, "network: bad\nlayers:\n" + layers)
    with pytest.raises(InputError) as err:
        load_network_yaml(p)
    assert err.value.field == field
    assert message in err.value.message
    assert str(err.value).startswith(f"{p}: {field}: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("doc", ["README.md", "docs/workloads.md"])
def test_the_network_yaml_examples_in_the_docs_load(tmp_path: Path, doc: str):
    text = (ROOT / doc).read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    examples = [b for b in blocks if b.startswith("network:")]
    assert examples
    for k, block in enumerate(examples):
        net = load_network_yaml(_write(tmp_path, block))
        check_network(net)
        assert not net.is_chain and {"add"} <= {layer.kind for layer in net.layers}, k
