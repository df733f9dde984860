"""Random small networks for the search tests, with capacities that make tiling and caching matter:
chains (P != Q, asymmetric padding, stride 2, dilation, pooling and depthwise layers) and graphs
(residual blocks with and without a strided 1x1 shortcut, two-branch concatenations, depthwise +
pointwise pairs, pools)."""

from __future__ import annotations

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.workload.layer import Layer, Network

HOME_STYLES = (
    {"Weights": "WeightBuf", "Inputs": "GlobalBuf", "Outputs": "GlobalBuf"},  # Simba-like
    {"Weights": "Scratchpad", "Inputs": "Scratchpad", "Outputs": "Accumulator"},  # Gemmini-like
    {"Weights": "WeightBuf", "Inputs": "InputBuf", "Outputs": "OutputBuf"},
)


def _random_layer(rng: np.random.Generator, i: int, c: int, h: int, w: int) -> Layer | None:
    kind = "conv" if i == 0 else str(rng.choice(["conv", "conv", "conv", "pool", "depthwise"]))
    if kind == "pool":
        k = int(rng.choice([2, 3]))
        kh = kw = k
        sh = sw = 2
        dh = dw = 1
    else:
        kh, kw = (int(x) for x in rng.integers(1, 4, size=2))
        sh, sw = (int(rng.random() < 0.3) + 1 for _ in range(2))
        dh = 2 if kh > 1 and rng.random() < 0.15 else 1
        dw = 2 if kw > 1 and rng.random() < 0.15 else 1
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    pad = tuple(int(rng.integers(0, e)) for e in (ew, ew, eh, eh))  # left, right, top, bottom
    q = (h + pad[2] + pad[3] - eh) // sh + 1
    p = (w + pad[0] + pad[1] - ew) // sw + 1
    if q < 1 or p < 1:
        return None
    m = c if kind in ("pool", "depthwise") else int(rng.integers(1, 5))
    return Layer(
        name=f"{kind}{i}",
        kind=kind,
        C=c,
        M=m,
        P=p,
        Q=q,
        R=kw,
        S=kh,
        Wstride=sw,
        Hstride=sh,
        Wdilation=dw,
        Hdilation=dh,
        pad=pad,
        groups=c if kind == "depthwise" else 1,
        pool="max" if kind == "pool" else None,
    )


def random_network(rng: np.random.Generator, max_layers: int = 4, max_last: int = 6) -> Network:
    """A chain of 2..max_layers layers whose last plane is at most max_last x max_last and not square
    in most cases."""
    while True:
        n = int(rng.integers(2, max_layers + 1))
        h, w = (int(x) for x in rng.integers(4, 13, size=2))
        c = int(rng.integers(1, 4))
        layers = []
        ih, iw = h, w
        for i in range(n):
            lay = _random_layer(rng, i, c, ih, iw)
            if lay is None:
                break
            layers.append(lay)
            ih, iw, c = lay.Q, lay.P, lay.M
        if len(layers) == n and ih <= max_last and iw <= max_last and (ih, iw) != (1, 1):
            return Network.chain(f"rand{n}", layers, input_plane=(h, w))


def random_capacity(rng: np.random.Generator, net: Network) -> CapacitySpec:
    """Capacities below what whole planes and all weights need, so the optimum usually tiles and
    caches only some weights."""
    homes = HOME_STYLES[int(rng.integers(len(HOME_STYLES)))]
    need: dict[str, int] = {}
    for i in range(1, len(net.layers)):
        prev, cur = net.layers[i - 1], net.layers[i]
        words = {homes["Inputs"]: prev.M * prev.Q * prev.P}
        words[homes["Outputs"]] = words.get(homes["Outputs"], 0) + cur.M * cur.Q * cur.P
        for k, v in words.items():
            need[k] = max(need.get(k, 0), v)
    total_w = sum(lay.weights for lay in net.layers)
    need[homes["Weights"]] = need.get(homes["Weights"], 0) + total_w
    words = {k: max(1, int(v * rng.uniform(0.3, 0.75))) for k, v in need.items()}
    return CapacitySpec(home=dict(homes), words=words)


