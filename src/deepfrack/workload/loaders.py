"""Workload loaders: a folder of Timeloop problem YAMLs (the original DeepFrack's input), one Timeloop
problem file, and deepfrack's network YAML (which also carries padding and pooling)."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

from deepfrack.dims import DIMS
from deepfrack.errors import InputError, shown
from deepfrack.files import read_yaml
from deepfrack.workload.layer import LAYER_KINDS, Layer, Network

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
    if inst.get("densities") is not None or inst.get("commonDensity") is not None:
        raise InputError(path, "problem.instance.densities", "sparse workloads are not supported")
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
    are recorded in ``Network.unchained`` with a ChainWarning (DESIGN.md section 3.3).
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


def _parse_layer(entry: Any, path: Path, idx: int) -> Layer:
    where = f"layers[{idx}]"
    if not isinstance(entry, dict):
        raise InputError(path, where, "must be a mapping of layer fields")
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
    C = dim("C")
    M = dim("M", C if kind in ("pool", "add", "depthwise") else None)
    fc = kind == "fc"
    vals = dict(
        C=C,
        M=M,
        R=dim("R", 1),
        S=dim("S", 1),
        N=dim("N", 1),
        P=dim("P", 1 if fc else None),
        Q=dim("Q", 1 if fc else None),
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
    if kind in ("pool", "add", "depthwise") and M != C:
        raise InputError(
            path, f"{where}.M", f"a {kind} layer keeps its channels: M must equal C ({C}), got {M}"
        )
    if C % groups or M % groups:
        raise InputError(path, f"{where}.groups", f"must divide C ({C}) and M ({M}), got {groups}")
    pool = entry.get("pool")
    if kind == "pool":
        pool = str(pool or "max")
        if pool not in ("max", "avg"):
            raise InputError(path, f"{where}.pool", f"must be 'max' or 'avg', got {pool!r}")
    elif pool is not None:
        raise InputError(path, f"{where}.pool", "only pool layers take a pool operation")
    layer = Layer(name=name, kind=kind, groups=groups, pad=pad, pool=pool, **vals)  # type: ignore[arg-type]
    kh, kw = layer.kernel_extent
    left, right, top, bottom = pad
    if left >= kw or right >= kw or top >= kh or bottom >= kh:
        raise InputError(
            path, f"{where}.pad", f"padding {list(pad)} must be smaller than the kernel extent {kh}x{kw}"
        )
    return layer


def load_network_yaml(path: str | Path) -> Network:
    """deepfrack's network YAML: ``{network: name, input: [H, W] (optional), layers: [...]}``.

    Each layer consumes the previous layer's output; consecutive layers must agree in channels and
    in plane size (floor semantics), else InputError naming the layer and field.
    """
    p = Path(path)
    doc = read_yaml(p)
    if not isinstance(doc, dict):
        raise InputError(p, None, "expected a mapping with 'network' and 'layers'")
    raw_layers = doc.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise InputError(p, "layers", "missing or empty; expected a list of layers")
    layers = [_parse_layer(e, p, i) for i, e in enumerate(raw_layers)]
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(p, "layers", f"two layers are named {dup!r}")
    input_plane = None
    if "input" in doc:
        raw = doc["input"]
        if not isinstance(raw, (list, tuple)) or len(raw) != 2:
            raise InputError(p, "input", f"must be [H, W], got {raw!r}")
        input_plane = (_positive_int(raw[0], p, "input[0]"), _positive_int(raw[1], p, "input[1]"))
        if not layers[0].accepts_input_plane(*input_plane):
            nh, nw = layers[0].min_input_plane
            raise InputError(
                p,
                "input",
                f"a {input_plane[0]}x{input_plane[1]} input does not give layer {layers[0].name}'s "
                f"{layers[0].Q}x{layers[0].P} output (it needs {nh}..{nh + layers[0].Hstride - 1} rows and "
                f"{nw}..{nw + layers[0].Wstride - 1} columns)",
            )
    for i, layer in enumerate(layers):
        if layer.kind == "add":
            raise InputError(
                p,
                f"layers[{i}].type",
                "an add layer joins two inputs; a network YAML is a chain, so "
                "residual networks are not supported yet",
            )
    for i in range(1, len(layers)):
        prev, cur = layers[i - 1], layers[i]
        where = f"layers[{i}]"
        if cur.C != prev.M:
            hint = ""
            if cur.kind == "fc" and cur.C == prev.M * prev.P * prev.Q:
                hint = (
                    f" (an fc layer reads a 1x1 plane: write the first fc after a {prev.Q}x{prev.P} plane "
                    f"as a conv with C={prev.M}, R={prev.P}, S={prev.Q}, P=Q=1)"
                )
            raise InputError(
                p, f"{where}.C", f"{cur.name} takes {cur.C} channels but {prev.name} gives {prev.M}{hint}"
            )
        nh, nw = cur.min_input_plane
        if not nw <= prev.P < nw + cur.Wstride:
            raise InputError(
                p,
                f"{where}.P",
                f"{cur.name}'s output width {cur.P} does not follow from {prev.name}'s "
                f"width {prev.P} (kernel, stride, dilation and padding need {nw}..{nw + cur.Wstride - 1})",
            )
        if not nh <= prev.Q < nh + cur.Hstride:
            raise InputError(
                p,
                f"{where}.Q",
                f"{cur.name}'s output height {cur.Q} does not follow from {prev.name}'s "
                f"height {prev.Q} (kernel, stride, dilation and padding need {nh}..{nh + cur.Hstride - 1})",
            )
    name = str(doc.get("network", p.stem))
    return Network.chain(name, layers, input_plane=input_plane, source=str(p))


def load_workload(path: str | Path) -> Network:
    """Any workload the CLI accepts: a folder of Timeloop problem files, a network YAML, or a single
    Timeloop problem file."""
    p = Path(path)
    if p.is_dir():
        return load_problem_folder(p)
    if not p.exists():
        raise InputError(
            p, None, "workload not found (give a network YAML or a folder of Timeloop problem YAMLs)"
        )
    doc = read_yaml(p)
    if isinstance(doc, dict) and "problem" in doc and "layers" not in doc:
        return Network.chain(p.stem, [load_problem(p)], source=str(p))
    return load_network_yaml(p)
