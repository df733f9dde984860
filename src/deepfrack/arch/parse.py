"""Timeloop architecture YAML (v0.3 ``subtree``/``local`` trees and v0.4 ``nodes`` with tags) ->
:class:`~deepfrack.arch.spec.Architecture`, storage levels outermost (DRAM) first.

The rules follow Timeloop's own parser; the places are cited where each rule is applied:

* v0.3 tree walk: NVlabs/timeloop src/model/topology.cpp, ``Topology::ParseTreeSpecs``: one
  ``subtree`` per level, the instance count of ``name[a..b]`` (b - a + 1, ``config::parseElementSize``
  in src/compound-config/compound-config.cpp) multiplied down the tree, components classified by
  substrings of their ``class`` (``isBufferClass``/``isComputeClass``, include/model/topology.hpp),
  and the level list ordered so that within a ``local`` list the first entry is the outermost.
* per-level specs: src/model/buffer.cpp, ``BufferLevel::ParseSpecs`` (word bits, block and cluster
  size, size, bandwidths, banks, ports, multiple buffering) and ``BufferLevel::ValidateTopology``
  (meshX/meshY defaults); src/model/arithmetic.cpp, ``ArithmeticUnits::ParseSpecs``.
* v0.4: Accelergy-Project/timeloop-python, pytimeloop/timeloopfe/common/version_transpilers/
  v4_to_v3.py (``transpile``: the mesh is multiplied after each container or component with a
  spatial fanout, a ``inter_<name>_spatial`` placeholder level is inserted for every such fanout,
  container attributes are inherited by the components below them) and
  pytimeloop/timeloopfe/v4/processors/dataspace2branch.py (each branch of a ``!Parallel`` bypasses
  the data spaces its peers keep).

Attribute inheritance: v0.4 components inherit every attribute of the containers above them (as
timeloopfe does). In v0.3 the enclosing subtrees' attributes are inherited as Accelergy does, but
Timeloop's C++ parser reads only a component's own attributes; so for the fields Timeloop reads
(sizes, block/cluster size, mesh, instances, bandwidths, banks, ports) only the component's own
attributes count, while word bits (word_bits/word_width/datawidth) and the technology also come from
enclosing subtrees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfrack.arch.constraints import Names, parse_target
from deepfrack.arch.expressions import evaluate_expression
from deepfrack.arch.spec import (
    Architecture,
    ArithmeticLevel,
    ComponentClass,
    Constraints,
    FactorBound,
    StorageLevel,
    TargetConstraint,
)
from deepfrack.arch.yamlio import Document, Tagged, load_documents, underscore_keys
from deepfrack.dims import TENSORS
from deepfrack.errors import InputError, shown

# include/model/topology.hpp: bufferClasses / computeClasses / networkClasses (substring match)
BUFFER_CLASSES = ("DRAM", "SRAM", "regfile", "smartbuffer", "storage")
COMPUTE_CLASSES = ("mac", "intmac", "fpmac", "compute")
NETWORK_CLASSES = ("XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast")

V04_TAGS = ("Container", "Component", "Hierarchical", "Parallel", "Pipelined", "Nothing")

_NAME_RE = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[\s*(\d+)\s*\.\.\s*(\d+)\s*\])?\s*$")

_WORD_BITS_KEYS = ("word_bits", "word_width", "datawidth")
_NOT_INHERITED = frozenset({"meshX", "meshY", "instances"})
_ARITH_WORD_BITS_KEYS = ("word_bits", "datawidth")


# ------------------------------------------------------------------------------------------------ #
# small helpers
# ------------------------------------------------------------------------------------------------ #
def classify(cls: str) -> str:
    """ "buffer", "compute", "network" or "other" by Timeloop's substring rule (buffer first)."""
    for kind, subs in (
        ("buffer", BUFFER_CLASSES),
        ("compute", COMPUTE_CLASSES),
        ("network", NETWORK_CLASSES),
    ):
        if any(s in cls for s in subs):
            return kind
    return "other"


