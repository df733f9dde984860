"""Errors that reach the user as one line (the CLI prints them and exits with code 2).

Every message is made one line of at most ``MAX_MESSAGE`` characters here, in one place: line breaks
and other control characters are escaped, and a message that is too long (usually because it shows a
long path or a bad value) has its longest words shortened with an ellipsis, then, if still too long, is
cut in the middle, so that its start (what is wrong) and its end (what to do) stay readable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: the longest message (path, field and text together) an error prints, in characters
MAX_MESSAGE = 280
#: the longest path and field shown before they are shortened
_MAX_PATH = 120
_MAX_FIELD = 80
_ELLIPSIS = "..."
#: a word (a path, an echoed value) longer than this is shortened first when a message is too long
_WORD = 40
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F) if i not in (0x09, 0x0A, 0x0D)}
_CONTROL.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x85: "\\x85", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters written as escapes."""
    return str(text).translate(_CONTROL)


def _shorten_words(text: str, limit: int) -> str:
    """``text`` with its longest words (paths, echoed values) shortened one at a time until it fits in
    ``limit`` or no word is longer than ``_WORD``: a path keeps its end (the file name), anything else
    its start and end."""
    parts = re.split(r"(\s+)", text)
    total = len(text)
    while total > limit:
        i = max(range(len(parts)), key=lambda k: len(parts[k]))
        word = parts[i]
        if len(word) <= _WORD:
            break
        short = _ELLIPSIS + word[-(_WORD - 3) :] if "/" in word else clip(word, _WORD)
        parts[i] = short
        total -= len(word) - len(short)
    return "".join(parts)


def clip(text: str, limit: int, keep_end: bool = False) -> str:
    """``text`` (made one line) shortened to at most ``limit`` characters with an ellipsis: first its
    longest words (paths, echoed values), then in the middle (two thirds of the room for the start); or
    at the start when ``keep_end`` (for a path, whose end names the file)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    room = max(limit - len(_ELLIPSIS), 2)
    if keep_end:
        return _ELLIPSIS + text[-room:]
    text = _shorten_words(text, limit) if limit > 2 * _WORD else text
    if len(text) <= limit:
        return text
    head = (2 * room) // 3
    return text[:head] + _ELLIPSIS + text[len(text) - (room - head) :]


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened with an ellipsis beyond ``limit`` characters: how a message shows a bad
    value."""
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails still gets a message
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def message_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Any error text as the one line the CLI prints."""
    return clip(text, limit)


class DeepfrackError(Exception):
    """Base class of every error deepfrack reports to the user without a traceback."""


@dataclass
class InputError(DeepfrackError):
    """Bad input: names the file and, when known, the field that is wrong.

    ``str(err)`` is the one line the CLI prints, e.g.
    ``net.yaml: layers[2].P: must be a positive integer, got -3`` (at most ``MAX_MESSAGE`` characters:
    a long path, field or message is shortened with an ellipsis).
    """

    path: str | Path | None
    field: str | None
    message: str

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.path not in (None, ""):
            parts.append(clip(str(self.path), _MAX_PATH, keep_end=True))
        if self.field not in (None, ""):
            parts.append(clip(str(self.field), _MAX_FIELD))
        room = MAX_MESSAGE - sum(len(p) + 2 for p in parts)
        parts.append(clip(str(self.message), max(room, 40)))
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
