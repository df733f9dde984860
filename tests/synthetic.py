"""Synthetic cost tables for tests and benchmarks (not a cost model).

``synthetic_table`` gives every (layer, variant, h, w) a cost from a simple per-layer formula with
random coefficients: compute proportional to MACs (or to outputs for layers without weights),
on-chip traffic for every tensor, and DRAM traffic for each tensor the variant keeps in DRAM (so
fused variants are cheaper per tile than SLC, and cached variants cheaper than uncached ones), plus
multiplicative noise so that costs are not monotone in tile size, like real mapper output.

(The entries ``optimize`` may ask for, what a benchmark produces for it, are
``deepfrack.search.required.required_shapes``.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from deepfrack.cost.table import CostRecord, CostTable
from deepfrack.residency import VARIANTS, Variant
from deepfrack.workload.layer import Network

_EMPTY: dict = {}


def synthetic_table(
    network: Network,
    seed: int = 0,
    noise: float = 0.05,
    dram_pJ_per_word: float = 20.0,
    keys: Iterable[tuple[int, Variant, int, int]] | None = None,
    cycles: bool = True,
) -> CostTable:
    """A CostTable over ``keys`` (default: every variant and every h x w up to each layer's plane).

    Energy (pJ) of an h x w output region of layer l under variant v:
    ``(mac_pJ * MACs + buf_pJ * (in + out words) + dram * (W if W off chip + I + O off chip))
    * (1 + noise * u)``, with per-layer random mac_pJ, buf_pJ and u uniform in [0, 1) per entry; the
    input region is the
    ``(h - 1) * stride + kernel`` square clipped to the producer's plane (an add reads it from each of
    its operands). Cycles, when asked for, are
    ``MACs / 64 + DRAM words / 8`` with the same noise.
    """
    rng = np.random.default_rng(seed)
    table = CostTable(source=f"synthetic(seed={seed})")
    wanted: dict[tuple[int, Variant], list[tuple[int, int]]] | None = None
    if keys is not None:
        wanted = {}
        for l, v, h, w in keys:
            wanted.setdefault((l, v), []).append((h, w))
    for l, layer in enumerate(network.layers):
        mac_pJ = rng.uniform(0.5, 3.0)
        buf_pJ = rng.uniform(0.5, 4.0)
        in_h, in_w = network.input_plane_of(l)
        kh, kw = layer.kernel_extent
        for v in VARIANTS:
            if wanted is None:
                hs, ws = np.meshgrid(np.arange(1, layer.Q + 1), np.arange(1, layer.P + 1), indexing="ij")
                hs, ws = hs.ravel(), ws.ravel()
            else:
                pairs = wanted.get((l, v))
                if not pairs:
                    continue
                hs, ws = (np.array(x) for x in zip(*sorted(set(pairs))))
            rin = np.minimum((hs - 1) * layer.Hstride + kh, in_h)
            cin = np.minimum((ws - 1) * layer.Wstride + kw, in_w)
            in_words = layer.N * layer.C * rin * cin * (len(network.inputs[l]) if layer.kind == "add" else 1)
            out_words = layer.N * layer.M * hs * ws
            macs = layer.macs_for(1, 1) * hs * ws
            compute = mac_pJ * (macs if layer.has_weights else out_words)
            w_on, i_on, o_on = v.on_chip
            dram = (0 if w_on else layer.weights) + (0 if i_on else in_words) + (0 if o_on else out_words)
            u = 1.0 + noise * rng.random(hs.size)
            energy = (compute + buf_pJ * (in_words + out_words) + dram_pJ_per_word * dram) * u
            cyc = (macs / 64.0 + dram / 8.0) * u if cycles else None
            for k in range(hs.size):
                table.records[(l, v, int(hs[k]), int(ws[k]))] = CostRecord(
                    float(energy[k]), float(cyc[k]) if cyc is not None else None, int(macs[k]), _EMPTY, _EMPTY
                )
    return table