def split_name(raw: Any, path: Path | None, field: str) -> tuple[str, int]:
    """``PE[0..15]`` -> ("PE", 16); ``GlobalBuffer`` -> ("GlobalBuffer", 1)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(path, field, f"expected a component name, got {raw!r}")
    m = _NAME_RE.match(raw)
    if not m:
        raise InputError(path, field, f"malformed name {raw!r} (write name or name[first..last])")
    base, a, b = m.group(1), m.group(2), m.group(3)
    if a is None:
        return base, 1
    lo, hi = int(a), int(b)
    if hi < lo:
        raise InputError(path, field, f"empty range in {raw!r}")
    return base, hi - lo + 1


#: the most instances of one level (counts multiply down the tree) and the largest other size, in the
#: attributes' own units (words, bits, blocks, words per cycle): beyond them a file is surely mistyped
MAX_INSTANCES = 1 << 24
MAX_SIZE = 1 << 48


class _Attrs:
    """Attribute lookup for one component: own attributes first, then inherited ones (only for the
    keys allowed to inherit), with errors naming the file and field."""

    def __init__(
        self,
        own: Mapping[str, Any],
        inherited: Mapping[str, Any],
        inherit_all: bool,
        symbols: Mapping[str, Any],
        path: Path | None,
        field: str,
    ):
        self.own = dict(own)
        self.inherited = dict(inherited)
        self.inherit_all = inherit_all
        self.symbols = {**inherited, **own, **symbols}
        self.path = path
        self.field = field

    def raw(self, *keys: str, inherit: bool = False) -> tuple[str, Any] | None:
        for k in keys:
            if k in self.own and self.own[k] is not None:
                return k, self.own[k]
        if inherit or self.inherit_all:
            for k in keys:
                if k in self.inherited and self.inherited[k] is not None:
                    return k, self.inherited[k]
        return None

    def num(
        self,
        *keys: str,
        inherit: bool = False,
        integer: bool = True,
        positive: bool = True,
        allow_zero: bool = False,
    ) -> float | int | None:
        found = self.raw(*keys, inherit=inherit)
        if found is None:
            return None
        k, v = found
        x = evaluate_expression(v, self.symbols, self.path, f"{self.field}.attributes.{k}")
        if integer:
            if int(x) != x:
                raise InputError(
                    self.path, f"{self.field}.attributes.{k}", f"expected an integer, got {shown(v)}"
                )
            x = int(x)
        if positive and (x < 0 or (x == 0 and not allow_zero)):
            raise InputError(self.path, f"{self.field}.attributes.{k}", f"must be positive, got {shown(v)}")
        limit = MAX_INSTANCES if k in ("instances", "meshX", "meshY") else MAX_SIZE
        if abs(x) > limit:
            raise InputError(
                self.path, f"{self.field}.attributes.{k}", f"{x:,} is more than deepfrack handles ({limit:,})"
            )
        return x


def _mesh(
    instances: int, mesh_x: int | None, mesh_y: int | None, path: Path | None, field: str
) -> tuple[int, int]:
    """meshX/meshY as BufferLevel::ValidateTopology (src/model/buffer.cpp) derives them from the
    instance count: both given -> must multiply to it; one given -> must divide it, the other is
    the quotient; none -> meshX = instances, meshY = 1."""
    if mesh_x is not None and mesh_y is not None:
        if mesh_x * mesh_y != instances:
            raise InputError(
                path,
                f"{field}.attributes.meshX",
                f"meshX x meshY = {mesh_x} x {mesh_y} != {instances} instances",
            )
        return mesh_x, mesh_y
    if mesh_x is not None:
        if instances % mesh_x:
            raise InputError(
                path, f"{field}.attributes.meshX", f"meshX {mesh_x} does not divide {instances} instances"
            )
        return mesh_x, instances // mesh_x
    if mesh_y is not None:
        if instances % mesh_y:
            raise InputError(
                path, f"{field}.attributes.meshY", f"meshY {mesh_y} does not divide {instances} instances"
            )
        return instances // mesh_y, mesh_y
    return instances, 1


def _attributes(node: Mapping[str, Any], path: Path | None, field: str) -> dict[str, Any]:
    a = node.get("attributes")
    if a is None:
        return {}
    if not isinstance(a, dict):
        raise InputError(path, f"{field}.attributes", f"expected a mapping, got {type(a).__name__}")
    return dict(a)


def _technology(attrs: _Attrs, defaults: Mapping[str, Any]) -> str | None:
    found = attrs.raw("technology", inherit=True)
    v = found[1] if found else defaults.get("technology")
    return None if v is None else str(v)


def _storage_level(
    name: str,
    cls: str,
    subclass: str | None,
    instances: int,
    attrs: _Attrs,
    class_defaults: Mapping[str, Any],
    hier_path: str,
    v04: bool,
    mesh: tuple[int, int] | None = None,
) -> StorageLevel:
    """One storage level, following BufferLevel::ParseSpecs (src/model/buffer.cpp)."""
    path, field = attrs.path, attrs.field
    word_bits = attrs.num(*_WORD_BITS_KEYS, inherit=True) or 16  # Specs::kDefaultWordBits = 16
    block_spec = attrs.num("block_size", "n_words")
    cluster_spec = attrs.num("cluster_size")
    if v04 and cluster_spec is None and block_spec is None:
        cluster_spec = 1  # timeloopfe StorageAttributes default cluster_size: 1
    width = attrs.num("width", "memory_width", "data_storage_width")
    block = block_spec or 1
    cluster = cluster_spec or 1
    if width is not None:
        if width % (word_bits * block):
            raise InputError(
                path,
                f"{field}.attributes.width",
                f"width {width} is not a multiple of word bits {word_bits} x block size {block}",
            )
        if block_spec is not None and cluster_spec is not None:
            if block_spec * word_bits * cluster_spec != width:
                raise InputError(
                    path,
                    f"{field}.attributes",
                    f"block size {block_spec} x word bits {word_bits} x cluster size {cluster_spec} "
                    f"!= width {width}",
                )
        elif cluster_spec is not None:
            if width % (cluster_spec * word_bits):
                raise InputError(
                    path,
                    f"{field}.attributes.cluster_size",
                    f"width {width} is not a multiple of cluster size {cluster_spec} x word bits {word_bits}",
                )
            block = width // cluster_spec // word_bits
        elif block_spec is not None:
            cluster = width // (word_bits * block_spec)
        else:
            block, cluster = width // word_bits, 1
        if block < 1:
            raise InputError(
                path, f"{field}.attributes.width", f"width {width} holds no word of {word_bits} bits"
            )
    entries = attrs.num("entries")
    depth = attrs.num("depth", "memory_depth", "data_storage_depth")
    size_kb = attrs.num("sizeKB", integer=False)
    if entries is None and depth is None and size_kb is not None:
        entries = int(size_kb * 1024 * 8 // word_bits)
    if depth is None and entries is not None:
        depth = -(-entries // block)
    read_bw = attrs.num("read_bandwidth", integer=False)
    write_bw = attrs.num("write_bandwidth", integer=False)
    shared_bw = attrs.num("shared_bandwidth", integer=False)
    old_bw = attrs.num("bandwidth", integer=False)
    if old_bw is not None:  # deprecated: read = write = bandwidth / 2 (buffer.cpp)
        read_bw = read_bw if read_bw is not None else old_bw / 2
        write_bw = write_bw if write_bw is not None else old_bw / 2
    mb = attrs.num("multiple_buffering", integer=False)
    n_banks = attrs.num("num_banks", "n_banks") or 2
    ports = attrs.num("num_ports", "n_ports") or 2
    inst = attrs.num("instances")
    if inst is not None:
        instances = inst
    if mesh is None:
        mesh = _mesh(instances, attrs.num("meshX"), attrs.num("meshY"), path, field)
    merged = {**class_defaults, **attrs.inherited, **attrs.own}
    return StorageLevel(
        name=name,
        cls=cls,
        instances=instances,
        mesh_x=mesh[0],
        mesh_y=mesh[1],
        word_bits=word_bits,
        block_size=block,
        depth=depth,
        cluster_size=cluster,
        n_banks=n_banks,
        num_ports=ports,
        read_bandwidth=read_bw,
        write_bandwidth=write_bw,
        shared_bandwidth=shared_bw,
        multiple_buffering=1.0 if mb is None else float(mb),
        subclass=subclass,
        attributes=merged,
        entries=entries,
        technology=_technology(attrs, class_defaults),
        path=hier_path,
    )


def _arithmetic(
    name: str,
    cls: str,
    subclass: str | None,
    instances: int,
    attrs: _Attrs,
    class_defaults: Mapping[str, Any],
    hier_path: str,
    mesh: tuple[int, int] | None = None,
) -> ArithmeticLevel:
    """The compute level, following ArithmeticUnits::ParseSpecs (src/model/arithmetic.cpp)."""
    word_bits = attrs.num(*_ARITH_WORD_BITS_KEYS, inherit=True) or 16
    inst = attrs.num("instances")
    if inst is not None:
        instances = inst
    if mesh is None:
        mesh = _mesh(instances, attrs.num("meshX"), attrs.num("meshY"), attrs.path, attrs.field)
    return ArithmeticLevel(
        name=name,
        cls=cls,
        instances=instances,
        mesh_x=mesh[0],
        mesh_y=mesh[1],
        word_bits=word_bits,
        subclass=subclass,
        attributes={**class_defaults, **attrs.inherited, **attrs.own},
        technology=_technology(attrs, class_defaults),
        path=hier_path,
    )


def _claim_name(names: dict[str, str], name: str, path: Path | None, field: str) -> None:
    """InputError when a second level (or the compute unit) takes a name already used: constraints,
    mappings and energy tables name levels, so two levels of one name would make them ambiguous."""
    if name in names:
        raise InputError(path, field, f"a second level named {shown(name, 40)} (the first is {names[name]})")
    names[name] = field


def _class_of(node: Mapping[str, Any], path: Path | None, field: str) -> tuple[str, str | None]:
    cls = node.get("class")
    if not isinstance(cls, str) or not cls:
        raise InputError(path, f"{field}.class", f"missing or not a string: {cls!r}")
    sub = node.get("subclass")
    if sub is not None and not isinstance(sub, str):
        raise InputError(path, f"{field}.subclass", f"expected a class name, got {sub!r}")
    return cls, sub


def _defaults_for(cls: str, sub: str | None, classes: Mapping[str, ComponentClass]) -> Mapping[str, Any]:
    c = classes.get(sub or "") or classes.get(cls)
    return c.attributes if c else {}


# ------------------------------------------------------------------------------------------------ #
# compound components
# ------------------------------------------------------------------------------------------------ #
def component_classes(data: Mapping[str, Any], path: Path | None) -> dict[str, ComponentClass]:
    """The compound-component classes of one document (``compound_components: {classes: [...]}``)."""
    block = data.get("compound_components")
    if block is None:
        return {}
    classes = block.get("classes") if isinstance(block, dict) else block
    if not isinstance(classes, list):
        raise InputError(path, "compound_components.classes", "expected a list of classes")
    out: dict[str, ComponentClass] = {}
    for i, c in enumerate(classes):
        field = f"compound_components.classes[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise InputError(path, f"{field}.name", "each class needs a name")
        attrs = {
            k: v
            for k, v in (c.get("attributes") or {}).items()
            if not (isinstance(v, str) and v.strip().lower() == "must_specify")
        }
        subs = tuple(
            (str(s.get("name")), str(s.get("class")))
            for s in (c.get("subcomponents") or [])
            if isinstance(s, dict)
        )
        acts = tuple(str(a.get("name")) for a in (c.get("actions") or []) if isinstance(a, dict))
        out[c["name"]] = ComponentClass(c["name"], attrs, subs, acts, str(path) if path else None)
    return out


# ------------------------------------------------------------------------------------------------ #
# v0.3
# ------------------------------------------------------------------------------------------------ #
def _arch_v03(
    arch: Mapping[str, Any],
    path: Path | None,
    classes: Mapping[str, ComponentClass],
    variables: Mapping[str, Any],
    problem_names: Names,
) -> Architecture:
    levels: list[StorageLevel] = []
    names: dict[str, str] = {}
    arithmetic: ArithmeticLevel | None = None
    inherited: dict[str, Any] = {}
    mult = 1
    hier: list[str] = []
    node: Mapping[str, Any] = arch
    field = "architecture"
    top_name: str | None = None
    top_tech: str | None = None
    while True:
        if node is not arch:
            # topology is per component (a subtree's meshX is not its children's)
            inherited.update(
                {k: v for k, v in _attributes(node, path, field).items() if k not in _NOT_INHERITED}
            )
        if top_tech is None and "technology" in inherited:
            top_tech = str(inherited["technology"])
        local = node.get("local")
        if local is not None:
            if not isinstance(local, list):
                raise InputError(path, f"{field}.local", "expected a list of components")
            for j, comp in enumerate(local):
                cf = f"{field}.local[{j}]"
                if not isinstance(comp, dict):
                    raise InputError(path, cf, "expected a mapping with name, class and attributes")
                base, count = split_name(comp.get("name"), path, f"{cf}.name")
                cls, sub = _class_of(comp, path, cf)
                kind = classify(cls)
                if kind in ("network", "other"):
                    continue  # Timeloop ignores components of unknown classes; networks are not modelled here
                attrs = _Attrs(_attributes(comp, path, cf), inherited, False, variables, path, cf)
                hp = ".".join([*hier, str(comp["name"]).strip()])
                defaults = _defaults_for(cls, sub, classes)
                _claim_name(names, base, path, f"{cf}.name")
                if kind == "buffer":
                    levels.append(
                        _storage_level(base, cls, sub, mult * count, attrs, defaults, hp, v04=False)
                    )
                else:
                    if arithmetic is not None:
                        raise InputError(
                            path,
                            f"{cf}.name",
                            f"second compute component {base!r} (already have {arithmetic.name!r})",
                        )
                    arithmetic = _arithmetic(base, cls, sub, mult * count, attrs, defaults, hp)
        sub_trees = node.get("subtree")
        if not sub_trees:
            break
        if not isinstance(sub_trees, list) or len(sub_trees) != 1:
            raise InputError(
                path,
                f"{field}.subtree",
                "Timeloop supports exactly one subtree per level (src/model/topology.cpp)",
            )
        node = sub_trees[0]
        field = f"{field}.subtree[0]"
        if not isinstance(node, dict):
            raise InputError(path, field, "expected a mapping with name, attributes, local and subtree")
        base, count = split_name(node.get("name"), path, f"{field}.name")
        if top_name is None:
            top_name = base
        mult *= count
        hier.append(str(node["name"]).strip())
    if arithmetic is None:
        raise InputError(path, "architecture", "no compute component (class mac, intmac, fpmac or compute)")
    if not levels:
        raise InputError(
            path, "architecture", "no storage level (class DRAM, SRAM, regfile, smartbuffer or storage)"
        )
    cons: tuple[TargetConstraint, ...] = ()
    if arch.get("constraints") is not None:
        from deepfrack.arch.constraints import parse_target_list

        cons = parse_target_list(arch["constraints"], path, "architecture.constraints", problem_names)
    return Architecture(
        name=top_name or (path.stem if path else "architecture"),
        levels=tuple(levels),
        arithmetic=arithmetic,
        version=str(arch.get("version", "0.3")),
        source=str(path) if path else None,
        constraints=Constraints(cons, str(path) if path else None),
        components=dict(classes),
        technology=top_tech,
    )


# ------------------------------------------------------------------------------------------------ #
# v0.4
# ------------------------------------------------------------------------------------------------ #
def _v04_flatten(nodes: Any, path: Path | None, field: str, parallel: bool, out: list, groups: list) -> None:
    """Depth-first list of (node, field, in_parallel) with tags checked; ``groups`` collects every
    !Parallel as a list of its children's leaf lists (for the data-space rule)."""
    if not isinstance(nodes, list):
        raise InputError(path, field, "expected a list of nodes")
    for i, n in enumerate(nodes):
        f = f"{field}[{i}]"
        if not isinstance(n, Tagged):
            raise InputError(
                path,
                f,
                "v0.4 nodes need a tag (!Container, !Component, !Parallel, !Hierarchical, "
                "!Pipelined or !Nothing)",
            )
        if n.tag not in V04_TAGS:
            raise InputError(
                path, f, f"unknown YAML tag !{n.tag} (expected one of {', '.join('!' + t for t in V04_TAGS)})"
            )
        if n.tag in ("Hierarchical", "Parallel", "Pipelined"):
            children = n.get("nodes", [])
            if n.tag == "Parallel":
                branch_lists: list[list] = []
                for j, child in enumerate(children if isinstance(children, list) else []):
                    sub: list = []
                    _v04_flatten([child], path, f"{f}.nodes[{j}]", True, sub, groups)
                    branch_lists.append(sub)
                    out.extend(sub)
                groups.append((f, branch_lists))
            else:
                _v04_flatten(children, path, f"{f}.nodes", parallel, out, groups)
        else:
            out.append((n, f, parallel))


