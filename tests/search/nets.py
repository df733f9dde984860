"""Random small chains for the search tests: P != Q, asymmetric padding, stride 2, dilation,
pooling and depthwise layers, with capacities that make tiling and caching matter."""

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
