"""Residency variants as Timeloop constraints .

The original DeepFrack ran Timeloop with seven constraint files that differ only in what DRAM keeps:
DRAM keeps the tensors that are not on chip in that variant, and bypasses the others, so that their
backing store becomes the outermost on-chip level that keeps them (their home level) and Timeloop
charges no DRAM traffic for them. :func:`variant_constraints` makes those seven sets from any one
constraint set of the architecture; :func:`load_variant_folder` reads the original's folder of seven
files (plus shared mapspace files).
"""

from __future__ import annotations

from pathlib import Path

from deepfrack.arch.constraints import check_constraints, load_constraints
from deepfrack.arch.spec import Architecture, Constraints, TargetConstraint
from deepfrack.dims import TENSORS
from deepfrack.errors import InputError
from deepfrack.files import YAML_SUFFIXES
from deepfrack.residency import VARIANTS, Variant, parse_variant


def dram_level(arch: Architecture) -> str:
    """Name of the architecture's DRAM: its outermost level, which must be a DRAM/unbounded level."""
    outer = arch.levels[0]
    if not outer.is_dram:
        raise InputError(
            arch.source,
            "architecture",
            f"the outermost level {outer.name} is not a DRAM; residency variants change what DRAM keeps",
        )
    return outer.name


def variant_constraints(constraints: Constraints, arch: Architecture, variant: Variant | str) -> Constraints:
    """``constraints`` with DRAM's keep/bypass replaced by ``variant``'s: DRAM keeps the tensors that
    are not on chip in the variant and bypasses the others; every other target is unchanged. The
    DRAM target is placed first, as in the original seven files.

    InputError when the variant puts a tensor on chip that no on-chip level keeps (it would have no
    backing store)."""

    v = parse_variant(variant) if not isinstance(variant, Variant) else variant
    dram = dram_level(arch)
    keep = v.dram_keeps
    dram_target = TargetConstraint(
        target=dram,
        type="datatype",
        keep=keep,
        bypass=tuple(t for t in TENSORS if t not in keep),
        source=f"variant {v.value}",
    )
    rest = tuple(t for t in constraints.targets if not (t.target == dram and t.type == "datatype"))
    out = Constraints((dram_target, *rest), source=f"{constraints.source or 'constraints'} [{v.value}]")
    merged = arch.constraints.merged(out)
    for tensor, on_chip in zip(TENSORS, v.on_chip):
        if not on_chip:
            continue
        homes = [
            lv.name
            for lv in arch.levels
            if not lv.is_dram and not lv.is_dummy and merged.keeps(lv.name, tensor) is not False
        ]
        if not homes:
            raise InputError(
                constraints.source,
                "datatype",
                f"variant {v.value} keeps {tensor} on chip, but no on-chip level of {arch.name} keeps "
                f"{tensor}",
            )
    return out


def all_variant_constraints(constraints: Constraints, arch: Architecture) -> dict[Variant, Constraints]:
    """The seven variants of one constraint set."""

    return {v: variant_constraints(constraints, arch, v) for v in VARIANTS}


def load_variant_folder(folder: str | Path, arch: Architecture | None = None) -> dict[Variant, Constraints]:
    """The original DeepFrack's constraints folder: seven files named after the variants
    (``SLC.yaml`` ... ``OutWCC.yaml``, case-insensitive); every other YAML file in the folder (e.g.
    ``simba_like_map_constraints.yaml``) holds constraints applied to every variant. With ``arch``,
    each variant's merged constraints are checked against it (``check_constraints``).

    InputError when the folder is missing or lacks some of the seven files."""

    d = Path(folder)
    if not d.is_dir():
        raise InputError(d, None, "not a folder (expected the seven variant constraint files)")
    files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in YAML_SUFFIXES)
    by_variant: dict[Variant, Path] = {}
    shared: list[Path] = []
    for f in files:
        try:
            v = parse_variant(f.stem)
        except ValueError:
            shared.append(f)
            continue
        if v in by_variant:
            raise InputError(
                f, None, f"a second file for variant {v.value} (the first is {by_variant[v].name})"
            )
        by_variant[v] = f
    missing = [v.value for v in VARIANTS if v not in by_variant]
    if missing:
        raise InputError(d, None, f"missing variant files: {', '.join(m + '.yaml' for m in missing)}")
    common = load_constraints(*shared) if shared else Constraints()
    out: dict[Variant, Constraints] = {}
    for v in VARIANTS:
        own = load_constraints(by_variant[v])
        merged = own.merged(common)
        merged = Constraints(merged.targets, source=str(by_variant[v]))
        if arch is not None:
            check_constraints(arch, merged)
        out[v] = merged
    return out


__all__ = ["all_variant_constraints", "dram_level", "load_variant_folder", "variant_constraints"]
