"""Bundled accelerators, by name: Timeloop architecture YAML, component classes and the seven
residency-variant constraint files, shipped with the package (``deepfrack/data/presets/<name>/``).

==============  ==================================================================================
name            what (files taken from)
==============  ==================================================================================
simba-like      the reference Simba of the original DeepFrack's AlexNet and VGG examples (v0.3:
                16 PEs x 8 weight buffers x 64 MACs, 16-bit words, DDR4 DRAM)
eyeriss-like    the Eyeriss-like design of Timeloop's exercises (v0.4: 14 x 12 PEs, 8-bit data,
                LPDDR4 DRAM, 65 nm), its seven variants made by DRAM keep/bypass only
gemmini-like    the Gemmini-like design of the original's GAN example (v0.3: 16 x 16 systolic
                array, 32-bit words, HBM2 DRAM)
==============  ==================================================================================

No energy table is bundled: without ``--ert`` the built-in 45 nm table prices every action, DRAM
included (the reference runs' ERTs used a 1 pJ placeholder for DRAM; docs/arch.md lists each
preset's DRAM figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS


@dataclass(frozen=True)
class Preset:
    """A bundled accelerator: its name, a one-line description and its folder (``arch.yaml``,
    ``components/`` when it has component classes, ``constraints/`` with the seven variant files)."""

    name: str
    description: str
    folder: Path

    @property
    def arch(self) -> Path:
        return self.folder / "arch.yaml"

    @property
    def components(self) -> Path | None:
        c = self.folder / "components"
        return c if c.is_dir() else None

    @property
    def constraints(self) -> Path:
        return self.folder / "constraints"


def presets_folder() -> Path:
    """Where the package keeps the presets (a real folder: deepfrack is installed unzipped)."""
    return Path(str(resources.files("deepfrack") / "data" / "presets"))


_DESCRIPTIONS = {
    "simba-like": "Simba-like (the original DeepFrack's reference): 16 PEs x 8 x 64 MACs, 16-bit, DDR4",
    "eyeriss-like": "Eyeriss-like (Timeloop exercises): 14 x 12 PEs, 8-bit, LPDDR4, 65 nm",
    "gemmini-like": "Gemmini-like (the original's GAN example): 16 x 16 systolic array, 32-bit, HBM2",
}


def presets() -> dict[str, Preset]:
    """Every bundled accelerator by name."""
    root = presets_folder()
    return {name: Preset(name, desc, root / name) for name, desc in _DESCRIPTIONS.items()}


def preset_names() -> tuple[str, ...]:
    return tuple(_DESCRIPTIONS)


def resolve_arch(spec: str | Path) -> tuple[Path, Path | None, Path | None]:
    """What the CLI's ``--arch`` names, as (architecture file, components folder, constraints folder):
    a bundled accelerator by its bare name (``simba-like``; write ``./simba-like`` for a file of that
    name) gives its three paths; a path gives (path, None, None), None meaning "the caller's default".
    An unknown bare name lists the bundled ones (InputError)."""
    s = str(spec)
    found = presets().get(s)
    if found is not None:
        return found.arch, found.components, found.constraints
    p = Path(spec)
    if not p.exists() and p.suffix == "" and p.name == s:
        raise InputError(
            s,
            None,
            f"no such file, and not a bundled accelerator (known: {', '.join(preset_names())}; "
            "deepfrack arch list)",
        )
    return p, None, None


def preset_summary(preset: Preset) -> dict[str, Any]:
    """What ``deepfrack arch list`` shows of a preset: its levels (outermost first), the home level
    and capacity (words) of each tensor under the SLC variant's keep/bypass, and the DRAM's type and
    energy per word in the built-in 45 nm table."""
    from deepfrack.arch.capacity import capacity_spec
    from deepfrack.arch.constraints import load_constraints
    from deepfrack.arch.energy import builtin_energy_table
    from deepfrack.arch.parse import load_architecture

    arch = load_architecture(preset.arch, *([preset.components] if preset.components else []))
    shared = [
        f for f in sorted(preset.constraints.glob("*.yaml")) if f.stem not in {v.value for v in VARIANTS}
    ]
    cap = capacity_spec(arch, load_constraints(preset.constraints / "SLC.yaml", *shared))
    dram = arch.levels[0]
    energy = builtin_energy_table(arch)
    per_access = energy.op_energy(dram.name, "read") or 0.0
    return {
        "name": preset.name,
        "description": preset.description,
        "levels": [lv.name for lv in arch.levels if not lv.is_dummy],
        "home": dict(cap.home),
        "capacity_words": dict(cap.words),
        "dram_type": str(dram.attributes.get("type", "LPDDR4")),
        "dram_word_bits": dram.word_bits,
        "dram_pJ_per_word": per_access / dram.block_size,
    }


__all__ = ["Preset", "preset_names", "preset_summary", "presets", "presets_folder", "resolve_arch"]
