"""Workload loaders: a folder of Timeloop problem YAMLs (the original DeepFrack's input), one Timeloop
problem file, and deepfrack's network YAML (a graph of layers with padding, pooling, residual adds
and concatenations; docs/workloads.md)."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

from deepfrack.dims import DIMS
from deepfrack.errors import InputError, shown
from deepfrack.files import read_yaml
from deepfrack.workload.graph import Operand, operand_error
from deepfrack.workload.layer import JOIN_KINDS, LAYER_KINDS, NETWORK_INPUT, Layer, Network

#: the largest plane side accepted: the search keeps a (Q+1) x (P+1) cost grid per layer and variant, and
#: real layers are far smaller (a 16384 x 16384 plane already needs 2 GiB per grid)
MAX_PLANE = 16384
#: the largest other dimension (channels, kernel, batch, stride, padding)
MAX_DIM = 1 << 24
_COEFFS = ("Wstride", "Hstride", "Wdilation", "Hdilation")


class ChainWarning(UserWarning):
    """Two consecutive layers whose planes or channels do not agree."""


def _positive_int(value: Any, path: Path, field: str, allow_zero: bool = False) -> int:
    """A non-negative (allow_zero) or positive integer, at most MAX_PLANE for a plane size (P, Q, input)
    and MAX_DIM otherwise; InputError naming the field."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or int(value) != value
    ):
        raise InputError(path, field, f"must be an integer, got {value!r}")
    v = int(value)
    if v < 0 or (v == 0 and not allow_zero):
        raise InputError(path, field, f"must be {'non-negative' if allow_zero else 'positive'}, got {v}")
    plane = field.rsplit(".", 1)[-1] in ("P", "Q") or field.startswith("input")
    limit = MAX_PLANE if plane else MAX_DIM
    if v > limit:
        raise InputError(path, field, f"{v} is more than deepfrack handles ({limit:,})")
    return v


def _layer_number(path: Path) -> int:
    nums = re.findall(r"\d+", path.stem)
    if not nums:
        raise InputError(path, None, "problem file name has no layer number (e.g. VGG02_layer07.yaml)")
    return int(nums[-1])


def _density_one(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) <= {"distribution", "density"} and _density_one(value.get("density", 1))
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == 1


def check_dense(inst: dict, path: Path) -> None:
    """InputError unless the problem instance is dense: no ``densities``/``commonDensity``, or only
    densities of 1 (timeloopfe writes an empty ``densities: {}`` into every problem it processes)."""
    common = inst.get("commonDensity")
    dens = inst.get("densities")
    if common is not None and not _density_one(common):
        raise InputError(path, "problem.instance.commonDensity", "sparse workloads are not supported")
    if dens is not None and not (isinstance(dens, dict) and all(_density_one(v) for v in dens.values())):
        raise InputError(path, "problem.instance.densities", "sparse workloads are not supported")


def load_problem(path: str | Path, name: str | None = None) -> Layer:
    """One Timeloop CNN-layer problem file (``problem: {instance: {...}}``, v0.3 or v0.4)."""
    p = Path(path)
    return problem_layer(read_yaml(p), p, name)


#: problem.instance keys Timeloop's front end writes and its model does not read (v0.4 planes and padding)
_INSTANCE_IGNORED = frozenset({"H", "W", "Hpad", "Wpad"})


