"""A network as a table or a JSON document (what ``deepfrack workload show`` prints)."""

from __future__ import annotations

from typing import Any

from deepfrack.workload.layer import Layer, Network


def layer_entry(network: Network, i: int) -> dict[str, Any]:
    """Layer i's fields (``Layer.summary``) with the names of the tensors it reads."""
    entry = network.layers[i].summary()
    return {
        "name": entry.pop("name"),
        "type": entry.pop("type"),
        "inputs": list(network.operand_names(i)),
    } | entry


def network_json(network: Network) -> dict[str, Any]:
    """``{"network", "input", "layers", "macs", "weights"}``: every layer (``layer_entry``), the input
    plane [H, W] (None when the workload does not state it), total MACs (conv, depthwise and fc layers)
    and weight words."""
    return {
        "network": network.name,
        "input": list(network.input_plane) if network.input_plane is not None else None,
        "layers": [layer_entry(network, i) for i in range(len(network))],
        "macs": network.macs,
        "weights": network.weights,
    }


def _pair(h: int, w: int) -> str:
    return str(h) if h == w else f"{h}x{w}"


def _pad(layer: Layer) -> str:
    return str(layer.pad[0]) if len(set(layer.pad)) == 1 else ",".join(str(v) for v in layer.pad)


def _si(n: int) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return str(n)


HEADER = ("#", "name", "type", "inputs", "C", "M", "R", "S", "P", "Q", "stride", "pad", "groups", "MACs")


def network_table(network: Network) -> str:
    """The layer table: index (0-based), name, type (``pool`` with its operation), inputs, C, M, R, S,
    P, Q, stride (H x W when they differ), padding (left,right,top,bottom, or one number when equal),
    groups and MACs, then the totals."""
    rows = [HEADER]
    for i, layer in enumerate(network.layers):
        kind = f"{layer.pool}pool" if layer.kind == "pool" else layer.kind
        rows.append(
            (
                str(i),
                layer.name,
                kind,
                ",".join(network.operand_names(i)),
                str(layer.C),
                str(layer.M),
                str(layer.R),
                str(layer.S),
                str(layer.P),
                str(layer.Q),
                _pair(layer.Hstride, layer.Wstride),
                _pad(layer),
                str(layer.groups),
                _si(layer.macs) if layer.macs else "-",
            )
        )
    widths = [max(len(r[k]) for r in rows) for k in range(len(HEADER))]
    right = {0, 4, 5, 6, 7, 8, 9, 10, 12, 13}
    lines = [
        "  ".join(
            c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in rows
    ]
    plane = f", input {network.input_plane[0]}x{network.input_plane[1]}" if network.input_plane else ""
    title = f"{network.name}: {len(network)} layers{plane}"
    macs, weights = network.macs, network.weights
    total = f"total: {macs:,} MACs ({_si(macs)}), {weights:,} weights ({_si(weights)})"
    return "\n".join([title, *lines, total]) + "\n"


__all__ = ["layer_entry", "network_json", "network_table"]
