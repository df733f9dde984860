"""deepfrack's built-in 45 nm energy table, for when no Accelergy ERT is given.

Every figure below is a published number or a simple fit through published numbers; docs/arch.md
lists them with their sources and compares the result with the Accelergy/CACTI energies of the
reference Simba architecture. All energies are pJ per action: per block access (the level's full
row: word bits x block size x cluster size) for storage, per multiply-accumulate for compute.

Sources
-------
* SRAM: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm, 0.9 V: a 64-bit access to an 8 KB / 32 KB / 1 MB SRAM costs 10 / 20 / 100 pJ. We
  interpolate the energy per bit log-log between those points (slope 0.5 from 8 KB to 32 KB, the
  slope continues below 8 KB; slope log(5)/log(32) ~ 0.46 above 32 KB) and multiply by the row width.
  Write = read (Horowitz gives one access energy). The whole array counts (banking ignored).
* Registers (depth-1 storage) and the floor for tiny arrays: 0.009 pJ per bit, the Aladdin 45 nm
  register (Shao et al., ISCA 2014) as tabulated in Accelergy's library plug-in
  (Accelergy-Project/accelergy-library-plug-in, library/aladdin/aladdin_register.csv). That table
  charges reads only; deepfrack charges writes the same as reads.
* DRAM, pJ per bit (Accelergy's DRAM model, Accelergy-Project/hwcomponents-cacti
  ``DRAM.type2energy``): LPDDR4 8, HBM2 3.9 and GDDR5 14 (O'Connor et al., "Fine-grained DRAM",
  MICRO 2017), LPDDR 40 (Malladi et al., ISCA 2012), DDR3 70 (Chatterjee et al., MICRO 2017),
  HMC 4.2. DDR4 is not in that table: deepfrack uses **15 pJ/bit**, our documented choice (the
  same order as GDDR5; published DDR4 system figures range over roughly 15-25 pJ/bit). An
  architecture that names no type gets LPDDR4, Accelergy's default.
* Integer MAC: Horowitz ISSCC 2014, 45 nm: 8-bit multiply 0.2 pJ, 32-bit multiply 3.1 pJ, 8-bit add
  0.03 pJ, 32-bit add 0.1 pJ. A b-bit MAC = multiplier 0.2 x (b/8)^2 (quadratic in width; 3.2 pJ
  at 32 bits) + a 2b-bit accumulator adder 0.1 x (2b/32): 0.9 pJ at 16 bits, 0.25 pJ at 8 bits.
  A v0.4 intmac that states ``multiplier_width`` / ``adder_width`` is priced from those.
* Floating-point MAC (class name containing "fp"): Horowitz: FP16 multiply 1.1 + add 0.4 = 1.5 pJ,
  FP32 multiply 3.7 + add 0.9 = 4.6 pJ; other widths scale quadratically from the nearer one.
* Other technology nodes: dynamic energy scaled linearly with the feature size (node / 45 nm), a
  rough first-order rule; DRAM is not scaled. Leakage is not modelled (0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from deepfrack.arch.spec import ActionEnergy, Architecture, ArithmeticLevel, EnergyTable, StorageLevel
from deepfrack.errors import InputError

#: Horowitz ISSCC 2014, 45 nm: SRAM capacity in bytes -> pJ per 64-bit access
SRAM_POINTS_45NM: tuple[tuple[int, float], ...] = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
#: Aladdin 45 nm register, pJ per bit (Accelergy library plug-in)
REGISTER_PJ_PER_BIT = 0.009
#: DRAM pJ per bit by type (Accelergy's hwcomponents-cacti DRAM model; DDR4 is deepfrack's choice)
DRAM_PJ_PER_BIT: Mapping[str, float] = {
    "LPDDR4": 8.0,
    "HBM2": 3.9,
    "GDDR5": 14.0,
    "DDR4": 15.0,
    "LPDDR": 40.0,
    "DDR3": 70.0,
    "HMC": 4.2,
}
DEFAULT_DRAM_TYPE = "LPDDR4"
REFERENCE_NODE_NM = 45.0


def sram_pj_per_bit(capacity_bytes: float) -> float:
    """Energy per accessed bit of an SRAM array of ``capacity_bytes`` at 45 nm (Horowitz 2014,
    log-log interpolation; never below a register's energy per bit)."""
    if capacity_bytes <= 0:
        return REGISTER_PJ_PER_BIT
    pts = [(math.log(c), math.log(e / 64.0)) for c, e in SRAM_POINTS_45NM]
    x = math.log(capacity_bytes)
    if x <= pts[1][0]:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    else:
        (x0, y0), (x1, y1) = pts[1], pts[2]
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return max(math.exp(y), REGISTER_PJ_PER_BIT)


def int_mac_pj(bits: int) -> float:
    """A b-bit integer multiply-accumulate at 45 nm (Horowitz 2014 fit): 0.9 pJ at 16 bits."""
    return 0.2 * (bits / 8.0) ** 2 + 0.1 * (2.0 * bits / 32.0)


def fp_mac_pj(bits: int) -> float:
    """A b-bit floating-point multiply-accumulate at 45 nm (Horowitz 2014): FP16 1.5 pJ, FP32 4.6 pJ."""
    if bits <= 16:
        return 1.5 * (bits / 16.0) ** 2
    return 4.6 * (bits / 32.0) ** 2


def technology_nm(tech: Any) -> float | None:
    """ "45nm" / "45 nm" / 45 / "0.045um" -> 45.0; None when absent or not a length."""
    if tech is None or isinstance(tech, bool):
        return None
    if isinstance(tech, (int, float)):
        return float(tech) if tech > 0 else None
    m = re.fullmatch(r"\s*([0-9.]+)\s*(nm|um|u)?\s*", str(tech))
    if not m:
        return None
    v = float(m.group(1))
    if m.group(2) in ("um", "u"):
        v *= 1000.0
    return v if v > 0 else None


def _scale(tech: Any, default: float | None) -> float:
    nm = technology_nm(tech)
    if nm is None:
        nm = default
    return 1.0 if nm is None else nm / REFERENCE_NODE_NM


def _explicit_int(attrs: Mapping[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = attrs.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1:
            return int(v)
    return None


def storage_energies(lv: StorageLevel, arch: Architecture) -> tuple[float, float]:
    """(read, write) pJ per block access of one storage level."""
    width = lv.width_bits
    if lv.is_dummy:
        return 0.0, 0.0
    if lv.is_dram:
        raw = lv.attributes.get("type", DEFAULT_DRAM_TYPE)
        key = str(raw).upper().replace("-", "").replace("_", "")
        if key not in DRAM_PJ_PER_BIT:
            raise InputError(
                arch.source,
                f"{lv.name}.attributes.type",
                f"unknown DRAM type {raw!r} for the built-in energy table "
                f"(known: {', '.join(DRAM_PJ_PER_BIT)}); give an Accelergy ERT instead",
            )
        e = DRAM_PJ_PER_BIT[key] * lv.word_bits * lv.block_size
        return e, e
    scale = _scale(lv.technology, technology_nm(arch.technology))
    depth = lv.depth or 1
    if depth <= 1:
        e = REGISTER_PJ_PER_BIT * width * scale
        return e, e
    # Banking is ignored: CACTI's dynamic access energy barely changes with the bank count
    # (Accelergy-Project/hwcomponents-cacti notes the same when it interpolates CACTI results).
    capacity = depth * width / 8.0
    e = sram_pj_per_bit(capacity) * width * scale
    return e, e


def compute_energy(ar: ArithmeticLevel, arch: Architecture) -> float:
    """pJ per MAC of the arithmetic units."""
    scale = _scale(ar.technology, technology_nm(arch.technology))
    classes = " ".join(x for x in (ar.cls, ar.subclass or "") if x).lower()
    sub = arch.components.get(ar.subclass or "") or arch.components.get(ar.cls)
    if sub is not None:
        classes += " " + " ".join(c for _, c in sub.subcomponents).lower()
    if "fp" in classes:
        return fp_mac_pj(ar.word_bits) * scale
    mult = _explicit_int(ar.attributes, "multiplier_width")
    add = _explicit_int(ar.attributes, "adder_width")
    if mult is not None or add is not None:  # v0.4 intmac attributes: price the two parts apart
        m = mult or ar.word_bits
        a = add or 2 * m
        return (0.2 * (m / 8.0) ** 2 + 0.1 * (a / 32.0)) * scale
    return int_mac_pj(ar.word_bits) * scale


def builtin_energy_table(arch: Architecture) -> EnergyTable:
    """Energy per action for every level of ``arch`` from deepfrack's built-in 45 nm table (see the
    module docstring and docs/arch.md for the figures and their sources)."""
    actions: dict[str, tuple[ActionEnergy, ...]] = {}
    for lv in arch.levels:
        r, w = storage_energies(lv, arch)
        actions[lv.name] = (
            ActionEnergy("read", r),
            ActionEnergy("write", w),
            ActionEnergy("update", w),
            ActionEnergy("leak", 0.0),
        )
    ar = arch.arithmetic
    actions[ar.name] = (ActionEnergy("compute", compute_energy(ar, arch)), ActionEnergy("leak", 0.0))
    return EnergyTable(
        actions, origin="builtin:45nm (Horowitz ISSCC 2014; Accelergy DRAM and Aladdin tables)"
    )


def compare_tables(
    arch: Architecture, ours: EnergyTable, reference: EnergyTable
) -> list[tuple[str, str, float, float]]:
    """(component, op, ours, reference) for read and fill of every non-placeholder storage level and
    compute of the arithmetic units: the rows of the sanity check in docs/arch.md."""
    rows = []
    for lv in arch.levels:
        if lv.is_dummy:
            continue
        for op in ("read", "fill"):
            a, b = ours.op_energy(lv.name, op), reference.op_energy(lv.name, op)
            if a is not None and b is not None:
                rows.append((lv.name, op, a, b))
    a, b = (
        ours.op_energy(arch.arithmetic.name, "compute"),
        reference.op_energy(arch.arithmetic.name, "compute"),
    )
    if a is not None and b is not None:
        rows.append((arch.arithmetic.name, "compute", a, b))
    return rows


__all__ = [
    "DRAM_PJ_PER_BIT",
    "REGISTER_PJ_PER_BIT",
    "SRAM_POINTS_45NM",
    "builtin_energy_table",
    "compare_tables",
    "compute_energy",
    "fp_mac_pj",
    "int_mac_pj",
    "sram_pj_per_bit",
    "storage_energies",
    "technology_nm",
]
