"""Timeloop constraints: ``architecture_constraints``, ``mapspace_constraints``, ``mapspace:
{constraints: ...}``, and the per-node ``constraints`` of a v0.4 architecture.

The accepted spellings follow Timeloop's parser (NVlabs/timeloop src/mapping/constraints.cpp):

* a constraint list may be the document's ``architecture_constraints`` / ``arch_constraints`` /
  ``architecture.constraints`` (architecture constraints) or ``mapspace_constraints`` / ``mapspace``
  (mapspace constraints), each either a list or a mapping with a ``targets`` or ``constraints`` list
  (``Constraints::Parse``); an entry may nest its own ``constraints`` list and may put its fields
  under ``attributes`` (``Constraints::ParseList``);
* ``type``: ``datatype``, with the older spellings ``bypass``, ``bypassing`` and the v0.4
  ``dataspace``; ``temporal``; ``spatial``; ``utilization`` (or ``parallelism``) with ``min``;
  ``max_overbooked_proportion`` with ``proportion``;
* ``factors``: a string ("P=1 Q=1 C<=8 M>=2", also "C1 M2" as in map.yaml files, or
  comma-separated) or a list of such strings; ``X=0`` means the full dimension
  (``Constraints::ParseFactors``); ``<=`` and ``>=`` bounds must be positive;
* ``permutation``: dimension letters innermost first, optionally split by ``_`` into a prefix and a
  suffix (``Constraints::ParsePermutations``), or a v0.4 list;
* ``split`` (spatial): the first ``split`` dimensions of the permutation go on X.
* Expressions, as timeloopfe evaluates them: ``split``, a utilization's ``min`` and every factor
  value may be an expression over the variables (``split: len(spec.problem.instance)``, ``M<=n*2``,
  ``[C=min(n, 8)]``; see ``deepfrack.arch.expressions``).

Errors name the file and the field (``InputError``).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deepfrack.arch.expressions import evaluate_expression, evaluate_factors, evaluate_integer
from deepfrack.arch.spec import Architecture, Constraints, FactorBound, TargetConstraint
from deepfrack.arch.yamlio import Document, load_documents, underscore_keys
from deepfrack.dims import DIMS, TENSORS
from deepfrack.errors import InputError

#: its data spaces, in deepfrack's canonical order

_TYPE_ALIASES = {
    "datatype": "datatype",
    "bypass": "datatype",
    "bypassing": "datatype",
    "dataspace": "datatype",
    "temporal": "temporal",
    "spatial": "spatial",
    "utilization": "utilization",
    "parallelism": "utilization",
    "max_overbooked_proportion": "max_overbooked_proportion",
}
#: further keys Timeloop (or timeloopfe) reads on a constraint; kept in TargetConstraint.extra
_EXTRA_KEYS = frozenset(
    {
        "default_max_factor",
        "default_min_factor",
        "remainders",
        "no_reuse",
        "no_link_transfer",
        "no_multicast_no_reduction",
        "no_temporal_reuse",
        "rmw_first_update",
        "no_coalesce",
        "proportion",
        "maximize_dims",
        "factors_only",
        "no_iteration_over_dataspaces",
        "min_utilization",
    }
)
_BASE_KEYS = frozenset(
    {
        "target",
        "name",
        "type",
        "keep",
        "bypass",
        "factors",
        "permutation",
        "split",
        "min",
        "attributes",
        "constraints",
    }
)

_FACTOR_RE = re.compile(r"([A-Za-z]+)\s*(<=|>=|=)?\s*(-?\d+)")


# ------------------------------------------------------------------------------------------------ #
# single fields
# ------------------------------------------------------------------------------------------------ #
def parse_factors(
    value: Any,
    path: str | Path | None,
    field: str,
    dims: Iterable[str] = DIMS,
    symbols: Mapping[str, Any] | None = None,
) -> dict[str, FactorBound]:
    """Timeloop factors -> {dim: FactorBound}. Accepts "P=1 Q=1 C<=8 M>=2", "C1 M2", "C=1,M=1" and
    lists of such strings; a value may be an expression over ``symbols`` ("M<=n*2", see
    ``deepfrack.arch.expressions.evaluate_factors``). InputError (naming ``path`` and ``field``) on an
    unknown dimension, a malformed entry, a non-positive bound, or a dimension given twice."""
    dims = tuple(dims)
    if value is None:
        return {}
    value = evaluate_factors(value, symbols or {}, path, field)
    if isinstance(value, (list, tuple)):
        parts = []
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise InputError(path, f"{field}[{i}]", f"expected a factor such as 'P=1', got {v!r}")
            parts.append(v)
        text = " ".join(parts)
    elif isinstance(value, str):
        text = value
    else:
        raise InputError(path, field, f"expected a string such as 'P=1 Q=1 C<=8' or a list, got {value!r}")
    text = text.split("#", 1)[0]
    out: dict[str, FactorBound] = {}
    pos = 0
    for m in _FACTOR_RE.finditer(text):
        gap = text[pos : m.start()]
        if gap.strip(" ,\t\n"):
            raise InputError(
                path, field, f"malformed factor {gap.strip()!r} in {value!r} (write X=n, X<=n or X>=n)"
            )
        pos = m.end()
        dim, op, num = m.group(1), m.group(2) or "=", int(m.group(3))
        if dim not in dims:
            raise InputError(
                path, field, f"unknown dimension {dim!r} in {value!r} (dimensions: {' '.join(dims)})"
            )
        if num < 0 or (num == 0 and op != "="):
            raise InputError(
                path,
                field,
                f"factor {m.group(0)!r} must be positive (0 is allowed only "
                "with '=' and means the full dimension)",
            )
        if dim in out:
            raise InputError(path, field, f"dimension {dim} given twice in {value!r}")
        out[dim] = FactorBound(op, num)
    rest = text[pos:]
    if rest.strip(" ,\t\n"):
        raise InputError(
            path, field, f"malformed factor {rest.strip()!r} in {value!r} (write X=n, X<=n or X>=n)"
        )
    return out


def parse_permutation(
    value: Any, path: str | Path | None, field: str, dims: Iterable[str] = DIMS
) -> str | None:
    """Timeloop permutation (innermost first) -> a string of dimension letters, with "_" between
    prefix and suffix when given. Accepts "CMQRSPN", "RS_CM" and v0.4 lists ["C", "M"]."""
    dims = tuple(dims)
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    elif isinstance(value, str):
        text = value.split("#", 1)[0]
        items = [c for c in text.replace(",", " ") if not c.isspace()]
    else:
        raise InputError(path, field, f"expected a string of dimensions such as 'CMQRSPN', got {value!r}")
    seen: set[str] = set()
    out = []
    for it in items:
        if it == "_":
            if "_" in seen:
                raise InputError(path, field, f"'_' given twice in {value!r}")
        elif it not in dims:
            raise InputError(
                path, field, f"unknown dimension {it!r} in {value!r} (dimensions: {' '.join(dims)})"
            )
        elif it in seen:
            raise InputError(path, field, f"dimension {it} given twice in {value!r}")
        seen.add(it)
        out.append(it)
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class Names:
    """What a constraint may name: the problem's dimensions and data spaces (the CNN layer's unless a
    problem declares its own shape), and the values an expression written as ``split`` may use (the
    variables, and ``spec.problem.instance`` when the problem is known)."""

    dims: tuple[str, ...] = DIMS
    tensors: tuple[str, ...] = TENSORS
    symbols: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _tensor_list(
    value: Any, path: str | Path | None, field: str, tensors: tuple[str, ...] = TENSORS
) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InputError(path, field, f"expected a list of data spaces, got {value!r}")
    for v in value:
        if v not in tensors:
            raise InputError(path, field, f"unknown data space {v!r} (expected {', '.join(tensors)})")
    return tuple(t for t in tensors if t in value)


def _int(value: Any, path: str | Path | None, field: str, minimum: int = 0) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or int(value) != value
        or value < minimum
    ):
        raise InputError(path, field, f"expected an integer >= {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------------ #
# targets
# ------------------------------------------------------------------------------------------------ #
def parse_target(
    item: Any,
    path: str | Path | None,
    field: str,
    target: str | None = None,
    type_: str | None = None,
    names: Names | None = None,
) -> list[TargetConstraint]:
    """One entry of a Timeloop constraint (or mapping) list -> TargetConstraints. An entry with its
    own ``constraints`` list gives one TargetConstraint per element. ``target``/``type_`` fill in a
    missing ``target``/``type`` (v0.4 per-node constraints). ``names``: the dimensions, data spaces
    and expression values the entry may use (by default the CNN layer's, no variables)."""
    names = names or Names()
    if not isinstance(item, dict):
        raise InputError(path, field, f"expected a mapping with target and type, got {item!r}")
    item = dict(item)
    tgt = item.get("target", item.get("name", target))
    if item.get("constraints") is not None:
        sub = item["constraints"]
        if not isinstance(sub, list):
            raise InputError(path, f"{field}.constraints", "expected a list")
        out = []
        for j, c in enumerate(sub):
            out.extend(
                parse_target(c, path, f"{field}.constraints[{j}]", target=tgt, type_=type_, names=names)
            )
        return out
    if isinstance(item.get("attributes"), dict):  # older spelling: the fields under `attributes`
        attrs = item.pop("attributes")
        for k, v in attrs.items():
            item.setdefault(k, v)
    if tgt is None:
        raise InputError(path, field, "constraint has no target (the name of a storage level)")
    if not isinstance(tgt, str):
        raise InputError(path, f"{field}.target", f"expected a storage level name, got {tgt!r}")
    raw_type = item.get("type", type_)
    if raw_type is None:
        raise InputError(path, f"{field}.type", "missing (datatype, temporal, spatial or utilization)")
    ctype = _TYPE_ALIASES.get(str(raw_type))
    if ctype is None:
        raise InputError(
            path,
            f"{field}.type",
            f"unknown constraint type {raw_type!r} (expected datatype, "
            "bypass, temporal, spatial or utilization)",
        )
    keep = bypass = None
    factors: dict[str, FactorBound] = {}
    permutation = None
    split = None
    min_util = None
    extra: dict[str, Any] = {}
    if ctype == "datatype":
        if "keep" in item:
            keep = _tensor_list(item["keep"], path, f"{field}.keep", names.tensors)
        if "bypass" in item:
            bypass = _tensor_list(item["bypass"], path, f"{field}.bypass", names.tensors)
        both = set(keep or ()) & set(bypass or ())
        if both:
            raise InputError(path, field, f"{', '.join(sorted(both))} both kept and bypassed at {tgt}")
    if "factors" in item and ctype in ("temporal", "spatial"):
        factors = parse_factors(item["factors"], path, f"{field}.factors", names.dims, names.symbols)
    if "permutation" in item and ctype in ("temporal", "spatial"):
        permutation = parse_permutation(item["permutation"], path, f"{field}.permutation", names.dims)
    if item.get("split") is not None:
        if ctype != "spatial":
            raise InputError(path, f"{field}.split", "only a spatial constraint has a split")
        raw_split = item["split"]
        if isinstance(raw_split, str):
            raw_split = evaluate_integer(raw_split, names.symbols, path, f"{field}.split")
        split = _int(raw_split, path, f"{field}.split")
    if ctype == "utilization":
        mn = item.get("min")
        if isinstance(mn, str):
            mn = evaluate_expression(mn, names.symbols, path, f"{field}.min")
        if isinstance(mn, bool) or not isinstance(mn, (int, float)) or not 0 <= mn <= 1:
            raise InputError(path, f"{field}.min", f"expected a utilization between 0 and 1, got {mn!r}")
        min_util = float(mn)
    for k, v in item.items():
        if k in _BASE_KEYS:
            continue
        if k not in _EXTRA_KEYS:
            warnings.warn(f"{path}: {field}.{k}: unknown constraint key, ignored", stacklevel=2)
        extra[k] = v
    return [
        TargetConstraint(
            target=tgt,
            type=ctype,
            keep=keep,
            bypass=bypass,
            factors=factors,
            permutation=permutation,
            split=split,
            min_utilization=min_util,
            source=str(path) if path is not None else None,
            extra=extra,
            where=field,
        )
    ]


def parse_target_list(
    items: Any, path: str | Path | None, field: str, names: Names | None = None
) -> tuple[TargetConstraint, ...]:
    """A Timeloop constraint list in any of its container spellings (a list; a mapping with a
    ``targets`` or ``constraints`` list; None = empty) -> TargetConstraints, in file order. Also
    reads the ``mapping:`` list of a Timeloop map.yaml (same entry syntax)."""
    if items is None:
        return ()
    if isinstance(items, dict):
        for key in ("targets", "constraints"):
            if key in items:
                return parse_target_list(items[key], path, f"{field}.{key}", names)
        if not items:
            return ()
        raise InputError(path, field, "expected a list of constraints or a mapping with a 'targets' list")
    if not isinstance(items, list):
        raise InputError(path, field, f"expected a list of constraints, got {type(items).__name__}")
    out: list[TargetConstraint] = []
    for i, it in enumerate(items):
        out.extend(parse_target(it, path, f"{field}[{i}]", names=names))
    return tuple(out)


#: top-level keys holding constraint lists: Timeloop's (src/applications/mapper/mapper.cpp) and the v0.4
#: front end's top-level ``constraints: {targets: [...]}``
_CONSTRAINT_KEYS = (
    "architecture_constraints",
    "arch_constraints",
    "mapspace_constraints",
    "mapspace",
    "constraints",
)


def constraints_from_data(data: Any, path: str | Path | None) -> tuple[Constraints, bool]:
    """Constraints found in one parsed document, and whether the document had any constraint key
    (or is a v0.4 architecture, whose nodes carry constraints)."""
    if not isinstance(data, dict):
        raise InputError(path, None, "expected a YAML mapping at the top level")
    data = underscore_keys(data)
    targets: list[TargetConstraint] = []
    found = False
    for key in _CONSTRAINT_KEYS:
        if key in data:
            found = True
            block = data[key]
            if (
                key in ("mapspace", "constraints")
                and isinstance(block, dict)
                and not ({"targets", "constraints"} & block.keys())
            ):
                continue  # a mapspace block without constraints (e.g. only a template)
            targets.extend(parse_target_list(block, path, key))
    arch = data.get("architecture", data.get("arch"))
    if isinstance(arch, dict):
        if arch.get("constraints") is not None:
            found = True
            targets.extend(parse_target_list(arch["constraints"], path, "architecture.constraints"))
        if "nodes" in arch:
            from deepfrack.arch.parse import architecture_from_data

            found = True
            targets.extend(architecture_from_data(data, path).constraints.targets)
    return Constraints(tuple(targets), str(path) if path is not None else None), found


def load_constraints(*paths_or_docs: str | Path | Mapping[str, Any] | Constraints) -> Constraints:
    """Constraints from Timeloop YAML files (folders stand for their YAML files), already-parsed
    documents (mappings) or Constraints, merged in order (exact duplicates dropped).

    A file with no constraint key at all (and not a v0.4 architecture) is an InputError: it was
    probably given by mistake."""
    merged = Constraints()
    sources: list[str] = []
    for item in paths_or_docs:
        if isinstance(item, Constraints):
            merged = merged.merged(item)
            sources.append(item.source or "<constraints>")
            continue
        if isinstance(item, Mapping):
            cons, _ = constraints_from_data(dict(item), None)
            merged = merged.merged(cons)
            sources.append("<document>")
            continue
        for doc in load_documents(item):
            cons, found = constraints_from_data(doc.data, doc.path)
            if not found:
                if _is_architecture_only(doc):
                    continue
                raise InputError(
                    doc.path,
                    None,
                    "no constraints found (expected architecture_constraints, "
                    "mapspace_constraints or mapspace)",
                )
            merged = merged.merged(cons)
            sources.append(str(doc.path))
    return Constraints(merged.targets, ", ".join(sources) if sources else None)


def _is_architecture_only(doc: Document) -> bool:
    return isinstance(doc.data, dict) and bool(
        {"architecture", "arch", "compound_components", "problem", "mapper", "ERT", "mapping"}
        & doc.data.keys()
    )


# ------------------------------------------------------------------------------------------------ #
# validation against an architecture
# ------------------------------------------------------------------------------------------------ #
def check_constraints(arch: Architecture, constraints: Constraints) -> None:
    """InputError (naming the constraint's file and field) when a target is not a storage level of
    ``arch``, a spatial constraint sits on a level with no spatial fanout below it (Timeloop:
    "cannot find spatial tiling level", Constraints::FindTargetTilingLevel), or two constraints on
    one level contradict each other (a data space both kept and bypassed, a dimension bounded twice
    differently, two permutations or splits) - Timeloop's "re-specification" errors."""

    def fld(t: TargetConstraint, suffix: str) -> str:
        return f"{t.where}.{suffix}" if t.where else f"target {t.target}"

    names = arch.level_names
    all_targets = tuple(arch.constraints.targets) + tuple(
        t for t in constraints.targets if t not in arch.constraints.targets
    )
    for t in constraints.targets:
        if t.target not in names:
            raise InputError(
                t.source,
                fld(t, "target"),
                f"{t.target} is not a storage level of architecture {arch.name} (levels: {', '.join(names)})",
            )
        if t.type == "spatial":
            fx, fy = arch.fanout(t.target)
            if fx * fy <= 1:
                raise InputError(
                    t.source,
                    fld(t, "target"),
                    f"spatial constraint on {t.target}, a level with no spatial fanout below it",
                )
    by_level: dict[tuple[str, str], list[TargetConstraint]] = {}
    for t in all_targets:
        by_level.setdefault((t.target, t.type), []).append(t)
    for (level, ctype), ts in by_level.items():
        if len(ts) < 2:
            continue
        if ctype == "datatype":
            kept = {x for t in ts for x in (t.keep or ())}
            bypassed = {x for t in ts for x in (t.bypass or ())}
            clash = kept & bypassed
            if clash:
                t = [t for t in ts if set(t.bypass or ()) & clash or set(t.keep or ()) & clash][-1]
                raise InputError(
                    t.source,
                    fld(t, "keep" if set(t.keep or ()) & clash else "bypass"),
                    f"{', '.join(sorted(clash))} both kept and bypassed at {level} by different constraints",
                )
        elif ctype in ("temporal", "spatial"):
            bounds: dict[tuple[str, str], tuple[int, str | None]] = {}
            perm: tuple[str, str | None] | None = None
            split: tuple[int, str | None] | None = None
            for t in ts:
                for d, b in t.factors.items():
                    prev = bounds.get((d, b.op))
                    if prev is not None and prev[0] != b.value:
                        raise InputError(
                            t.source,
                            fld(t, "factors"),
                            f"{d}{b.op}{b.value} contradicts {d}{b.op}{prev[0]} from {prev[1]}",
                        )
                    bounds[(d, b.op)] = (b.value, t.source)
                if t.permutation is not None:
                    if perm is not None and perm[0] != t.permutation:
                        raise InputError(
                            t.source,
                            fld(t, "permutation"),
                            f"{t.permutation} contradicts {perm[0]} from {perm[1]}",
                        )
                    perm = (t.permutation, t.source)
                if t.split is not None:
                    if split is not None and split[0] != t.split:
                        raise InputError(
                            t.source, fld(t, "split"), f"{t.split} contradicts {split[0]} from {split[1]}"
                        )
                    split = (t.split, t.source)


def effective_keep(arch: Architecture, constraints: Constraints) -> dict[str, dict[str, bool | None]]:
    """{level: {tensor: keeps?}} from the architecture's own and the given datatype constraints.
    None = unconstrained (Timeloop's mapper may choose), except at the outermost level, which
    Timeloop makes keep every tensor unless told otherwise (src/mapping/constraints.cpp: the user
    bypass strings start as "XX..X1")."""
    cons = arch.constraints.merged(constraints)
    out: dict[str, dict[str, bool | None]] = {}
    for i, lv in enumerate(arch.levels):
        row: dict[str, bool | None] = {}
        for t in TENSORS:
            k = cons.keeps(lv.name, t)
            if k is None and i == 0:
                k = True
            if k is None and lv.is_dummy:
                k = False
            row[t] = k
        out[lv.name] = row
    return out


def as_yaml_data(constraints: Constraints, key: str = "architecture_constraints") -> dict[str, Any]:
    """Constraints -> a Timeloop YAML document (``{key: {targets: [...]}}``)."""
    targets = []
    for t in constraints.targets:
        d: dict[str, Any] = {"target": t.target, "type": t.type}
        if t.keep is not None:
            d["keep"] = list(t.keep)
        if t.bypass is not None:
            d["bypass"] = list(t.bypass)
        if t.factors:
            d["factors"] = " ".join(f"{k}{b.op}{b.value}" for k, b in t.factors.items())
        if t.permutation is not None:
            d["permutation"] = t.permutation
        if t.split is not None:
            d["split"] = t.split
        if t.min_utilization is not None:
            d["min"] = t.min_utilization
        d.update(t.extra)
        targets.append(d)
    return {key: {"targets": targets}}


__all__ = [
    "DIMS",
    "TENSORS",
    "as_yaml_data",
    "check_constraints",
    "constraints_from_data",
    "effective_keep",
    "load_constraints",
    "parse_factors",
    "parse_permutation",
    "parse_target",
    "parse_target_list",
]
