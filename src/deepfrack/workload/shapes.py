"""Timeloop problem shapes other than the CNN layer, read the way ``timeloop-model`` reads them.

A Timeloop problem may declare its own shape (``problem.shape: {dimensions, data_spaces: [{name,
projection, read_write}], coefficients}``; NVlabs/timeloop src/workload/shape-models/problem-shape.cpp):
a data space's projection is a list of ranks, each rank a sum of terms ``[dim]`` or ``[dim,
coefficient]`` (the coefficient a name from ``coefficients``/``instance``, or a number).

deepfrack's model is Timeloop's nest analysis specialised to the CNN layer (``deepfrack.dims``:
Weights [C, M, R, S], Inputs [N, C, Wdilation R + Wstride P, Hdilation S + Hstride Q], Outputs [N, M,
Q, P]). A declared shape is evaluated *exactly* when it is the CNN layer with some dimensions renamed
and some left out: dimensions of size 1 are dropped first (their coordinate is always 0, so they change
no count), then each remaining dimension is matched to a CNN dimension and each data space to a CNN
tensor so that every data space's ranks are the CNN tensor's ranks over the matched dimensions, with
the same coefficients. That covers the 1-D convolutions (``R, P``; with ``K``; with ``C``), matrix
multiplies (``M, N, K``), the CNN layer with extra size-1 dimensions (a ``G`` of 1) and any renaming.

A shape that embeds in the CNN layer once the dimensions indexing all three data spaces are set aside
(a grouped convolution with G > 1: Weights [G, C, M, R, S], Inputs [N, G, C, ...], Outputs [N, G, M,
...]) is held as declared (:class:`DeclaredShape`: bounds and projections) and evaluated by the
reference simulator of Timeloop's nest analysis (``deepfrack.cost.model.evaluate_shape``): the closed
form is written for the CNN layer's seven dimensions and four ranks per data space. Any other shape
(four data spaces, projections that are no CNN layer's) is refused with one InputError naming the field.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfrack.dims import DIM_INDEX, DIMS, TENSORS, C, M, N, P, Q, R, S
from deepfrack.errors import InputError, shown
from deepfrack.workload.layer import Layer
from deepfrack.workload.loaders import _positive_int, check_dense, problem_layer

#: the CNN layer's ranks per tensor (Weights, Inputs, Outputs): each rank a tuple of (dimension,
#: coefficient name or None for 1)
_CNN_RANKS: tuple[tuple[tuple[tuple[int, str | None], ...], ...], ...] = (
    (((C, None),), ((M, None),), ((R, None),), ((S, None),)),
    (((N, None),), ((C, None),), ((R, "Wdilation"), (P, "Wstride")), ((S, "Hdilation"), (Q, "Hstride"))),
    (((N, None),), ((M, None),), ((Q, None),), ((P, None),)),
)
_OUTPUTS = 2
#: the names of Timeloop's built-in CNN-layer shape file (``shape: cnn-layer``)
_CNN_SHAPE_NAMES = ("cnn-layer", "cnn_layer")


#: per data space, per rank, the (dimension index, coefficient) terms
Projection = tuple[tuple[tuple[tuple[int, int], ...], ...], ...]


@dataclass(frozen=True)
class DeclaredShape:
    """A declared shape kept as Timeloop holds it: the bounds of its dimensions (declared order) and
    the projections of its data spaces in the order of the CNN tensors they play (Weights, Inputs,
    Outputs), over the declared dimension indices."""

    bounds: tuple[int, ...]
    projection: Projection

    @property
    def macs(self) -> int:
        n = 1
        for b in self.bounds:
            n *= b
        return n


@dataclass(frozen=True)
class Problem:
    """A problem as deepfrack's model evaluates it: the CNN :class:`Layer` it embeds into, and the
    declared names. ``dims`` are the declared dimensions in declared order; ``dim_index`` maps each
    to its position in ``deepfrack.dims.DIMS`` (None for a size-1 dimension left out); ``tensors`` maps
    each declared data space to the CNN tensor it plays (Weights, Inputs or Outputs). A shape that does
    not embed (see the module docstring) has no ``layer`` but a ``declared`` shape, and ``dim_index``
    numbers its own dimensions."""

    layer: Layer | None
    dims: tuple[str, ...] = DIMS
    dim_index: Mapping[str, int | None] | None = None
    tensors: Mapping[str, str] | None = None
    shape: str = "CNN-Layer"
    declared: DeclaredShape | None = None

    @property
    def width(self) -> int:
        """How many dimensions a mapping of this problem has: the CNN layer's seven, or the
        declared shape's own."""
        return len(self.declared.bounds) if self.declared is not None else len(DIMS)

    @property
    def index(self) -> Mapping[str, int | None]:
        return self.dim_index if self.dim_index is not None else DIM_INDEX

    @property
    def tensor_names(self) -> Mapping[str, str]:
        """CNN tensor -> declared data space name."""
        if self.tensors is None:
            return {t: t for t in TENSORS}
        return {v: k for k, v in self.tensors.items()}

    @property
    def is_cnn(self) -> bool:
        return self.dim_index is None


