"""Progress as plain lines, for when stderr is not a terminal (a log file, a pipe, a batch job): a bar
cannot redraw there, so long work prints one line every few seconds instead -- and nothing at all when it
finishes sooner."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: seconds between two progress lines
EVERY_S = 5.0


class ProgressLines:
    """``update(done, total)`` prints ``<what>: <done>/<total> <unit> (<pct>%), <s> s, about <s> s left``
    at most once every ``every`` seconds (default ``EVERY_S``), the first time ``every`` seconds after the
    start."""

    def __init__(
        self,
        what: str,
        unit: str = "",
        every: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what = what
        self.unit = unit
        self.every = EVERY_S if every is None else every
        self.stream = stream
        self.clock = clock
        self.start = clock()
        self.last = self.start

    def update(self, done: int, total: int | None) -> None:
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        unit = f" {self.unit}" if self.unit else ""
        if total:
            share = min(done / total, 1.0)
            left = f", about {elapsed * (1 - share) / share:.0f} s left" if share > 0 else ""
            text = f"{self.what}: {done:,}/{total:,}{unit} ({100 * share:.0f}%), {elapsed:.0f} s{left}"
        else:
            text = f"{self.what}: {done:,}{unit}, {elapsed:.0f} s"
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()
