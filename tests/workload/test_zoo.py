"""The model zoo: totals against the published figures, structure, input sizes, bad names."""

from __future__ import annotations

import pytest

from deepfrack.errors import InputError
from deepfrack.workload.graph import check_network
from deepfrack.workload.loaders import load_network_yaml, resolve_workload
from deepfrack.workload.zoo import ZOO, zoo_network

# Published multiply-accumulates at 224 x 224, batch 1 (conv, depthwise and fc layers):
# * torchvision's model pages, "GFLOPS" of the IMAGENET1K_V1 weights (torchvision counts one
#   multiply-accumulate as one operation there), https://pytorch.org/vision/stable/models.html:
#   alexnet 0.71, vgg16 15.47, resnet18 1.81, resnet34 3.66, resnet50 4.09, mobilenet_v2 0.30,
#   googlenet 1.50;
# * mobilenet_v1: Howard et al. 2017, "MobileNets", Table 8: 1.0 MobileNet-224, 569 million mult-adds.
PUBLISHED_MACS = {
    "alexnet": 0.71e9,
    "vgg16": 15.47e9,
    "resnet18": 1.81e9,
    "resnet34": 3.66e9,
    "resnet50": 4.09e9,
    "mobilenet_v1": 569e6,
    "mobilenet_v2": 0.30e9,
    "googlenet": 1.50e9,
}
# Published parameter counts ("num_params" on the same torchvision pages; mobilenet_v1: 4.2 million,
# Howard et al. Table 8). torchvision's counts include biases and batch-norm scale and shift, which
# deepfrack folds away; _parameters() adds them back from the layers.
PUBLISHED_PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "googlenet": 6_624_904,
}
#: networks whose convolutions carry a bias and no batch norm (the others: no bias, batch norm after each)
BIASED = {"alexnet", "vgg16"}


def _parameters(name: str) -> int:
    """Weights plus what torchvision's definition adds: a bias per output channel of each fc (and of each
    conv in AlexNet and VGG), a batch norm's scale and shift per output channel of every other conv."""
    net = zoo_network(name)
    extra = 0
    for layer in net.layers:
        if layer.kind == "fc":
            extra += layer.M
        elif layer.kind in ("conv", "depthwise"):
            extra += layer.M if name in BIASED else 2 * layer.M
    return net.weights + extra


@pytest.mark.parametrize("name", sorted(ZOO))
def test_macs_match_the_published_figures_within_1_percent(name: str):
    net = zoo_network(name)
    assert net.macs == pytest.approx(PUBLISHED_MACS[name], rel=0.01)
    check_network(net, input_channels=3)  # every edge obeys the loader's shape rules


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameters_equal_torchvision(name: str):
    assert _parameters(name) == PUBLISHED_PARAMS[name]
    assert zoo_network(name).weights == pytest.approx(PUBLISHED_PARAMS[name], rel=0.011)


def test_mobilenet_v1_weights_within_1_percent_of_the_paper():
    assert zoo_network("mobilenet_v1").weights == pytest.approx(4.2e6, rel=0.01)


