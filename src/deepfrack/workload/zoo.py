"""A model zoo by name, defined in code (nothing is downloaded): the inference graphs of common CNNs,
batch 1, 224 x 224 by default or any input size that the network accepts.

Each definition follows its public reference layer for layer -- padding, strides, pooling (max,
average, global average), residual adds with their strided 1x1 downsample convolutions, channel
concatenations, depthwise convolutions -- with batch normalization, ReLU and dropout folded away:
they cost nothing here (docs/workloads.md). Layers are listed in the order the reference's forward
pass runs them, which is a topological order.

* ``alexnet``, ``vgg16``, ``resnet18``, ``resnet34``, ``resnet50``, ``mobilenet_v2``, ``googlenet``:
  torchvision's definitions (``torchvision/models/*.py``; ResNet-50 is torchvision's "v1.5", stride in
  the 3x3 convolution; GoogLeNet in eval mode, without the auxiliary classifiers, with torchvision's
  3x3 kernel in the "5x5" branch and its ceil-mode max pools).
* ``mobilenet_v1``: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications", 2017, Table 1, with TensorFlow's "SAME" padding (the reference implementation:
  extra padding after the plane where the total is odd).

torchvision's AlexNet and VGG end their feature extractor with an adaptive average pool (to 6x6 and
7x7): here it is nothing when the plane already has that size (224 x 224) and a uniform average pool
when the plane is a multiple of it; other sizes are refused (their adaptive windows overlap unevenly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deepfrack.errors import InputError
from deepfrack.workload.graph import GraphBuilder, Tensor
from deepfrack.workload.layer import Network

DEFAULT_INPUT = (224, 224)


def _same_pad(extent: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) along one axis: output ceil(extent / stride)."""
    out = -(-extent // stride)
    total = max((out - 1) * stride + kernel - extent, 0)
    return total // 2, total - total // 2


def _adaptive_avg(b: GraphBuilder, x: Tensor, name: str, size: int) -> Tensor:
    """torchvision's AdaptiveAvgPool2d((size, size)) where it is a uniform pooling (module docstring)."""
    if (x.h, x.w) == (size, size):
        return x
    if x.h % size == 0 and x.w % size == 0:
        kh, kw = x.h // size, x.w // size
        return b.pool(x, name, (kh, kw), (kh, kw), op="avg")
    raise InputError(
        b.source,
        name,
        f"the feature plane is {x.h}x{x.w}; its adaptive average pool to {size}x{size} is a uniform pooling "
        f"only when the plane is a multiple of {size} (e.g. the 224 x 224 input)",
    )


def _classifier(b: GraphBuilder, x: Tensor, widths: tuple[int, ...]) -> Tensor:
    for k, m in enumerate(widths, 1):
        x = b.fc(x, f"fc{k}", m)
    return x


def alexnet(b: GraphBuilder) -> None:
    """torchvision's AlexNet (the single-tower variant of Krizhevsky's "One weird trick", 2014)."""
    x = b.conv(b.input, "conv1", 64, 11, stride=4, pad=2)
    x = b.pool(x, "pool1", 3, 2)
    x = b.conv(x, "conv2", 192, 5, pad=2)
    x = b.pool(x, "pool2", 3, 2)
    x = b.conv(x, "conv3", 384, 3, pad=1)
    x = b.conv(x, "conv4", 256, 3, pad=1)
    x = b.conv(x, "conv5", 256, 3, pad=1)
    x = b.pool(x, "pool5", 3, 2)
    x = _adaptive_avg(b, x, "avgpool", 6)
    _classifier(b, x, (4096, 4096, 1000))


def vgg16(b: GraphBuilder) -> None:
    """torchvision's VGG-16 (configuration "D" of Simonyan and Zisserman, 2015), without batch norm."""
    x = b.input
    stages = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
    for s, (m, n) in enumerate(stages, 1):
        for k in range(1, n + 1):
            x = b.conv(x, f"conv{s}_{k}", m, 3, pad=1)
        x = b.pool(x, f"pool{s}", 2, 2)
    x = _adaptive_avg(b, x, "avgpool", 7)
    _classifier(b, x, (4096, 4096, 1000))


def _resnet(b: GraphBuilder, blocks: tuple[int, ...], bottleneck: bool) -> None:
    x = b.conv(b.input, "conv1", 64, 7, stride=2, pad=3)
    x = b.pool(x, "maxpool", 3, 2, pad=1)
    expansion = 4 if bottleneck else 1
    for s, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512)), 1):
        for k in range(n):
            stride = 2 if s > 1 and k == 0 else 1
            pre = f"layer{s}.{k}"
            identity = x
            if bottleneck:
                y = b.conv(x, f"{pre}.conv1", planes, 1)
                y = b.conv(y, f"{pre}.conv2", planes, 3, stride=stride, pad=1)
                y = b.conv(y, f"{pre}.conv3", planes * expansion, 1)
            else:
                y = b.conv(x, f"{pre}.conv1", planes, 3, stride=stride, pad=1)
                y = b.conv(y, f"{pre}.conv2", planes, 3, pad=1)
            if stride != 1 or x.channels != planes * expansion:
                identity = b.conv(x, f"{pre}.downsample", planes * expansion, 1, stride=stride)
            x = b.add([y, identity], f"{pre}.add")
    x = b.global_pool(x, "avgpool")
    b.fc(x, "fc", 1000)


