"""The seven residency variants: where a layer-tile's Weights, Inputs and Outputs live.

The original DeepFrack's seven Timeloop constraint files differ only in what DRAM keeps. A tensor
that is "on chip" is not kept at DRAM, so its backing store is the outermost on-chip level that keeps
it (its home level).
"""

from __future__ import annotations

from enum import Enum

from deepfrack.dims import TENSORS


class Variant(str, Enum):  # noqa: UP042 -- kept as a str mix-in; __str__ below gives the bare value
    SLC = "SLC"  # single layer, layer-by-layer baseline
    Start = "Start"  # first layer of a stack
    LBLC = "LBLC"  # middle layer
    ELBLC = "ELBLC"  # last layer
    WCC = "WCC"  # middle layer, weights cached
    EWCC = "EWCC"  # last layer, weights cached
    OutWCC = "OutWCC"  # first layer, weights cached

    def __str__(self) -> str:  # "SLC", not "Variant.SLC"
        return self.value

    @property
    def on_chip(self) -> tuple[bool, bool, bool]:
        """(Weights, Inputs, Outputs) on chip."""
        return ON_CHIP[self]

    @property
    def dram_keeps(self) -> tuple[str, ...]:
        """The tensors DRAM keeps in this variant."""
        return tuple(t for t, on in zip(TENSORS, self.on_chip) if not on)


VARIANTS: tuple[Variant, ...] = tuple(Variant)

ON_CHIP: dict[Variant, tuple[bool, bool, bool]] = {
    Variant.SLC: (False, False, False),
    Variant.Start: (False, False, True),
    Variant.LBLC: (False, True, True),
    Variant.ELBLC: (False, True, False),
    Variant.WCC: (True, True, True),
    Variant.EWCC: (True, True, False),
    Variant.OutWCC: (True, False, True),
}

#: (position in stack, weights cached) -> variant, for multi-layer stacks
_BY_ROLE: dict[tuple[str, bool], Variant] = {
    ("first", False): Variant.Start,
    ("middle", False): Variant.LBLC,
    ("last", False): Variant.ELBLC,
    ("first", True): Variant.OutWCC,
    ("middle", True): Variant.WCC,
    ("last", True): Variant.EWCC,
}


def parse_variant(name: str) -> Variant:
    """Variant from its name (case-insensitive); ValueError naming the valid ones otherwise."""
    for v in VARIANTS:
        if v.value.lower() == str(name).strip().lower():
            return v
    raise ValueError(f"unknown variant {name!r}; expected one of {', '.join(v.value for v in VARIANTS)}")


def variant_for(position: str, cached: bool) -> Variant:
    """Variant of a layer in a stack.

    ``position`` is "single" (a one-layer stack: SLC), "first", "middle" or "last". ``cached`` is
    whether this tile reuses weights cached by an earlier tile (only tiles after the first).
    """
    if position == "single":
        return Variant.SLC
    return _BY_ROLE[(position, cached)]


def position_in_stack(layer: int, first: int, last: int) -> str:
    if first == last:
        return "single"
    if layer == first:
        return "first"
    if layer == last:
        return "last"
    return "middle"
