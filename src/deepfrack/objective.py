"""What to minimize: one type for the mapper (per layer tile), the search (per schedule) and the outputs.

An objective is a lexicographic list of metrics, first metric first, as Timeloop's
``optimization-metrics``:

* ``energy``: picojoules;
* ``cycles``: latency in cycles (Timeloop calls it ``delay``; ``latency`` is accepted too);
* ``edp``: energy x cycles;
* ``last-level-accesses``: words moved at the outermost storage level (the mapper only).

Metrics are compared exactly, without Timeloop's 0.1% tolerance: "fewest cycles first" means fewest
cycles. The search minimizes sums over stacks, so it takes the additive metrics (energy, cycles); a
product such as ``edp`` is not a sum over stacks and needs the search's energy-cycles front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METRICS: tuple[str, ...] = ("energy", "cycles", "edp", "last-level-accesses")
#: metrics that add up over the stacks of a schedule (and the tiles of a stack)
ADDITIVE: frozenset[str] = frozenset({"energy", "cycles"})
_ALIASES = {
    "delay": "cycles",
    "latency": "cycles",
    "last_level_accesses": "last-level-accesses",
    "energy-delay-product": "edp",
}


def canonical_metric(name: str) -> str:
    """The canonical name of a metric (``delay`` -> ``cycles``); ValueError when it is not known."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METRICS:
        raise ValueError(f"unknown objective metric {name!r}; expected one of {', '.join(METRICS)}")
    return key


@dataclass(frozen=True)
class Objective:
    """A lexicographic list of metrics to minimize, first metric first (module docstring)."""

    metrics: tuple[str, ...] = ("energy",)

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("empty objective")
        for m in self.metrics:
            if m not in METRICS:
                raise ValueError(f"unknown objective metric {m!r}; expected one of {', '.join(METRICS)}")

    @classmethod
    def parse(cls, spec: Objective | str | Sequence[str] | Any) -> Objective:
        """From a metric name, a comma-separated or listed sequence of names, an Objective, or anything
        with an ``optimization_metrics`` attribute (a mapper.yaml's settings). ValueError on an
        unknown metric."""
        if isinstance(spec, Objective):
            return spec
        if hasattr(spec, "optimization_metrics"):
            spec = spec.optimization_metrics
        names = str(spec).split(",") if isinstance(spec, str) else list(spec)
        out: list[str] = []
        for m in names:
            key = canonical_metric(m)
            if key not in out:
                out.append(key)
        return cls(tuple(out))

    @property
    def primary(self) -> str:
        """The first metric."""
        return self.metrics[0]

    @property
    def name(self) -> str:
        """The user-facing spelling: ``energy``, ``cycles`` or a comma-separated list."""
        return ",".join(self.metrics)

    @property
    def additive(self) -> bool:
        """True when every metric adds up over tiles and stacks (what the search minimizes directly)."""
        return all(m in ADDITIVE for m in self.metrics)

    def columns(
        self, energy: np.ndarray, cycles: np.ndarray, last: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """The value of each metric, in order, from energy, cycles and last-level accesses."""
        cols = []
        for m in self.metrics:
            if m == "energy":
                cols.append(energy)
            elif m == "cycles":
                cols.append(cycles)
            elif m == "edp":
                cols.append(energy * cycles)
            else:
                if last is None:
                    raise ValueError("the metric last-level-accesses needs the outermost level's accesses")
                cols.append(last)
        return cols

    def order(
        self, energy: np.ndarray, cycles: np.ndarray, last: np.ndarray | None, valid: np.ndarray
    ) -> np.ndarray:
        """Indices of candidates (1-D arrays) from best to worst; invalid ones last."""
        cols = self.columns(energy, cycles, last)
        return np.lexsort(tuple(reversed([~valid, *cols])))

    def key(self, energy: float, cycles: float, last: float | None = None) -> tuple[float, ...]:
        """The lexicographic key of one candidate (smaller is better)."""
        arr = None if last is None else np.array([last])
        return tuple(float(x[0]) for x in self.columns(np.array([energy]), np.array([cycles]), arr))

    def __str__(self) -> str:
        return self.name


ENERGY = Objective(("energy",))
CYCLES = Objective(("cycles",))
