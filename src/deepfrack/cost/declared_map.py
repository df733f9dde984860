"""The built-in mapper on a problem with declared dimension and data-space names (what
``timeloop-mapper`` does given an architecture, a problem and constraints, but no mapping).

A declared shape that embeds in the CNN layer (conv1d ``R, P``, ``K, R, P``, a matrix multiply, a CNN
layer with a size-1 ``G``; see ``deepfrack.workload.shapes``) is mapped as that CNN layer: the
constraints are translated from the declared names to the CNN layer's dimensions and tensors, the
CNN mapper searches (its fast paths unchanged), and the best mapping is translated back into
Timeloop map.yaml directives in the declared names. That map.yaml is then evaluated by the same path
as ``deepfrack model`` on it, so the numbers reported are those a re-run of the model gives.

A shape that does not embed (a grouped convolution with ``G > 1``, other projections) is refused with
one InputError: the mapper searches CNN-layer mappings only; such a problem runs through
``deepfrack model`` with a mapping given (docs/model.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deepfrack.arch.spec import Architecture, Constraints, EnergyTable, TargetConstraint
from deepfrack.cost.mapper import LayerMapper, MapperOptions, MapResult
from deepfrack.cost.mapping import LoopMapping, mapping_from_directives
from deepfrack.cost.model import LayerModel, ModelResult
from deepfrack.cost.timeloop_post import TimeloopRules
from deepfrack.dims import DIMS
from deepfrack.errors import InputError
from deepfrack.objective import Objective
from deepfrack.workload.shapes import Problem


@dataclass(frozen=True)
class DeclaredMapResult:
    """The mapper's best mapping of a declared problem: its map.yaml directives in the problem's
    names, that mapping as the model reads it, and the model's result on it."""

    directives: list[dict[str, Any]]
    mapping: LoopMapping
    result: ModelResult
    search: MapResult

    def map_yaml(self) -> dict[str, Any]:
        """Timeloop's map.yaml document (``{"mapping": [...]}``)."""
        return {"mapping": [dict(d) for d in self.directives]}


def _cnn_target(t: TargetConstraint, problem: Problem) -> TargetConstraint:
    """One constraint in the declared names -> the same constraint on the CNN layer's dimensions and
    tensors. Declared size-1 dimensions the CNN layer leaves out are dropped (their factor is 1)."""
    idx = problem.index
    tensors = problem.tensors or {}

    def cnn_dim(name: str) -> str | None:
        i = idx.get(name)
        return None if i is None else DIMS[i]

    factors = {cnn_dim(d): b for d, b in t.factors.items() if cnn_dim(d) is not None}
    perm, split = t.permutation, t.split
    if perm is not None:
        items = list(perm)  # dimension names are one letter, as in Timeloop
        kept = [it for it in items if it == "_" or cnn_dim(it) is not None]
        if split is not None:
            dims_only = [it for it in items if it != "_"]
            split -= sum(1 for it in dims_only[:split] if cnn_dim(it) is None)
        perm = "".join(cnn_dim(it) or "_" for it in kept)

    def tensors_of(v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else tuple(tensors.get(x, x) for x in v)

    return dataclasses.replace(
        t,
        factors=factors,
        permutation=perm,
        split=split,
        keep=tensors_of(t.keep),
        bypass=tensors_of(t.bypass),
    )


def cnn_constraints(constraints: Constraints, problem: Problem) -> Constraints:
    """Constraints written in a declared problem's names, on the CNN layer it embeds in."""
    if problem.is_cnn:
        return constraints
    return Constraints(tuple(_cnn_target(t, problem) for t in constraints.targets), constraints.source)


def declared_directives(directives: Sequence[Mapping[str, Any]], problem: Problem) -> list[dict[str, Any]]:
    """CNN-layer map.yaml directives (``LoopMapping.directives``) in a declared problem's names:
    factors and permutations over the declared dimensions (declared order; a size-1 dimension the CNN
    layer leaves out gets factor 1 and goes outermost), data spaces under their declared names.
    Factors and permutations are written as Timeloop writes them ("K2 R3 P1", "KRP")."""
    if problem.is_cnn:
        return [dict(d) for d in directives]
    idx = problem.index
    declared_of = {DIMS[i]: name for name, i in idx.items() if i is not None}
    left_out = [name for name in problem.dims if idx.get(name) is None]
    names = problem.tensor_names
    out: list[dict[str, Any]] = []
    for d in directives:
        e = dict(d)
        if "factors" in e:
            facs = {declared_of.get(k): v for k, v in e["factors"].items()}
            e["factors"] = " ".join(f"{n}{int(facs.get(n, 1))}" for n in problem.dims)
        if "permutation" in e:
            cnn = list(e["permutation"])
            perm = [declared_of[c] for c in cnn if c in declared_of] + left_out
            if "split" in e:
                e["split"] = int(e["split"]) - sum(1 for c in cnn[: int(e["split"])] if c not in declared_of)
            e["permutation"] = "".join(perm)
        for key in ("keep", "bypass"):
            if key in e:
                e[key] = [names[t] for t in e[key]]
        out.append(e)
    return out


def map_declared(
    arch: Architecture,
    energy: EnergyTable,
    problem: Problem,
    constraints: Constraints,
    rules: TimeloopRules,
    objective: Objective | str | Sequence[str] = "energy",
    options: MapperOptions | None = None,
    source: str | None = None,
) -> DeclaredMapResult:
    """The built-in mapper's best mapping of ``problem`` under the architecture's constraints and
    ``constraints`` (both in the problem's declared names), as map.yaml directives in those names, and
    the model's result on it (module docstring). InputError when the shape does not embed in the CNN
    layer or no mapping fits."""
    layer = problem.layer
    if layer is None:
        raise InputError(
            source,
            "problem.shape",
            "the built-in mapper maps shapes that embed in the CNN layer only (this one does not, e.g. a "
            "grouped convolution with G > 1); give a mapping to evaluate it with deepfrack model",
        )
    cnn_arch = dataclasses.replace(arch, constraints=cnn_constraints(arch.constraints, problem))
    opt = dataclasses.replace(options or MapperOptions(), objective=Objective.parse(objective), rules=rules)
    found = next(
        iter(LayerMapper(cnn_arch, energy, layer, cnn_constraints(constraints, problem), opt).map().values())
    )
    if not found.ok or found.mapping is None:
        raise InputError(source, "mapping", f"the mapper found no valid mapping: {found.reason}")
    directives = declared_directives(found.mapping.directives(), problem)
    mapping = mapping_from_directives(directives, arch, layer, source="<mapper>", problem=problem)
    result = LayerModel(arch, energy, layer, rules, source=energy.origin or None).evaluate(mapping)
    return DeclaredMapResult(directives, mapping, result, found)


__all__ = ["DeclaredMapResult", "cnn_constraints", "declared_directives", "map_declared"]