# --------------------------------------------------------------------------------------------- #
# graphs: residual blocks, concatenations, depthwise + pointwise pairs, pools
# --------------------------------------------------------------------------------------------- #
BLOCKS = ("res", "res_down", "concat", "dw_pw", "pool", "conv")
#: how often each block is drawn (joins most often)
BLOCK_ODDS = (0.25, 0.2, 0.2, 0.12, 0.12, 0.11)


class _Builder:
    """Appends layers with their operands; ``tensor`` = (index or -1, channels, height, width)."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.inputs: list[tuple[int, ...]] = []

    def add(self, layer: Layer, *operands: int) -> tuple[int, int, int, int]:
        self.layers.append(layer)
        self.inputs.append(tuple(operands))
        return (len(self.layers) - 1, layer.M, layer.Q, layer.P)


def _split(rng: np.random.Generator, total: int) -> tuple[int, int]:
    """Padding before / after that sums to ``total`` (asymmetric in most draws)."""
    before = int(rng.integers(0, total + 1))
    return before, total - before


def _conv(rng, name, c, m, h, w, k=(3, 3), stride=(1, 1), kind="conv", same=True) -> Layer:
    """A conv (or depthwise / pool) layer on an h x w input; ``same``: padding keeps the plane at stride 1
    (split at random between the two sides)."""
    kh, kw = k
    top, bottom = _split(rng, kh - 1) if same else (0, 0)
    left, right = _split(rng, kw - 1) if same else (0, 0)
    q = (h + top + bottom - kh) // stride[0] + 1
    p = (w + left + right - kw) // stride[1] + 1
    return Layer(
        name=name,
        kind=kind,
        C=c,
        M=m,
        P=p,
        Q=q,
        R=kw,
        S=kh,
        Hstride=stride[0],
        Wstride=stride[1],
        pad=(left, right, top, bottom),
        groups=c if kind == "depthwise" else 1,
        pool="max" if kind == "pool" else None,
    )


def _block(rng: np.random.Generator, b: _Builder, kind: str, x: tuple[int, int, int, int], tag: str):
    """Append one block reading tensor ``x``; returns the block's output tensor. The branches of a block
    are appended in a random topological order."""
    xi, c, h, w = x
    if kind == "conv":
        m = int(rng.integers(1, 4))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        return b.add(_conv(rng, f"conv{tag}", c, m, h, w, k), xi)
    if kind == "pool":
        k = int(rng.choice([2, 3]))
        lay = _conv(rng, f"pool{tag}", c, c, h, w, (k, k), (2, 2), kind="pool", same=k == 3)
        return b.add(lay, xi)
    if kind == "dw_pw":
        s = int(rng.choice([1, 2]))
        dw = b.add(_conv(rng, f"dw{tag}", c, c, h, w, (3, 3), (s, s), kind="depthwise"), xi)
        m = int(rng.integers(1, 4))
        return b.add(_conv(rng, f"pw{tag}", c, m, dw[2], dw[3], (1, 1)), dw[0])
    if kind == "concat":
        m1, m2 = (int(v) for v in rng.integers(1, 3, size=2))
        branches = [
            lambda: b.add(_conv(rng, f"b1x1{tag}", c, m1, h, w, (1, 1)), xi),
            lambda: b.add(_conv(rng, f"b3x3{tag}", c, m2, h, w, (3, 3)), xi),
        ]
        order = rng.permutation(2)
        outs = {int(k): branches[int(k)]() for k in order}
        ops = [outs[0][0], outs[1][0]]
        if rng.random() < 0.3:  # keep the block's input too (dense-style)
            ops.append(xi)
            m = m1 + m2 + c
        else:
            m = m1 + m2
        ops = [ops[int(k)] for k in rng.permutation(len(ops))]
        cat = Layer(f"cat{tag}", C=m, M=m, P=w, Q=h, kind="concat", n_inputs=len(ops))
        return b.add(cat, *ops)
    # residual blocks: a -> b (3x3, padding keeps the plane), plus x itself or a strided 1x1 of x
    down = kind == "res_down"
    s = 2 if down else 1
    mid = int(rng.integers(1, 4))
    out_c = int(rng.integers(1, 4)) if down else c
    steps = ["a", "b", "ds"] if down else ["a", "b"]
    if down:
        where = int(rng.integers(0, 3))  # the shortcut goes before a, between a and b, or after b
        steps = steps[:2]
        steps.insert(where, "ds")
    made: dict[str, tuple[int, int, int, int]] = {}
    for step in steps:
        if step == "a":
            made["a"] = b.add(_conv(rng, f"a{tag}", c, mid, h, w, (3, 3), (s, s)), xi)
        elif step == "b":
            a = made["a"]
            made["b"] = b.add(_conv(rng, f"b{tag}", mid, out_c, a[2], a[3], (3, 3)), a[0])
        else:
            made["ds"] = b.add(_conv(rng, f"ds{tag}", c, out_c, h, w, (1, 1), (s, s), same=False), xi)
    short = made["ds"][0] if down else xi
    ops = [made["b"][0], short]
    if rng.random() < 0.5:
        ops.reverse()
    _, _, q, p = made["b"]
    return b.add(Layer(f"add{tag}", C=out_c, M=out_c, P=p, Q=q, kind="add", n_inputs=2), *ops)


def random_dag(
    rng: np.random.Generator, max_blocks: int = 2, max_layers: int = 7, max_last: int = 6
) -> Network:
    """A small graph: an optional stem conv, then 1..max_blocks blocks (residual with or without a
    strided 1x1 shortcut, a two-branch concat, depthwise + pointwise, a pool, a conv), with asymmetric
    padding; at least one join in most draws, at most ``max_layers`` layers, the last plane at most
    ``max_last`` on a side and not 1 x 1."""
    while True:
        h, w = (int(v) for v in rng.integers(4, 11, size=2))
        c = int(rng.integers(1, 4))
        b = _Builder()
        x = (-1, c, h, w)
        if rng.random() < 0.6:
            x = b.add(_conv(rng, "stem", c, int(rng.integers(1, 4)), h, w, (3, 3)), -1)
        for k in range(int(rng.integers(1, max_blocks + 1))):
            x = _block(rng, b, str(rng.choice(BLOCKS, p=BLOCK_ODDS)), x, str(k))
            if x[2] < 1 or x[3] < 1:
                break
        n = len(b.layers)
        small = all(lay.Q >= 1 and lay.P >= 1 for lay in b.layers) and x[2] <= max_last and x[3] <= max_last
        if 2 <= n <= max_layers and small and (x[2], x[3]) != (1, 1):
            return Network("dag", tuple(b.layers), tuple(b.inputs), input_plane=(h, w))


def random_dag_capacity(rng: np.random.Generator, net: Network) -> CapacitySpec:
    """Capacities below what a whole-plane stack of the network holds at once, so tiling, caching and
    the held skip tensors all matter."""
    homes = HOME_STYLES[int(rng.integers(len(HOME_STYLES)))]
    need: dict[str, int] = {}
    size = [lay.M * lay.Q * lay.P for lay in net.layers]
    for i in range(len(net.layers)):
        held = sum(size[p] for p in net.producers(i)) + max(size[:i], default=0)
        words = {homes["Inputs"]: held}
        words[homes["Outputs"]] = words.get(homes["Outputs"], 0) + size[i]
        for k, v in words.items():
            need[k] = max(need.get(k, 0), v)
    need[homes["Weights"]] = need.get(homes["Weights"], 0) + sum(lay.weights for lay in net.layers)
    words = {k: max(1, int(v * rng.uniform(0.3, 0.9))) for k, v in need.items()}
    return CapacitySpec(home=dict(homes), words=words)
