"""The built-in backend (``deepfrack benchmark --backend builtin``): deepfrack's mapper over the
Timeloop-equivalent model, no binary needed.

Per worker process, one :class:`~deepfrack.cost.mapper.LayerMapper` per layer problem maps every
job: all residency variants of a tile in one search (their constraint sets differ only in what DRAM
keeps), warm-started from a fixed ladder of square tiles, memoized, so the other variants' jobs of a
tile cost nothing more. Energy per action from ``--ert`` (an Accelergy ERT) or, without one, the
built-in 45 nm table (``deepfrack.arch.builtin_energy_table``); actions the table lacks make infeasible
exactly the entries whose mapping performs one (``energy_gaps``). The objective is ``--mapper``'s
``optimization-metrics`` (default [energy, delay]); the CLI notes the Timeloop-only options it ignores;
a mapper.yaml whose settings are unusable makes every entry infeasible, with the cause.

Variants: the original's folder of seven constraint files (plus shared mapspace files), or the
variants made from one constraint set (or the architecture's own) by changing only DRAM's keep
(``deepfrack.arch.variant_constraints``). A variant that cannot exist on the architecture (it keeps a
tensor on chip that no on-chip level keeps) is infeasible for every entry, with the reason.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from deepfrack.arch import builtin_energy_table
from deepfrack.arch.spec import Constraints
from deepfrack.benchmark import energy_gaps
from deepfrack.benchmark.cache import content_hash, problem_json
from deepfrack.benchmark.inputs import BenchmarkInputs
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.mapper_config import DEFAULT_METRICS
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.provenance import code_digest
from deepfrack.cost.bounds import EntryBounds
from deepfrack.cost.mapper import LayerMapper, MapperOptions, ladder_from_plain, ladder_to_plain, ladder_uses
from deepfrack.cost.model import default_rules
from deepfrack.errors import DeepfrackError
from deepfrack.objective import Objective
from deepfrack.residency import Variant
from deepfrack.workload.layer import Layer

#: the modules whose code determines the built-in backend's results (with what they import from the
#: model packages: the mapper, mapspace, fast and full models, analytic and nest analyses, Timeloop's
#: post-processing, the architecture, constraint and energy parsers; see ``provenance``)
CODE_ROOTS: tuple[str, ...] = (
    "deepfrack.benchmark.builtin",
    "deepfrack.benchmark.inputs",
    "deepfrack.benchmark.mapper_config",
    "deepfrack.benchmark.energy_gaps",
    "deepfrack.cost.mapper",
    "deepfrack.arch.energy",
)


def builtin_code_digest() -> str:
    """The package version and a hash of the code that computes the built-in backend's results."""
    return code_digest(CODE_ROOTS)


@dataclass(frozen=True)
class BuiltinBackend:
    """Picklable recipe of the built-in backend (see the module docstring). ``code``: the digest of the
    code that computes its results (``builtin_code_digest``), part of every fingerprint, so that the
    shared cache never returns what other code computed."""

    inputs: BenchmarkInputs
    seed: int = 0
    name: str = "builtin"
    batch_size: int | None = 224  # ~32 tile shapes x 7 variants: a worker maps runs of shapes of one layer
    code: str = field(default_factory=builtin_code_digest)

    def fingerprint(self, variant: Variant) -> str:
        return content_hash(
            {
                "backend": "builtin",
                "code": self.code,
                "seed": self.seed,
                "inputs": self.inputs.content(variant),
                "energy": "ert" if self.inputs.energy_table is not None else "builtin-45nm",
            }
        )

    def evaluator(self) -> BuiltinEvaluator:
        return BuiltinEvaluator(self)

    # ---- warm starts (``backend.WarmStarts``): the mapper's ladder, once per layer problem ----------
    @functools.cached_property
    def _ladder_digest(self) -> str:
        """What every variant's results depend on (the ladder is searched for all of them at once)."""
        return content_hash({"ladder": [self.fingerprint(v) for v in self.inputs.variants]})

    def warm_plan(self, job: Job) -> tuple[str, tuple[int, ...]] | None:
        if self.inputs.mapper.error is not None:
            return None
        return _ladder_group(self._ladder_digest, problem_json(job)), ladder_uses(job.tile_h, job.tile_w)

    def warm_key(self, group: str, index: int) -> str:
        return f"ladder:{group}:{index}"

    def entry_bounds(self) -> EntryBounds:
        """Lower bounds of every entry's energy and cycles under these inputs (``deepfrack.cost.bounds``)."""
        ev = self.evaluator()
        return EntryBounds(self.inputs.architecture, ev.energy, ev.sets, ev.options.rules)


@functools.lru_cache(maxsize=4096)
def _ladder_group(digest: str, problem: str) -> str:
    return content_hash({"ladder": digest, "problem": problem})