def _node_constraints(
    node: Mapping[str, Any],
    target: str,
    path: Path | None,
    field: str,
    skip_spatial: bool,
    names: Names,
) -> list[TargetConstraint]:
    block = node.get("constraints")
    if block is None:
        return []
    if not isinstance(block, dict):
        raise InputError(path, f"{field}.constraints", "expected a mapping (dataspace, temporal, spatial)")
    out: list[TargetConstraint] = []
    for kind, body in block.items():
        if kind == "spatial" and skip_spatial:
            continue
        if body is None or body == {}:
            continue
        if not isinstance(body, dict):
            raise InputError(path, f"{field}.constraints.{kind}", "expected a mapping")
        item = dict(body)
        item.setdefault("type", kind)
        item.setdefault("target", target)
        out.extend(parse_target(item, path, f"{field}.constraints.{kind}", names=names))
    return out


def _kept_dataspaces(
    node: Mapping[str, Any], path: Path | None, field: str, tensors: tuple[str, ...] = TENSORS
) -> set[str]:
    """The data spaces a v0.4 node's ``constraints.dataspace.keep`` names (checked: mappings and a list
    of data-space names)."""
    block = node.get("constraints")
    if block is None:
        return set()
    if not isinstance(block, dict):
        raise InputError(path, f"{field}.constraints", "expected a mapping (dataspace, temporal, spatial)")
    ds = block.get("dataspace")
    if ds is None:
        return set()
    if not isinstance(ds, dict):
        raise InputError(path, f"{field}.constraints.dataspace", "expected a mapping (keep, bypass)")
    keep = ds.get("keep") or []
    if isinstance(keep, str):
        keep = [keep]
    if not isinstance(keep, list) or any(t not in tensors for t in keep):
        raise InputError(
            path,
            f"{field}.constraints.dataspace.keep",
            f"expected a list of {', '.join(tensors)}, got {shown(keep)}",
        )
    return set(keep)