def resnet18(b: GraphBuilder) -> None:
    """torchvision's ResNet-18 (He et al. 2016): basic blocks [2, 2, 2, 2]."""
    _resnet(b, (2, 2, 2, 2), bottleneck=False)


def resnet34(b: GraphBuilder) -> None:
    """torchvision's ResNet-34: basic blocks [3, 4, 6, 3]."""
    _resnet(b, (3, 4, 6, 3), bottleneck=False)


def resnet50(b: GraphBuilder) -> None:
    """torchvision's ResNet-50 v1.5: bottleneck blocks [3, 4, 6, 3], stride in the 3x3 convolution."""
    _resnet(b, (3, 4, 6, 3), bottleneck=True)


def mobilenet_v1(b: GraphBuilder) -> None:
    """MobileNet v1 (width 1.0): a 3x3 convolution, then 13 depthwise-separable pairs (a 3x3 depthwise
    and a 1x1 pointwise convolution), a global average pool and the classifier."""

    def conv3(x: Tensor, name: str, m: int, stride: int, groups: int = 1) -> Tensor:
        top, bottom = _same_pad(x.h, 3, stride)
        left, right = _same_pad(x.w, 3, stride)
        return b.conv(x, name, m, 3, stride=stride, pad=(left, right, top, bottom), groups=groups)

    x = conv3(b.input, "conv1", 32, 2)
    pairs = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))
    pairs += ((512, 1),) * 5 + ((1024, 2), (1024, 1))
    for k, (m, stride) in enumerate(pairs, 1):
        x = conv3(x, f"conv{k}.dw", x.channels, stride, groups=x.channels)
        x = b.conv(x, f"conv{k}.pw", m, 1)
    x = b.global_pool(x, "avgpool")
    b.fc(x, "fc", 1000)


def mobilenet_v2(b: GraphBuilder) -> None:
    """torchvision's MobileNetV2 (Sandler et al. 2018, width 1.0): inverted residual blocks (1x1
    expansion, 3x3 depthwise, 1x1 projection; a residual add when the stride is 1 and the channels
    stay), a 1x1 convolution to 1280 channels, a global average pool and the classifier."""
    x = b.conv(b.input, "features.0", 32, 3, stride=2, pad=1)
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
    settings += ((6, 320, 1, 1),)
    idx = 1
    for t, c, n, s in settings:
        for k in range(n):
            stride = s if k == 0 else 1
            pre = f"features.{idx}"
            hidden = x.channels * t
            y = b.conv(x, f"{pre}.expand", hidden, 1) if t != 1 else x
            y = b.conv(y, f"{pre}.dw", hidden, 3, stride=stride, pad=1, groups=hidden)
            y = b.conv(y, f"{pre}.project", c, 1)
            x = b.add([y, x], f"{pre}.add") if stride == 1 and x.channels == c else y
            idx += 1
    x = b.conv(x, f"features.{idx}", 1280, 1)
    x = b.global_pool(x, "avgpool")
    b.fc(x, "classifier", 1000)