def problem_layer(doc: Any, path: Path, name: str | None = None) -> Layer:
    """The CNN layer of a parsed Timeloop problem document. As Timeloop's ``ParseWorkloadInstance``
    (NVlabs/timeloop src/workload/workload.cpp), every dimension of the shape must be given (Timeloop
    asserts it) and the coefficients default to 1; a misspelled dimension (``RR: 3``) therefore leaves
    one missing and is an error, where defaulting it to 1 would silently change the layer. Other unknown
    instance keys are ignored, as Timeloop ignores them, with a warning. Padding (``Hpad``/``Wpad``) is
    not part of Timeloop's problem and is ignored, as Timeloop does."""
    if not isinstance(doc, dict) or "problem" not in doc:
        raise InputError(path, "problem", "missing; expected a Timeloop problem file with problem.instance")
    prob = doc["problem"]
    if not isinstance(prob, dict):
        raise InputError(path, "problem", "expected a mapping with 'instance' (and optionally 'shape')")
    shape = prob.get("shape")
    if isinstance(shape, dict):
        dims = shape.get("dimensions")
        if dims is not None and (not isinstance(dims, list) or {str(d) for d in dims} != set(DIMS)):
            raise InputError(
                path, "problem.shape.dimensions", f"only the CNN-layer shape ({', '.join(DIMS)}) is supported"
            )
    inst = prob.get("instance")
    if not isinstance(inst, dict):
        raise InputError(path, "problem.instance", "missing or not a mapping")
    missing = [d for d in DIMS if d not in inst]
    if missing:
        unknown = sorted(
            str(k) for k in inst if k not in DIMS and k not in _COEFFS and k not in _INSTANCE_IGNORED
        )
        hint = f" (is {shown(unknown[0], 20)} a misspelling?)" if unknown else ""
        raise InputError(
            path,
            f"problem.instance.{missing[0]}",
            f"missing: Timeloop needs every dimension of the CNN layer ({', '.join(DIMS)}){hint}",
        )
    check_dense(inst, path)
    for k in inst:
        if (
            k not in DIMS
            and k not in _COEFFS
            and k not in _INSTANCE_IGNORED
            and k not in ("densities", "commonDensity")
        ):
            warnings.warn(
                f"{path}: problem.instance.{k}: unknown key, ignored (as Timeloop does)", stacklevel=2
            )
    vals = {d: _positive_int(inst[d], path, f"problem.instance.{d}") for d in DIMS}
    for c in _COEFFS:
        vals[c] = _positive_int(inst.get(c, 1), path, f"problem.instance.{c}")
    return Layer(name=name or path.stem, kind="conv", **vals)


def load_problem_folder(folder: str | Path) -> Network:
    """A folder of Timeloop problem YAMLs, ordered by the last integer in each file name
    (``VGG02_layer07.yaml`` -> 7). That 1-based position is the layer key of the original's JSON tables.

    Such files carry no padding or pooling. Consecutive layers that do not agree (channels or planes)
    are recorded in ``Network.unchained`` with a ChainWarning.
    """
    folder = Path(folder)
    files = sorted(
        (f for f in folder.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()),
        key=lambda f: (_layer_number(f), f.name),
    )
    if not files:
        raise InputError(folder, None, "no problem YAML files in this folder")
    numbers = [_layer_number(f) for f in files]
    if len(set(numbers)) != len(numbers):
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        raise InputError(folder, None, f"two problem files have the same layer number {dup[0]}")
    layers = [load_problem(f) for f in files]
    unchained: set[int] = set()
    details: list[str] = []
    for i in range(1, len(layers)):
        prev, cur = layers[i - 1], layers[i]
        if cur.C != prev.M or not cur.accepts_input_plane(*prev.out_plane):
            unchained.add(i)
            nh, nw = cur.min_input_plane
            details.append(
                f"{files[i].name} needs {cur.C}x{nh}x{nw} "
                f"but {files[i - 1].name} gives {prev.M}x{prev.Q}x{prev.P}"
            )
    if unchained:
        warnings.warn(
            f"{folder}: {len(unchained)} of {len(layers) - 1} consecutive layer pairs do not chain "
            f"({'; '.join(details[:3])}{'; ...' if len(details) > 3 else ''}): "
            "Timeloop problem files carry no padding or pooling, "
            "so how these layers' planes relate is unknown;",
            ChainWarning,
            stacklevel=2,
        )
    return Network.chain(folder.name, layers, unchained=unchained, source=str(folder))


_LAYER_KEYS = {
    "name",
    "type",
    "inputs",
    "C",
    "M",
    "R",
    "S",
    "N",
    "P",
    "Q",
    "Wstride",
    "Hstride",
    "Wdilation",
    "Hdilation",
    "pad",
    "groups",
    "pool",
    "stride",
    "dilation",
}
#: the name that stands for the network's input in an ``inputs`` list
INPUT_NAME = "input"


