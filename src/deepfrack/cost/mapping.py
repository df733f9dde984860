"""Timeloop mappings: one per storage level, outer to inner, in Timeloop's map.yaml vocabulary.

A :class:`LoopMapping` is what Timeloop calls a mapping (``src/mapping/mapping.hpp``): the loop nest
of one layer tiled over the storage levels, plus each level's keep/bypass choices. It holds, for every
storage level of an :class:`~deepfrack.arch.spec.Architecture` (outermost first, the order of
``Architecture.levels``):

* the temporal loop factors of the seven CNN-layer dimensions and their order,
* the spatial loop factors (the fan-out from this level to the next inner level's instances), their
  order and the X/Y ``split``,
* which of the three tensors (Weights, Inputs, Outputs) the level keeps.

Orders are written as in Timeloop's ``permutation`` strings: **innermost loop first**. In a spatial
order the first ``split`` dimensions go on the X axis of the fan-out, the rest on Y (Timeloop counts
every dimension of the permutation, factor-1 ones included).

Parsers read Timeloop's ``map.yaml`` (``mapping: [{target, type, factors, permutation, split, keep,
bypass}]``, ``type`` one of temporal, spatial, datatype, or the spellings ``dataspace`` (timeloopfe
v4) and ``bypass`` (older files)) and the ``mapping`` lists
of the reference JSON Lines files (the same directives with ``factors`` as a dict). Every problem is
reported as :class:`~deepfrack.errors.InputError` naming the file and the field.

:class:`MappingBatch` is the same information as arrays over many candidate mappings of one layer
(struct of arrays), the input of :func:`deepfrack.cost.model.evaluate_batch`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepfrack.arch.expressions import evaluate_factors, evaluate_integer
from deepfrack.arch.spec import Architecture
from deepfrack.dims import DIM_INDEX, DIMS, TENSORS
from deepfrack.errors import InputError
from deepfrack.workload.layer import Layer
from deepfrack.workload.shapes import Problem

_TENSOR_ALIASES = {t.lower(): t for t in TENSORS}


def layer_dims(layer: Layer) -> tuple[int, ...]:
    """The layer's bounds in DIMS order (C, M, R, S, N, P, Q)."""
    return (layer.C, layer.M, layer.R, layer.S, layer.N, layer.P, layer.Q)


@dataclass(frozen=True)
class LevelMapping:
    """The mapping of one storage level.

    ``temporal`` and ``spatial`` are factors in DIMS order. ``temporal_order`` and ``spatial_order``
    are permutations of DIMS given as dimension indices, innermost loop first. ``split``: the first
    ``split`` entries of ``spatial_order`` go on the X axis. ``keep`` is (Weights, Inputs, Outputs).
    """

    target: str
    temporal: tuple[int, ...] = (1,) * 7
    temporal_order: tuple[int, ...] = tuple(range(7))
    spatial: tuple[int, ...] = (1,) * 7
    spatial_order: tuple[int, ...] = tuple(range(7))
    split: int = 7
    keep: tuple[bool, bool, bool] = (True, True, True)

    @property
    def temporal_permutation(self) -> str:
        return "".join(DIMS[i] for i in self.temporal_order)

    @property
    def spatial_permutation(self) -> str:
        return "".join(DIMS[i] for i in self.spatial_order)

    def keeps(self, tensor: str) -> bool:
        return self.keep[TENSORS.index(tensor)]