def _dummy_constraints(
    name: str, path: Path | None, spatial: list[TargetConstraint], names: Names
) -> list[TargetConstraint]:
    """The constraints timeloopfe gives a placeholder level (v4/constraints.py ``dummy_constraints``):
    no temporal loops (every factor 1), bypass every data space; plus the container's spatial ones."""
    src = str(path) if path else None
    ones = {d: FactorBound("=", 1) for d in names.dims}
    perm = "".join(names.dims)
    return [
        TargetConstraint(target=name, type="temporal", factors=ones, permutation=perm, source=src),
        TargetConstraint(target=name, type="datatype", keep=(), bypass=names.tensors, source=src),
        *[
            TargetConstraint(
                target=name,
                type="spatial",
                factors=t.factors,
                permutation=t.permutation,
                split=t.split,
                source=t.source,
                extra=t.extra,
                where=t.where,
            )
            for t in spatial
        ],
    ]


def _arch_v04(
    arch: Mapping[str, Any],
    path: Path | None,
    classes: Mapping[str, ComponentClass],
    variables: Mapping[str, Any],
    problem_names: Names,
) -> Architecture:
    dims, tensors = problem_names.dims, problem_names.tensors
    flat: list[tuple[Tagged, str, bool]] = []
    groups: list = []
    _v04_flatten(arch.get("nodes"), path, "architecture.nodes", False, flat, groups)

    # data spaces of a !Parallel: each branch bypasses what its peers keep (dataspace2branch.py)
    extra_bypass: dict[int, set[str]] = {}
    for gfield, branches in groups:
        keeps: list[set[str]] = []
        for b in branches:
            k: set[str] = set()
            for n, nf, _ in b:
                k.update(_kept_dataspaces(n, path, nf, tensors))
            keeps.append(k)
        for i in range(len(keeps)):
            for j in range(i + 1, len(keeps)):
                shared = keeps[i] & keeps[j]
                if shared:
                    raise InputError(
                        path,
                        gfield,
                        f"data spaces {sorted(shared)} are kept in two branches of one "
                        "!Parallel; each can be kept in only one",
                    )
        missing = set(tensors) - set().union(*keeps) if keeps else set()
        if missing:
            raise InputError(
                path,
                gfield,
                f"no branch of this !Parallel keeps {sorted(missing)}; add a "
                "'!Nothing {constraints: {dataspace: {keep: [...]}}}' branch",
            )
        for b, k in zip(branches, keeps):
            for n, _, _ in b:
                extra_bypass.setdefault(id(n), set()).update(set(tensors) - k)

    levels: list[StorageLevel] = []
    names: dict[str, str] = {}
    arithmetic: ArithmeticLevel | None = None
    constraints: list[TargetConstraint] = []
    arch_attrs: dict[str, Any] = {}
    mesh_x = mesh_y = 1
    next_x = next_y = 1
    top_name: str | None = None
    prefix = ""
    first = True
    symbols = dict(variables)
    for node, field, in_parallel in flat:
        mesh_x, mesh_y = mesh_x * next_x, mesh_y * next_y
        next_x = next_y = 1
        if node.tag == "Nothing" or node.get("enabled", True) is False:
            continue
        is_container = node.tag == "Container"
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(path, f"{field}.name", f"missing or not a string: {name!r}")
        own = _attributes(node, path, field)
        if is_container:
            arch_attrs.update(own)
            if first:
                top_name, prefix = name, f"{name}_top_level"
        first = False
        spatial = node.get("spatial") or {}
        if not isinstance(spatial, dict):
            raise InputError(path, f"{field}.spatial", "expected a mapping {meshX, meshY}")
        sa = _Attrs(spatial, {}, False, symbols, path, f"{field}.spatial")
        sx = sa.num("meshX") or 1
        sy = sa.num("meshY") or 1
        has_fanout = sx * sy != 1
        to_place: list[tuple[str, Any]] = []
        if is_container or has_fanout:
            if in_parallel:
                raise InputError(
                    path,
                    field,
                    "containers and components with a spatial fanout cannot sit under a !Parallel",
                )
            next_x, next_y = next_x * sx, next_y * sy
            if has_fanout:
                to_place.append(("dummy", None))
            if not is_container:
                to_place.append(("node", node))
        else:
            to_place.append(("node", node))
        for kind, n in to_place:
            count = mesh_x * mesh_y
            if kind == "dummy":
                dname = f"inter_{name}_spatial"
                spatial_c = _node_constraints(
                    {"constraints": {"spatial": (node.get("constraints") or {}).get("spatial")}},
                    dname,
                    path,
                    field,
                    skip_spatial=False,
                    names=Names(dims, tensors, symbols),
                )
                dattrs = _Attrs(
                    {"width": 1, "depth": 1, "datawidth": 1, "technology": -1},
                    {},
                    False,
                    symbols,
                    path,
                    field,
                )
                _claim_name(names, dname, path, f"{field}.name")
                levels.append(
                    _storage_level(
                        dname,
                        "dummy_storage",
                        None,
                        count,
                        dattrs,
                        {},
                        f"{prefix}.{dname}[1..{count}]",
                        v04=True,
                        mesh=(mesh_x, mesh_y),
                    )
                )
                constraints.extend(_dummy_constraints(dname, path, spatial_c, Names(dims, tensors)))
            else:
                cls, sub = _class_of(n, path, field)
                kindc = classify(cls)
                inherited = {k: v for k, v in arch_attrs.items() if k not in _NOT_INHERITED}
                attrs = _Attrs(
                    {k: v for k, v in own.items() if k not in ("meshX", "meshY")},
                    inherited,
                    True,
                    symbols,
                    path,
                    field,
                )
                hp = f"{prefix}.{name}[1..{count}]"
                defaults = _defaults_for(cls, sub, classes)
                if kindc in ("buffer", "compute"):
                    _claim_name(names, name, path, f"{field}.name")
                if kindc == "buffer":
                    levels.append(
                        _storage_level(
                            name, cls, sub, count, attrs, defaults, hp, v04=True, mesh=(mesh_x, mesh_y)
                        )
                    )
                elif kindc == "compute":
                    if arithmetic is not None:
                        raise InputError(path, f"{field}.name", f"second compute component {name!r}")
                    arithmetic = _arithmetic(
                        name, cls, sub, count, attrs, defaults, hp, mesh=(mesh_x, mesh_y)
                    )
                elif kindc == "network":
                    continue
                else:
                    raise InputError(
                        path,
                        f"{field}.class",
                        f"unknown component class {cls!r} (its name must "
                        f"contain one of {', '.join(BUFFER_CLASSES + COMPUTE_CLASSES)})",
                    )
                cs = _node_constraints(
                    n, name, path, field, skip_spatial=has_fanout, names=Names(dims, tensors, symbols)
                )
                add = extra_bypass.get(id(n))
                if add:
                    cs = _with_bypass(cs, name, add, path, tensors)
                constraints.extend(cs)
            mesh_x, mesh_y = mesh_x * next_x, mesh_y * next_y
            next_x = next_y = 1
    if arithmetic is None:
        raise InputError(
            path, "architecture.nodes", "no compute component (class mac, intmac, fpmac or compute)"
        )
    if not levels:
        raise InputError(path, "architecture.nodes", "no storage level")
    tech = arch_attrs.get("technology", variables.get("technology"))
    return Architecture(
        name=top_name or (path.stem if path else "architecture"),
        levels=tuple(levels),
        arithmetic=arithmetic,
        version=str(arch.get("version", "0.4")),
        source=str(path) if path else None,
        constraints=Constraints(tuple(constraints), str(path) if path else None),
        components=dict(classes),
        technology=None if tech is None else str(tech),
    )