def _join_defaults(kind: str, ops: list[Operand]) -> tuple[int | None, tuple[int, int] | None]:
    """Channels and plane an add or concat layer gets from its operands (None where they are unknown)."""
    chans = [op.channels for op in ops]
    if kind == "add":
        c = next((ch for ch in chans if ch is not None), None)
    else:
        c = None if None in chans else sum(chans)  # type: ignore[arg-type]
    plane = next((op.plane for op in ops if op.plane is not None), None)
    return c, plane


def _parse_layer(entry: dict[str, Any], path: Path, idx: int, ops: list[Operand]) -> Layer:
    """One layer entry, with the fields its operands determine filled in: an add's or concat's channels
    and plane, and an fc's kernel (its input plane: the fc reads the plane whole, docs/workloads.md)."""
    where = f"layers[{idx}]"
    unknown = sorted(set(entry) - _LAYER_KEYS)
    if unknown:
        raise InputError(
            path, f"{where}.{unknown[0]}", f"unknown field; known: {', '.join(sorted(_LAYER_KEYS))}"
        )
    kind = str(entry.get("type", "conv"))
    if kind not in LAYER_KINDS:
        raise InputError(
            path, f"{where}.type", f"unknown layer type {kind!r}; expected one of {', '.join(LAYER_KINDS)}"
        )
    name = str(entry.get("name", f"layer{idx}"))

    def dim(key: str, default: int | None = None) -> int:
        if key not in entry:
            if default is None:
                raise InputError(path, f"{where}.{key}", "missing")
            return default
        return _positive_int(entry[key], path, f"{where}.{key}")

    stride = entry.get("stride")
    dil = entry.get("dilation")
    s_default = _positive_int(stride, path, f"{where}.stride") if stride is not None else 1
    d_default = _positive_int(dil, path, f"{where}.dilation") if dil is not None else 1
    op_plane = ops[0].plane if len(ops) == 1 else None
    c_default: int | None = None
    plane_default: tuple[int, int] | None = None
    rs_default = (1, 1)  # (R, S)
    if kind in JOIN_KINDS:
        c_default, plane_default = _join_defaults(kind, ops)
    elif kind == "fc":
        plane_default = (1, 1)
        if op_plane is not None:
            rs_default = (op_plane[1], op_plane[0])
            if ops[0].channels is None and op_plane != (1, 1) and not ("R" in entry and "S" in entry):
                raise InputError(
                    path,
                    f"{where}.C",
                    f"fc {name} reads the network's {op_plane[0]}x{op_plane[1]} input whole: state the "
                    "input's channels (input: [C, H, W]) or the fc's kernel R and S",
                )
    C = dim("C", c_default)
    if kind == "fc" and op_plane is not None and ops[0].channels is not None:
        h, w = op_plane
        if ops[0].channels * h * w == C:  # C written as channels x height x width: the plane, read whole
            C = ops[0].channels
    M = dim("M", C if kind in ("pool", "depthwise", *JOIN_KINDS) else None)
    vals = dict(
        C=C,
        M=M,
        R=dim("R", rs_default[0]),
        S=dim("S", rs_default[1]),
        N=dim("N", 1),
        P=dim("P", plane_default[1] if plane_default else None),
        Q=dim("Q", plane_default[0] if plane_default else None),
        Wstride=dim("Wstride", s_default),
        Hstride=dim("Hstride", s_default),
        Wdilation=dim("Wdilation", d_default),
        Hdilation=dim("Hdilation", d_default),
    )
    pad_raw = entry.get("pad", [0, 0, 0, 0])
    if isinstance(pad_raw, int) and not isinstance(pad_raw, bool):
        pad_raw = [pad_raw] * 4
    if not isinstance(pad_raw, (list, tuple)) or len(pad_raw) != 4:
        raise InputError(path, f"{where}.pad", f"must be [left, right, top, bottom], got {pad_raw!r}")
    pad = tuple(_positive_int(v, path, f"{where}.pad", allow_zero=True) for v in pad_raw)
    groups = dim("groups", C if kind == "depthwise" else 1)
    if kind in ("pool", "depthwise", *JOIN_KINDS) and M != C:
        raise InputError(
            path, f"{where}.M", f"a {kind} layer keeps its channels: M must equal C ({C}), got {M}"
        )
    if C % groups or M % groups:
        raise InputError(path, f"{where}.groups", f"must divide C ({C}) and M ({M}), got {groups}")
    if kind not in ("conv", "depthwise", "fc") and groups != 1:
        raise InputError(path, f"{where}.groups", f"a {kind} layer has no groups")
    pool = entry.get("pool")
    if kind == "pool":
        pool = str(pool or "max")
        if pool not in ("max", "avg"):
            raise InputError(path, f"{where}.pool", f"must be 'max' or 'avg', got {pool!r}")
    elif pool is not None:
        raise InputError(path, f"{where}.pool", "only pool layers take a pool operation")
    n_inputs = len(ops) if kind in JOIN_KINDS else 1
    layer = Layer(name=name, kind=kind, groups=groups, pad=pad, pool=pool, n_inputs=n_inputs, **vals)  # type: ignore[arg-type]
    if kind in JOIN_KINDS and (layer.R, layer.S, layer.Wstride, layer.Hstride, pad) != (1, 1, 1, 1, (0,) * 4):
        raise InputError(path, where, f"an {kind} layer has no kernel, stride or padding")
    kh, kw = layer.kernel_extent
    left, right, top, bottom = pad
    if left >= kw or right >= kw or top >= kh or bottom >= kh:
        raise InputError(
            path, f"{where}.pad", f"padding {list(pad)} must be smaller than the kernel extent {kh}x{kw}"
        )
    return layer


