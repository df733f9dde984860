"""Architecture variations for design-space sweeps: ``LEVEL.ATTRIBUTE=v1,v2,...`` applied to a parsed
architecture document (a copy; the user's file is never touched).

* ``LEVEL`` is a component or subtree (v0.3) or a node (v0.4) by its name without the ``[a..b]`` range
  (``GlobalBuffer``, ``DRAM``, ``PE``); ``ATTRIBUTE`` is a key of its ``attributes`` exactly as the file
  names it, hyphens and underscores alike (``GlobalBuffer.memory_depth``, ``DRAM.type``), or, for a v0.4
  container, ``meshX``/``meshY`` of its ``spatial`` fanout. The attribute must be stated on that node:
  one the file does not state is an error (so a misspelt name never sweeps nothing).
* ``LEVEL.instances`` (v0.3) is the instance count of a ``NAME[a..b]`` node: ``PE.instances=4,16,64``
  renames ``PE[0..15]`` to ``PE[0..3]``, ``PE[0..63]``. The meshes below it follow: a ``meshX`` stated at
  or below the node that is a multiple of the old count is scaled with it (the instances lie along X, as
  Simba's PEs do: ``meshX: 16`` on every component inside ``PE[0..15]``), else a ``meshY`` that is;
  otherwise the stated mesh stays and the instances fill the other axis. Vary ``meshX`` in the same
  point (``--zip``) for another layout. In a v0.4 file the PE array is a container's
  ``spatial: {meshX, meshY}``: vary ``NAME.meshX``.
* A value keeps the type of the value it replaces: a number for a number (an integer for an integer),
  a string for a string (a v0.4 expression such as ``2048*4`` takes a number too), a boolean for a
  boolean.

Whether the changed architecture is valid (a positive size, a mesh that divides the instances, a DRAM
type the energy table knows) is for the architecture parser and the energy table to say.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deepfrack.arch.parse import split_name
from deepfrack.arch.yamlio import load_yaml
from deepfrack.errors import InputError

#: the pseudo-attribute of a v0.3 node's instance count (the ``[a..b]`` of its name)
INSTANCES = "instances"
#: attributes of a v0.4 container's ``spatial`` fanout
SPATIAL = ("meshX", "meshY")
#: the option (and API argument) that variations come from, for errors
FIELD = "vary"

_OPERATOR = re.compile(r"[+\-*/%()]")


@dataclass(frozen=True)
class Variation:
    """One varied attribute: ``target`` as written (``GlobalBuffer.memory_depth``), its ``level`` and
    ``attribute``, and the values to sweep (parsed as YAML scalars: ``2048`` is an integer)."""

    level: str
    attribute: str
    values: tuple[Any, ...]

    @property
    def target(self) -> str:
        return f"{self.level}.{self.attribute}"


def _scalar(text: str, spec: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if value is None or isinstance(value, list | dict):
        raise InputError(None, FIELD, f"{spec}: {text!r} is not a single value")
    return value


def parse_variation(spec: str) -> Variation:
    """``LEVEL.ATTRIBUTE=v1,v2,...`` -> Variation; InputError (field ``vary``) when malformed."""
    target, sep, values = spec.partition("=")
    level, dot, attribute = target.strip().rpartition(".")
    if not sep or not dot or not level or not attribute or not values.strip():
        raise InputError(
            None, FIELD, f"{spec!r}: write LEVEL.ATTRIBUTE=v1,v2,... (e.g. DRAM.type=LPDDR4,HBM2)"
        )
    parsed = tuple(_scalar(v.strip(), spec) for v in values.split(","))
    if len(set(map(repr, parsed))) != len(parsed):
        raise InputError(None, FIELD, f"{spec!r}: a value is listed twice")
    return Variation(level.strip(), attribute.strip(), parsed)


@dataclass(frozen=True)
class Study:
    """A sweep written down (``deepfrack sweep --study FILE``): the networks (zoo names or paths), the
    architecture (a bundled name or a path), the variations, and whether they are zipped. Paths in the
    file are relative to its folder."""

    workloads: tuple[str | Path, ...]
    arch: str | Path
    vary: tuple[Variation, ...]
    zipped: bool = False


def _study_path(value: Any, folder: Path) -> str | Path:
    """A name stays a name (``alexnet``, ``simba-like``); a path that exists beside the file is that."""
    beside = folder / str(value)
    return beside if beside.exists() else str(value)


def load_study(path: str | Path) -> Study:
    """Read a study file::

        workloads: [alexnet, vgg16]            # zoo names, network YAMLs, ONNX models
        arch: simba-like                        # a bundled accelerator or an architecture YAML
        vary:                                   # LEVEL.ATTRIBUTE: [values]
          GlobalBuffer.memory_depth: [512, 2048, 8192]
          DRAM.type: [LPDDR4, HBM2]
        zip: false                              # optional

    InputError naming the file and the field on anything else (a missing or unknown key, a value that
    is not a list of single values, a value listed twice)."""
    p = Path(path)
    doc = load_yaml(p)
    keys = {"workloads", "arch", "vary", "zip"}
    if not isinstance(doc, dict):
        raise InputError(p, None, "expected a mapping with workloads, arch and vary")
    unknown = sorted(str(k) for k in doc if k not in keys)
    if unknown:
        raise InputError(p, unknown[0], f"unknown key (a study has {', '.join(sorted(keys))})")
    for k in ("workloads", "arch", "vary"):
        if k not in doc:
            raise InputError(p, k, "missing")
    workloads, arch, vary, zipped = doc["workloads"], doc["arch"], doc["vary"], doc.get("zip", False)
    if isinstance(workloads, str):
        workloads = [workloads]
    if not isinstance(workloads, list) or not workloads or not all(isinstance(w, str) for w in workloads):
        raise InputError(p, "workloads", "expected a list of network names or paths")
    if not isinstance(arch, str):
        raise InputError(p, "arch", "expected a bundled accelerator's name or a path")
    if not isinstance(zipped, bool):
        raise InputError(p, "zip", "expected true or false")
    if not isinstance(vary, dict) or not vary:
        raise InputError(p, "vary", "expected a mapping LEVEL.ATTRIBUTE: [v1, v2, ...]")
    variations = []
    for target, values in vary.items():
        level, dot, attribute = str(target).rpartition(".")
        field = f"vary.{target}"
        if not dot or not level or not attribute:
            raise InputError(p, field, "write LEVEL.ATTRIBUTE (e.g. DRAM.type)")
        values = values if isinstance(values, list) else [values]
        if not values or any(v is None or isinstance(v, list | dict) for v in values):
            raise InputError(p, field, "expected a list of single values")
        if len(set(map(repr, values))) != len(values):
            raise InputError(p, field, "a value is listed twice")
        variations.append(Variation(level, attribute, tuple(values)))
    folder = p.parent
    return Study(
        tuple(_study_path(w, folder) for w in workloads), _study_path(arch, folder), tuple(variations), zipped
    )


def sweep_points(variations: Sequence[Variation], zipped: bool = False) -> list[dict[str, Any]]:
    """The points of a sweep, each ``{target: value}`` in the variations' order: the cartesian product of
    the values (the last variation changing fastest), or with ``zipped`` the i-th value of each (they
    must list as many). InputError on a target given twice or lists of unequal length."""
    targets = [v.target for v in variations]
    if not variations:
        raise InputError(None, FIELD, "nothing to vary: give at least one LEVEL.ATTRIBUTE=v1,v2,...")
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise InputError(None, FIELD, f"{twice[0]} is varied twice; list all its values in one --vary")
    if zipped:
        counts = {len(v.values) for v in variations}
        if len(counts) > 1:
            lengths = ", ".join(f"{v.target} {len(v.values)}" for v in variations)
            raise InputError(None, FIELD, f"zip needs as many values for every attribute ({lengths})")
        combos: Iterator[tuple[Any, ...]] = zip(*(v.values for v in variations), strict=True)
    else:
        combos = itertools.product(*(v.values for v in variations))
    return [dict(zip(targets, combo, strict=True)) for combo in combos]


# --------------------------------------------------------------------------------------------- #
# the document
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Node:
    """A named node of the architecture document (the mapping itself, its field path) and, in a v0.3
    tree, the components at or below it (whose meshes follow its instance count)."""

    obj: dict
    field: str
    components: tuple[tuple[dict, str], ...] = ()


def _v03_walk(tree: dict, field: str) -> tuple[list[_Node], list[tuple[dict, str]]]:
    """The named nodes of a v0.3 tree (the tree first, then its local components, then its subtrees),
    and every component at or below it."""
    own = [(c, f"{field}.local[{j}]") for j, c in enumerate(tree.get("local") or []) if isinstance(c, dict)]
    comps = list(own)
    below: list[_Node] = []
    subtrees = tree.get("subtree") or []
    for i, sub in enumerate(subtrees if isinstance(subtrees, list) else []):
        if isinstance(sub, dict):
            nodes, inner = _v03_walk(sub, f"{field}.subtree[{i}]")
            below += nodes
            comps += inner
    head = [_Node(tree, field, tuple(comps))] if "name" in tree else []
    return head + [_Node(c, f, ((c, f),)) for c, f in own] + below, comps


def _v04_walk(nodes: Any, field: str) -> Iterator[_Node]:
    for i, n in enumerate(nodes if isinstance(nodes, list) else []):
        if not isinstance(n, dict):
            continue
        if "name" in n:
            yield _Node(n, f"{field}[{i}]")
        if "nodes" in n:
            yield from _v04_walk(n["nodes"], f"{field}[{i}].nodes")


def _arch_of(doc: Any) -> tuple[dict, bool]:
    """The ``architecture`` mapping of a document and whether it is v0.4 (the parser has checked it)."""
    arch = doc.get("architecture", doc.get("arch")) if isinstance(doc, dict) else None
    if not isinstance(arch, dict):
        raise InputError(None, FIELD, "the architecture document has no architecture to vary")
    return arch, "nodes" in arch


def _base(node: _Node, path: Path | None) -> str:
    return split_name(node.obj.get("name"), path, f"{node.field}.name")[0]


def _nodes(doc: Any, path: Path | None) -> dict[str, list[_Node]]:
    """The document's named nodes by base name."""
    arch, v04 = _arch_of(doc)
    nodes = (
        list(_v04_walk(arch.get("nodes"), "architecture.nodes"))
        if v04
        else _v03_walk(arch, "architecture")[0]
    )
    out: dict[str, list[_Node]] = {}
    for n in nodes:
        out.setdefault(_base(n, path), []).append(n)
    return out