def _with_bypass(
    cs: list[TargetConstraint], name: str, add: set[str], path: Path | None, tensors: tuple[str, ...]
) -> list[TargetConstraint]:
    out = []
    done = False
    for t in cs:
        if t.type == "datatype" and not done:
            keep = set(t.keep or ())
            byp = (set(t.bypass or ()) | add) - keep
            out.append(
                TargetConstraint(
                    target=t.target,
                    type=t.type,
                    keep=t.keep,
                    bypass=tuple(x for x in tensors if x in byp),
                    source=t.source,
                    extra=t.extra,
                    where=t.where,
                )
            )
            done = True
        else:
            out.append(t)
    if not done:
        out.append(
            TargetConstraint(
                target=name,
                type="datatype",
                keep=(),
                bypass=tuple(x for x in tensors if x in add),
                source=str(path) if path else None,
            )
        )
    return out


# ------------------------------------------------------------------------------------------------ #
# entry points
# ------------------------------------------------------------------------------------------------ #
def architecture_from_data(
    data: Mapping[str, Any],
    path: str | Path | None = None,
    classes: Mapping[str, ComponentClass] | None = None,
    problem_names: Names | None = None,
) -> Architecture:
    """Architecture from one parsed document (a mapping with ``architecture`` or ``arch``).
    ``problem_names``: the dimensions and data spaces its constraints may name (by default the CNN
    layer's)."""
    problem_names = problem_names or Names()
    p = Path(path) if path is not None else None
    data = underscore_keys(dict(data))
    arch = data.get("architecture", data.get("arch"))
    if not isinstance(arch, dict):
        raise InputError(
            p, "architecture", "missing: expected 'architecture:' with 'subtree' (v0.3) or 'nodes' (v0.4)"
        )
    cls = dict(component_classes(data, p))
    if classes:
        cls.update(classes)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        variables = {}
    if "nodes" in arch:
        return _arch_v04(arch, p, cls, variables, problem_names)
    if "subtree" in arch or "local" in arch:
        return _arch_v03(arch, p, cls, variables, problem_names)
    if "storage" in arch or "arithmetic" in arch:
        raise InputError(
            p,
            "architecture",
            "the pre-v0.3 storage/arithmetic format is not supported; use v0.3 "
            "(subtree/local) or v0.4 (nodes)",
        )
    raise InputError(p, "architecture", "expected 'subtree' (v0.3) or 'nodes' (v0.4)")


