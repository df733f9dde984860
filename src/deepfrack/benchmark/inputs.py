"""The files a benchmark reads besides the workload, read and checked once, before any work starts.

Every file is checked with ``deepfrack.arch``'s parsers (architecture, constraints against it, the
ERT's format) and kept twice: parsed into deepfrack's dataclasses (``architecture``, ``energy_table``)
for the built-in mapper, and as parsed YAML (``SourceFile``) for the Timeloop backend, which writes it
back out for ``timeloop-mapper``; cache keys hash content (not paths or formatting). The actions an
ERT lacks and a mapper.yaml's unusable settings are not errors here: the backends record the entries
they make uncostable as infeasible, with the cause (docs/benchmark.md, "Bad input").

Constraints (``--constraints DIR-or-FILE``):

* a folder holding files named after the variants (``SLC.yaml``, ``Start.yaml``, ... -- the original's
  input): each variant uses its own file; every other YAML in the folder (e.g.
  ``simba_like_map_constraints.yaml``) holds constraints applied to every variant;
* a folder without such files, or one file: constraints applied to every variant, the variants being
  made from them by changing only what DRAM keeps (docs/arch.md, "Residency variants");
* nothing: the architecture's own constraints, variants made the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfrack.arch import (
    Architecture,
    Constraints,
    EnergyTable,
    check_constraints,
    load_architecture,
    load_constraints,
    load_ert,
    variant_constraints,
)
from deepfrack.arch.parse import architecture_from_documents
from deepfrack.arch.presets import resolve_arch
from deepfrack.arch.yamlio import Document, load_yaml, underscore_keys
from deepfrack.benchmark.cache import content_hash, to_plain
from deepfrack.benchmark.mapper_config import MapperSettings, settings_from_doc
from deepfrack.errors import InputError
from deepfrack.files import yaml_files
from deepfrack.residency import VARIANTS, Variant


@dataclass(frozen=True)
class SourceFile:
    """A parsed input file (``deepfrack.arch.yamlio.load_yaml``: Timeloop v0.4 ``!Tags`` read as
    ``Tagged`` mappings). ``digest`` hashes its content (parsed, so comments and layout do not count;
    tags do)."""

    path: str
    doc: Any

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def digest(self) -> str:
        return content_hash(self.doc)


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

    architecture: the parsed architecture (``deepfrack.arch``). arch: its file. components: Accelergy
    compound-component classes. constraints: files applied to every variant. variant_files: a file per
    variant (the original's seven), when given. mapper: mapper settings (from ``mapper_file`` or
    defaults). ert: an Accelergy ERT, when given, and energy_table: it parsed. variants: the variants
    to benchmark.
    """

    architecture: Architecture
    arch: SourceFile
    components: tuple[SourceFile, ...] = ()
    constraints: tuple[SourceFile, ...] = ()
    variant_files: Mapping[Variant, SourceFile] = field(default_factory=dict)
    mapper: MapperSettings = field(default_factory=MapperSettings)
    mapper_file: SourceFile | None = None
    ert: SourceFile | None = None
    energy_table: EnergyTable | None = None
    variants: tuple[Variant, ...] = VARIANTS
    #: the constraints parsed when the files were read -- the shared files merged, and each variant's
    #: file with them -- so that no evaluator reads a file again (a cluster's workers may not see them)
    shared_constraints: Constraints = field(default_factory=Constraints)
    variant_constraint_sets: Mapping[Variant, Constraints] = field(default_factory=dict)

    @property
    def dram(self) -> str:
        """Name of the outermost storage level (the one whose keep/bypass makes the variants)."""
        return self.architecture.levels[0].name

    def files(self) -> Iterator[SourceFile]:
        yield self.arch
        yield from self.components
        yield from self.constraints
        yield from self.variant_files.values()
        if self.mapper_file is not None:
            yield self.mapper_file
        if self.ert is not None:
            yield self.ert

    def constraints_for(self, variant: Variant) -> Constraints:
        """The constraints a variant is mapped under: its own file plus the shared files when the seven
        files were given, else the shared constraints with DRAM's keep set for the variant
        (``variant_constraints``). The architecture's own constraints are merged by their users.
        DeepfrackError when the variant cannot be made (e.g. the architecture has no DRAM level)."""
        own = self.variant_constraint_sets.get(variant)
        if own is not None:
            return own
        return variant_constraints(self.shared_constraints, self.architecture, variant)

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
    on the first file that cannot be read or parsed (missing, bad YAML, not an architecture / ERT,
    constraints that do not fit the architecture), before anything is computed or written. A
    mapper.yaml whose settings are unusable is kept with ``mapper.error`` set, and an ERT that lacks
    actions as it is (``deepfrack.benchmark.energy_gaps``): the backends record the entries they make
    uncostable as infeasible, with the cause.

    ``arch``: an architecture file or a bundled accelerator's name (``deepfrack.arch.presets``), whose
    component classes and seven variant files are then the defaults of ``components`` and
    ``constraints``. ``components``: a folder of component-class YAMLs; when None, ``<arch
    folder>/components`` is used if it exists (the original's layout).
    """
    arch_p, preset_components, preset_constraints = resolve_arch(arch)
    components = preset_components if components is None else components
    constraints = preset_constraints if constraints is None else constraints
    if arch_p.is_dir():
        raise InputError(arch_p, None, "is a folder; give the architecture YAML file")
    comp_dir = Path(components) if components is not None else arch_p.parent / "components"
    if components is not None and not comp_dir.is_dir():
        raise InputError(comp_dir, None, "components folder not found")
    arch_src = SourceFile(str(arch_p), load_yaml(arch_p))
    architecture = load_architecture(arch_p, *([comp_dir] if comp_dir.is_dir() else []))
    comp_srcs = [SourceFile(str(f), load_yaml(f)) for f in yaml_files(comp_dir)] if comp_dir.is_dir() else []

    vs = tuple(v for v in VARIANTS if v in set(variants))
    shared: list[SourceFile] = []
    per_variant: dict[Variant, SourceFile] = {}
    shared_set = Constraints()
    variant_sets: dict[Variant, Constraints] = {}
    if constraints is not None:
        cp = Path(constraints)
        if cp.is_dir():
            files = yaml_files(cp)
            if not files:
                raise InputError(cp, None, "no constraint YAML files in this folder")
            vfiles, others = _variant_file_map(files)
            if vfiles:
                missing = [v.value for v in vs if v not in vfiles]
                if missing:
                    raise InputError(
                        cp,
                        None,
                        f"no constraint file for variant {missing[0]} ({missing[0]}.yaml); the folder has "
                        f"{', '.join(f.name for f in vfiles.values())}",
                    )
                per_variant = {v: SourceFile(str(vfiles[v]), load_yaml(vfiles[v])) for v in vs}
            shared = [SourceFile(str(f), load_yaml(f)) for f in others]
        elif cp.exists():
            shared = [SourceFile(str(cp), load_yaml(cp))]
        else:
            raise InputError(
                cp, None, "constraints not found (give a folder of constraint files or one file)"
            )
        # every file parses, and every variant's constraints fit the architecture
        shared_paths = [Path(c.path) for c in shared]
        shared_set = load_constraints(*shared_paths) if shared_paths else Constraints()
        variant_sets = {v: load_constraints(Path(src.path), *shared_paths) for v, src in per_variant.items()}
        for cons in variant_sets.values() if variant_sets else [shared_set]:
            check_constraints(architecture, cons)

    # a mapper.yaml or ERT that parses is taken as it is: unusable settings, and actions the ERT lacks,
    # make entries infeasible (every entry, or those whose mapping needs the action), with the cause
    settings, mapper_src = MapperSettings(), None
    if mapper is not None:
        mapper_src = SourceFile(str(mapper), load_yaml(mapper))
        settings = settings_from_doc(mapper_src.doc, mapper)

    ert_src, energy = None, None
    if ert is not None:
        ert_src = SourceFile(str(ert), load_yaml(ert))
        energy = load_ert(ert)  # InputError when it is not an ERT or an energy is not a number

    return BenchmarkInputs(
        architecture=architecture,
        arch=arch_src,
        components=tuple(comp_srcs),
        constraints=tuple(shared),
        variant_files=per_variant,
        mapper=settings,
        mapper_file=mapper_src,
        ert=ert_src,
        energy_table=energy,
        variants=vs,
        shared_constraints=shared_set,
        variant_constraint_sets=variant_sets,
    )


def with_architecture(inputs: BenchmarkInputs, doc: Any) -> BenchmarkInputs:
    """The same inputs with the architecture document replaced by ``doc`` (a changed copy of
    ``inputs.arch.doc``, e.g. ``deepfrack.arch.vary.vary_document``; no file is read or written): parsed
    with the component classes, its constraints checked again. Cache keys follow the new content.
    InputError naming the architecture file and the field when the changed document is not valid."""
    path = Path(inputs.arch.path)
    docs = [Document(path, underscore_keys(doc))]
    docs += [Document(Path(c.path), underscore_keys(c.doc)) for c in inputs.components]
    architecture = architecture_from_documents(docs, str(path))
    for cons in inputs.variant_constraint_sets.values() or [inputs.shared_constraints]:
        check_constraints(architecture, cons)
    return dataclasses.replace(inputs, architecture=architecture, arch=SourceFile(inputs.arch.path, doc))