def _kinds(name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for layer in zoo_network(name).layers:
        out[layer.kind] = out.get(layer.kind, 0) + 1
    return out


def test_structure():
    # ResNet-50: 16 bottleneck blocks, each ending in an add; 4 of them (the first of each stage)
    # with a 1x1 downsample, strided in stages 2-4
    r50 = zoo_network("resnet50")
    adds = [layer for layer in r50.layers if layer.kind == "add"]
    downs = [layer for layer in r50.layers if layer.name.endswith("downsample")]
    assert len(adds) == 16 and [d.Wstride for d in downs] == [1, 2, 2, 2]
    for i, layer in enumerate(r50.layers):
        if layer.kind == "add":  # main path + skip: the block's input, or its downsample
            main, skip = (r50.layers[p].name for p in r50.inputs[i])
            assert main.endswith("conv3") and (skip.endswith(("downsample", "add")) or skip == "maxpool")
    assert _kinds("resnet18") == {"conv": 20, "pool": 2, "add": 8, "fc": 1}
    # MobileNetV2: 17 inverted residual blocks (17 depthwise), 10 of them with a residual add
    assert _kinds("mobilenet_v2") == {"conv": 35, "depthwise": 17, "add": 10, "pool": 1, "fc": 1}
    # GoogLeNet: 9 inception blocks, each a concat of four branches
    g = zoo_network("googlenet")
    cats = [i for i, layer in enumerate(g.layers) if layer.kind == "concat"]
    assert len(cats) == 9 and all(g.layers[i].n_inputs == 4 for i in cats)
    assert g.layers[cats[-1]].C == 1024 and g.layers[cats[0]].C == 256
    # ceil-mode max pools: 112 -> 56 -> ... -> 7 (extra padding after the plane)
    pools = [layer for layer in g.layers if layer.name.startswith("maxpool")]
    assert [p.P for p in pools] == [56, 28, 14, 7] and pools[0].pad == (0, 1, 0, 1)
    # MobileNet v1: TensorFlow SAME padding, asymmetric on stride-2 layers of even planes
    m1 = zoo_network("mobilenet_v1")
    assert m1.layers[0].pad == (0, 1, 0, 1) and m1.layers[1].pad == (1, 1, 1, 1)
    # AlexNet ends in torchvision's classifier: 9216 -> 4096 -> 4096 -> 1000, the first over a 6x6 plane
    fc = [layer for layer in zoo_network("alexnet").layers if layer.kind == "fc"]
    assert [(f.C * f.R * f.S, f.M) for f in fc] == [(9216, 4096), (4096, 4096), (4096, 1000)]


@pytest.mark.parametrize(
    "name, size, plane", [("resnet50", (256, 320), (8, 10)), ("mobilenet_v2", (96, 96), (3, 3))]
)
def test_any_input_size(name: str, size: tuple[int, int], plane: tuple[int, int]):
    net = zoo_network(name, size)
    assert net.input_plane == size
    pool = next(layer for layer in net.layers if layer.name == "avgpool")
    assert pool.out_plane == (1, 1) and plane == (pool.S, pool.R)  # the global pool covers the last plane
    check_network(net, input_channels=3)


def test_vgg_adaptive_pool_at_a_multiple_of_7_and_refused_otherwise():
    net = zoo_network("vgg16", (448, 448))
    pool = next(layer for layer in net.layers if layer.name == "avgpool")
    assert (pool.R, pool.S, pool.Wstride, pool.P) == (2, 2, 2, 7)
    assert net.layers[-3].C * net.layers[-3].R * net.layers[-3].S == 25088  # the classifier is unchanged
    with pytest.raises(InputError, match="adaptive average pool to 7x7"):
        zoo_network("vgg16", (256, 256))
    with pytest.raises(InputError, match="too small"):
        zoo_network("alexnet", (32, 32))


def test_unknown_name_lists_the_zoo():
    with pytest.raises(InputError) as err:
        resolve_workload("resnet")
    text = str(err.value)
    assert text.startswith("resnet: ") and "resnet50" in text and "googlenet" in text
    assert resolve_workload("resnet18").name == "resnet18"


def _as_yaml(net) -> str:
    """A zoo network written as a network YAML: every field of each layer (a join's come from its inputs)."""
    lines = [f"network: {net.name}", f"input: [3, {net.input_plane[0]}, {net.input_plane[1]}]", "layers:"]
    for i, layer in enumerate(net.layers):
        fields = {"type": layer.kind} if layer.kind in ("add", "concat") else dict(layer.summary())
        fields.pop("n_inputs", None)
        if fields.get("pool") is None:
            fields.pop("pool", None)
        fields |= {"name": f'"{layer.name}"', "inputs": list(net.operand_names(i))}
        lines.append("  - {" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_networks_pass_the_network_yaml_loader(tmp_path, name: str):
    net = zoo_network(name)
    p = tmp_path / "net.yaml"
    p.write_text(_as_yaml(net))
    back = load_network_yaml(p)
    assert back.layers == net.layers and back.inputs == net.inputs and back.input_plane == net.input_plane
