"""ONNX import: small graphs built in code with onnx.helper (nothing downloaded), one per operator and
attribute the importer reads, the folded operators, stripped and external weights, and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deepfrack.errors import InputError
from deepfrack.workload.graph import check_network
from deepfrack.workload.layer import NETWORK_INPUT, Network
from deepfrack.workload.loaders import load_workload, resolve_workload
from deepfrack.workload.onnx_import import load_onnx
from deepfrack.workload.zoo import zoo_network

F = TensorProto.FLOAT


def weight(name: str, dims: list[int], how: str = "data") -> onnx.TensorProto:
    """An initializer: with data, stripped (dimensions only) or stored as external data (not loaded)."""
    if how == "data":
        return numpy_helper.from_array(np.zeros(dims, np.float32), name)
    t = onnx.TensorProto(name=name, data_type=F, dims=dims)
    if how == "external":
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value="weights.bin")
    return t


def ints(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def save(tmp_path: Path, nodes, shape, inits=(), opset: int = 17, name: str = "m") -> Path:
    x = helper.make_tensor_value_info("x", F, shape)
    y = helper.make_tensor_value_info(nodes[-1].output[0], F, None)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    p = tmp_path / f"{name}.onnx"
    onnx.save(model, str(p))
    return p


def conv(name: str, x: str, w: str, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w], [name], name=name, **attrs)


def test_conv_asymmetric_pads_strides_dilations(tmp_path: Path):
    # ONNX pads [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right]
    nodes = [conv("c", "x", "w", pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2])]
    net = load_onnx(save(tmp_path, nodes, [1, 3, 10, 12], [weight("w", [8, 3, 3, 3])]))
    c = net.layers[0]
    assert c.pad == (0, 1, 1, 2)  # deepfrack: [left, right, top, bottom]
    assert (c.Hstride, c.Wstride, c.Hdilation, c.Wdilation) == (2, 1, 1, 2)
    assert (c.Q, c.P) == ((10 + 1 + 2 - 3) // 2 + 1, (12 + 0 + 1 - 5) // 1 + 1) == (6, 9)
    assert (c.C, c.M, c.R, c.S, c.kind, c.groups) == (3, 8, 3, 3, "conv", 1)
    assert net.input_plane == (10, 12) and net.inputs == ((NETWORK_INPUT,),)


def test_conv_groups_depthwise_and_grouped(tmp_path: Path):
    nodes = [
        conv("dw", "x", "w1", group=4, pads=[1, 1, 1, 1]),
        conv("grouped", "dw", "w2", group=2),
        conv("mult", "grouped", "w3", group=8),  # depthwise with a channel multiplier: a grouped conv
    ]
    inits = [weight("w1", [4, 1, 3, 3]), weight("w2", [8, 2, 1, 1]), weight("w3", [16, 1, 1, 1])]
    dw, grouped, mult = load_onnx(save(tmp_path, nodes, [1, 4, 6, 6], inits)).layers
    assert (dw.kind, dw.groups, dw.weights) == ("depthwise", 4, 4 * 9)
    assert (grouped.kind, grouped.groups, grouped.C, grouped.M, grouped.weights) == ("conv", 2, 4, 8, 16)
    assert (mult.kind, mult.groups, mult.M, mult.weights) == ("conv", 8, 16, 16)


@pytest.mark.parametrize(
    "auto_pad, pad, side",
    [("SAME_UPPER", (0, 1, 0, 1), 4), ("SAME_LOWER", (1, 0, 1, 0), 4), ("VALID", (0, 0, 0, 0), 3)],
)
def test_conv_auto_pad(tmp_path: Path, auto_pad: str, pad, side: int):
    nodes = [conv("c", "x", "w", strides=[2, 2], auto_pad=auto_pad)]
    c = load_onnx(save(tmp_path, nodes, [1, 3, 7, 7], [weight("w", [4, 3, 2, 2])])).layers[0]
    assert c.pad == pad
    assert c.out_plane == (side, side)  # SAME: ceil(7 / 2)


def test_pools_with_ceil_mode_and_global_pools(tmp_path: Path):
    nodes = [
        helper.make_node(
            "MaxPool", ["x"], ["mp"], name="mp", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1
        ),
        helper.make_node(
            "AveragePool", ["mp"], ["ap"], name="ap", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 1, 0, 1]
        ),
        helper.make_node(
            "AveragePool", ["ap"], ["ap2"], name="ap2", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1
        ),
        helper.make_node("GlobalMaxPool", ["ap2"], ["gm"], name="gm"),
        helper.make_node("GlobalAveragePool", ["ap2"], ["ga"], name="ga"),
        helper.make_node("Add", ["gm", "ga"], ["s"], name="s"),
    ]
    net = load_onnx(save(tmp_path, nodes, [1, 5, 26, 26]))
    mp, ap, ap2, gm, ga, s = net.layers
    # ceil mode: 26 -> ceil(23 / 2) + 1 = 13 (floor would give 12): one more row and column of padding
    assert (mp.kind, mp.pool, mp.P, mp.Q, mp.pad) == ("pool", "max", 13, 13, (0, 1, 0, 1))
    # pads [top, left, bottom, right] = [0, 1, 0, 1]: 13 -> 6 rows, 13 + 2 -> 7 columns
    assert (ap.pool, ap.Q, ap.P, ap.pad) == ("avg", 6, 7, (1, 1, 0, 0))
    # ceil mode: 7 columns -> ceil(5 / 2) + 1 = 4 (one more column of padding), 6 rows -> 3 (none needed)
    assert (ap2.Q, ap2.P, ap2.pad) == (3, 4, (0, 1, 0, 0))
    assert (gm.pool, gm.R, gm.S, gm.P, gm.Q) == ("max", 4, 3, 1, 1)
    assert (ga.pool, ga.R, ga.S) == ("avg", 4, 3)
    assert (s.kind, s.C, s.n_inputs) == ("add", 5, 2) and net.inputs[-1] == (3, 4)
    assert all(layer.C == layer.M == 5 and layer.weights == 0 for layer in net.layers)


@pytest.mark.parametrize("keepdims, opset", [(1, 18), (0, 18), (1, 13)])
def test_reduce_mean_over_the_plane_is_a_global_pool(tmp_path: Path, keepdims: int, opset: int):
    # PyTorch's dynamo exporter writes AdaptiveAvgPool2d((1, 1)) as ReduceMean over axes [-1, -2]
    axes = {"axes": [2, 3]} if opset < 18 else {}
    ins = ["c"] if opset < 18 else ["c", "axes"]
    nodes = [
        conv("c", "x", "w"),
        helper.make_node("ReduceMean", ins, ["m"], name="mean", keepdims=keepdims, **axes),
        *([] if not keepdims else [helper.make_node("Reshape", ["m", "shape"], ["r"], name="view")]),
        helper.make_node("Gemm", ["r" if keepdims else "m", "fw"], ["fc"], name="fc", transB=1),
    ]
    inits = [weight("w", [8, 3, 1, 1]), weight("fw", [5, 8]), ints("axes", [-1, -2]), ints("shape", [1, 8])]
    net = load_onnx(save(tmp_path, nodes, [1, 3, 6, 7], inits, opset=opset))
    mean, fc = net.layers[1:]
    assert (mean.kind, mean.pool, mean.R, mean.S, mean.P, mean.Q) == ("pool", "avg", 7, 6, 1, 1)
    assert (fc.C, fc.R, fc.S, fc.M) == (8, 1, 1, 5)


def test_gemm_and_matmul_after_flatten_reshape_and_global_pool(tmp_path: Path):
    nodes = [
        conv("c", "x", "w", pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["fc1"], name="fc1", transB=1),
        helper.make_node("MatMul", ["fc1", "w2"], ["fc2"], name="fc2"),
        helper.make_node("Add", ["fc2", "b2"], ["fc2b"], name="bias"),  # a bias: folded
        helper.make_node("Softmax", ["fc2b"], ["prob"], name="softmax"),
    ]
    inits = [
        weight("w", [6, 3, 3, 3]),
        weight("w1", [10, 6 * 4 * 5]),
        weight("b1", [10]),
        weight("w2", [10, 7]),
    ]
    inits.append(weight("b2", [7]))
    net = load_onnx(save(tmp_path, nodes, [1, 3, 4, 5], inits))
    fc1, fc2 = net.layers[1:]
    # the fc after a plane: a convolution over the whole 4x5 plane (weights and MACs of the flattened fc)
    assert (fc1.kind, fc1.C, fc1.M, fc1.R, fc1.S, fc1.P, fc1.Q) == ("fc", 6, 10, 5, 4, 1, 1)
    assert fc1.weights == fc1.macs == 120 * 10
    assert (fc2.C, fc2.M, fc2.R, fc2.S) == (10, 7, 1, 1) and net.inputs == ((-1,), (0,), (1,))
    check_network(net, input_channels=3)


def test_flattening_reshape_static_and_computed_from_shape(tmp_path: Path):
    static = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
        helper.make_node("Reshape", ["g", "shape"], ["r"], name="reshape"),
        helper.make_node("Gemm", ["r", "w"], ["fc"], name="fc"),
    ]
    net = load_onnx(save(tmp_path, static, [1, 8, 3, 3], [ints("shape", [1, -1]), weight("w", [8, 4])]))
    assert [layer.kind for layer in net.layers] == ["pool", "fc"] and net.layers[1].C == 8
    # torch.onnx's x.view(x.size(0), -1): the target shape computed by Shape -> Gather -> Unsqueeze -> Concat
    dynamic = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node(
            "Constant", [], ["i0"], name="zero", value=numpy_helper.from_array(np.array(0, np.int64))
        ),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="gather"),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="cat_shape", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("Gemm", ["r", "w"], ["fc"], name="fc", transB=1),
    ]
    inits = [ints("ax", [0]), ints("minus1", [-1]), weight("w", [4, 72])]
    (fc,) = load_onnx(save(tmp_path, dynamic, [1, 8, 3, 3], inits)).layers
    assert (fc.C, fc.R, fc.S, fc.M) == (8, 3, 3, 4)


def test_joins_and_folded_operators(tmp_path: Path):
    nodes = [
        conv("a", "x", "w", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["a_bn"], name="bn"),
        helper.make_node("Relu", ["a_bn"], ["a_r"], name="relu"),
        helper.make_node("Clip", ["a_r", "lo", "hi"], ["a_c"], name="clip"),  # bounds as inputs
        helper.make_node("LRN", ["a_c"], ["a_l"], name="lrn", size=3),
        helper.make_node("Dropout", ["a_l"], ["a_d", "mask"], name="dropout"),
        helper.make_node("Identity", ["a_d"], ["a_i"], name="identity"),
        conv("b", "x", "w", pads=[1, 1, 1, 1]),
        helper.make_node("Sum", ["a_i", "b", "a_i"], ["sum3"], name="sum3"),
        helper.make_node("Concat", ["sum3", "b", "a_i"], ["cat"], name="cat", axis=1),
    ]
    inits = [weight("w", [4, 3, 3, 3]), *(weight(n, [4]) for n in "sbmv")]
    inits += [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("lo", 0), ("hi", 6))]
    net = load_onnx(save(tmp_path, nodes, [1, 3, 6, 6], inits))
    assert [layer.name for layer in net.layers] == ["a", "b", "sum3", "cat"]
    sum3, cat = net.layers[2:]
    assert (sum3.kind, sum3.n_inputs, sum3.C, sum3.P) == ("add", 3, 4, 6) and net.inputs[2] == (0, 1, 0)
    assert (cat.kind, cat.C, cat.M, cat.n_inputs) == ("concat", 12, 12, 3) and net.inputs[3] == (2, 1, 0)
    # Clip with its bounds as attributes (opset 6)
    old = [conv("a", "x", "w"), helper.make_node("Clip", ["a"], ["c"], name="clip", min=0.0, max=6.0)]
    assert len(load_onnx(save(tmp_path, old, [1, 3, 4, 4], [weight("w", [2, 3, 1, 1])], opset=6)).layers) == 1


@pytest.mark.parametrize("how", ["stripped", "external"])
def test_weights_need_only_their_shapes(tmp_path: Path, how: str):
    nodes = [conv("c", "x", "w", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"], name="relu")]
    net = load_onnx(save(tmp_path, nodes, [1, 3, 8, 8], [weight("w", [16, 3, 3, 3], how)]))
    assert net.layers[0].weights == 16 * 27 and not (tmp_path / "weights.bin").exists()


def test_symbolic_batch_is_one_and_input_size_fixes_a_dynamic_plane(tmp_path: Path):
    nodes = [conv("c", "x", "w", pads=[1, 1, 1, 1], strides=[2, 2])]
    p = save(tmp_path, nodes, ["batch", 3, "height", "width"], [weight("w", [4, 3, 3, 3])])
    with pytest.raises(InputError) as err:
        load_onnx(p)
    assert (
        err.value.field == "node 'c' (Conv)"
        and "dynamic dimensions [1, 3, height, width]" in err.value.message
    )
    assert "--input-size" in err.value.message
    net = resolve_workload(p, (32, 48))
    assert (net.layers[0].N, net.layers[0].Q, net.layers[0].P, net.input_plane) == (1, 16, 24, (32, 48))


@pytest.mark.parametrize(
    "nodes, field, message",
    [
        (
            [conv("c", "x", "w"), helper.make_node("LSTM", ["c", "w", "w"], ["l"], name="rnn")],
            "node 'rnn' (LSTM)",
            "unsupported operator",
        ),
        (
            [conv("c", "x", "w"), helper.make_node("Resize", ["c", "", "scales"], ["u"], name="")],
            "node #1 (Resize)",
            "unsupported",
        ),
        (
            [
                conv("c", "x", "w"),
                helper.make_node("MaxPool", ["c"], ["p"], name="p", kernel_shape=[2, 2], strides=[2, 2]),
                helper.make_node("Concat", ["c", "p"], ["cat"], name="cat", axis=1),
            ],
            "node 'cat' (Concat)",
            "unequal planes (4x4, 2x2)",
        ),
        (
            [
                conv("c", "x", "w"),
                helper.make_node("MaxPool", ["c"], ["p"], name="p", kernel_shape=[2, 2], strides=[2, 2]),
                helper.make_node("Add", ["c", "p"], ["s"], name="s"),
            ],
            "node 's' (Add)",
            "unequal shapes",
        ),
        (
            [conv("c", "x", "w"), helper.make_node("Concat", ["c", "c"], ["cat"], name="cat", axis=2)],
            "node 'cat' (Concat)",
            "axis 2",
        ),
        (
            [conv("c", "x", "w"), helper.make_node("MatMul", ["c", "c"], ["mm"], name="mm")],
            "node 'mm' (MatMul)",
            "two activations",
        ),
        ([conv("c", "x", "missing")], "node 'c' (Conv)", "'missing' is not known"),
    ],
)
def test_unsupported_or_inconsistent_nodes_are_one_line_errors(tmp_path: Path, nodes, field, message):
    inits = [weight("w", [4, 3, 1, 1]), numpy_helper.from_array(np.ones(4, np.float32), "scales")]
    p = save(tmp_path, nodes, [1, 3, 4, 4], inits)
    with pytest.raises(InputError) as err:
        load_onnx(p)
    assert err.value.path == p and err.value.field == field and message in err.value.message
    assert "\n" not in str(err.value)


def test_not_an_onnx_file(tmp_path: Path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x00\xffnot a model")
    with pytest.raises(InputError) as err:
        load_workload(p)
    assert err.value.path == p and "not an ONNX model" in err.value.message


# --------------------------------------------------------------------------------------------- #
# the zoo through ONNX: every layer kind, every attribute, at the scale of real networks
# --------------------------------------------------------------------------------------------- #
def to_onnx(net: Network, path: Path) -> Path:
    """``net`` written as an ONNX graph, the way exporters write CNNs: each conv followed by a folded
    batch norm and ReLU, pools as MaxPool / AveragePool / GlobalAveragePool, joins as Add / Sum /
    Concat, the first fc after a plane as Flatten + Gemm (weights stripped: dimensions only)."""
    nodes, inits = [], []
    out = ["x"]

    def src(i: int, k: int) -> str:
        p = net.inputs[i][k]
        return "x" if p == NETWORK_INPUT else out[p + 1]

    for i, layer in enumerate(net.layers):
        n = layer.name
        left, right, top, bottom = layer.pad
        pads = [top, left, bottom, right]
        if layer.kind in ("conv", "depthwise"):
            inits.append(weight(f"{n}.w", [layer.M, layer.C // layer.groups, layer.S, layer.R], "stripped"))
            nodes.append(
                helper.make_node(
                    "Conv",
                    [src(i, 0), f"{n}.w"],
                    [f"{n}.conv"],
                    name=n,
                    pads=pads,
                    strides=[layer.Hstride, layer.Wstride],
                    dilations=[layer.Hdilation, layer.Wdilation],
                    group=layer.groups,
                    kernel_shape=[layer.S, layer.R],
                )
            )
            inits += [weight(f"{n}.{k}", [layer.M], "stripped") for k in "sbmv"]
            nodes.append(
                helper.make_node(
                    "BatchNormalization", [f"{n}.conv", *(f"{n}.{k}" for k in "sbmv")], [f"{n}.bn"]
                )
            )
            nodes.append(helper.make_node("Relu", [f"{n}.bn"], [n]))
        elif (
            layer.kind == "pool"
            and layer.P == layer.Q == 1
            and layer.pad == (0, 0, 0, 0)
            and layer.pool == "avg"
        ):
            nodes.append(helper.make_node("GlobalAveragePool", [src(i, 0)], [n], name=n))
        elif layer.kind == "pool":
            op = "MaxPool" if layer.pool == "max" else "AveragePool"
            nodes.append(
                helper.make_node(
                    op,
                    [src(i, 0)],
                    [n],
                    name=n,
                    kernel_shape=[layer.S, layer.R],
                    pads=pads,
                    strides=[layer.Hstride, layer.Wstride],
                )
            )
        elif layer.kind == "fc":
            x = src(i, 0)
            if (layer.R, layer.S) != (1, 1) or net.layers[net.inputs[i][0]].kind != "fc":
                nodes.append(helper.make_node("Flatten", [x], [f"{n}.flat"]))
                x = f"{n}.flat"
            inits.append(weight(f"{n}.w", [layer.M, layer.C * layer.R * layer.S], "stripped"))
            nodes.append(helper.make_node("Gemm", [x, f"{n}.w"], [n], name=n, transB=1))
        elif layer.kind == "add":
            op = "Add" if layer.n_inputs == 2 else "Sum"
            nodes.append(helper.make_node(op, [src(i, k) for k in range(layer.n_inputs)], [n], name=n))
        else:
            nodes.append(
                helper.make_node("Concat", [src(i, k) for k in range(layer.n_inputs)], [n], name=n, axis=1)
            )
        out.append(n)
    h, w = net.input_plane
    return save(path, nodes, [1, 3, h, w], inits, name=net.name)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v2", "mobilenet_v1", "alexnet"])
def test_zoo_networks_survive_a_trip_through_onnx(tmp_path: Path, name: str):
    net = zoo_network(name)
    back = load_workload(to_onnx(net, tmp_path))
    assert back.layers == net.layers and back.inputs == net.inputs and back.input_plane == net.input_plane