def _name_list(value: Any, path: Path, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(path, field, f"expected a list of names, got {shown(value, 60)}")
    if len(set(value)) != len(value):
        raise InputError(path, field, "a name appears twice")
    return list(value)


def _coefficients(shape: Mapping, inst: Mapping, path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    raw = shape.get("coefficients") or []
    if not isinstance(raw, list):
        raise InputError(path, "problem.shape.coefficients", "expected a list of {name, default}")
    for i, c in enumerate(raw):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise InputError(path, f"problem.shape.coefficients[{i}]", "expected {name, default}")
        out[c["name"]] = _positive_int(c.get("default", 1), path, f"problem.shape.coefficients[{i}].default")
    for k in out:
        if k in inst:
            out[k] = _positive_int(inst[k], path, f"problem.instance.{k}")
    return out


def _ranks(
    ds: Mapping, dims: list[str], coefs: Mapping[str, int], path: Path, field: str
) -> list[list[tuple[str, int]]]:
    """A data space's projection as ranks of (dimension, coefficient value) terms."""
    proj = ds.get("projection")
    if not isinstance(proj, list) or not proj:
        raise InputError(path, f"{field}.projection", "expected a list of ranks, e.g. [[[R]], [[P]]]")
    out = []
    for r, rank in enumerate(proj):
        f = f"{field}.projection[{r}]"
        if isinstance(rank, str):  # v0.4 shorthand: a rank of one dimension written as its name
            rank = [[rank]]
        if not isinstance(rank, list) or not rank:
            raise InputError(path, f, f"expected a list of terms such as [[R], [P]], got {shown(rank, 40)}")
        terms = []
        for t, term in enumerate(rank):
            if isinstance(term, str):
                term = [term]
            if not isinstance(term, list) or not 1 <= len(term) <= 2:
                raise InputError(
                    path, f"{f}[{t}]", f"expected [dimension] or [dimension, coefficient], got {term!r}"
                )
            dim = term[0]
            if dim not in dims:
                raise InputError(path, f"{f}[{t}]", f"{shown(dim, 20)} is not a declared dimension")
            coef: Any = term[1] if len(term) == 2 else 1
            if isinstance(coef, str):
                if coef not in coefs:
                    raise InputError(path, f"{f}[{t}]", f"unknown coefficient {shown(coef, 20)}")
                coef = coefs[coef]
            terms.append((dim, _positive_int(coef, path, f"{f}[{t}]")))
        out.append(terms)
    return out


def _match(
    declared: list[list[list[tuple[str, int]]]],
    cnn_of: list[int],
    phi: Mapping[str, int],
) -> dict[str, int] | None:
    """The CNN coefficients under which every declared data space equals its CNN tensor over the
    matched dimensions (None when one does not)."""
    used = set(phi.values())
    coefs: dict[str, int] = {}
    for ranks, t in zip(declared, cnn_of):
        want = []
        for rank in _CNN_RANKS[t]:
            kept = tuple((d, c) for d, c in rank if d in used)
            if kept:
                want.append(kept)
        got = [tuple(sorted((phi[d], k) for d, k in rank)) for rank in ranks]
        if len(got) != len(want):
            return None
        remaining = list(want)
        for g in got:
            hit = None
            for w in remaining:
                if tuple(sorted(d for d, _ in w)) == tuple(d for d, _ in g):
                    hit = w
                    break
            if hit is None:
                return None
            remaining.remove(hit)
            for (_, name), (_, k) in zip(sorted(hit), g):
                if name is None:
                    if k != 1:
                        return None
                elif coefs.setdefault(name, k) != k:
                    return None
    return coefs


def _signature(spaces: Any, tensor_of: Any, dim: Any) -> frozenset[int]:
    """The tensors (``tensor_of[i]`` for data space i) whose projections use ``dim``."""
    return frozenset(
        t for ranks, t in zip(spaces, tensor_of) if any(d == dim for rank in ranks for d, _ in rank)
    )


def _embed(
    dims: list[str], bounds: Mapping[str, int], declared: list[list[list[tuple[str, int]]]], out_idx: int
) -> tuple[dict[str, int], list[int], dict[str, int]] | None:
    """An injective match of the dimensions larger than 1 to CNN dimensions and of the data spaces to
    the CNN tensors (the read-write one to Outputs) under which the shapes agree, with the CNN
    coefficients; None when there is none."""
    big = [d for d in dims if bounds[d] > 1]
    others = [i for i in range(3) if i != out_idx]
    for order in itertools.permutations((0, 1)):
        cnn_of = [0, 0, 0]
        cnn_of[out_idx] = _OUTPUTS
        for i, t in zip(others, order):
            cnn_of[i] = t
        # a dimension's signature (the tensors it indexes) must be its CNN dimension's
        sig_cnn = [_signature(_CNN_RANKS, range(3), d) for d in range(7)]
        cands = []
        for d in big:
            sig = _signature(declared, cnn_of, d)
            opts = [c for c in range(7) if sig_cnn[c] == sig]
            opts.sort(key=lambda c: DIMS[c] != d)  # same name first: the CNN layer maps onto itself
            cands.append(opts)
        for choice in itertools.product(*cands):
            if len(set(choice)) != len(choice):
                continue
            phi = dict(zip(big, choice))
            # terms of size-1 dimensions are always 0: leave them out
            kept = [[[(d, k) for d, k in rank if d in phi] for rank in ranks] for ranks in declared]
            kept = [[rank for rank in ranks if rank] for ranks in kept]
            coefs = _match(kept, cnn_of, phi)
            if coefs is not None:
                return phi, cnn_of, coefs
    return None


def problem_from_doc(doc: Any, path: Path, name: str | None = None) -> Problem:
    """The problem of a parsed Timeloop problem document: the CNN layer (no ``shape``, or the CNN
    shape's dimensions) or a declared shape embedded in it (see the module docstring). InputError
    naming the field for a shape deepfrack cannot evaluate exactly."""
    prob = doc.get("problem") if isinstance(doc, Mapping) else None
    if isinstance(prob, Mapping) and "instance" not in prob:
        # Timeloop also reads the bounds directly under ``problem`` (its older layout)
        bounds = {k: v for k, v in prob.items() if k not in ("shape", "version")}
        prob = {k: v for k, v in prob.items() if k in ("shape", "version")} | {"instance": bounds}
        doc = {**doc, "problem": prob}
    shape = prob.get("shape") if isinstance(prob, Mapping) else None
    if isinstance(shape, str) and shape.removesuffix(".yaml") not in _CNN_SHAPE_NAMES:
        raise InputError(
            path,
            "problem.shape",
            f"{shown(shape, 30)}: deepfrack knows Timeloop's built-in shape cnn-layer only; "
            "write the shape out (dimensions, data_spaces)",
        )
    if not isinstance(shape, Mapping) or shape.get("dimensions") is None:
        return Problem(problem_layer(doc, path, name))
    if shape.get("flatten") is not None:
        raise InputError(path, "problem.shape.flatten", "flattened dimensions are not supported")
    dims = _name_list(shape.get("dimensions"), path, "problem.shape.dimensions")
    long = [d for d in dims if len(d) != 1]
    if long:
        raise InputError(
            path,
            "problem.shape.dimensions",
            f"{shown(long[0], 20)}: dimension names are one letter (as in Timeloop)",
        )
    if set(dims) == set(DIMS) and shape.get("data_spaces") is None:
        return Problem(problem_layer(doc, path, name))
    inst = prob.get("instance")
    if not isinstance(inst, Mapping):
        raise InputError(path, "problem.instance", "missing or not a mapping")
    check_dense(inst, path)
    for d in dims:
        if d not in inst:
            raise InputError(
                path, f"problem.instance.{d}", "missing: Timeloop needs every declared dimension"
            )
    bounds = {d: _positive_int(inst[d], path, f"problem.instance.{d}") for d in dims}
    coefs = _coefficients(shape, inst, path)
    spaces = shape.get("data_spaces")
    if not isinstance(spaces, list) or not spaces:
        raise InputError(path, "problem.shape.data_spaces", "expected a list of {name, projection}")
    if len(spaces) != 3:
        raise InputError(
            path,
            "problem.shape.data_spaces",
            f"{len(spaces)} data spaces; deepfrack's model evaluates problems with three "
            "(two read, one written)",
        )
    names, declared, rw = [], [], []
    for i, ds in enumerate(spaces):
        f = f"problem.shape.data_spaces[{i}]"
        if not isinstance(ds, Mapping) or not isinstance(ds.get("name"), str):
            raise InputError(path, f"{f}.name", "each data space needs a name")
        names.append(ds["name"])
        declared.append(_ranks(ds, dims, coefs, path, f))
        rw.append(bool(ds.get("read_write", False)))
    if len(set(names)) != 3:
        raise InputError(path, "problem.shape.data_spaces", "two data spaces have the same name")
    if rw.count(True) != 1:
        raise InputError(
            path,
            "problem.shape.data_spaces",
            f"{rw.count(True)} data spaces are read_write; deepfrack's model evaluates problems "
            "with exactly one",
        )
    found = _embed(dims, bounds, declared, rw.index(True))
    if found is None:
        # dimensions in all three data spaces (the groups of a grouped convolution) set aside
        in_all = {d for d in dims if bounds[d] > 1 and len(_signature(declared, range(3), d)) == 3}
        rest = _embed(dims, {d: 1 if d in in_all else b for d, b in bounds.items()}, declared, rw.index(True))
        if not in_all or rest is None:
            raise InputError(
                path,
                "problem.shape",
                "its projections are not those of a CNN layer with some dimensions renamed or left out "
                "(and dimensions indexing all three data spaces); deepfrack's model does not evaluate it",
            )
        cnn_of = rest[1]
        order = sorted(range(3), key=lambda i: cnn_of[i])
        return Problem(
            None,
            dims=tuple(dims),
            dim_index={d: i for i, d in enumerate(dims)},
            tensors={n: TENSORS[t] for n, t in zip(names, cnn_of)},
            shape=str(shape.get("name") or "custom"),
            declared=DeclaredShape(
                bounds=tuple(bounds[d] for d in dims),
                projection=tuple(
                    tuple(tuple((dims.index(d), k) for d, k in rank) for rank in declared[i]) for i in order
                ),
            ),
        )
    phi, cnn_of, cnn_coefs = found
    vals = {DIMS[c]: bounds[d] for d, c in phi.items()}
    layer = Layer(
        name=name or path.stem,
        kind="conv",
        **{k: vals.get(k, 1) for k in DIMS},
        **cnn_coefs,
    )
    return Problem(
        layer,
        dims=tuple(dims),
        dim_index={d: phi.get(d) for d in dims},
        tensors={n: TENSORS[t] for n, t in zip(names, cnn_of)},
        shape=str(shape.get("name") or "custom"),
    )


__all__ = ["DeclaredShape", "Problem", "Projection", "problem_from_doc"]
