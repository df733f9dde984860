"""The files a benchmark reads besides the workload, read and checked once, before any work starts.

Architecture, component classes, constraints, mapper settings and energy table are kept as parsed YAML
(``SourceFile``): a backend turns them into what it needs (the Timeloop backend writes them back out for
``timeloop-mapper``; the built-in mapper parses them with ``deepfrack.arch``), and the cache key hashes
their content (not their paths or formatting).

Constraints (``--constraints DIR-or-FILE``):

* a folder holding files named after the variants (``SLC.yaml``, ``Start.yaml``, ... -- the original's
  input): each variant uses its own file; every other YAML in the folder (e.g.
  ``simba_like_map_constraints.yaml``) holds constraints applied to every variant;
* a folder without such files, or one file: constraints applied to every variant, the variants being
  made from them by changing only what DRAM keeps (DESIGN.md section 2);
* nothing: the architecture's own constraints, variants made the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from deepfrack.benchmark.cache import content_hash, to_plain
from deepfrack.benchmark.mapper_config import MapperSettings, load_mapper_settings
from deepfrack.cost.variants import VARIANTS, Variant
from deepfrack.errors import InputError

YAML_SUFFIXES = (".yaml", ".yml")


# --------------------------------------------------------------------------------------------- #
# YAML that tolerates Timeloop v0.4 tags (!Component, !Container, ...)
# --------------------------------------------------------------------------------------------- #
class _TaggedLoader(yaml.SafeLoader):
    """SafeLoader that reads any ``!Tag`` node as plain data; a tagged mapping gets a ``"!"`` key with
    the tag name so that the content hash still sees it."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        data = loader.construct_mapping(node, deep=True)
        return {"!": suffix, **data}
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TaggedLoader.add_multi_constructor("!", _construct_tagged)