def googlenet(b: GraphBuilder) -> None:
    """torchvision's GoogLeNet (Inception v1, Szegedy et al. 2015) in eval mode (module docstring)."""

    def inception(x: Tensor, pre: str, c1: int, c3r: int, c3: int, c5r: int, c5: int, pp: int) -> Tensor:
        b1 = b.conv(x, f"{pre}.branch1", c1, 1)
        b2 = b.conv(x, f"{pre}.branch2.0", c3r, 1)
        b2 = b.conv(b2, f"{pre}.branch2.1", c3, 3, pad=1)
        b3 = b.conv(x, f"{pre}.branch3.0", c5r, 1)
        b3 = b.conv(b3, f"{pre}.branch3.1", c5, 3, pad=1)  # torchvision: 3x3, not the paper's 5x5
        b4 = b.pool(x, f"{pre}.branch4.0", 3, 1, pad=1, ceil_mode=True)
        b4 = b.conv(b4, f"{pre}.branch4.1", pp, 1)
        return b.concat([b1, b2, b3, b4], f"{pre}.concat")

    x = b.conv(b.input, "conv1", 64, 7, stride=2, pad=3)
    x = b.pool(x, "maxpool1", 3, 2, ceil_mode=True)
    x = b.conv(x, "conv2", 64, 1)
    x = b.conv(x, "conv3", 192, 3, pad=1)
    x = b.pool(x, "maxpool2", 3, 2, ceil_mode=True)
    x = inception(x, "inception3a", 64, 96, 128, 16, 32, 32)
    x = inception(x, "inception3b", 128, 128, 192, 32, 96, 64)
    x = b.pool(x, "maxpool3", 3, 2, ceil_mode=True)
    x = inception(x, "inception4a", 192, 96, 208, 16, 48, 64)
    x = inception(x, "inception4b", 160, 112, 224, 24, 64, 64)
    x = inception(x, "inception4c", 128, 128, 256, 24, 64, 64)
    x = inception(x, "inception4d", 112, 144, 288, 32, 64, 64)
    x = inception(x, "inception4e", 256, 160, 320, 32, 128, 128)
    x = b.pool(x, "maxpool4", 2, 2, ceil_mode=True)
    x = inception(x, "inception5a", 256, 160, 320, 32, 128, 128)
    x = inception(x, "inception5b", 384, 192, 384, 48, 128, 128)
    x = b.global_pool(x, "avgpool")
    b.fc(x, "fc", 1000)


@dataclass(frozen=True)
class ZooEntry:
    """A network of the zoo: its name, a one-line description and the function that builds it."""

    name: str
    description: str
    build: Callable[[GraphBuilder], None]


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("alexnet", "AlexNet, torchvision (5 conv + 3 fc)", alexnet),
        ZooEntry("vgg16", "VGG-16, torchvision (13 conv + 3 fc)", vgg16),
        ZooEntry("resnet18", "ResNet-18, torchvision (basic blocks, residual adds)", resnet18),
        ZooEntry("resnet34", "ResNet-34, torchvision (basic blocks, residual adds)", resnet34),
        ZooEntry("resnet50", "ResNet-50 v1.5, torchvision (bottleneck blocks, residual adds)", resnet50),
        ZooEntry("mobilenet_v1", "MobileNet v1, Howard et al. 2017 (depthwise-separable)", mobilenet_v1),
        ZooEntry("mobilenet_v2", "MobileNetV2, torchvision (inverted residuals, depthwise)", mobilenet_v2),
        ZooEntry("googlenet", "GoogLeNet (Inception v1), torchvision (concatenations)", googlenet),
    )
}


def zoo_names() -> tuple[str, ...]:
    return tuple(ZOO)


def zoo_network(name: str, input_size: tuple[int, int] | None = None) -> Network:
    """The zoo network ``name`` for an input of ``input_size`` (height, width; default 224 x 224),
    batch 1, 3 input channels. InputError for an unknown name (listing the known ones) or an input the
    network cannot take."""
    entry = ZOO.get(name)
    if entry is None:
        raise InputError(name, None, f"not a network of the zoo (known: {', '.join(ZOO)})")
    h, w = input_size or DEFAULT_INPUT
    if h < 1 or w < 1:
        raise InputError(name, "--input-size", f"must be positive, got {h} x {w}")
    b = GraphBuilder(name, 3, h, w, source=name if input_size is None else f"{name} ({h}x{w})")
    entry.build(b)
    return b.network()


__all__ = ["DEFAULT_INPUT", "ZOO", "ZooEntry", "zoo_names", "zoo_network"]