def _key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` that spells ``name`` (hyphens and underscores alike), or None."""
    want = name.replace("-", "_")
    return next((k for k in mapping if isinstance(k, str) and k.replace("-", "_") == want), None)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _expression(text: str) -> bool:
    """Whether a string attribute is a number written as text or an arithmetic expression (v0.4
    ``depth: 2048*4``), as opposed to a name (``DDR4``, ``45nm``)."""
    try:
        float(text)
        return True
    except ValueError:
        return bool(_OPERATOR.search(text))


def _type_error(old: Any, new: Any) -> str | None:
    """Why ``new`` cannot replace ``old`` (module docstring), or None."""
    if isinstance(old, bool):
        return None if isinstance(new, bool) else f"expected true or false (the file has {old!r})"
    if isinstance(old, int):
        ok = isinstance(new, int) and not isinstance(new, bool)
        return None if ok else f"expected an integer (the file has {old})"
    if isinstance(old, float):
        return None if _is_number(new) else f"expected a number (the file has {old})"
    if isinstance(old, str):
        ok = isinstance(new, str) or (_is_number(new) and _expression(old))
        return None if ok else f"expected a name like the file's {old!r}"
    return f"the file's value {old!r} is not a single value"


def _where(level: str, nodes: Mapping[str, list[_Node]]) -> _Node:
    found = nodes.get(level, [])
    if not found:
        names = ", ".join(nodes)
        raise InputError(
            None, FIELD, f"{level}: the architecture has no level named {level} (it has {names})"
        )
    if len(found) > 1:
        fields = ", ".join(n.field for n in found)
        raise InputError(None, FIELD, f"{level}: several nodes have this name ({fields})")
    return found[0]


def _set_instances(node: _Node, value: Any, path: Path | None, target: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(None, FIELD, f"{target}={value!r}: expected a positive integer (an instance count)")
    base, old = split_name(node.obj.get("name"), path, f"{node.field}.name")
    node.obj["name"] = f"{base}[0..{value - 1}]"
    for comp, _ in node.components:
        attrs = comp.get("attributes")
        if not isinstance(attrs, dict):
            continue
        for axis in SPATIAL:  # X first: Simba's PEs lie along X
            k = _key(attrs, axis)
            mesh = attrs.get(k) if k is not None else None
            if isinstance(mesh, int) and not isinstance(mesh, bool) and mesh % old == 0:
                attrs[k] = mesh // old * value
                break


def _set(node: _Node, level: str, attribute: str, value: Any, v04: bool) -> None:
    target = f"{level}.{attribute}"
    places = [node.obj.get("attributes")]
    if v04:
        places.append(node.obj.get("spatial"))
    for place in places:
        k = _key(place, attribute) if isinstance(place, dict) else None
        if k is not None:
            why = _type_error(place[k], value)
            if why:
                raise InputError(None, FIELD, f"{target}={value!r}: {why}")
            place[k] = value
            return
    stated = sorted(k for p in places if isinstance(p, dict) for k in p)
    hint = f"it states {', '.join(map(str, stated))}" if stated else "it states no attributes"
    if not v04:
        hint += f"; {INSTANCES} for its instance count"
    raise InputError(None, FIELD, f"{target}: {level} has no attribute {attribute} ({hint})")


def vary_document(doc: Any, point: Mapping[str, Any], path: str | Path | None = None) -> Any:
    """A copy of the architecture document ``doc`` (as ``deepfrack.arch.yamlio.load_yaml`` reads it) with
    the point's ``{LEVEL.ATTRIBUTE: value}`` applied (module docstring); ``doc`` is not changed.
    InputError (field ``vary``) naming the target: no such level or attribute, a value of another type.
    Instance counts are applied first, so that a mesh varied in the same point has the last word."""
    p = Path(path) if path is not None else None
    new = copy.deepcopy(doc)
    nodes = _nodes(new, p)
    v04 = _arch_of(new)[1]
    items = sorted(point.items(), key=lambda kv: kv[0].rpartition(".")[2] != INSTANCES)
    for target, value in items:
        level, _, attribute = target.rpartition(".")
        node = _where(level, nodes)
        if attribute == INSTANCES and not v04:
            _set_instances(node, value, p, target)
        else:
            _set(node, level, attribute, value, v04)
    return new


__all__ = [
    "FIELD",
    "INSTANCES",
    "Study",
    "Variation",
    "load_study",
    "parse_variation",
    "sweep_points",
    "vary_document",
]
