"""deepfrack from Python: the whole job as keyword-only functions that return plain data.

    import deepfrack

    result = deepfrack.run(workload="examples/networks/alexnet.yaml", arch="arch.yaml",
                           constraints="constraints/", out="out/alexnet")
    result.schedule.total.energy_uJ, result.schedule.reduction

* ``run``: search, costing entries as the search needs them (what ``deepfrack run`` does);
* ``benchmark``: cost tables for every (layer, residency variant, tile shape) of a shape set;
* ``optimize``: the best fused schedule from cost tables; ``evaluate``: cost and check a given one;
* ``write_outputs``: the files of a result (schedule.json, deepfrack.log, the statistics and report of
  ``deepfrack.stats``, and the tables when the result benchmarked them), all or nothing;
* ``stats``: the statistics and report of a schedule.json and its tables;
* ``sweep``: ``run`` for several networks at every point of a grid of architecture variations
  (``deepfrack.arch.vary``), one result cache shared by all, and the sweep's CSV, picture and report.

Inputs are paths, names (a network of the zoo: ``workload="resnet50"`` with ``input_size=(h, w)``; a
bundled accelerator: ``arch="simba-like"``), or already loaded objects (a ``Network``, a ``CostTable``,
``BenchmarkInputs``).
Bad input raises ``deepfrack.errors.InputError`` naming the file and the field; a run whose benchmark
could not cost some entries raises ``EntriesFailed``. Nothing here prints: progress bars, when asked
for, go to stderr; notes for the user are ``DeepfrackNote`` warnings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from deepfrack.arch import CapacitySpec, builtin_energy_table, capacity_spec
from deepfrack.arch.presets import resolve_arch
from deepfrack.arch.vary import Variation, parse_variation, sweep_points, vary_document
from deepfrack.benchmark.backend import Backend, resolve_backend
from deepfrack.benchmark.cache import ResultCache, default_cache_path, job_key
from deepfrack.benchmark.executors import Executor, make_executor
from deepfrack.benchmark.inputs import BenchmarkInputs, load_inputs, with_architecture
from deepfrack.benchmark.jobs import SHAPE_SETS, check_layers, enumerate_jobs
from deepfrack.benchmark.runner import BenchmarkResult, BenchmarkSession, run_benchmark
from deepfrack.benchmark.runner import write_outputs as write_table_files
from deepfrack.benchmark.tables_io import check_table, read_tables
from deepfrack.cost.table import CostTable
from deepfrack.errors import DeepfrackError, InputError, ScheduleError
from deepfrack.files import check_output_folder, output_folder, read_json
from deepfrack.objective import ENERGY, Objective
from deepfrack.residency import VARIANTS, Variant, parse_variant
from deepfrack.search import evaluate as evaluate_schedule
from deepfrack.search import layer_by_layer_records
from deepfrack.search import optimize as search_schedule
from deepfrack.search.ondemand import optimize_on_demand
from deepfrack.search.pareto import Front, choose, evaluated_front
from deepfrack.search.receptive import RULES
from deepfrack.search.required import required_shapes
from deepfrack.search.schedule import Schedule, SearchStats
from deepfrack.search.schedule_io import read_stack_specs, schedule_to_json
from deepfrack.search.source import BenchmarkSource, CostingFailed
from deepfrack.stats.report import render_log
from deepfrack.workload.layer import Network
from deepfrack.workload.loaders import ChainWarning, resolve_workload
from deepfrack.workload.zoo import ZOO

if TYPE_CHECKING:  # matplotlib and jinja2 only when a sweep runs
    from deepfrack.stats.sweep import CacheUse, SweepRow

PathLike = str | Path
Capacity = Literal["arch", "unlimited"] | CapacitySpec
#: progress of the search: called with (stacks done, stacks in all)
SearchProgress = Callable[[int, int], None]


class DeepfrackNote(UserWarning):
    """Something the user should know that is not a problem (the CLI prints it as a note)."""


class EntriesFailed(DeepfrackError):
    """The benchmark could not cost some entries (their evaluator failed; they were not cached, so the
    same call retries them). ``result`` holds what was costed."""

    def __init__(self, result: BenchmarkResult):
        self.result = result
        super().__init__(
            f"{result.summary.failed} benchmark entries failed (not cached); run the same command again "
            "to retry them"
        )


@dataclass(frozen=True)
class FrontOptions:
    """The energy-cycles front (docs/search.md, "Energy and cycles together"). ``pareto``: write
    pareto.csv and pareto.png; ``schedules``: and every point's schedule (pareto/point-NNN.json);
    ``epsilon``: thin the front (every exact point within a factor 1 + epsilon of a point kept; 0: exact);
    ``max_cycles`` / ``max_energy_uJ``: the best point by the objective that meets them."""

    pareto: bool = False
    schedules: bool = False
    epsilon: float = 0.0
    max_cycles: float | None = None
    max_energy_uJ: float | None = None

    def used(self, objective: Objective) -> bool:
        """Whether the schedule comes from the front: for a front's files, a budget, or an objective that
        is not one additive metric (edp, or a lexicographic pair)."""
        budgets = self.max_cycles is not None or self.max_energy_uJ is not None
        single = len(objective.metrics) == 1 and objective.additive
        return self.pareto or self.schedules or budgets or not single

    def check(self, objective: Objective) -> None:
        """InputError for what the front cannot give."""
        if "last-level-accesses" in objective.metrics:
            raise InputError(None, "objective", "the search minimizes energy, cycles or edp")
        for name in ("epsilon", "max_cycles", "max_energy_uJ"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not (v >= 0 and math.isfinite(v)):
                raise InputError(None, name, f"must be a finite number >= 0, got {v!r}")


class BudgetNotMet(DeepfrackError):
    """No schedule of the front meets the budgets: ``closest`` is the point nearest to them (the least
    relative excess), as a result (nothing is written). ``budgets``: the arguments that set them (e.g.
    ``max_cycles``) and their values; ``nearest``: the closest point in words. The message names the
    arguments; ``describe`` names them as a caller spells them (the CLI: its options)."""

    def __init__(self, budgets: Mapping[str, float], nearest: str, closest: RunResult):
        self.budgets = dict(budgets)
        self.nearest = nearest
        self.closest = closest
        super().__init__(self.describe(lambda k, v: f"{k}={v:g}"))

    def describe(self, spell: Callable[[str, float], str]) -> str:
        asked = " and ".join(spell(k, v) for k, v in self.budgets.items())
        return f"no schedule meets {asked}; the closest: {self.nearest}"


@dataclass(frozen=True)
class RunResult:
    """A schedule and everything it was made from.

    ``inputs``: what the run was given (schedule.json's ``inputs``). ``search``: what the search looked
    at (None for ``evaluate``). ``benchmark``: the benchmark's outcomes and summary when this run costed
    the tables (``run``), else None. ``notes``: lines for the log (e.g. layers that do not chain).
    """

    network: Network
    schedule: Schedule
    table: CostTable
    inputs: dict[str, Any]
    search: SearchStats | None = None
    benchmark: BenchmarkResult | None = None
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    outputs: tuple[Path, ...] = field(default=())
    #: the energy-cycles front the schedule was picked from (``FrontOptions``), and what to write of it
    front: Front | None = None
    front_options: FrontOptions | None = None

    @property
    def log(self) -> str:
        """The text of deepfrack.log."""
        baseline = [r.energy_pJ for r in layer_by_layer_records(self.network, self.table)]
        return render_log(
            self.schedule, self.network, self.inputs, self.search, self.elapsed_s, baseline, self.notes
        )


# --------------------------------------------------------------------------------------------- #
# inputs
# --------------------------------------------------------------------------------------------- #
def load_network(
    workload: PathLike | Network, input_size: tuple[int, int] | None = None
) -> tuple[Network, list[str]]:
    """The network -- a zoo name, a network YAML, an ONNX model or a folder of problem files
    (``resolve_workload``; ``input_size`` (height, width) for a zoo network or an ONNX model) -- and the
    text of its chain warnings (consecutive problem files that do not chain)."""
    if isinstance(workload, Network):
        if input_size is not None:
            raise InputError(None, "input_size", "applies to a workload given by name or file")
        return workload, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ChainWarning)
        network = resolve_workload(workload, input_size)
    chain = [str(w.message) for w in caught if issubclass(w.category, ChainWarning)]
    for w in caught:  # anything else is reported as usual
        if not issubclass(w.category, ChainWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return network, chain


def chain_notes(chain_warnings: Sequence[str], rule: str) -> list[str]:
    """The workload's chain warnings for the log, with what they mean under the rule in use."""
    if rule == "exact":
        advice = (
            "under the exact rule no stack spans those pairs; give a network YAML with padding and pooling, "
            "or use the legacy receptive-field rule to fuse them as the original DeepFrack did"
        )
    else:
        advice = (
            "the legacy rule fuses them anyway, as the original DeepFrack did: its tiles ignore padding "
            "and pooling"
        )
    return [f"{w} {advice}" for w in chain_warnings]


def _inputs(
    arch: PathLike | BenchmarkInputs,
    components: PathLike | None,
    constraints: PathLike | None,
    mapper: PathLike | None = None,
    ert: PathLike | None = None,
    variants: Iterable[Variant] = VARIANTS,
) -> BenchmarkInputs:
    if isinstance(arch, BenchmarkInputs):
        return arch
    return load_inputs(arch, components, constraints, mapper, ert, variants)


def capacity_of(inputs: BenchmarkInputs) -> CapacitySpec:
    """Home levels and capacities from the architecture and its on-chip keep/bypass: the SLC variant's
    file when the seven files are given (plus the shared files), else the shared constraints, else the
    architecture's own constraints."""
    if not (inputs.constraints or inputs.variant_files or inputs.architecture.constraints.targets):
        raise InputError(
            inputs.arch.path,
            "constraints",
            "the architecture carries no constraints: give constraints (keep/bypass per level), or turn "
            "the capacity check off (unlimited capacity)",
        )
    return capacity_spec(inputs.architecture, inputs.constraints_for(Variant.SLC))


def _capacity(
    capacity: Capacity,
    arch: PathLike | BenchmarkInputs | None,
    components: PathLike | None,
    constraints: PathLike | None,
) -> CapacitySpec | None:
    if isinstance(capacity, CapacitySpec):
        return capacity
    if capacity == "unlimited":
        return None
    if capacity != "arch":
        raise InputError(None, "capacity", f"must be 'arch' or 'unlimited', got {capacity!r}")
    if arch is None:
        raise InputError(
            None,
            "arch",
            "give the architecture (and its constraints) for the capacity check, or turn it off "
            "(unlimited capacity)",
        )
    return capacity_of(_inputs(arch, components, constraints, variants=(Variant.SLC,)))


def _abs(p: PathLike | None) -> str | None:
    return None if p is None else str(Path(p).resolve())


def _source(obj: Any) -> str | None:
    """The path an input came from: a path as given, or a loaded object's ``source``."""
    if obj is None or isinstance(obj, str | Path):
        return _abs(obj)
    if isinstance(obj, BenchmarkInputs):
        return _abs(obj.arch.path)
    src = getattr(obj, "source", None)
    return None if src is None else str(src)


def inputs_record(
    *,
    workload: Any,
    tables: Any,
    arch: Any,
    components: PathLike | None,
    constraints: PathLike | None,
    capacity: CapacitySpec | None,
    ert: PathLike | None = None,
    mapper: PathLike | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What a run was given, for schedule.json: always the same keys, absolute paths (None when not
    given; the components folder also when it was found beside the architecture), the capacity per
    home level or "unlimited", then any call-specific entries. A bundled accelerator's name is recorded as
    its files, a zoo network's as its name."""
    if isinstance(arch, str | Path):  # a preset's name: its files (load_inputs' defaults)
        arch, preset_components, preset_constraints = resolve_arch(arch)
        components = preset_components if components is None else components
        constraints = preset_constraints if constraints is None else constraints
    if components is None and isinstance(arch, str | Path) and (Path(arch).parent / "components").is_dir():
        components = Path(arch).parent / "components"  # load_inputs' default
    named = isinstance(workload, str | Path) and str(workload) in ZOO
    rec: dict[str, Any] = {
        "workload": str(workload) if named else _source(workload),
        "tables": _source(tables),
        "arch": _source(arch),
        "components": _abs(components),
        "constraints": _abs(constraints),
        "ert": _abs(ert),
        "mapper": _abs(mapper),
        "capacity": "unlimited" if capacity is None else dict(capacity.words),
    }
    rec.update(extra)
    return rec


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise InputError(None, "receptive_field", f"must be one of {', '.join(RULES)}, got {rule!r}")


def _objective(objective: Objective | str) -> Objective:
    try:
        return Objective.parse(objective)
    except ValueError as exc:
        raise InputError(None, "objective", str(exc)) from None


def _tables(tables: PathLike | CostTable, network: Network) -> CostTable:
    table = tables if isinstance(tables, CostTable) else read_tables(Path(tables))
    check_table(table, network)
    return table


def _backend(name: str, inputs: BenchmarkInputs) -> Backend:
    """The backend, with what the user should know about its settings as warnings."""
    be = resolve_backend(name, inputs)
    if inputs.mapper.error:  # every entry will be recorded as infeasible with this cause: say it up front
        warnings.warn(f"{inputs.mapper.error}: every entry will be infeasible", stacklevel=3)
    if be.name != "timeloop" and inputs.mapper.ignored:  # Timeloop gets every option; others the metrics
        warnings.warn(
            f"{inputs.mapper.source}: the {be.name} backend uses optimization-metrics "
            f"({', '.join(inputs.mapper.optimization_metrics)}) and ignores the Timeloop search options "
            f"{', '.join(inputs.mapper.ignored)}",
            DeepfrackNote,
            stacklevel=3,
        )
    return be


# --------------------------------------------------------------------------------------------- #
# the job
# --------------------------------------------------------------------------------------------- #
def benchmark(
    *,
    workload: PathLike | Network,
    input_size: tuple[int, int] | None = None,
    arch: PathLike | BenchmarkInputs,
    constraints: PathLike | None = None,
    components: PathLike | None = None,
    mapper: PathLike | None = None,
    ert: PathLike | None = None,
    shapes: str = "square",
    variants: Iterable[Variant | str] | None = None,
    max_stack_depth: int | None = None,
    capacity: CapacitySpec | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    backend: str | Backend = "builtin",
    cache: PathLike | None = None,
    batch_size: int | None = None,
    executor: Executor | None = None,
    progress: bool | str = False,
    out: PathLike | None = None,
) -> BenchmarkResult:
    """Cost every entry of a shape set ("square", "all", or "needed": what the search may ask for under
    the exact rule, up to ``max_stack_depth`` layers per stack; with a ``capacity``, only the shapes
    some tiling that fits it can use),
    from the result cache where possible (``cache``: an SQLite file, default ``default_cache_path()``).
    With ``out``, writes ``<VARIANT>.json``, costs.csv and mappings.jsonl there, all or nothing.
    Runs on ``jobs`` local processes, or on the Dask cluster at ``scheduler`` (docs/cluster.md), unless
    an ``executor`` is given. ``progress``: a bar on stderr (True), a line every few seconds ("lines")
    or nothing (False). Ctrl-C (KeyboardInterrupt) propagates after the workers are stopped;
    finished entries stay cached. A network or shape set too large to benchmark (docs/benchmark.md,
    "Input limits") is an InputError before any work."""
    if out is not None:
        check_output_folder(out)
    if shapes not in SHAPE_SETS:
        raise InputError(None, "shapes", f"must be one of {', '.join(SHAPE_SETS)}, got {shapes!r}")
    network, _ = load_network(workload, input_size)
    try:
        vs = VARIANTS if variants is None else tuple(parse_variant(v) for v in variants)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InputError(None, "variants", str(exc)) from None
    inputs = _inputs(arch, components, constraints, mapper, ert, vs)
    be = backend if not isinstance(backend, str) else _backend(backend, inputs)
    check_layers(network)  # before working out the shapes of a network too large to benchmark
    needed = required_shapes(network, max_stack_depth, capacity) if shapes == "needed" else None
    job_list = enumerate_jobs(network, shapes, inputs.variants, needed)
    # the executor first: an unreachable scheduler stops the call before the cache is touched
    chosen = contextlib.nullcontext(executor) if executor is not None else make_executor(jobs, scheduler)
    with chosen as ex, ResultCache(Path(cache) if cache is not None else default_cache_path()) as rc:
        result = run_benchmark(job_list, be, rc, ex, None, batch_size=batch_size, progress=progress)
    if out is not None:
        with output_folder(out) as tmp:
            files = write_table_files(tmp, result.jobs, result.outcomes, result.table)
        result.summary.outputs = [Path(out) / f.name for f in files]
    return result


def optimize(
    *,
    workload: PathLike | Network,
    input_size: tuple[int, int] | None = None,
    tables: PathLike | CostTable,
    arch: PathLike | BenchmarkInputs | None = None,
    constraints: PathLike | None = None,
    components: PathLike | None = None,
    capacity: Capacity = "arch",
    receptive_field: str = "exact",
    max_stack_depth: int | None = None,
    objective: Objective | str = ENERGY,
    progress: SearchProgress | None = None,
    front: FrontOptions | None = None,
    out: PathLike | None = None,
) -> RunResult:
    """The fused stacks, tilings and cached weights that minimize ``objective`` (energy; cycles or edp
    when every table entry has cycles), from cost tables. With ``out``, writes the outputs there.
    ``front``: pick from the energy-cycles front (always for edp): its files, a thinning, budgets
    (``FrontOptions``); BudgetNotMet when no schedule meets the budgets."""
    start = time.perf_counter()
    if out is not None:
        check_output_folder(out)
    _check_rule(receptive_field)
    obj = _objective(objective)
    (front or FrontOptions()).check(obj)
    cap = _capacity(capacity, arch, components, constraints)
    network, chain = load_network(workload, input_size)
    table = _tables(tables, network)
    record = inputs_record(
        workload=workload,
        tables=tables,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=cap,
        max_stack_depth=max_stack_depth,
    )
    result = _search(
        network, table, cap, receptive_field, max_stack_depth, obj, progress, record, chain, None, front
    )
    result = _finish(result, start)
    return write_outputs(result, out) if out is not None else result


def _search(
    network: Network,
    table: CostTable,
    cap: CapacitySpec | None,
    rule: str,
    max_stack_depth: int | None,
    objective: Objective,
    progress: SearchProgress | None,
    record: dict[str, Any],
    chain: Sequence[str],
    benchmarked: BenchmarkResult | None = None,
    front: FrontOptions | None = None,
) -> RunResult:
    front = front or FrontOptions()
    if front.used(objective):
        return _front_search(
            network, table, cap, rule, max_stack_depth, objective, progress, record, chain, benchmarked, front
        )
    try:
        schedule, stats = search_schedule(
            network,
            table,
            capacity=cap,
            rule=rule,  # type: ignore[arg-type]
            max_stack_depth=max_stack_depth,
            objective=objective,
            progress=progress,
        )
    except ValueError as exc:  # an objective the search does not take
        raise InputError(None, "objective", str(exc)) from None
    return RunResult(network, schedule, table, record, stats, benchmarked, tuple(chain_notes(chain, rule)))


def _front_search(
    network: Network,
    table: CostTable,
    cap: CapacitySpec | None,
    rule: str,
    max_stack_depth: int | None,
    objective: Objective,
    progress: SearchProgress | None,
    record: dict[str, Any],
    chain: Sequence[str],
    benchmarked: BenchmarkResult | None,
    opts: FrontOptions,
) -> RunResult:
    """The schedule picked from the energy-cycles front: the best point by ``objective`` within the
    budgets; BudgetNotMet (with the closest point) when none meets them."""
    opts.check(objective)
    front, stats = evaluated_front(
        network,
        table,
        cap,
        rule,  # type: ignore[arg-type]
        max_stack_depth,
        opts.epsilon,
        objective,
        progress,
    )
    # the energy budget in uJ, as given and as pareto.csv shows the points
    pick = choose(front.energy * 1e-6, front.cycles, objective, opts.max_cycles, opts.max_energy_uJ)
    budgets = {"max_cycles": opts.max_cycles, "max_energy_uJ": opts.max_energy_uJ}
    record = {**record, "pareto_points": len(front.points), "pareto_epsilon": opts.epsilon, **budgets}
    notes = tuple(chain_notes(chain, rule))
    result = RunResult(
        network,
        front.schedules[pick.index],
        table,
        record,
        stats,
        benchmarked,
        notes,
        front=front,
        front_options=opts,
    )
    if not pick.met:
        p = front.points[pick.index]
        raise BudgetNotMet(
            {k: v for k, v in budgets.items() if v is not None},
            f"{p.energy_pJ * 1e-6:.6g} uJ, {p.cycles:.6g} cycles "
            f"(point {pick.index} of {len(front.points)} on the energy-cycles front)",
            result,
        )
    return result


def _finish(result: RunResult, start: float) -> RunResult:
    return RunResult(**{**result.__dict__, "elapsed_s": time.perf_counter() - start})


def _schedule_setting(path: Path, key: str, allowed: Sequence[str], given: str | None) -> str:
    """A setting of the schedule file: the argument when given, else the file's own, else the first
    allowed value."""
    if given is not None:
        return given
    doc = read_json(path)
    value = doc.get(key, allowed[0]) if isinstance(doc, dict) else allowed[0]
    if value not in allowed:
        raise InputError(path, key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def evaluate(
    *,
    workload: PathLike | Network,
    input_size: tuple[int, int] | None = None,
    tables: PathLike | CostTable,
    schedule: PathLike,
    arch: PathLike | BenchmarkInputs | None = None,
    constraints: PathLike | None = None,
    components: PathLike | None = None,
    capacity: Capacity = "arch",
    receptive_field: str | None = None,
    objective: Objective | str | None = None,
    out: PathLike | None = None,
) -> RunResult:
    """Cost a given schedule file (per stack: first, last, tile_shape [h, w] and cached_layers; a
    schedule.json written by deepfrack works) and check it: coverage, capacity, every layer in exactly
    one stack, single exit, and the tiles, regions and variants the file lists (when it does).
    ``receptive_field`` None: the schedule file's, else exact; ``objective`` (what the schedule is
    recorded as chosen for; cycles and edp need cycles in the tables) None: the file's, else energy.
    InputError naming the schedule file when it is not valid."""
    start = time.perf_counter()
    if out is not None:
        check_output_folder(out)
    cap = _capacity(capacity, arch, components, constraints)
    network, chain = load_network(workload, input_size)
    table = _tables(tables, network)
    path = Path(schedule)
    specs = read_stack_specs(path)
    rule = _schedule_setting(path, "receptive_field", RULES, receptive_field)
    _check_rule(rule)
    given = None if objective is None else _objective(objective).name
    objective = _schedule_setting(path, "objective", ("energy", "cycles", "edp"), given)
    if objective in ("cycles", "edp") and not table.has_cycles:
        raise InputError(
            table.source, None, f"the objective {objective!r} needs cycles for every cost-table entry"
        )
    try:
        sched = evaluate_schedule(network, table, specs, capacity=cap, rule=rule, objective=objective)  # type: ignore[arg-type]
    except ScheduleError as exc:
        raise InputError(path, None, str(exc)) from None
    record = inputs_record(
        workload=workload,
        tables=tables,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=cap,
        schedule=str(path.resolve()),
    )
    result = RunResult(network, sched, table, record, None, None, tuple(chain_notes(chain, rule)))
    result = _finish(result, start)
    return write_outputs(result, out) if out is not None else result


def run(
    *,
    workload: PathLike | Network,
    input_size: tuple[int, int] | None = None,
    arch: PathLike | BenchmarkInputs,
    constraints: PathLike | None = None,
    components: PathLike | None = None,
    mapper: PathLike | None = None,
    ert: PathLike | None = None,
    capacity: Capacity = "arch",
    max_stack_depth: int | None = None,
    objective: Objective | str = ENERGY,
    jobs: int | None = None,
    scheduler: str | None = None,
    backend: str = "builtin",
    cache: PathLike | None = None,
    executor: Executor | None = None,
    progress: bool | str = False,
    search_progress: SearchProgress | None = None,
    exhaustive: bool = False,
    front: FrontOptions | None = None,
    out: PathLike | None = None,
) -> RunResult:
    """The whole job: the best fused schedule (exact receptive field), costing with the built-in mapper
    (or ``backend``) only the entries that can still change it, as the search asks for them
    (``deepfrack.search.optimize_on_demand``; ``progress`` shows the entries costed). ``exhaustive``:
    benchmark every entry the search may use first, then search (the same schedule; also what a backend
    without lower bounds on its entries does; ``search_progress`` follows that search). With ``out``, writes
    tables/ (the entries costed), schedule.json, deepfrack.log and the statistics there, all or nothing.
    Raises EntriesFailed when the benchmark could not cost some entries (nothing is written then).
    ``front`` (and the objective edp) as in ``optimize``: the front needs every entry the search may
    use, so they are benchmarked first (as ``exhaustive``)."""
    start = time.perf_counter()
    if out is not None:
        check_output_folder(out)
    obj = _objective(objective)
    (front or FrontOptions()).check(obj)
    network, chain = load_network(workload, input_size)
    inputs = _inputs(arch, components, constraints, mapper, ert)
    cap = _capacity(capacity, inputs, None, None)
    be = _backend(backend, inputs)
    if not exhaustive and (front or FrontOptions()).used(obj):
        warnings.warn(
            "the energy-cycles front needs every entry the search may use: they are benchmarked first "
            "(as with exhaustive)",
            DeepfrackNote,
            stacklevel=2,
        )
        exhaustive = True
    if not exhaustive and not callable(getattr(be, "entry_bounds", None)):
        warnings.warn(
            f"the {be.name} backend gives no lower bounds on its entries: every entry the search may use "
            "is benchmarked first (as with exhaustive)",
            DeepfrackNote,
            stacklevel=2,
        )
        exhaustive = True
    record = inputs_record(
        workload=workload,
        tables=Path(out) / "tables" if out is not None else None,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=cap,
        ert=ert,
        mapper=mapper,
        max_stack_depth=max_stack_depth,
        energy_table="ert" if ert else "builtin 45 nm",
        backend=backend,
    )
    if exhaustive:
        bench = benchmark(
            workload=network,
            arch=inputs,
            shapes="needed",
            max_stack_depth=max_stack_depth,
            capacity=cap,
            jobs=jobs,
            scheduler=scheduler,
            backend=be,
            cache=cache,
            executor=executor,
            progress=progress,
        )
        if bench.summary.failed:
            raise EntriesFailed(bench)
        result = _search(
            network,
            bench.table,
            cap,
            "exact",
            max_stack_depth,
            obj,
            search_progress,
            record,
            chain,
            bench,
            front,
        )
    else:
        chosen = contextlib.nullcontext(executor) if executor is not None else make_executor(jobs, scheduler)
        with (
            chosen as ex,
            ResultCache(Path(cache) if cache is not None else default_cache_path()) as rc,
            BenchmarkSession(be, rc, ex, progress=progress) as session,
        ):
            source = BenchmarkSource(network, session)
            try:
                schedule, stats = optimize_on_demand(network, source, cap, "exact", max_stack_depth, obj)
            except CostingFailed:
                raise EntriesFailed(session.result()) from None
            except ValueError as exc:  # an objective the search does not take
                raise InputError(None, "objective", str(exc)) from None
            bench = session.result()
        notes = tuple(chain_notes(chain, "exact"))
        result = RunResult(network, schedule, stats.table, record, stats, bench, notes)
    result = _finish(result, start)
    return write_outputs(result, out) if out is not None else result


def write_outputs(result: RunResult, out_dir: PathLike) -> RunResult:
    """Write a result's files into ``out_dir``: schedule.json, deepfrack.log, the statistics (energy.png,
    components.csv, summary.csv, report.html, report.md, the other pictures: docs/stats.md), and tables/
    (``<VARIANT>.json``, costs.csv, mappings.jsonl) when the result benchmarked its tables. All or
    nothing: they are written into a temporary folder beside ``out_dir`` and moved into place only when
    every one is complete. Returns the result with ``outputs`` set."""
    out = Path(out_dir)
    names: list[str] = []
    with output_folder(out) as tmp:
        if result.benchmark is not None:
            b = result.benchmark
            files = write_table_files(tmp / "tables", b.jobs, b.outcomes, b.table)
            names += [f"tables/{f.name}" for f in files]
        from deepfrack.stats.write import write_stats_into  # matplotlib and jinja2 only when writing

        # energy.png, components.csv, summary.csv, report.html, report.md, the other pictures
        report = write_stats_into(tmp, result.schedule, result.network, result.table, result.inputs)
        opts = result.front_options
        if result.front is not None and opts is not None and (opts.pareto or opts.schedules):
            from deepfrack.stats.pareto import write_pareto_into

            chosen = next(k for k, sc in enumerate(result.front.schedules) if sc is result.schedule)
            written = write_pareto_into(
                tmp, result.front, result.network, result.inputs, chosen, opts.schedules
            )
            names += [str(p.relative_to(tmp)) for p in written]
        (tmp / "deepfrack.log").write_text(result.log)
        (tmp / "schedule.json").write_text(schedule_to_json(result.schedule, result.network, result.inputs))
        names += [p.name for p in report.files] + ["deepfrack.log", "schedule.json"]
    for line in report.skipped:  # a picture the tables cannot give
        warnings.warn(line, DeepfrackNote, stacklevel=2)
    return RunResult(**{**result.__dict__, "outputs": tuple(out / n for n in names)})


@dataclass(frozen=True)
class StatsResult:
    """What ``stats`` read and wrote: the schedule costed again, its network, and the files."""

    schedule: Schedule
    network: Network
    table: CostTable
    outputs: tuple[Path, ...]


def stats(
    *,
    schedule: PathLike,
    tables: PathLike | CostTable,
    workload: PathLike | Network | None = None,
    out: PathLike,
) -> StatsResult:
    """The statistics and report of a schedule.json (what ``deepfrack stats`` does): components.csv,
    summary.csv, the pictures, report.html and report.md in ``out`` (docs/stats.md). The schedule is
    costed again from ``tables`` and must match them and the network (``workload``, else the layers the
    file lists): else InputError naming the file and the entry, and nothing is written."""
    from deepfrack.stats.load import load_schedule
    from deepfrack.stats.write import write_stats

    check_output_folder(out)
    network = load_network(workload)[0] if workload is not None else None
    table = tables if isinstance(tables, CostTable) else read_tables(Path(tables))
    loaded = load_schedule(schedule, table, network, None if isinstance(tables, CostTable) else tables)
    written = write_stats(out, loaded.schedule, loaded.network, table, loaded.inputs)
    for line in written.skipped:
        warnings.warn(line, DeepfrackNote, stacklevel=2)
    return StatsResult(loaded.schedule, loaded.network, table, tuple(written.files))


# --------------------------------------------------------------------------------------------- #
# sweeps
# --------------------------------------------------------------------------------------------- #
#: called before each run of a sweep with (runs done, runs in all, the point, the network's name)
SweepProgress = Callable[[int, int, Mapping[str, Any], str], None]


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: the index of its point, the point's ``{attribute: value}``, the network, its
    best schedule, and what the run was given (schedule.json's ``inputs``, the point under ``vary``)."""

    point: int
    values: Mapping[str, Any]
    network: Network
    schedule: Schedule
    inputs: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    """What ``sweep`` did: the variations, the points (``{attribute: value}`` each), one row and one run
    per point and network (points outermost, networks in the order given), how the runs used the result
    cache, the wall time, and the files written."""

    variations: tuple[Variation, ...]
    points: tuple[Mapping[str, Any], ...]
    rows: tuple[SweepRow, ...]
    runs: tuple[SweepRun, ...]
    cache: CacheUse
    elapsed_s: float
    notes: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()


def _point_text(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{t}={v}" for t, v in point.items())


def _point_inputs(
    base: BenchmarkInputs, point: Mapping[str, Any], capacity: str
) -> tuple[BenchmarkInputs, CapacitySpec | None]:
    """A point's inputs (the architecture document changed, never the file) and its capacity; an error
    about them names the point (field ``vary``): a level or attribute the architecture lacks, a value
    of the wrong type, or an architecture the change makes invalid (a size that is not positive, a mesh
    that does not divide the instances, a DRAM type the built-in energy table does not know)."""
    try:
        inputs = with_architecture(base, vary_document(base.arch.doc, point, base.arch.path))
        cap = capacity_of(inputs) if capacity == "arch" else None
        if inputs.energy_table is None:
            builtin_energy_table(inputs.architecture)
    except InputError as exc:
        if exc.path is None and exc.field == "vary":
            raise
        raise InputError(None, "vary", f"{_point_text(point)}: {exc}") from None
    return inputs, cap


def _sweep_networks(
    workloads: Sequence[PathLike | Network], input_size: tuple[int, int] | None
) -> list[Network]:
    """The networks of a sweep, read before any work; no name twice."""
    networks = [load_network(w, input_size if not isinstance(w, Network) else None)[0] for w in workloads]
    if not networks:
        raise InputError(None, "workload", "give at least one network")
    names = [n.name for n in networks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            None, "workload", f"two workloads are named {twice[0]!r}; the sweep's rows need distinct names"
        )
    return networks


def _cache_use(keys: Sequence[set[str]], computed: int) -> CacheUse:
    """How runs (the cache keys each asked for) shared the cache (``CacheUse``)."""
    from deepfrack.stats.sweep import CacheUse

    runs: Counter[str] = Counter()
    for ks in keys:
        runs.update(ks)
    return CacheUse(
        asked=sum(len(ks) for ks in keys),
        distinct=len(runs),
        computed=computed,
        shared=sum(n > 1 for n in runs.values()),
    )


def _sweep_run(
    index: int,
    point: Mapping[str, Any],
    inputs: BenchmarkInputs,
    cap: CapacitySpec | None,
    network: Network,
    executor: Executor,
    options: Mapping[str, Any],
) -> tuple[SweepRow, SweepRun, set[str]]:
    """One run of a sweep (``run`` with the point's inputs and capacity, and ``options``): its row, its
    schedule, and the cache keys of the entries it asked for."""
    from deepfrack.stats.sweep import sweep_row

    start = time.perf_counter()
    r = run(
        workload=network,
        arch=inputs,
        capacity=cap if cap is not None else "unlimited",
        executor=executor,
        **options,
    )
    assert r.benchmark is not None
    s = r.benchmark.summary
    fingerprint = resolve_backend(options["backend"], inputs).fingerprint
    fps = {v: fingerprint(v) for v in inputs.variants}
    keys = {job_key(j, fps[j.variant]) for j in r.benchmark.jobs}
    words = dict(cap.words) if cap is not None else None
    elapsed = time.perf_counter() - start
    row = sweep_row(index, point, network.name, r.schedule, words, s.entries, s.computed, elapsed)
    return row, SweepRun(index, dict(point), network, r.schedule, {**r.inputs, "vary": dict(point)}), keys


def sweep(
    *,
    workloads: Sequence[PathLike | Network],
    arch: PathLike | BenchmarkInputs,
    vary: Sequence[str | Variation],
    zipped: bool = False,
    input_size: tuple[int, int] | None = None,
    constraints: PathLike | None = None,
    components: PathLike | None = None,
    mapper: PathLike | None = None,
    ert: PathLike | None = None,
    capacity: Literal["arch", "unlimited"] = "arch",
    max_stack_depth: int | None = None,
    objective: Objective | str = ENERGY,
    jobs: int | None = None,
    scheduler: str | None = None,
    backend: str = "builtin",
    cache: PathLike | None = None,
    executor: Executor | None = None,
    progress: bool | str = False,
    on_run: SweepProgress | None = None,
    out: PathLike | None = None,
) -> SweepResult:
    """``run`` for every network of ``workloads`` at every point of a grid of architecture variations:
    ``vary`` lists ``LEVEL.ATTRIBUTE=v1,v2,...`` (``deepfrack.arch.vary``: ``GlobalBuffer.memory_depth``,
    ``DRAM.type``, ``PE.instances`` for the PE array), the points are the cartesian product of their
    values (``zipped``: the i-th value of each). Each point changes a copy of the parsed architecture
    document, never the file. Every point and network is checked before any work (InputError naming the
    point). All runs share one executor (``jobs`` local processes, or the Dask cluster at ``scheduler``)
    and one result cache: an entry two runs ask for is mapped once, and a sweep interrupted and started
    again takes what it had finished from the cache. With ``out``, writes sweep.csv, sweep.png,
    report.html and ``schedules/point<i>-<network>.json`` there, all or nothing. ``on_run`` is called
    before each run. Raises EntriesFailed (nothing written) when a run's benchmark could not cost some
    entries."""
    start = time.perf_counter()
    if out is not None:
        check_output_folder(out)
    if capacity not in ("arch", "unlimited"):
        raise InputError(None, "capacity", f"must be 'arch' or 'unlimited', got {capacity!r}")
    _objective(objective)
    variations = tuple(v if isinstance(v, Variation) else parse_variation(v) for v in vary)
    points = sweep_points(variations, zipped)
    networks = _sweep_networks(workloads, input_size)
    base = _inputs(arch, components, constraints, mapper, ert)
    _backend(backend, base)  # bad backend settings: said once, before any work
    prepared = [_point_inputs(base, p, capacity) for p in points]
    notes = []
    if base.ert is not None:
        notes.append(
            f"the energy per action is the ERT's ({base.ert.path}) at every point: the sweep changes "
            "capacities, meshes and the mapspace, not the ERT's energies"
        )
    options = {
        "max_stack_depth": max_stack_depth,
        "objective": objective,
        "backend": backend,
        "cache": cache,
        "progress": progress,
    }
    done: list[tuple[SweepRow, SweepRun, set[str]]] = []
    chosen = contextlib.nullcontext(executor) if executor is not None else make_executor(jobs, scheduler)
    with chosen as ex:
        for i, (point, (inputs, cap)) in enumerate(zip(points, prepared, strict=True)):
            for net in networks:
                if on_run is not None:
                    on_run(len(done), len(points) * len(networks), point, net.name)
                done.append(_sweep_run(i, point, inputs, cap, net, ex, options))
    rows = tuple(d[0] for d in done)
    result = SweepResult(
        variations=variations,
        points=tuple(points),
        rows=rows,
        runs=tuple(d[1] for d in done),
        cache=_cache_use([d[2] for d in done], sum(r.computed for r in rows)),
        elapsed_s=time.perf_counter() - start,
        notes=tuple(notes),
    )
    if out is None:
        return result
    record = inputs_record(
        workload=None,
        tables=None,
        arch=arch,
        components=components,
        constraints=constraints,
        capacity=None,
        ert=ert,
        mapper=mapper,
        max_stack_depth=max_stack_depth,
        backend=backend,
    )
    record.update(workload=", ".join(n.name for n in networks), capacity=capacity, zip=zipped)
    return write_sweep(result, out, record)


def write_sweep(result: SweepResult, out_dir: PathLike, inputs: Mapping[str, Any]) -> SweepResult:
    """Write a sweep's files into ``out_dir``, all or nothing (``deepfrack.stats.sweep``: sweep.csv,
    sweep.png, report.html; and each run's schedule.json as ``schedules/point<i>-<network>.json``).
    ``inputs``: what the sweep was given, for the report. Returns the result with ``outputs`` set."""
    from deepfrack.stats.sweep import sweep_contents

    targets = [v.target for v in result.variations]
    values = {v.target: v.values for v in result.variations}
    files = sweep_contents(result.rows, targets, values, inputs, result.cache, result.elapsed_s, result.notes)
    out = Path(out_dir)
    names = list(files)
    with output_folder(out) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / "schedules").mkdir()
        for r in result.runs:
            name = f"schedules/point{r.point}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', r.network.name)}.json"
            (tmp / name).write_text(schedule_to_json(r.schedule, r.network, r.inputs))
            names.append(name)
    return dataclasses.replace(result, outputs=tuple(out / n for n in names))


__all__ = [
    "DeepfrackNote",
    "EntriesFailed",
    "RunResult",
    "SweepResult",
    "SweepRun",
    "benchmark",
    "capacity_of",
    "chain_notes",
    "evaluate",
    "inputs_record",
    "load_network",
    "optimize",
    "run",
    "stats",
    "sweep",
    "write_outputs",
    "write_sweep",
]