@dataclass(frozen=True)
class LoopMapping:
    """One mapping: a :class:`LevelMapping` per storage level, outermost first (the order of
    ``Architecture.levels``)."""

    levels: tuple[LevelMapping, ...]
    source: str | None = None

    def level(self, name: str) -> LevelMapping:
        for lv in self.levels:
            if lv.target == name:
                return lv
        raise KeyError(name)

    def factor_products(self) -> tuple[int, ...]:
        """Product over all levels of temporal x spatial factors, per dimension (DIMS order)."""
        prod = [1] * (len(self.levels[0].temporal) if self.levels else 7)
        for lv in self.levels:
            for d in range(len(prod)):
                prod[d] *= lv.temporal[d] * lv.spatial[d]
        return tuple(prod)

    def directives(self) -> list[dict[str, Any]]:
        """The mapping as Timeloop map.yaml directives, in the order Timeloop writes them (datatype
        directives inner to outer, then each level's spatial and temporal directives inner to outer):
        ``{target, type: datatype, keep, bypass}`` / ``{target, type: temporal|spatial, factors:
        {dim: n}, permutation (innermost first)[, split]}``."""
        inner_to_outer = self.levels[::-1]
        out: list[dict[str, Any]] = [
            {
                "target": lv.target,
                "type": "datatype",
                "keep": [t for t, k in zip(TENSORS, lv.keep) if k],
                "bypass": [t for t, k in zip(TENSORS, lv.keep) if not k],
            }
            for lv in inner_to_outer
        ]
        for lv in inner_to_outer:
            if any(f != 1 for f in lv.spatial):
                out.append(
                    {
                        "target": lv.target,
                        "type": "spatial",
                        "factors": {d: int(lv.spatial[i]) for i, d in enumerate(DIMS)},
                        "permutation": lv.spatial_permutation,
                        "split": int(lv.split),
                    }
                )
            out.append(
                {
                    "target": lv.target,
                    "type": "temporal",
                    "factors": {d: int(lv.temporal[i]) for i, d in enumerate(DIMS)},
                    "permutation": lv.temporal_permutation,
                }
            )
        return out

    def to_yaml_doc(self) -> dict[str, Any]:
        """Timeloop's map.yaml document, ``{"mapping": [...]}``, with factors written as Timeloop
        writes them ("C1 M2 ...")."""
        return {
            "mapping": [
                {**d, "factors": " ".join(f"{k}{v}" for k, v in d["factors"].items())}
                if "factors" in d
                else d
                for d in self.directives()
            ]
        }


# --------------------------------------------------------------------------------------------- #
# parsing
# --------------------------------------------------------------------------------------------- #
_FACTOR_RE = re.compile(r"([A-Za-z]+)\s*=?\s*([0-9]+)(?:,([0-9]+))?")


def _parse_factors(
    value: Any, bounds: Sequence[int], where: str, path: Any, index: Mapping[str, int | None] = DIM_INDEX
) -> dict[int, int]:
    """Factors as a dict {dim index: factor}; accepts "C2 M1 ...", "C=2 M=1", a list of such
    strings, or a mapping. 0 means the full problem dimension (Timeloop's convention). ``index`` maps
    the problem's dimension names to DIMS positions (None: a size-1 dimension the model leaves out,
    whose factor must be 1)."""
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    ):
        text = value if isinstance(value, str) else " ".join(value)
        text = text.split("#", 1)[0]
        pos = 0
        for m in _FACTOR_RE.finditer(text):
            gap = text[pos : m.start()].strip(" ,\t")
            if gap:
                raise InputError(path, f"{where}.factors", f"cannot read {gap!r} (expected e.g. 'C2 M4 R1')")
            if m.group(3) is not None:
                raise InputError(path, f"{where}.factors", "imperfect (residual) factors are not supported")
            items.append((m.group(1), m.group(2)))
            pos = m.end()
        rest = text[pos:].strip(" ,\t")
        if rest:
            raise InputError(path, f"{where}.factors", f"cannot read {rest!r} (expected e.g. 'C2 M4 R1')")
    elif value is None:
        return {}
    else:
        raise InputError(
            path, f"{where}.factors", f"expected a string like 'C2 M4' or a mapping, got {value!r}"
        )
    out: dict[int, int] = {}
    for name, raw in items:
        if name not in index:
            raise InputError(
                path,
                f"{where}.factors",
                f"unknown dimension {name!r}; the problem's dimensions are {' '.join(index)}",
            )
        if isinstance(raw, bool):
            raise InputError(path, f"{where}.factors.{name}", f"must be a positive integer, got {raw!r}")
        try:
            f = int(raw)
        except (TypeError, ValueError):
            raise InputError(
                path, f"{where}.factors.{name}", f"must be a positive integer, got {raw!r}"
            ) from None
        if str(raw).strip() != str(f) and not isinstance(raw, int):
            raise InputError(path, f"{where}.factors.{name}", f"must be a positive integer, got {raw!r}")
        if f < 0:
            raise InputError(path, f"{where}.factors.{name}", f"must be a positive integer, got {f}")
        d = index[name]
        if d is None:  # a size-1 dimension of a declared shape
            if f > 1:
                raise InputError(path, f"{where}.factors.{name}", f"{f} is more than the problem's {name}=1")
            continue
        out[d] = bounds[d] if f == 0 else f
    return out


