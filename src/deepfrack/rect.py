"""Axis-aligned rectangles on a feature-map plane: rows run along the height (Q), columns along the
width (P)."""

from __future__ import annotations

from typing import NamedTuple


class Rect(NamedTuple):
    """Rows ``[row, row + h)`` and columns ``[col, col + w)`` of a plane. Plain data; JSON form
    ``[row, col, h, w]``."""

    row: int
    col: int
    h: int
    w: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.h, self.w)

    @property
    def area(self) -> int:
        return self.h * self.w

    @property
    def row_end(self) -> int:
        return self.row + self.h

    @property
    def col_end(self) -> int:
        return self.col + self.w

    def contains(self, other: Rect) -> bool:
        return (
            self.row <= other.row
            and self.col <= other.col
            and other.row_end <= self.row_end
            and other.col_end <= self.col_end
        )

    def as_list(self) -> list[int]:
        return [self.row, self.col, self.h, self.w]