def make_builtin_backend(inputs: BenchmarkInputs, seed: int = 0) -> BuiltinBackend:
    """The built-in backend for these inputs (they are checked when read)."""
    if inputs.mapper.error is None:
        Objective.parse(inputs.mapper.optimization_metrics)  # every metric known
    return BuiltinBackend(inputs=inputs, seed=seed)


@dataclass
class BuiltinEvaluator:
    """Maps jobs with one LayerMapper per layer problem (kept between batches: warm starts)."""

    backend: BuiltinBackend
    mappers: dict[Layer, LayerMapper] = field(default_factory=dict)

    def __post_init__(self) -> None:
        inputs = self.backend.inputs
        arch = inputs.architecture
        energy = inputs.energy_table if inputs.energy_table is not None else builtin_energy_table(arch)
        rules = default_rules(arch)
        # actions the table lacks: 0 pJ placeholders for the search, then the entries whose mapping
        # performs one are infeasible (energy_gaps)
        self.gaps = energy_gaps.missing_actions(
            energy, arch, rules, inputs.ert.path if inputs.ert is not None else None
        )
        self.energy = energy_gaps.complete(energy, self.gaps, rules)
        self.broken = f"unusable mapper settings: {inputs.mapper.error}" if inputs.mapper.error else None
        self.sets: dict[str, Constraints] = {}
        self.unavailable: dict[str, str] = {}
        for v in inputs.variants:
            try:
                self.sets[v.value] = inputs.constraints_for(v)
            except DeepfrackError as exc:
                self.unavailable[v.value] = str(exc)
        metrics = inputs.mapper.optimization_metrics if self.broken is None else DEFAULT_METRICS
        self.options = MapperOptions(objective=Objective.parse(metrics), seed=self.backend.seed, rules=rules)

    def _mapper(self, layer: Layer) -> LayerMapper:
        key = dataclasses.replace(layer, name="", P=1, Q=1, pad=(0, 0, 0, 0))
        lm = self.mappers.get(key)
        if lm is None:
            lm = self.mappers[key] = LayerMapper(
                self.backend.inputs.architecture, self.energy, key, self.sets, self.options
            )
        return lm

    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        self._map_together(jobs)
        return [self._one(job) if job.warm is None else self._warmed(job) for job in jobs]

    def _map_together(self, jobs: Sequence[Job]) -> None:
        """Map the tiles of a batch layer problem by layer problem, side by side
        (``LayerMapper.map_many``: the same results as one by one, in fewer model calls); the jobs
        then read them from the mappers' memos. A layer the mapper cannot cost is left to its jobs,
        which say why."""
        if not self.sets or self.broken is not None:
            return
        tiles: dict[LayerMapper, list[tuple[int, int]]] = {}
        for job in jobs:
            lm = self._mapper(job.layer)
            if job.warm is not None:
                lm.add_ladder({i: ladder_from_plain(doc) for i, doc in job.warm.given.items()})
            tiles.setdefault(lm, []).append((job.tile_h, job.tile_w))
        for lm, hw in tiles.items():
            try:
                lm.map_many(hw)
            except DeepfrackError:
                continue

    def _warmed(self, job: Job) -> Outcome:
        """A job with ladder rungs computed elsewhere (``Job.warm``), and asked maybe to return the
        layer problem's ladder up to a rung."""
        assert job.warm is not None
        if not self.sets or self.broken is not None:
            return self._one(job)
        lm = self._mapper(job.layer)
        lm.add_ladder({i: ladder_from_plain(doc) for i, doc in job.warm.given.items()})
        outcome = self._one(job)
        if job.warm.compute_to is None:
            return outcome
        try:
            ladder = lm.ladder(job.warm.compute_to)
        except DeepfrackError:  # a layer the mapper cannot cost: its jobs say why
            return outcome
        return dataclasses.replace(outcome, shared={i: ladder_to_plain(r) for i, r in ladder.items()})

    def _one(self, job: Job) -> Outcome:
        """The outcome of one job."""
        v = job.variant.value
        if self.broken is not None:
            return Outcome.infeasible(self.broken)
        if v in self.unavailable:
            return Outcome.infeasible(self.unavailable[v])
        if not self.sets:
            return Outcome.infeasible("no variant can exist on this architecture")
        try:
            res = self._mapper(job.layer).map(job.tile_h, job.tile_w)[v]
        except DeepfrackError as exc:  # bad input that concerns this entry (e.g. a layer kind): not the run
            return Outcome.infeasible(str(exc))
        if not res.ok:
            return Outcome.infeasible(res.reason)
        record = res.to_record()
        used = energy_gaps.needed(record, self.gaps)
        return Outcome.infeasible(energy_gaps.reason(used)) if used else Outcome.ok(record)


__all__ = ["CODE_ROOTS", "BuiltinBackend", "BuiltinEvaluator", "builtin_code_digest", "make_builtin_backend"]