def load_architecture(*paths: str | Path) -> Architecture:
    """Architecture from Timeloop YAML files merged as Timeloop merges its inputs: the architecture
    file plus any compound-component class files (a folder stands for its YAML files, e.g.
    ``arch/components``). Other documents (problem, mapping, ERT, constraints) are ignored.

    InputError when no file or more than one file defines an architecture, on an unknown v0.4 tag,
    and on inconsistent attributes (naming file and field)."""
    if not paths:
        raise InputError(None, "architecture", "no architecture file given")
    return architecture_from_documents(load_documents(*paths), ", ".join(str(p) for p in paths))


def architecture_from_documents(docs: Sequence[Document], label: str | None = None) -> Architecture:
    """Architecture from parsed documents (``load_documents``; e.g. an architecture document changed in
    memory, with its component-class files) by the rules of ``load_architecture``. ``label``: what the
    documents came from, for the error when none defines an architecture."""
    arch_docs: list[Document] = []
    classes: dict[str, ComponentClass] = {}
    for d in docs:
        if not isinstance(d.data, dict):
            continue
        if "architecture" in d.data or "arch" in d.data:
            arch_docs.append(d)
        classes.update(component_classes(d.data, d.path))
    if not arch_docs:
        where = label if label is not None else ", ".join(str(d.path) for d in docs)
        raise InputError(where, "architecture", "no file defines an architecture")
    if len(arch_docs) > 1:
        raise InputError(
            arch_docs[1].path, "architecture", f"a second architecture (the first is in {arch_docs[0].path})"
        )
    d = arch_docs[0]
    for other in docs:
        if other is not d and isinstance(other.data, dict) and "variables" in other.data:
            merged = dict(d.data)
            merged.setdefault("variables", {})
            merged["variables"] = {**other.data["variables"], **merged["variables"]}
            d = Document(d.path, merged)
    return architecture_from_data(d.data, d.path, classes)


__all__ = [
    "BUFFER_CLASSES",
    "COMPUTE_CLASSES",
    "architecture_from_data",
    "architecture_from_documents",
    "classify",
    "component_classes",
    "load_architecture",
    "split_name",
]
