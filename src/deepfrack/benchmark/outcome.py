"""What an evaluator returns for one job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepfrack.cost.table import CostRecord

STATUSES: tuple[str, ...] = ("ok", "infeasible", "error")


@dataclass(frozen=True)
class Outcome:
    """The result of costing one job.

    * ``ok``: ``record`` holds the cost.
    * ``infeasible``: no valid mapping exists (constraints no mapping satisfies, a tile that fits no
      level, ...); ``reason`` says why. A property of the inputs: cached.
    * ``error``: the evaluator failed (an exception, a crashed binary); ``reason`` says how. Not cached,
      so a re-run retries it; written to the tables as infeasible and counted apart in the summary.

    ``shared``: work the evaluator computed for other jobs to reuse (``Job.warm``), {index: data}; not
    part of the entry's result.
    """

    status: str
    record: CostRecord | None = None
    reason: str = ""
    shared: dict[int, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown outcome status {self.status!r}")
        if (self.status == "ok") != (self.record is not None):
            raise ValueError("an outcome has a record exactly when its status is 'ok'")

    @classmethod
    def ok(cls, record: CostRecord) -> Outcome:
        return cls("ok", record)

    @classmethod
    def infeasible(cls, reason: str) -> Outcome:
        return cls("infeasible", None, reason)

    @classmethod
    def error(cls, reason: str) -> Outcome:
        return cls("error", None, reason)
