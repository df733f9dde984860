"""Errors that reach the user as one line (the CLI prints them and exits with code 2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DeepfrackError(Exception):
    """Base class of every error deepfrack reports to the user without a traceback."""


@dataclass
class InputError(DeepfrackError):
    """Bad input: names the file and, when known, the field that is wrong.

    ``str(err)`` is the one line the CLI prints, e.g.
    ``net.yaml: layers[2].P: must be a positive integer, got -3``.
    """

    path: str | Path | None
    field: str | None
    message: str

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [str(p) for p in (self.path, self.field) if p not in (None, "")]
        parts.append(self.message)
        return ": ".join(parts)


class ScheduleError(DeepfrackError):
    """A schedule that is not valid (coverage, capacity, a layer in no stack or two)."""


class MissingCostError(DeepfrackError):
    """A cost table lacks the entry (layer, variant, shape) that a computation needs. ``source`` names the
    table's file when known."""

    def __init__(
        self,
        layer: int,
        layer_name: str,
        variant: str,
        shape: tuple[int, int],
        hint: str = "",
        source: str | None = None,
    ):
        self.layer = layer
        self.variant = variant
        self.shape = shape
        msg = (
            f"no cost entry for layer {layer} ({layer_name}), variant {variant}, "
            f"tile {shape[0]}x{shape[1]} (h x w) [layer {layer + 1} in the table files' 1-based numbering]"
        )
        if source:
            msg = f"{source}: {msg}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)