def _layer_names(raw_layers: list[Any], path: Path) -> list[str]:
    """Every entry's name (``layer<i>`` when unnamed); InputError for a duplicate or the reserved name."""
    names = []
    for i, entry in enumerate(raw_layers):
        if not isinstance(entry, dict):
            raise InputError(path, f"layers[{i}]", "must be a mapping of layer fields")
        names.append(str(entry.get("name", f"layer{i}")))
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n == INPUT_NAME:
            raise InputError(path, f"layers[{i}].name", f"{INPUT_NAME!r} names the network's input")
        if n in seen:
            raise InputError(path, "layers", f"two layers are named {n!r}")
        seen.add(n)
    return names


def _parse_inputs(entry: dict[str, Any], path: Path, i: int, names: list[str]) -> tuple[int, ...]:
    """Layer ``i``'s operands as indices (``NETWORK_INPUT`` for ``input``); default: the layer above
    (the network input for the first layer). Only layers above may be read (topological order)."""
    where = f"layers[{i}].inputs"
    raw = entry.get("inputs")
    if raw is None:
        return (i - 1,) if i > 0 else (NETWORK_INPUT,)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InputError(path, where, f"must be a list of layer names (or {INPUT_NAME!r}), got {raw!r}")
    own = names[i]
    out = []
    for name in raw:
        if not isinstance(name, str):
            raise InputError(path, where, f"must be a list of layer names, got {name!r}")
        if name == INPUT_NAME:
            out.append(NETWORK_INPUT)
        elif name == own:
            raise InputError(path, where, f"{own} reads itself (a cycle)")
        elif name in names[:i]:
            out.append(names.index(name))
        elif name in names:
            raise InputError(
                path,
                where,
                f"{own} reads {name}, which comes later in the file (a forward reference or a cycle): "
                "list the layers in topological order, each after the layers it reads",
            )
        else:
            raise InputError(
                path, where, f"no layer named {name!r} above {own} (the network's input is {INPUT_NAME!r})"
            )
    return tuple(out)


def _parse_input(doc: dict[str, Any], path: Path) -> tuple[int | None, tuple[int, int] | None]:
    """The network input's channels (when stated) and plane: ``input: [H, W]`` or ``[C, H, W]``."""
    if "input" not in doc:
        return None, None
    raw = doc["input"]
    if not isinstance(raw, (list, tuple)) or len(raw) not in (2, 3):
        raise InputError(path, "input", f"must be [H, W] or [C, H, W], got {raw!r}")
    vals = [_positive_int(v, path, f"input[{k}]") for k, v in enumerate(raw)]
    return (vals[0] if len(vals) == 3 else None), (vals[-2], vals[-1])


