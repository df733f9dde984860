"""ONNX models as workloads: the graph's operators become deepfrack layers (docs/workloads.md).

The model is read without its external data and without needing its weights (only their shapes:
stripped or external initializers keep their dimensions), then ONNX's shape inference runs. From the
graph's one activation input, each node that reads an activation becomes a layer or is folded away:

* ``Conv`` -> conv (``group``: depthwise when it equals the input and output channels, else a grouped
  conv); ONNX ``pads`` [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right] become
  deepfrack's [left, right, top, bottom]; ``strides``, ``dilations``, ``auto_pad``;
* ``MaxPool`` / ``AveragePool`` -> pool (``kernel_shape``, ``strides``, ``pads``, ``ceil_mode``: the
  padding after the plane that makes floor semantics give the ceil-mode output); ``GlobalAveragePool``
  / ``GlobalMaxPool``, and ``ReduceMean`` / ``ReduceMax`` over both spatial axes (what PyTorch's newer
  exporter writes for a global average pool) -> a pool over the whole plane;
* ``Gemm`` / ``MatMul`` with a weight matrix -> fc (after a plane: a convolution over the whole plane);
* ``Add`` / ``Sum`` of two or more activations of equal shape -> add; ``Concat`` of activations along
  the channel axis -> concat;
* folded away, costed as free: ``Relu``, ``Clip``, ``BatchNormalization``, ``LRN``, ``Dropout``,
  ``Softmax``, ``Identity``, ``Flatten``, a flattening ``Reshape``, the element-wise activations of
  ``FREE_UNARY``, an ``Add`` of an activation and a constant (a bias), and the nodes that compute
  constants or shapes (``Constant``, ``Shape``, ...: they read no activation).

Anything else that reads an activation is an InputError naming the node and its op type; so is a
shape the inference cannot resolve (a dynamic input size: give ``input_size``). A symbolic batch
dimension is taken as 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfrack.errors import InputError
from deepfrack.workload.graph import GraphBuilder, Tensor
from deepfrack.workload.layer import Network

#: element-wise operators folded away (they cost nothing in deepfrack's model)
FREE_UNARY: frozenset[str] = frozenset(
    {
        "Relu",
        "Clip",
        "BatchNormalization",
        "LRN",
        "Dropout",
        "Softmax",
        "LogSoftmax",
        "Identity",
        "LeakyRelu",
        "PRelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
    }
)
#: every operator type the importer reads
SUPPORTED: tuple[str, ...] = tuple(
    sorted(
        FREE_UNARY
        | {
            "Conv",
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "GlobalMaxPool",
            "ReduceMean",
            "ReduceMax",
            "Gemm",
            "MatMul",
            "Add",
            "Sum",
            "Concat",
            "Flatten",
            "Reshape",
            "Constant",
            "Shape",
        }
    )
)
#: node inputs (by operator, position >= 1) that hold weights or parameters, not activations
_PARAM_SLOTS = {"Conv", "Gemm", "MatMul", "BatchNormalization", "Clip", "Reshape", "PRelu"}


@dataclass(frozen=True)
class _Act:
    """An activation while importing: the builder's tensor, and whether it was flattened."""

    tensor: Tensor
    flat: bool = False


def _load(path: Path) -> Any:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise InputError(path, None, "reading ONNX needs the onnx package (pip install onnx)") from None
    try:
        return onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise InputError(path, None, "ONNX file not found") from None
    except Exception as exc:  # protobuf's DecodeError and friends: not a model
        raise InputError(path, None, f"not an ONNX model ({type(exc).__name__}: {exc})".strip()) from None


