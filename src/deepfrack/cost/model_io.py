"""Reading the inputs of one model run the way ``timeloop-model`` takes them: any number of YAML
files (or folders of them) that together hold an architecture (+ compound-component classes), a
problem, a mapping and, optionally, an Accelergy ERT. Each file is recognized by its top-level keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfrack.arch.constraints import Names, parse_target_list
from deepfrack.arch.energy import builtin_energy_table
from deepfrack.arch.ert import check_energy_table, ert_from_data
from deepfrack.arch.parse import architecture_from_data, component_classes
from deepfrack.arch.spec import Architecture, Constraints, EnergyTable
from deepfrack.arch.yamlio import Document, find_tag, load_documents
from deepfrack.cost.mapping import LoopMapping, mapping_from_directives
from deepfrack.cost.model import default_rules
from deepfrack.cost.timeloop_post import TimeloopRules
from deepfrack.dims import TENSORS
from deepfrack.errors import InputError
from deepfrack.objective import Objective
from deepfrack.workload.layer import Layer
from deepfrack.workload.loaders import problem_layer
from deepfrack.workload.shapes import Problem, problem_from_doc

#: top-level keys deepfrack reads, and those it accepts and ignores (Timeloop mapper/constraint
#: settings do not change a single model evaluation)
_ARCH_KEYS = {"architecture", "arch"}
_IGNORED = {
    "compound_components",
    "architecture_constraints",
    "mapspace_constraints",
    "mapspace",
    "constraints",
    "mapper",
    "variables",
    "globals",
    "components",
    "model",
    "ART",
    "ART_summary",
    "ERT_summary",
    "dumped_by_timeloop_front_end",
    "version",
    "layout",
}


@dataclass(frozen=True)
class ModelInputs:
    """Everything one evaluation needs, with the files each part came from."""

    arch: Architecture
    energy: EnergyTable
    layer: Layer | None  # None for a declared shape that does not embed in the CNN layer (problem.declared)
    mapping: LoopMapping | None  # None when no file gives one (load_model_inputs(mapping_optional=True))
    problem: Problem
    rules: TimeloopRules
    sources: dict[str, str]
    #: the mapspace constraints of the files (in the problem's names; the architecture's own are in arch)
    constraints: Constraints = field(default_factory=Constraints)
    #: the mapper's ``optimization_metrics`` when a file gives them
    metrics: tuple[str, ...] | None = None


def _one(docs: list[Document], key: str, what: str) -> Document | None:
    found = [d for d in docs if key in d.data]
    if len(found) > 1:
        raise InputError(found[1].path, key, f"a second {what} (the first is in {found[0].path})")
    return found[0] if found else None


def layer_from_problem(data: dict, path: Path) -> Layer:
    """A CNN-layer :class:`Layer` from a Timeloop problem document (v0.3 or v0.4), read as Timeloop reads
    it (``deepfrack.workload.loaders.problem_layer``)."""
    return problem_layer(data, path)


def _instance(data: dict) -> Any:
    prob = data.get("problem")
    return prob.get("instance") if isinstance(prob, dict) else None


def _check_documents(docs: list[Document]) -> dict:
    """InputError for a document that is not a mapping, an unknown top-level key or a v0.4 tag
    outside an architecture file; the compound-component classes the documents define."""
    classes = {}
    known = _ARCH_KEYS | _IGNORED | {"problem", "mapping", "ERT"}
    for d in docs:
        if not isinstance(d.data, dict):
            raise InputError(
                d.path, None, f"expected a YAML mapping at the top level, got {type(d.data).__name__}"
            )
        unknown = [k for k in d.data if k not in known]
        if unknown:
            if "sparse_optimizations" in unknown:
                raise InputError(d.path, "sparse_optimizations", "sparse optimizations are not supported")
            raise InputError(
                d.path,
                str(unknown[0]),
                "unknown top-level key; expected one of architecture, problem, mapping, ERT, "
                "compound_components, constraints, mapper",
            )
        if not _ARCH_KEYS & d.data.keys():  # tags belong to v0.4 architectures only
            tagged = find_tag({k: v for k, v in d.data.items() if k in ("problem", "mapping", "ERT")})
            if tagged:
                raise InputError(
                    d.path,
                    tagged[0],
                    f"unknown YAML tag !{tagged[1]} (tags belong in v0.4 architecture files)",
                )
        classes.update(component_classes(d.data, d.path))
    return classes


def _architecture(
    docs: list[Document], paths: tuple[str | Path, ...], classes: dict, problem: Problem, instance: Any = None
) -> tuple[Architecture, Document]:
    """The one architecture of the documents (with the variables the other files define, and the
    problem's ``instance`` as ``spec.problem.instance`` for expressions such as ``len(...)``; its
    constraints may name the problem's dimensions and data spaces); when none defines one, the
    InputError names the files given."""
    arch_docs = [d for d in docs if _ARCH_KEYS & d.data.keys()]
    given, n_files = ", ".join(str(p) for p in paths), len(paths)
    if not arch_docs:
        raise InputError(
            given,
            "architecture",
            f"none of the {n_files} files given defines an architecture (a top-level 'architecture:' key)",
        )
    if len(arch_docs) > 1:
        raise InputError(
            arch_docs[1].path, "architecture", f"a second architecture (the first is in {arch_docs[0].path})"
        )
    ad = arch_docs[0]
    data = dict(ad.data)
    variables = _symbols(docs, ad, instance)
    if variables is not None:
        data["variables"] = variables
    names = Names(tuple(problem.dims), tuple(problem.tensor_names[t] for t in TENSORS))
    return architecture_from_data(data, ad.path, classes, names), ad


def _symbols(docs: list[Document], first: Document | None, instance: Any) -> Any:
    """The variables every document defines (those of ``first``, the architecture's file, win), and the
    problem's ``instance`` as ``spec.problem.instance`` (for expressions such as ``len(...)``); None
    when no document defines variables and there is no instance."""
    out = first.data.get("variables") if first is not None else None
    for other in docs:
        if other is not first and "variables" in other.data:
            out = {**(other.data.get("variables") or {}), **(out or {})}
    if isinstance(instance, dict) and isinstance(out or {}, dict):
        out = {**(out or {}), "spec.problem.instance": instance}
    return out


def _required(docs: list[Document], key: str, paths: tuple[str | Path, ...]) -> Document:
    """The one document with top-level ``key`` (problem, mapping); InputError (naming the files given)
    if none or two. An empty ``mapping: []`` (as timeloopfe writes into parsed-processed-input.yaml)
    gives way to a mapping in another file."""
    if key == "mapping" and any(d.data.get(key) for d in docs):
        docs = [d for d in docs if d.data.get(key) or key not in d.data]
    found = _one(docs, key, key)
    if found is None:
        given, n_files = ", ".join(str(p) for p in paths), len(paths)
        raise InputError(
            given,
            key,
            f"none of the {n_files} files given defines a {key} (a top-level '{key}:' key)",
        )
    return found


def _mapspace_constraints(docs: list[Document], names: Names) -> Constraints:
    """The constraint lists of the files' ``mapspace_constraints``, ``architecture_constraints``,
    ``mapspace`` and ``constraints`` keys, read with the problem's names."""
    targets: list = []
    sources: list[str] = []
    for d in docs:
        for key in ("architecture_constraints", "mapspace_constraints", "mapspace", "constraints"):
            block = d.data.get(key)
            if isinstance(block, dict) and not ({"targets", "constraints"} & block.keys()):
                continue  # a mapspace block without constraints (e.g. only a template)
            if block is not None:
                targets.extend(parse_target_list(block, d.path, key, names))
                sources.append(str(d.path))
    return Constraints(tuple(targets), ", ".join(dict.fromkeys(sources)) or None)


def _metrics(docs: list[Document]) -> tuple[str, ...] | None:
    """The ``optimization_metrics`` (or ``optimization_metric``) of a ``mapper`` document, as
    :class:`Objective` metric names; InputError on a metric deepfrack's mapper does not know."""
    for d in docs:
        m = d.data.get("mapper")
        if isinstance(m, dict):
            key = "optimization_metrics" if "optimization_metrics" in m else "optimization_metric"
            v = m.get(key)
            if v is not None:
                try:
                    return Objective.parse(v if isinstance(v, (list, tuple)) else str(v)).metrics
                except ValueError as e:
                    raise InputError(d.path, f"mapper.{key}", str(e)) from None
    return None


def load_model_inputs(
    *paths: str | Path, rules: TimeloopRules | None = None, mapping_optional: bool = False
) -> ModelInputs:
    """Read and check the inputs of one model run (see the module docstring). Without an ERT the
    built-in energy table is used. InputError (naming file and field) on a missing or duplicated
    part, an unknown top-level key, or a bad value. ``mapping_optional``: no mapping is no error (the
    inputs of a mapper run; ``mapping`` is then None)."""
    if not paths:
        raise InputError(None, None, "no input files given")
    docs = load_documents(*paths)
    classes = _check_documents(docs)
    pd = _required(docs, "problem", paths)
    problem = problem_from_doc(pd.data, pd.path)
    layer = problem.layer
    arch, ad = _architecture(docs, paths, classes, problem, _instance(pd.data))
    symbols = _symbols(docs, ad, _instance(pd.data))
    symbols = symbols if isinstance(symbols, dict) else None
    md = None
    if not mapping_optional or any(d.data.get("mapping") for d in docs):
        md = _required(docs, "mapping", paths)
    mapping = (
        None
        if md is None
        else mapping_from_directives(
            md.data["mapping"], arch, layer, source=md.path, problem=problem, symbols=symbols
        )
    )
    names = Names(tuple(problem.dims), tuple(problem.tensor_names[t] for t in TENSORS), symbols or {})
    ed = _one(docs, "ERT", "ERT")
    if ed is not None:
        energy = ert_from_data(ed.data, ed.path)
        check_energy_table(energy, arch, ed.path)
        esrc = str(ed.path)
    else:
        energy = builtin_energy_table(arch)
        esrc = energy.origin
    return ModelInputs(
        arch=arch,
        energy=energy,
        layer=layer,
        mapping=mapping,
        problem=problem,
        rules=rules or default_rules(arch),
        sources={
            "architecture": str(ad.path),
            "problem": str(pd.path),
            "mapping": str(md.path) if md is not None else "(none: the mapper's)",
            "energy": esrc,
        },
        constraints=_mapspace_constraints(docs, names) if md is None else Constraints(),
        metrics=_metrics(docs) if md is None else None,
    )
