"""A test double for the benchmark's backend seam: deterministic made-up costs, never shipped.

Selected with ``--backend tests.benchmark.fake_backend:make`` (or built directly). Its behaviour comes
from environment variables read when the backend is made (so spawned workers see the same values):

* ``FAKE_DELAY``: seconds to sleep per job (to interrupt a run mid-way);
* ``FAKE_WEIGHT_CAPACITY``: the weight-cached variants (OutWCC, WCC, EWCC) are infeasible for layers with
  more weights than this;
* ``FAKE_FAIL``: jobs whose ``describe()`` contains this text raise (an evaluator crash);
* ``FAKE_PID_LOG``: a file to which every evaluator appends its process id (to check workers are gone);
* ``FAKE_HOLD_LAYER``: jobs of this layer index sleep for ten minutes, so that a run is surely still going
  when a test interrupts it (the runner orders batches by layer: the layers before it finish first).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepfrack.benchmark.cache import content_hash
from deepfrack.benchmark.inputs import BenchmarkInputs
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.cost.table import CostRecord
from deepfrack.residency import VARIANTS, Variant
from deepfrack.workload.layer import Layer

FAKE_VERSION = 1


def fake_energy_pJ(job: Job) -> float:
    """Made-up but deterministic: MACs x (2 + variant index / 10) pJ + 1.5 pJ per output word."""
    v = VARIANTS.index(job.variant)
    return job.layer.macs_for(job.tile_h, job.tile_w) * (2.0 + v / 10) + 1.5 * job.layer.output_words(
        job.tile_h, job.tile_w
    )


@dataclass(frozen=True)
class FakeBackend:
    inputs_digest: dict
    delay_s: float = 0.0
    weight_capacity: int | None = None
    fail: str | None = None
    pid_log: str | None = None
    hold_layer: int | None = None
    name: str = "fake"
    batch_size: int | None = None

    def fingerprint(self, variant: Variant) -> str:
        return content_hash(
            {"fake": FAKE_VERSION, "inputs": self.inputs_digest[variant.value], "cap": self.weight_capacity}
        )

    def entry_bounds(self) -> FakeBounds:
        return FakeBounds()

    def evaluator(self) -> FakeEvaluator:
        if self.pid_log:
            with open(self.pid_log, "a") as f:
                f.write(f"{os.getpid()}\n")
        return FakeEvaluator(self)


class FakeBounds:
    """Lower bounds of the made-up costs (for the on-demand search): 2 pJ per MAC + 1.5 pJ per output
    word, and MACs / 64 cycles."""

    def grids(self, layer: Layer, variant: Variant, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = np.arange(rows + 1)[:, None], np.arange(cols + 1)[None, :]
        macs = layer.macs_for(1, 1) * h * w
        return 2.0 * macs + 1.5 * layer.output_words(1, 1) * h * w, macs / 64.0


class FakeEvaluator:
    def __init__(self, backend: FakeBackend):
        self.backend = backend
        self.calls = 0

    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        self.calls += 1
        out = []
        for job in jobs:
            if self.backend.delay_s:
                time.sleep(self.backend.delay_s)
            if self.backend.hold_layer is not None and job.layer_index == self.backend.hold_layer:
                time.sleep(600)
            if self.backend.fail and self.backend.fail in job.describe():
                raise RuntimeError(f"fake crash on {job.describe()}")
            cap = self.backend.weight_capacity
            if cap is not None and job.variant.on_chip[0] and job.layer.weights > cap:
                out.append(Outcome.infeasible(f"{job.layer.weights} weight words do not fit {cap} on chip"))
                continue
            e = fake_energy_pJ(job)
            macs = job.layer.macs_for(job.tile_h, job.tile_w)
            out.append(
                Outcome.ok(
                    CostRecord(
                        energy_pJ=e,
                        cycles=float(macs // 64 + 1),
                        macs=macs,
                        level_energy_pJ={"MAC": e * 0.75, "DRAM": e * 0.25},
                        mapping=[
                            {
                                "target": "DRAM",
                                "type": "temporal",
                                "factors": {"P": job.tile_w, "Q": job.tile_h},
                            }
                        ],
                    )
                )
            )
        return out


def make(inputs: BenchmarkInputs) -> FakeBackend:
    cap = os.environ.get("FAKE_WEIGHT_CAPACITY")
    return FakeBackend(
        inputs_digest={v.value: inputs.content(v) for v in VARIANTS},
        delay_s=float(os.environ.get("FAKE_DELAY", "0") or 0),
        weight_capacity=int(cap) if cap else None,
        fail=os.environ.get("FAKE_FAIL") or None,
        pid_log=os.environ.get("FAKE_PID_LOG") or None,
        hold_layer=int(os.environ["FAKE_HOLD_LAYER"]) if os.environ.get("FAKE_HOLD_LAYER") else None,
    )