def _permutation_names(value: Any, where: str, path: Any, names: Sequence[str]) -> list[str]:
    """A permutation (innermost first) as the problem's dimension names, padded with the missing ones
    in the problem's order (Timeloop pads an incomplete permutation the same way)."""
    if value is None:
        letters: list[str] = []
    elif isinstance(value, str):
        letters = [c for c in value if not c.isspace()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        letters = [str(v).strip() for v in value]
    else:
        raise InputError(
            path, f"{where}.permutation", f"expected a string like {''.join(names)!r}, got {value!r}"
        )
    for i, c in enumerate(letters):
        if c not in names:
            raise InputError(
                path,
                f"{where}.permutation",
                f"unknown dimension {c!r}; the problem's dimensions are {' '.join(names)}",
            )
        if c in letters[:i]:
            raise InputError(path, f"{where}.permutation", f"dimension {c} appears twice")
    return letters + [d for d in names if d not in letters]


def _parse_permutation(value: Any, where: str, path: Any) -> tuple[int, ...]:
    """A CNN-layer permutation (innermost first) as dim indices, padded in DIMS order."""
    return tuple(DIM_INDEX[d] for d in _permutation_names(value, where, path, DIMS))


def _tensor_list(
    value: Any, where: str, path: Any, aliases: Mapping[str, str] = _TENSOR_ALIASES
) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InputError(path, where, f"expected a list of tensor names, got {value!r}")
    out = []
    for v in value:
        t = aliases.get(str(v).strip().lower())
        if t is None:
            names = ", ".join(TENSORS) if aliases is _TENSOR_ALIASES else ", ".join(aliases)
            raise InputError(path, where, f"unknown tensor {v!r}; expected one of {names}")
        out.append(t)
    return out


@dataclass
class _LevelDraft:
    """What the directives say about one storage level, as they are read."""

    temporal: dict[int, int] = field(default_factory=dict)
    temporal_order: tuple[int, ...] = tuple(range(7))
    spatial: dict[int, int] = field(default_factory=dict)
    spatial_order: tuple[int, ...] = tuple(range(7))
    split: int = 7
    keep: list[bool] = field(default_factory=lambda: [True, True, True])
    keep_given: bool = False

    def build(self, target: str) -> LevelMapping:
        width = len(self.temporal_order)
        return LevelMapping(
            target=target,
            temporal=tuple(self.temporal.get(d, 1) for d in range(width)),
            temporal_order=self.temporal_order,
            spatial=tuple(self.spatial.get(d, 1) for d in range(width)),
            spatial_order=self.spatial_order,
            split=self.split,
            keep=tuple(self.keep),  # type: ignore[arg-type]
        )


#: per-level Timeloop directives deepfrack's model does not reproduce
_UNSUPPORTED = (
    "passthrough",
    "rmw_on_first_writeback",
    "no_link_transfer",
    "no_multicast_no_reduction",
    "no_temporal_reuse",
    "no-link-transfer",
    "no-multicast-no-reduction",
    "no-temporal-reuse",
)


def _directive_level(target: Any, names: tuple[str, ...], where: str, path: str | None) -> int:
    """The index in ``names`` (outermost first) of a directive's target: a level name, the name of a
    v0.4 Container with a spatial fan-out (as timeloopfe reads it), or Timeloop's storage level id
    (0 = innermost)."""
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < len(names):
            raise InputError(
                path, f"{where}.target", f"storage level id {target} out of range 0..{len(names) - 1}"
            )
        return len(names) - 1 - target
    if target not in names and f"inter_{target}_spatial" in names:
        # a v0.4 Container with a spatial fan-out: its directives apply to the fan-out below it, which
        # the architecture holds as the placeholder level timeloopfe inserts for it
        return names.index(f"inter_{target}_spatial")
    if target not in names:
        raise InputError(
            path,
            f"{where}.target",
            f"{target!r} is not a storage level of the architecture ({', '.join(names)})",
        )
    return names.index(target)


def _declared_order(
    value: Any, split: int, where: str, path: Any, problem: Problem
) -> tuple[tuple[int, ...], int]:
    """A permutation of a declared shape's dimensions and a spatial split, as DIMS indices and the
    split over them: the first ``split`` declared dimensions (padding included) stay on X, the size-1
    dimensions the model leaves out are dropped, and the CNN dimensions the shape has no use for are
    appended last (their factors are 1). A temporal order is the same with every dimension "on X"."""
    names = _permutation_names(value, where, path, problem.dims)
    idx = problem.index
    x = [idx[d] for d in names[:split] if idx[d] is not None]
    y = [idx[d] for d in names[split:] if idx[d] is not None]
    order = [*x, *y]
    order += [d for d in range(problem.width) if d not in order]
    return tuple(int(d) for d in order), len(x)  # type: ignore[arg-type]


def _apply_directive(
    d: Mapping,
    draft: _LevelDraft,
    fanout: tuple[int, int],
    bounds: Sequence[int],
    where: str,
    path: str | None,
    problem: Problem | None = None,
    symbols: Mapping[str, Any] | None = None,
) -> None:
    """Record one temporal, spatial, datatype (dataspace) or bypass directive in its level's draft;
    factor values and ``split`` may be expressions over ``symbols``."""
    for key in _UNSUPPORTED:
        if d.get(key):
            raise InputError(
                path, f"{where}.{key}", "this Timeloop directive is not supported by deepfrack's model"
            )
    typ = d.get("type")
    declared = problem if problem is not None and not problem.is_cnn else None
    if typ in ("temporal", "spatial"):
        index = problem.index if problem is not None else DIM_INDEX
        raw = evaluate_factors(d.get("factors"), symbols or {}, path, f"{where}.factors")
        facs = _parse_factors(raw, bounds, where, path, index)
        if declared is not None:
            perm, _ = _declared_order(d.get("permutation"), len(declared.dims), where, path, declared)
        else:
            perm = _parse_permutation(d.get("permutation"), where, path)
        if typ == "temporal":
            draft.temporal, draft.temporal_order = facs, perm
            return
        if fanout[0] * fanout[1] <= 1:
            raise InputError(
                path,
                f"{where}.target",
                f"{d.get('target')} has no spatial fan-out (its next inner level has as many instances), "
                "so it takes no spatial directive",
            )
        sp = d.get("split", len(declared.dims) if declared is not None else 7)
        if isinstance(sp, str):
            sp = evaluate_integer(sp, symbols or {}, path, f"{where}.split")
        if isinstance(sp, bool) or not isinstance(sp, int) or sp < 0:
            raise InputError(path, f"{where}.split", f"must be a non-negative integer, got {sp!r}")
        if declared is not None:
            perm, sp = _declared_order(d.get("permutation"), sp, where, path, declared)
        draft.spatial, draft.spatial_order, draft.split = facs, perm, min(sp, len(perm))
    elif typ in ("datatype", "dataspace", "bypass"):
        aliases = _tensor_aliases(problem)
        draft.keep_given = True
        for t in _tensor_list(d.get("keep"), f"{where}.keep", path, aliases):
            draft.keep[TENSORS.index(t)] = True
        for t in _tensor_list(d.get("bypass"), f"{where}.bypass", path, aliases):
            draft.keep[TENSORS.index(t)] = False
    elif typ == "skew":
        raise InputError(path, f"{where}.type", "skew directives are not supported by deepfrack's model")
    else:
        raise InputError(
            path,
            f"{where}.type",
            f"unknown directive type {typ!r}; expected temporal, spatial, datatype (dataspace) or bypass",
        )


def _tensor_aliases(problem: Problem | None) -> dict[str, str]:
    """Lower-cased data space name -> CNN tensor."""
    if problem is None or problem.tensors is None:
        return _TENSOR_ALIASES
    return {k.lower(): v for k, v in problem.tensors.items()}


def mapping_from_directives(
    directives: Any,
    arch: Architecture,
    layer: Layer,
    source: str | Path | None = None,
    field_prefix: str = "mapping",
    problem: Problem | None = None,
    symbols: Mapping[str, Any] | None = None,
) -> LoopMapping:
    """Build and validate a :class:`LoopMapping` from Timeloop mapping directives (the list under
    ``mapping:`` in map.yaml, or a reference JSONL ``mapping`` list).

    Levels without a temporal directive get factor 1 everywhere; tensors not mentioned by a
    datatype directive are kept (Timeloop's default), except at the v0.4 spatial placeholder levels,
    which keep nothing unless a directive says otherwise (timeloopfe adds that bypass). InputError
    (naming ``source`` and the field) for: an unknown type, a target the architecture does not
    have, a spatial directive on a level without fan-out, an unknown dimension or tensor, or factors
    whose product differs from the layer's dimension. Factor values and ``split`` may be expressions
    over ``symbols`` (the variables, ``spec.problem.instance``), as timeloopfe evaluates them.
    """
    path = str(source) if source is not None else None
    if not isinstance(directives, (list, tuple)):
        raise InputError(path, field_prefix, "expected a list of mapping directives")
    names = arch.level_names
    shape = problem.declared if problem is not None else None
    bounds = shape.bounds if shape is not None else layer_dims(layer)  # type: ignore[arg-type]
    fanouts = level_fanouts(arch)
    w = len(bounds)
    start = tuple(range(w))
    drafts = [_LevelDraft(temporal_order=start, spatial_order=start, split=w) for _ in names]
    for k, d in enumerate(directives):
        where = f"{field_prefix}[{k}]"
        if not isinstance(d, Mapping):
            raise InputError(path, where, f"expected a mapping directive, got {d!r}")
        li = _directive_level(d.get("target"), names, where, path)
        _apply_directive(d, drafts[li], fanouts[li], bounds, where, path, problem, symbols)
    for lv, dr in zip(arch.levels, drafts):
        if lv.is_dummy and not dr.keep_given:  # timeloopfe bypasses everything at its placeholder levels
            dr.keep = [False, False, False]
    m = LoopMapping(tuple(dr.build(name) for dr, name in zip(drafts, names)), source=path)
    shown_names = DIMS
    if problem is not None and not problem.is_cnn:
        back = {i: d for d, i in problem.index.items() if i is not None}
        shown_names = tuple(back.get(i, DIMS[i] if i < len(DIMS) else "") for i in range(w))
    validate_mapping(m, arch, layer, source=path, field=field_prefix, dim_names=shown_names, bounds=bounds)
    return m


def validate_mapping(
    mapping: LoopMapping,
    arch: Architecture,
    layer: Layer | None,
    source: str | None = None,
    field: str = "mapping",
    dim_names: Sequence[str] = DIMS,
    bounds: Sequence[int] | None = None,
) -> None:
    """InputError unless the mapping has one level per architecture level (same names, same order),
    positive factors, valid orders, and factor products equal to the layer's dimensions (named in the
    messages by ``dim_names``, the problem's names of the DIMS positions), or to ``bounds``, the
    dimensions of a declared shape the mapping is written over."""
    names = arch.level_names
    if bounds is None:
        bounds = layer_dims(layer)  # type: ignore[arg-type]
    w = len(bounds)
    if tuple(lv.target for lv in mapping.levels) != names:
        raise InputError(
            source,
            field,
            f"levels {[lv.target for lv in mapping.levels]} do not match the architecture's {list(names)}",
        )
    for lv in mapping.levels:
        for kind, facs, order in (
            ("temporal", lv.temporal, lv.temporal_order),
            ("spatial", lv.spatial, lv.spatial_order),
        ):
            if len(facs) != w or any((not isinstance(f, (int, np.integer))) or f < 1 for f in facs):
                raise InputError(
                    source,
                    f"{field}.{lv.target}.{kind}.factors",
                    f"must be {w} positive integers, got {facs}",
                )
            if sorted(order) != list(range(w)):
                raise InputError(
                    source,
                    f"{field}.{lv.target}.{kind}.permutation",
                    f"must be a permutation of {''.join(dim_names)}",
                )
    prods = mapping.factor_products()
    for d, (p, b) in enumerate(zip(prods, bounds)):
        if p != b:
            parts = (
                " x ".join(
                    f"{lv.temporal[d] * lv.spatial[d]} ({lv.target})"
                    for lv in mapping.levels
                    if lv.temporal[d] * lv.spatial[d] != 1
                )
                or "1"
            )
            nm = dim_names[d]
            raise InputError(
                source,
                f"{field}.factors.{nm}",
                f"factors of {nm} multiply to {p} ({parts}) but the layer has {nm}={b}",
            )


def level_fanouts(arch: Architecture) -> list[tuple[int, int]]:
    """(fan-out X, fan-out Y) of every storage level, outermost first: how many instances of the next
    inner level (or of the MACs, below the innermost) each of its instances feeds along each axis."""
    out = []
    for i, lv in enumerate(arch.levels):
        inner = arch.levels[i + 1] if i + 1 < len(arch.levels) else arch.arithmetic
        fx = max(1, inner.mesh_x // max(1, lv.mesh_x))
        fy = max(1, inner.mesh_y // max(1, lv.mesh_y))
        out.append((fx, fy))
    return out


def load_map_yaml(path: str | Path, arch: Architecture, layer: Layer) -> LoopMapping:
    """Read a Timeloop map.yaml (``mapping: [...]``, or a bare list) for ``arch`` and ``layer``."""
    from deepfrack.workload.loaders import read_yaml

    doc = read_yaml(path)
    return mapping_from_doc(doc, arch, layer, source=path)


def mapping_from_doc(
    doc: Any, arch: Architecture, layer: Layer, source: str | Path | None = None
) -> LoopMapping:
    """A mapping from a map.yaml document (``{"mapping": [...]}``) or a bare list of directives."""
    if isinstance(doc, Mapping) and "mapping" in doc:
        doc = doc["mapping"]
    return mapping_from_directives(doc, arch, layer, source=source)


# --------------------------------------------------------------------------------------------- #
# batches (struct of arrays)
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class MappingBatch:
    """Many candidate mappings of one layer on one architecture, as arrays.

    Shapes (B candidates, L storage levels outer to inner, 7 dims in DIMS order):
    ``temporal``/``spatial`` int64 [B, L, 7] factors; ``temporal_order``/``spatial_order`` int64
    [B, L, 7] dimension indices, innermost loop first; ``split`` int64 [B, L]; ``keep`` bool
    [B, L, 3] (Weights, Inputs, Outputs).
    """

    temporal: np.ndarray
    temporal_order: np.ndarray
    spatial: np.ndarray
    spatial_order: np.ndarray
    split: np.ndarray
    keep: np.ndarray
    level_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.temporal.shape[0])

    @classmethod
    def from_mappings(cls, mappings: Sequence[LoopMapping]) -> MappingBatch:
        if not mappings:
            raise ValueError("empty list of mappings")
        names = tuple(lv.target for lv in mappings[0].levels)
        for m in mappings:
            if tuple(lv.target for lv in m.levels) != names:
                raise ValueError("mappings of one batch must share their levels")
        tf = np.array([[lv.temporal for lv in m.levels] for m in mappings], dtype=np.int64)
        to = np.array([[lv.temporal_order for lv in m.levels] for m in mappings], dtype=np.int64)
        sf = np.array([[lv.spatial for lv in m.levels] for m in mappings], dtype=np.int64)
        so = np.array([[lv.spatial_order for lv in m.levels] for m in mappings], dtype=np.int64)
        sp = np.array([[lv.split for lv in m.levels] for m in mappings], dtype=np.int64)
        kp = np.array([[lv.keep for lv in m.levels] for m in mappings], dtype=bool)
        return cls(tf, to, sf, so, sp, kp, names)

    def mapping(self, b: int) -> LoopMapping:
        """Candidate ``b`` as a :class:`LoopMapping`."""
        names = self.level_names or tuple(f"L{i}" for i in range(self.temporal.shape[1]))
        levels = tuple(
            LevelMapping(
                target=names[i],
                temporal=tuple(int(x) for x in self.temporal[b, i]),
                temporal_order=tuple(int(x) for x in self.temporal_order[b, i]),
                spatial=tuple(int(x) for x in self.spatial[b, i]),
                spatial_order=tuple(int(x) for x in self.spatial_order[b, i]),
                split=int(self.split[b, i]),
                keep=tuple(bool(x) for x in self.keep[b, i]),  # type: ignore[arg-type]
            )
            for i in range(self.temporal.shape[1])
        )
        return LoopMapping(levels)

    def take(self, idx: Iterable[int] | np.ndarray) -> MappingBatch:
        idx = np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx)
        return MappingBatch(
            self.temporal[idx],
            self.temporal_order[idx],
            self.spatial[idx],
            self.spatial_order[idx],
            self.split[idx],
            self.keep[idx],
            self.level_names,
        )
