"""Networks as graphs: the shape rules every edge must satisfy, and a builder that computes each layer's
output plane from its operands (used by the model zoo and the ONNX importer; the network YAML applies
the same rules to what the user wrote).

A layer's operands are tensors of ``channels x height x width``. The rules (floor semantics, as
``Layer.accepts_input_plane``):

* conv, depthwise, pool: one operand; C = its channels; the output plane follows from its plane,
  kernel, stride, dilation and padding;
* fc: one operand, read whole: C = its channels and R x S = its plane (a 1x1 plane after another fc),
  P = Q = 1 -- a convolution over the whole input plane, so weights, MACs and the receptive field are
  those of the flattened layer;
* add: two or more operands of equal shape; C = M = their channels, same plane;
* concat: two or more operands with equal planes; C = M = the sum of their channels, same plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from deepfrack.errors import InputError
from deepfrack.workload.layer import NETWORK_INPUT, Layer, Network


@dataclass(frozen=True)
class Operand:
    """A tensor a layer reads: its name (a layer's, or ``input``), channels and plane (height, width);
    None where the workload does not say (the network input of a network YAML)."""

    name: str
    channels: int | None
    plane: tuple[int, int] | None

    def describe(self) -> str:
        ch = "?" if self.channels is None else str(self.channels)
        hw = "?x?" if self.plane is None else f"{self.plane[0]}x{self.plane[1]}"
        return f"{self.name} ({ch}x{hw})"


def _plane_error(layer: Layer, op: Operand) -> tuple[str, str] | None:
    """The field and message when ``layer``'s output plane does not follow from ``op``'s plane."""
    if op.plane is None:
        return None
    h, w = op.plane
    nh, nw = layer.min_input_plane
    if not nw <= w < nw + layer.Wstride:
        return (
            "P",
            f"{layer.name}'s output width {layer.P} does not follow from {op.name}'s width {w} "
            f"(kernel, stride, dilation and padding need {nw}..{nw + layer.Wstride - 1})",
        )
    if not nh <= h < nh + layer.Hstride:
        return (
            "Q",
            f"{layer.name}'s output height {layer.Q} does not follow from {op.name}'s height {h} "
            f"(kernel, stride, dilation and padding need {nh}..{nh + layer.Hstride - 1})",
        )
    return None


def _join_error(layer: Layer, ops: Sequence[Operand]) -> tuple[str, str] | None:
    kind = layer.kind
    if len(ops) < 2:
        return ("inputs", f"an {kind} layer joins two or more tensors, {layer.name} reads {len(ops)}")
    if layer.n_inputs != len(ops):
        return ("inputs", f"{layer.name} records {layer.n_inputs} operands but reads {len(ops)}")
    known = [op for op in ops if op.plane is not None]
    if any(op.plane != known[0].plane for op in known):
        what = "shape" if kind == "add" else "plane"
        return (
            "inputs",
            f"the inputs of {kind} {layer.name} differ in {what}: "
            + ", ".join(op.describe() for op in ops)
            + " (channels x height x width)",
        )
    chans = [op.channels for op in ops]
    if kind == "add":
        if len({c for c in chans if c is not None}) > 1:
            return (
                "inputs",
                f"the inputs of add {layer.name} differ in shape: "
                + ", ".join(op.describe() for op in ops)
                + " (channels x height x width)",
            )
        width = next((c for c in chans if c is not None), layer.C)
    else:
        width = sum(c for c in chans if c is not None) if None not in chans else layer.C
    if width != layer.C or width != layer.M:
        return ("C", f"{kind} {layer.name} has C={layer.C}, M={layer.M}; its inputs give {width} channels")
    if known and known[0].plane != (layer.Q, layer.P):
        q, p = known[0].plane  # type: ignore[misc]
        return ("P", f"{kind} {layer.name} has a {layer.Q}x{layer.P} plane; its inputs are {q}x{p}")
    return None


def operand_error(layer: Layer, ops: Sequence[Operand]) -> tuple[str, str] | None:
    """``(field, message)`` when ``layer`` cannot read the tensors ``ops`` (module docstring), else None.
    ``field`` is a layer field (``inputs``, ``C``, ``P``, ``Q``, ``R``)."""
    if layer.kind in ("add", "concat"):
        return _join_error(layer, ops)
    if len(ops) != 1:
        return (
            "inputs",
            f"a {layer.kind} layer reads one tensor, {layer.name} reads {len(ops)} "
            "(join tensors with an add or concat layer)",
        )
    op = ops[0]
    if op.channels is not None and op.channels != layer.C:
        hint = ""
        if layer.kind == "fc" and op.plane is not None and op.channels * op.plane[0] * op.plane[1] == layer.C:
            hint = f" (an fc after a plane reads it whole: C={op.channels}, R x S = its plane)"
        return ("C", f"{layer.name} takes {layer.C} channels but {op.name} gives {op.channels}{hint}")
    if layer.kind == "fc" and op.plane is not None and op.plane != (layer.S, layer.R):
        return (
            "R",
            f"fc {layer.name} reads {op.name}'s whole {op.plane[0]}x{op.plane[1]} plane, so its kernel "
            f"R x S must be {op.plane[1]}x{op.plane[0]}, got {layer.R}x{layer.S}",
        )
    return _plane_error(layer, op)


def operands_of(network: Network, i: int, input_channels: int | None = None) -> list[Operand]:
    """The tensors layer ``i`` reads, with their shapes (the network input's plane when stated)."""
    out = []
    for p in network.inputs[i]:
        if p == NETWORK_INPUT:
            out.append(Operand("input", input_channels, network.input_plane))
        else:
            src = network.layers[p]
            out.append(Operand(src.name, src.M, src.out_plane))
    return out


def check_network(network: Network, input_channels: int | None = None) -> None:
    """Every edge of ``network`` obeys the shape rules (module docstring); InputError naming the
    network's source, the layer and the field otherwise."""
    names = [layer.name for layer in network.layers]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(network.source, "layers", f"two layers are named {dup!r}")
    for i, layer in enumerate(network.layers):
        err = operand_error(layer, operands_of(network, i, input_channels))
        if err is not None:
            raise InputError(network.source, f"{layer.name}.{err[0]}", err[1])


# --------------------------------------------------------------------------------------------- #
# building networks in code
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Tensor:
    """A tensor while a network is built: the layer that makes it (``NETWORK_INPUT`` for the input),
    its channels and plane (height, width)."""

    producer: int
    channels: int
    h: int
    w: int


Pad = int | tuple[int, int, int, int]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) from one number or a pair."""
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _pad4(pad: Pad) -> tuple[int, int, int, int]:
    return (pad, pad, pad, pad) if isinstance(pad, int) else tuple(pad)  # type: ignore[return-value]


def out_extent(extent: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    """Output length of a sliding window (floor semantics): floor((extent + pads - kernel extent) / s) + 1."""
    return (extent + before + after - ((kernel - 1) * dilation + 1)) // stride + 1


def ceil_extra_pad(extent: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    """Padding to add after the plane so that floor semantics give a ``ceil_mode`` pooling's output
    (PyTorch and ONNX: ceil instead of floor, but the last window must start inside the input or the
    padding before it)."""
    ext = (kernel - 1) * dilation + 1
    span = extent + before + after - ext
    out = -(-span // stride) + 1
    if (out - 1) * stride >= extent + before:
        out -= 1
    return max(0, (out - 1) * stride + ext - (extent + before + after))


class GraphBuilder:
    """Builds a Network layer by layer, each layer's output plane computed from its operand (floor
    semantics). Methods return the new layer's output Tensor; ``network()`` checks every edge
    (``check_network``) and returns the Network."""

    def __init__(self, name: str, channels: int, h: int, w: int, batch: int = 1, source: str | None = None):
        self.name = name
        self.source = source or name
        self.batch = batch
        self.input = Tensor(NETWORK_INPUT, channels, h, w)
        self.layers: list[Layer] = []
        self.inputs: list[tuple[int, ...]] = []

    def _add(self, layer: Layer, ops: Sequence[Tensor]) -> Tensor:
        if layer.P < 1 or layer.Q < 1:
            raise InputError(
                self.source,
                layer.name,
                f"the input is too small: {layer.name} would have a {layer.Q}x{layer.P} output plane",
            )
        layer = replace(layer, N=self.batch)
        self.layers.append(layer)
        self.inputs.append(tuple(t.producer for t in ops))
        return Tensor(len(self.layers) - 1, layer.M, layer.Q, layer.P)

    def _window(
        self,
        x: Tensor,
        name: str,
        M: int,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int],
        pad: Pad,
        dilation: int | tuple[int, int],
        ceil_mode: bool = False,
        **fields: object,
    ) -> Tensor:
        """A sliding-window layer (conv or pool) over ``x``; ``fields`` are the layer's kind and the like."""
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        l, r, t, b = _pad4(pad)
        if ceil_mode:
            r += ceil_extra_pad(x.w, kw, sw, dw, l, r)
            b += ceil_extra_pad(x.h, kh, sh, dh, t, b)
        layer = Layer(
            name,
            C=x.channels,
            M=M,
            R=kw,
            S=kh,
            P=out_extent(x.w, kw, sw, dw, l, r),
            Q=out_extent(x.h, kh, sh, dh, t, b),
            Wstride=sw,
            Hstride=sh,
            Wdilation=dw,
            Hdilation=dh,
            pad=(l, r, t, b),
            **fields,  # type: ignore[arg-type]
        )
        return self._add(layer, [x])

    def conv(
        self,
        x: Tensor,
        name: str,
        M: int,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad: Pad = 0,
        groups: int = 1,
        dilation: int | tuple[int, int] = 1,
    ) -> Tensor:
        """A convolution; ``kernel``, ``stride``, ``dilation`` are one number or (height, width); ``pad``
        one number or (left, right, top, bottom). groups == C == M is a depthwise layer."""
        kind = "depthwise" if groups > 1 and groups == x.channels == M else "conv"
        return self._window(x, name, M, kernel, stride, pad, dilation, kind=kind, groups=groups)

    def pool(
        self,
        x: Tensor,
        name: str,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        pad: Pad = 0,
        op: str = "max",
        ceil_mode: bool = False,
        dilation: int | tuple[int, int] = 1,
    ) -> Tensor:
        """A max or average pooling (stride defaults to the kernel); ``ceil_mode`` adds the padding after
        the plane that makes floor semantics give the ceil-mode output (``ceil_extra_pad``)."""
        stride = kernel if stride is None else stride
        return self._window(
            x, name, x.channels, kernel, stride, pad, dilation, ceil_mode, kind="pool", pool=op
        )

    def global_pool(self, x: Tensor, name: str, op: str = "avg") -> Tensor:
        """A pooling over the whole plane (global average pooling): a 1x1 output."""
        return self.pool(x, name, (x.h, x.w), 1, op=op)

    def fc(self, x: Tensor, name: str, M: int) -> Tensor:
        """A fully connected layer reading all of ``x`` (flattened): a convolution over its whole plane."""
        layer = Layer(name, C=x.channels, M=M, R=x.w, S=x.h, P=1, Q=1, kind="fc")
        return self._add(layer, [x])

    def add(self, xs: Sequence[Tensor], name: str) -> Tensor:
        """Element-wise sum of two or more tensors of equal shape."""
        x = xs[0]
        layer = Layer(name, C=x.channels, M=x.channels, P=x.w, Q=x.h, kind="add", n_inputs=len(xs))
        return self._add(layer, xs)

    def concat(self, xs: Sequence[Tensor], name: str) -> Tensor:
        """Channel concatenation of two or more tensors with equal planes."""
        c = sum(x.channels for x in xs)
        layer = Layer(name, C=c, M=c, P=xs[0].w, Q=xs[0].h, kind="concat", n_inputs=len(xs))
        return self._add(layer, xs)

    def network(self) -> Network:
        net = Network(
            self.name,
            tuple(self.layers),
            tuple(self.inputs),
            input_plane=(self.input.h, self.input.w),
            source=self.source,
        )
        check_network(net, self.input.channels)
        return net


__all__ = [
    "GraphBuilder",
    "Operand",
    "Tensor",
    "ceil_extra_pad",
    "check_network",
    "operand_error",
    "operands_of",
    "out_extent",
]