def read_yaml_tagged(path: str | Path) -> Any:
    """Parse a YAML file (v0.4 tags allowed); InputError naming the file (and line) otherwise."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InputError(p, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(p, None, "is a folder, expected a YAML file") from None
    except UnicodeDecodeError:
        raise InputError(p, None, "not a text file") from None
    try:
        return yaml.load(text, Loader=_TaggedLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise InputError(p, where, f"malformed YAML: {problem}") from None


@dataclass(frozen=True)
class SourceFile:
    """A parsed input file. ``digest`` hashes its content (parsed, so comments and layout do not count)."""

    path: str
    doc: Any

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def digest(self) -> str:
        return content_hash(self.doc)


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in YAML_SUFFIXES)


# --------------------------------------------------------------------------------------------- #
# a thin look at a Timeloop v0.3 architecture (component names and classes)
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class ArchComponent:
    """One ``local`` entry of a v0.3 architecture tree: name without ``[0..n]``, class, subclass."""

    name: str
    cls: str
    subclass: str | None
    path: str  # where in the file, e.g. architecture.subtree[0].local[0]

    # Timeloop decides storage vs arithmetic by a substring of the class name
    # (NVlabs/timeloop include/model/topology.hpp, bufferClasses / computeClasses).
    @property
    def is_storage(self) -> bool:
        return any(s in self.cls for s in ("DRAM", "SRAM", "regfile", "smartbuffer", "storage"))

    @property
    def is_compute(self) -> bool:
        return not self.is_storage and any(s in self.cls for s in ("mac", "compute"))


def base_name(name: str) -> str:
    """``PEWeightBuffer[0..7]`` -> ``PEWeightBuffer``; ``System.ws.PE[0..15].LMAC[0..63]`` -> ``LMAC``."""
    last = re.sub(r"\[[^\]]*\]", "", str(name)).split(".")[-1]
    return last.strip()


def arch_version(doc: Any) -> str:
    """"0.3" for a ``subtree``/``local`` tree, "0.4" for ``nodes``; InputError when it is neither."""
    arch = doc.get("architecture") if isinstance(doc, Mapping) else None
    if not isinstance(arch, Mapping):
        raise InputError(None, "architecture", "missing; expected a Timeloop architecture file")
    if "nodes" in arch:
        return "0.4"
    if "subtree" in arch or "local" in arch:
        return "0.3"
    raise InputError(None, "architecture", "has neither subtree/local (v0.3) nor nodes (v0.4)")


def arch_components(doc: Any, path: str | Path | None = None) -> list[ArchComponent]:
    """The components of a v0.3 architecture, outermost first, in file order."""
    out: list[ArchComponent] = []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, Mapping):
            raise InputError(path, where, "must be a mapping")
        local = node.get("local", [])
        if not isinstance(local, list):
            raise InputError(path, f"{where}.local", "must be a list of components")
        for i, comp in enumerate(local):
            w = f"{where}.local[{i}]"
            if not isinstance(comp, Mapping) or "name" not in comp or "class" not in comp:
                raise InputError(path, w, "a component needs a name and a class")
            out.append(ArchComponent(base_name(comp["name"]), str(comp["class"]), comp.get("subclass"), w))
        sub = node.get("subtree", [])
        if not isinstance(sub, list):
            raise InputError(path, f"{where}.subtree", "must be a list")
        for i, child in enumerate(sub):
            walk(child, f"{where}.subtree[{i}]")

    walk(doc["architecture"], "architecture")
    return out


def dram_name(doc: Any, path: str | Path | None = None) -> str:
    """Name of the outermost storage level of a v0.3 architecture (DRAM on every reference design)."""
    comps = [c for c in arch_components(doc, path) if c.is_storage]
    if not comps:
        raise InputError(path, "architecture", "has no storage level")
    drams = [c for c in comps if "DRAM" in c.cls]
    return (drams or comps)[0].name


# --------------------------------------------------------------------------------------------- #
# energy reference table checks
# --------------------------------------------------------------------------------------------- #
# Which ERT action names Timeloop uses for each access type, in priority order (NVlabs/timeloop
# include/model/topology.hpp, storageOperationMappings / arithmeticOperationMappings): a level needs one
# name from each group.
_STORAGE_ACTIONS: dict[str, tuple[str, ...]] = {
    "read": ("random_read", "read"),
    "fill": ("random_fill", "random_write", "fill", "write"),
    "update": ("random_update", "random_write", "update", "write"),
}
_COMPUTE_ACTIONS: tuple[str, ...] = ("mac_random", "mult_random", "mac", "mult", "compute")


def ert_actions(doc: Any, path: str | Path | None = None) -> dict[str, set[str]]:
    """{component base name: action names} of an Accelergy ERT (``ERT: {version, tables: [...]}``);
    InputError naming the field when the structure or an energy is wrong."""
    ert = doc.get("ERT") if isinstance(doc, Mapping) else None
    if not isinstance(ert, Mapping):
        raise InputError(path, "ERT", "missing; expected an Accelergy energy reference table (ERT: {tables: [...]})")
    tables = ert.get("tables")
    if not isinstance(tables, list):
        raise InputError(path, "ERT.tables", "missing or not a list")
    out: dict[str, set[str]] = {}
    for i, table in enumerate(tables):
        w = f"ERT.tables[{i}]"
        if not isinstance(table, Mapping) or "name" not in table:
            raise InputError(path, w, "a table needs a name and actions")
        actions = table.get("actions")
        if not isinstance(actions, list):
            raise InputError(path, f"{w}.actions", f"missing or not a list (component {table['name']})")
        names = out.setdefault(base_name(table["name"]), set())
        for j, act in enumerate(actions):
            wa = f"{w}.actions[{j}]"
            if not isinstance(act, Mapping) or "name" not in act:
                raise InputError(path, wa, "an action needs a name and an energy")
            energy = act.get("energy")
            if isinstance(energy, bool) or not isinstance(energy, (int, float)) or energy < 0:
                raise InputError(path, f"{wa}.energy", f"must be a non-negative number (pJ), got {energy!r}")
            names.add(str(act["name"]))
    return out


def check_ert(ert: SourceFile, arch: SourceFile) -> None:
    """Every storage level of the architecture has read, fill and update energies, and the compute
    unit a MAC energy, in the ERT (v0.3 architectures; a v0.4 one is left to its parser)."""
    actions = ert_actions(ert.doc, ert.path)
    if arch_version(arch.doc) != "0.3":
        return
    for comp in arch_components(arch.doc, arch.path):
        if not (comp.is_storage or comp.is_compute):
            continue
        have = actions.get(comp.name)
        if have is None:
            raise InputError(ert.path, "ERT.tables", f"no table for {comp.name} (a component of {arch.path})")
        if comp.is_storage:
            for access, names in _STORAGE_ACTIONS.items():
                if not have & set(names):
                    raise InputError(
                        ert.path, f"ERT.tables[{comp.name}]",
                        f"no {names[-1]!r} action (needed for {access}s of storage level {comp.name})",
                    )
        elif not have & set(_COMPUTE_ACTIONS):
            raise InputError(
                ert.path, f"ERT.tables[{comp.name}]",
                f"no MAC action (one of {', '.join(_COMPUTE_ACTIONS)}) for compute unit {comp.name}",
            )


# --------------------------------------------------------------------------------------------- #
# constraints
# --------------------------------------------------------------------------------------------- #
_CONSTRAINT_KEYS = ("architecture_constraints", "arch_constraints", "mapspace_constraints", "mapspace", "constraints")


def _check_constraints_doc(src: SourceFile) -> None:
    doc = src.doc
    if not isinstance(doc, Mapping) or not any(k in doc for k in _CONSTRAINT_KEYS):
        raise InputError(src.path, None, f"expected Timeloop constraints ({' / '.join(_CONSTRAINT_KEYS[:3])}: {{targets: [...]}})")
    for key in _CONSTRAINT_KEYS:
        if key not in doc:
            continue
        body = doc[key]
        targets = body.get("targets") if isinstance(body, Mapping) else body
        if not isinstance(targets, list):
            raise InputError(src.path, f"{key}.targets", "missing or not a list")
        for i, t in enumerate(targets):
            if not isinstance(t, Mapping) or "target" not in t or "type" not in t:
                raise InputError(src.path, f"{key}.targets[{i}]", "a constraint needs a target and a type")


def _variant_file_map(files: Iterable[Path]) -> tuple[dict[Variant, Path], list[Path]]:
    by_name = {v.value.lower(): v for v in VARIANTS}
    variant_files: dict[Variant, Path] = {}
    others: list[Path] = []
    for f in files:
        v = by_name.get(f.stem.lower())
        if v is None:
            others.append(f)
        else:
            variant_files[v] = f
    return variant_files, others


# --------------------------------------------------------------------------------------------- #
# the inputs
# --------------------------------------------------------------------------------------------- #
@dataclass(frozen=True)
class BenchmarkInputs:
    """Everything besides the workload that a benchmark reads, parsed.

    arch: the architecture file. components: Accelergy compound-component classes. constraints: files
    applied to every variant. variant_files: a file per variant (the original's seven), when given.
    mapper: mapper settings (from ``mapper_file`` or defaults). ert: an Accelergy ERT, when given.
    variants: the variants to benchmark.
    """

    arch: SourceFile
    components: tuple[SourceFile, ...] = ()
    constraints: tuple[SourceFile, ...] = ()
    variant_files: Mapping[Variant, SourceFile] = field(default_factory=dict)
    mapper: MapperSettings = field(default_factory=MapperSettings)
    mapper_file: SourceFile | None = None
    ert: SourceFile | None = None
    variants: tuple[Variant, ...] = VARIANTS

    def files(self) -> Iterator[SourceFile]:
        yield self.arch
        yield from self.components
        yield from self.constraints
        yield from self.variant_files.values()
        if self.mapper_file is not None:
            yield self.mapper_file
        if self.ert is not None:
            yield self.ert

    def content(self, variant: Variant) -> dict[str, Any]:
        """What a result for ``variant`` depends on among these inputs, as digests (for cache keys)."""
        vf = self.variant_files.get(variant)
        return {
            "arch": self.arch.digest,
            "components": sorted(c.digest for c in self.components),
            "constraints": sorted(c.digest for c in self.constraints),
            "variant_file": vf.digest if vf is not None else None,
            "variant": variant.value,
            "mapper": to_plain(self.mapper.optimization_metrics),
            "mapper_file": self.mapper_file.digest if self.mapper_file is not None else None,
            "ert": self.ert.digest if self.ert is not None else None,
        }


def load_inputs(
    arch: str | Path,
    components: str | Path | None = None,
    constraints: str | Path | None = None,
    mapper: str | Path | None = None,
    ert: str | Path | None = None,
    variants: Iterable[Variant] = VARIANTS,
) -> BenchmarkInputs:
    """Read and check the benchmark's inputs (module docstring); InputError naming the file and field
    on the first problem, before anything is computed or written.

    ``components``: a folder of component-class YAMLs; when None, ``<arch folder>/components`` is used
    if it exists (the original's layout).
    """
    arch_p = Path(arch)
    if arch_p.is_dir():
        raise InputError(arch_p, None, "is a folder; give the architecture YAML file")
    arch_src = SourceFile(str(arch_p), read_yaml_tagged(arch_p))
    try:
        version = arch_version(arch_src.doc)
        if version == "0.3":
            arch_components(arch_src.doc, arch_p)
    except InputError as exc:
        raise InputError(arch_p, exc.field, exc.message) from None

    comp_srcs: list[SourceFile] = []
    comp_dir = Path(components) if components is not None else arch_p.parent / "components"
    if components is not None and not comp_dir.is_dir():
        raise InputError(comp_dir, None, "components folder not found")
    if comp_dir.is_dir():
        comp_srcs = [SourceFile(str(f), read_yaml_tagged(f)) for f in _yaml_files(comp_dir)]

    vs = tuple(v for v in VARIANTS if v in set(variants))
    shared: list[SourceFile] = []
    per_variant: dict[Variant, SourceFile] = {}
    if constraints is not None:
        cp = Path(constraints)
        if cp.is_dir():
            files = _yaml_files(cp)
            if not files:
                raise InputError(cp, None, "no constraint YAML files in this folder")
            vfiles, others = _variant_file_map(files)
            if vfiles:
                missing = [v.value for v in vs if v not in vfiles]
                if missing:
                    raise InputError(
                        cp, None, f"no constraint file for variant {missing[0]} ({missing[0]}.yaml); the folder has "
                        f"{', '.join(f.name for f in vfiles.values())}"
                    )
                per_variant = {v: SourceFile(str(vfiles[v]), read_yaml_tagged(vfiles[v])) for v in vs}
            shared = [SourceFile(str(f), read_yaml_tagged(f)) for f in others]
        elif cp.exists():
            shared = [SourceFile(str(cp), read_yaml_tagged(cp))]
        else:
            raise InputError(cp, None, "constraints not found (give a folder of constraint files or one file)")
        for src in list(per_variant.values()) + shared:
            _check_constraints_doc(src)

    settings = load_mapper_settings(mapper)
    mapper_src = SourceFile(str(mapper), read_yaml_tagged(mapper)) if mapper is not None else None

    ert_src = None
    if ert is not None:
        ert_src = SourceFile(str(ert), read_yaml_tagged(ert))
        check_ert(ert_src, arch_src)

    return BenchmarkInputs(
        arch=arch_src,
        components=tuple(comp_srcs),
        constraints=tuple(shared),
        variant_files=per_variant,
        mapper=settings,
        mapper_file=mapper_src,
        ert=ert_src,
        variants=vs,
    )