def load_network_yaml(path: str | Path) -> Network:
    """deepfrack's network YAML: ``{network: name, input: [H, W] or [C, H, W] (optional), layers: [...]}``.

    A layer reads the layers named in its ``inputs`` (default: the layer above; ``input`` is the
    network's input), which must come before it in the file (topological order). Shapes are checked
    across every edge (``deepfrack.workload.graph``: channels, planes with floor semantics, join
    shapes), else InputError naming the layer and the field (docs/workloads.md).
    """
    p = Path(path)
    doc = read_yaml(p)
    if not isinstance(doc, dict):
        raise InputError(p, None, "expected a mapping with 'network' and 'layers'")
    raw_layers = doc.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise InputError(p, "layers", "missing or empty; expected a list of layers")
    names = _layer_names(raw_layers, p)
    input_channels, input_plane = _parse_input(doc, p)
    layers: list[Layer] = []
    inputs: list[tuple[int, ...]] = []
    readers = 0
    for i, entry in enumerate(raw_layers):
        ops_idx = _parse_inputs(entry, p, i, names)
        if NETWORK_INPUT in ops_idx:
            readers += 1
            if readers > 1 and input_plane is None:
                raise InputError(
                    p,
                    f"layers[{i}].inputs",
                    f"several layers read the network's input: state its plane with {INPUT_NAME}: [H, W]",
                )
        ops = [
            Operand(INPUT_NAME, input_channels, input_plane)
            if j == NETWORK_INPUT
            else Operand(layers[j].name, layers[j].M, layers[j].out_plane)
            for j in ops_idx
        ]
        layer = _parse_layer(entry, p, i, ops)
        err = operand_error(layer, ops)
        if err is not None:
            field, message = err
            if ops_idx == (NETWORK_INPUT,) and field in ("P", "Q") and input_plane is not None:
                field = "input"
            raise InputError(p, field if field == "input" else f"layers[{i}].{field}", message)
        layers.append(layer)
        inputs.append(ops_idx)
    name = str(doc.get("network", p.stem))
    return Network(name, tuple(layers), tuple(inputs), input_plane=input_plane, source=str(p))


def load_workload(path: str | Path, input_size: tuple[int, int] | None = None) -> Network:
    """A workload file or folder: a folder of Timeloop problem files, a network YAML, a single
    Timeloop problem file, or an ONNX model (``.onnx``; ``input_size`` (height, width) sets its input
    plane). A network YAML and problem files state their planes, so ``input_size`` is refused there."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        from deepfrack.workload.onnx_import import load_onnx

        return load_onnx(p, input_size)
    if not p.exists():
        raise InputError(
            p,
            None,
            "workload not found (give a network YAML, an ONNX model, a folder of Timeloop problem YAMLs, "
            "or a network of the zoo: deepfrack zoo lists them)",
        )
    if input_size is not None:
        raise InputError(
            p,
            "--input-size",
            "applies to networks of the zoo and ONNX models; a network YAML or Timeloop problem files "
            "state every layer's plane",
        )
    if p.is_dir():
        return load_problem_folder(p)
    doc = read_yaml(p)
    if isinstance(doc, dict) and "problem" in doc and "layers" not in doc:
        return Network.chain(p.stem, [load_problem(p)], source=str(p))
    return load_network_yaml(p)


def resolve_workload(spec: str | Path, input_size: tuple[int, int] | None = None) -> Network:
    """What the CLI's ``--workload`` names: a network of the zoo by its bare name (``resnet50``; write
    ``./resnet50`` for a file or folder of that name), else a path as ``load_workload`` reads it. An
    unknown bare name lists the zoo's networks. ``input_size`` (height, width): the input plane of a
    zoo network (default 224 x 224) or an ONNX model."""
    from deepfrack.workload.zoo import ZOO, zoo_network

    s = str(spec)
    if s in ZOO:
        return zoo_network(s, input_size)
    p = Path(spec)
    if not p.exists() and p.suffix == "" and p.name == s:
        raise InputError(
            s, None, f"no such file or folder, and not a network of the zoo (known: {', '.join(ZOO)})"
        )
    return load_workload(p, input_size)