def _dims(value_info: Any) -> list[int | str | None] | None:
    """The dimensions of a ValueInfo's tensor type: ints, symbolic names, or None when unknown."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


class _Importer:
    def __init__(self, path: Path, model: Any, input_size: tuple[int, int] | None):
        self.path = path
        self.model = model
        self.graph = model.graph
        self.input_size = input_size
        self.inits = {t.name: list(t.dims) for t in self.graph.initializer}
        self.acts: dict[str, _Act] = {}
        self.names: set[str] = set()
        self.builder: GraphBuilder | None = None

    # --- helpers ----------------------------------------------------------------------------------
    def fail(self, node: Any, message: str) -> InputError:
        """An InputError naming the node (its name, or its position in the graph when it has none)."""
        who = repr(node.name) if node.name else f"#{list(self.graph.node).index(node)}"
        return InputError(self.path, f"node {who} ({node.op_type})", message)

    def layer_name(self, node: Any, k: int) -> str:
        base = node.name or f"{node.op_type.lower()}_{k}"
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def param_shape(self, node: Any, name: str) -> list[int]:
        dims = self.inits.get(name)
        if dims is None:
            dims = self.shapes.get(name)
        if dims is None or any(not isinstance(d, int) for d in dims):
            raise self.fail(node, f"the shape of its weights {name!r} is not known (a dynamic shape)")
        return dims  # type: ignore[return-value]

    def ints(self, node: Any, attr: str, default: Sequence[int]) -> list[int]:
        for a in node.attribute:
            if a.name == attr:
                return [int(v) for v in a.ints]
        return list(default)

    def attr(self, node: Any, attr: str, default: Any) -> Any:
        from onnx import helper

        for a in node.attribute:
            if a.name == attr:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    # --- the graph input ----------------------------------------------------------------------------
    def activation_inputs(self) -> list[Any]:
        params = {
            name for node in self.graph.node if node.op_type in _PARAM_SLOTS for name in list(node.input)[1:]
        }
        return [vi for vi in self.graph.input if vi.name not in self.inits and vi.name not in params]

    def fix_input(self) -> None:
        """Set the activation input's symbolic batch to 1 and its plane to ``input_size``, before
        shape inference."""
        ins = self.activation_inputs()
        if len(ins) != 1:
            names = ", ".join(repr(vi.name) for vi in ins) or "none"
            raise InputError(self.path, "graph.input", f"expected one activation input, found {names}")
        self.input = ins[0]
        dims = self.input.type.tensor_type.shape.dim
        if len(dims) not in (2, 4):
            raise InputError(
                self.path,
                f"input {self.input.name!r}",
                f"expected a 4-D (N, C, H, W) or 2-D (N, features) input, got {len(dims)}-D",
            )
        if not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
        if self.input_size is not None:
            if len(dims) != 4:
                raise InputError(self.path, "--input-size", "the model's input has no plane")
            dims[2].dim_value, dims[3].dim_value = self.input_size

    def infer(self) -> None:
        import onnx

        try:
            self.model = onnx.shape_inference.infer_shapes(self.model, data_prop=True)
        except Exception as exc:
            raise InputError(self.path, None, f"ONNX shape inference failed: {exc}") from None
        self.graph = self.model.graph
        self.shapes: dict[str, list[int | str | None]] = {}
        for vi in (*self.graph.input, *self.graph.value_info, *self.graph.output):
            d = _dims(vi)
            if d is not None:
                self.shapes[vi.name] = d

    def start(self) -> None:
        dims = self.shapes.get(self.input.name) or []
        if not all(isinstance(d, int) and d > 0 for d in dims):
            reader = next((n for n in self.graph.node if self.input.name in n.input), None)
            shown = "[" + ", ".join(str(d) for d in dims) + "]"
            msg = (
                f"its input {self.input.name!r} has dynamic dimensions {shown} that shape inference cannot "
                "resolve: export the model with a fixed input size, or give --input-size H W"
            )
            if reader is None:
                raise InputError(self.path, f"input {self.input.name!r}", msg)
            raise self.fail(reader, msg)
        n, c = int(dims[0]), int(dims[1])  # type: ignore[arg-type]
        h, w = (int(dims[2]), int(dims[3])) if len(dims) == 4 else (1, 1)  # type: ignore[arg-type]
        name = self.graph.name or self.path.stem
        self.builder = GraphBuilder(name, c, h, w, batch=n, source=str(self.path))
        self.acts[self.input.name] = _Act(self.builder.input, flat=len(dims) == 2)

    # --- nodes ------------------------------------------------------------------------------------
    def check_plane(self, node: Any, t: Tensor) -> None:
        """The output plane deepfrack computes must be the one shape inference gives (when it does)."""
        dims = self.shapes.get(node.output[0])
        known = dims is not None and len(dims) == 4 and all(isinstance(d, int) for d in dims[2:])
        if known and (dims[2], dims[3]) != (t.h, t.w):  # type: ignore[index]
            raise self.fail(
                node,
                f"shape inference gives a {dims[2]}x{dims[3]} output plane, the operator's definition "  # type: ignore[index]
                f"{t.h}x{t.w}",
            )

    def pads(self, node: Any, x: Tensor, kernel: tuple[int, int], strides, dilations) -> tuple[int, ...]:
        """deepfrack's (left, right, top, bottom) from ``auto_pad`` or ONNX's [top, left, bottom, right]."""
        auto = self.attr(node, "auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = []
            for extent, k, s, d in zip((x.h, x.w), kernel, strides, dilations):
                o = -(-extent // s)
                total = max((o - 1) * s + (k - 1) * d + 1 - extent, 0)
                small, big = total // 2, total - total // 2
                out.append((small, big) if auto == "SAME_UPPER" else (big, small))
            (t, b), (l, r) = out
            return (l, r, t, b)
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto != "NOTSET":
            raise self.fail(node, f"unknown auto_pad {auto!r}")
        p = self.ints(node, "pads", [0, 0, 0, 0])
        if len(p) != 4:
            raise self.fail(node, f"expected 4 pads for a 2-D window, got {p}")
        top, left, bottom, right = p
        return (left, right, top, bottom)

    def plane_input(self, node: Any) -> Tensor:
        act = self.acts[node.input[0]]
        if act.flat:
            raise self.fail(node, "reads a flattened tensor; expected a 4-D (N, C, H, W) activation")
        return act.tensor

    def conv(self, node: Any, k: int) -> Tensor:
        x = self.plane_input(node)
        wshape = self.param_shape(node, node.input[1])
        if len(wshape) != 4:
            raise self.fail(node, f"only 2-D convolutions are supported (weights {wshape})")
        m, cg, kh, kw = wshape
        g = int(self.attr(node, "group", 1))
        if cg * g != x.channels:
            raise self.fail(node, f"weights {wshape} with group={g} do not fit {x.channels} input channels")
        kernel = tuple(self.ints(node, "kernel_shape", [kh, kw]))
        strides = self.ints(node, "strides", [1, 1])
        dil = self.ints(node, "dilations", [1, 1])
        pad = self.pads(node, x, kernel, strides, dil)  # type: ignore[arg-type]
        assert self.builder is not None
        return self.builder.conv(
            x, self.layer_name(node, k), m, kernel, tuple(strides), pad, groups=g, dilation=tuple(dil)
        )

    def pool(self, node: Any, k: int) -> Tensor:
        x = self.plane_input(node)
        assert self.builder is not None
        op = "max" if "Max" in node.op_type else "avg"
        if node.op_type.startswith("Global"):
            return self.builder.global_pool(x, self.layer_name(node, k), op)
        kernel = tuple(self.ints(node, "kernel_shape", []))
        if len(kernel) != 2:
            raise self.fail(node, f"only 2-D pooling is supported (kernel_shape {list(kernel)})")
        strides = self.ints(node, "strides", [1, 1])
        dil = self.ints(node, "dilations", [1, 1])
        pad = self.pads(node, x, kernel, strides, dil)  # type: ignore[arg-type]
        ceil = bool(self.attr(node, "ceil_mode", 0))
        return self.builder.pool(
            x, self.layer_name(node, k), kernel, tuple(strides), pad, op, ceil_mode=ceil, dilation=tuple(dil)
        )

    def fc(self, node: Any, k: int) -> Tensor:
        if node.input[1] in self.acts:
            raise self.fail(node, "multiplies two activations; deepfrack reads weight matrices only")
        act = self.acts[node.input[0]]
        x = act.tensor
        if not act.flat and (x.h, x.w) != (1, 1):
            raise self.fail(node, f"reads a {x.h}x{x.w} plane that was not flattened")
        wshape = self.param_shape(node, node.input[1])
        if len(wshape) != 2:
            raise self.fail(node, f"expected a 2-D weight matrix, got {wshape}")
        if node.op_type == "Gemm" and int(self.attr(node, "transA", 0)):
            raise self.fail(node, "transA=1 (a transposed activation) is not supported")
        trans_b = node.op_type == "Gemm" and int(self.attr(node, "transB", 0))
        kdim, m = (wshape[1], wshape[0]) if trans_b else (wshape[0], wshape[1])
        if kdim != x.channels * x.h * x.w:
            raise self.fail(
                node,
                f"weights {wshape} do not fit its input of {x.channels}x{x.h}x{x.w} = "
                f"{x.channels * x.h * x.w} features",
            )
        assert self.builder is not None
        return self.builder.fc(x, self.layer_name(node, k), m)

    def join(self, node: Any, k: int, acts: list[_Act]) -> Tensor:
        assert self.builder is not None
        if node.op_type == "Concat":
            axis = int(self.attr(node, "axis", 1))
            rank = 2 if acts[0].flat else 4
            if axis not in (1, 1 - rank):
                raise self.fail(
                    node, f"concatenates along axis {axis}; deepfrack concatenates channels (axis 1)"
                )
            if len(acts) != len(node.input):
                raise self.fail(node, "concatenates an activation with a constant")
            xs = [a.tensor for a in acts]
            if any((x.h, x.w) != (xs[0].h, xs[0].w) for x in xs):
                planes = ", ".join(f"{x.h}x{x.w}" for x in xs)
                raise self.fail(node, f"concatenates tensors with unequal planes ({planes})")
            return self.builder.concat(xs, self.layer_name(node, k))
        xs = [a.tensor for a in acts]
        shapes = {(x.channels, x.h, x.w) for x in xs}
        if len(shapes) != 1:
            shown = ", ".join(f"{x.channels}x{x.h}x{x.w}" for x in xs)
            raise self.fail(node, f"adds tensors of unequal shapes ({shown}; broadcasting is not supported)")
        return self.builder.add(xs, self.layer_name(node, k))

    def reduce(self, node: Any, k: int, act: _Act) -> _Act:
        """ReduceMean / ReduceMax over the whole plane (seen in the inferred output shape): a global pool,
        flattened when the reduced axes are dropped (keepdims=0)."""
        dims = self.shapes.get(node.output[0])
        x = act.tensor
        if act.flat or dims is None or not all(isinstance(d, int) for d in dims):
            raise self.fail(node, "only a reduction over the whole plane of a known shape is supported")
        if dims[1:] not in ([x.channels, 1, 1], [x.channels]):
            shape = f"{x.channels}x{x.h}x{x.w}"
            raise self.fail(
                node, f"reduces {shape} to {dims[1:]}: only a reduction over the whole plane is read"
            )
        flat = len(dims) == 2
        if (x.h, x.w) == (1, 1):
            return _Act(x, flat=flat)
        assert self.builder is not None
        op = "max" if node.op_type == "ReduceMax" else "avg"
        return _Act(self.builder.global_pool(x, self.layer_name(node, k), op), flat=flat)

    def reshape(self, node: Any, act: _Act) -> _Act:
        dims = self.shapes.get(node.output[0])
        x = act.tensor
        if dims is None or not all(isinstance(d, int) for d in dims):
            raise self.fail(node, "its output shape is not known after shape inference (a dynamic shape)")
        features = x.channels * x.h * x.w
        if len(dims) == 2 and dims[1] == features:
            return _Act(x, flat=True)
        if dims[1:] == ([x.channels, x.h, x.w] if not act.flat else [features]):
            return act
        raise self.fail(node, f"reshapes {x.channels}x{x.h}x{x.w} to {dims}: only flattening is supported")

    def node(self, node: Any, k: int) -> None:
        acts = [self.acts[i] for i in node.input if i in self.acts]
        op = node.op_type
        if not acts or op in ("Shape", "Constant"):
            return  # computes constants or shapes: no layer
        out: _Act
        if op in FREE_UNARY:
            out = acts[0]
        elif op == "Flatten":
            axis = int(self.attr(node, "axis", 1))
            if axis != 1:
                raise self.fail(node, f"flattens from axis {axis}; deepfrack reads Flatten(axis=1)")
            out = _Act(acts[0].tensor, flat=True)
        elif op == "Reshape":
            out = self.reshape(node, acts[0])
        elif op == "Conv":
            out = _Act(self.conv(node, k))
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
            out = _Act(self.pool(node, k))
        elif op in ("ReduceMean", "ReduceMax"):
            out = self.reduce(node, k, acts[0])
        elif op in ("Gemm", "MatMul"):
            out = _Act(self.fc(node, k))
        elif op in ("Add", "Sum") and len(acts) == 1:
            out = acts[0]  # an activation plus a constant (a bias): folded
        elif op in ("Add", "Sum", "Concat"):
            out = _Act(self.join(node, k, acts), flat=acts[0].flat)
        else:
            raise self.fail(node, f"unsupported operator; deepfrack reads {', '.join(SUPPORTED)}")
        if out.tensor.producer >= 0 and not out.flat:
            self.check_plane(node, out.tensor)
        self.acts[node.output[0]] = out

    def run(self) -> Network:
        self.fix_input()
        self.infer()
        self.start()
        for k, node in enumerate(self.graph.node):
            self.node(node, k)
        assert self.builder is not None
        if not self.builder.layers:
            raise InputError(self.path, "graph", "no layer deepfrack can cost (no Conv, pooling or Gemm)")
        return self.builder.network()


def load_onnx(path: str | Path, input_size: tuple[int, int] | None = None) -> Network:
    """The network of an ONNX model (module docstring). ``input_size`` (height, width) replaces the
    input's plane (needed when the model was exported with a dynamic size)."""
    p = Path(path)
    return _Importer(p, _load(p), input_size).run()


__all__ = ["FREE_UNARY", "SUPPORTED", "load_onnx"]
