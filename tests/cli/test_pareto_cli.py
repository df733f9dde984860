"""`--objective edp`, `--pareto`, `--pareto-schedules` and the budgets of `deepfrack optimize` and
`deepfrack run`, end to end: pareto.csv holds exactly the front, each point's schedule file costs its
point through `deepfrack evaluate`, the budgets pick the right point, and bad input is refused."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepfrack import api
from deepfrack.benchmark.tables_io import write_csv_table
from deepfrack.cli import main
from deepfrack.errors import InputError
from tests.cli.test_run_cli import NET, SIMBA
from tests.paths import EXAMPLES
from tests.synthetic import synthetic_table

LEGACY = ["--receptive-field", "legacy", "--capacity", "unlimited"]
ALEX = EXAMPLES / "AlexNet_Simba"
CHAIN = """network: chain
input: [12, 10]
layers:
  - {name: c1, C: 3, M: 8, R: 3, S: 3, P: 10, Q: 12, pad: 1}
  - {name: c2, C: 8, M: 8, R: 3, S: 3, P: 10, Q: 12, pad: 1}
  - {name: p1, type: pool, C: 8, R: 2, S: 2, P: 5, Q: 6, stride: 2}
  - {name: c3, C: 8, M: 16, R: 3, S: 3, P: 5, Q: 6, pad: 1}
"""
#: filled by the ``front`` fixture: the options naming the network, its tables and capacity
ARGS: list[str] = []


def run(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small chain with synthetic tables whose cycles trade off against energy; its front."""
    folder = tmp_path_factory.mktemp("front")
    (folder / "net.yaml").write_text(CHAIN)
    network, _ = api.load_network(folder / "net.yaml")
    table = synthetic_table(network, seed=3, noise=0.3)
    rng = np.random.default_rng(3)
    for key, rec in list(table.records.items()):
        table.records[key] = dataclasses.replace(rec, cycles=round(rec.cycles * rng.uniform(0.5, 1.5)))
    write_csv_table(table, folder / "costs.csv")
    ARGS[:] = ["-w", str(folder / "net.yaml"), "-t", str(folder / "costs.csv"), "--capacity", "unlimited"]
    out = folder / "out"
    res = run(["optimize", *ARGS, "--objective", "edp", "--pareto-schedules", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_pareto_csv_is_the_front_and_edp_picks_its_best_point(front: Path, tmp_path: Path):
    pts = rows(front / "pareto.csv")
    assert len(pts) >= 3
    e = [float(p["energy_uJ"]) for p in pts]
    c = [float(p["cycles"]) for p in pts]
    assert e == sorted(e) and c == sorted(c, reverse=True) and len(set(e)) == len(e)  # non-dominated
    edp = [a * b for a, b in zip(e, c)]
    assert [float(p["edp_uJ_cycles"]) for p in pts] == pytest.approx(edp)
    best = min(range(len(pts)), key=edp.__getitem__)
    assert pts[best]["optimal_for"].split() == ["edp", "chosen"]
    assert pts[0]["optimal_for"] == "energy" and pts[-1]["optimal_for"] == "cycles"
    doc = json.loads((front / "schedule.json").read_text())
    assert doc["objective"] == "edp"
    assert doc["total"]["energy_uJ"] * doc["total"]["cycles"] == pytest.approx(edp[best], rel=1e-5)
    assert (front / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the ends are the energy and the cycles optima
    for metric, k in (("energy", 0), ("cycles", -1)):
        res = api.optimize(workload=ARGS[1], tables=ARGS[3], capacity="unlimited", objective=metric)
        assert res.front is None  # one additive metric: the plain search
        assert res.schedule.total.energy_pJ * 1e-6 == pytest.approx(e[k], rel=1e-12)
        assert res.schedule.total.cycles == pytest.approx(c[k], rel=1e-12)


def test_every_point_schedule_costs_its_point_through_evaluate(front: Path, tmp_path: Path):
    pts = rows(front / "pareto.csv")
    files = sorted((front / "pareto").iterdir())
    assert len(files) == len(pts)
    net, tables = ARGS[1], ARGS[3]
    for p, f in zip(pts, files):
        res = api.evaluate(workload=net, tables=tables, schedule=f, capacity="unlimited")
        assert res.schedule.total.energy_pJ * 1e-6 == pytest.approx(float(p["energy_uJ"]), rel=1e-12)
        assert res.schedule.total.cycles == pytest.approx(float(p["cycles"]), rel=1e-12)
        stacks = " ".join(f"{s.first}-{s.last}" if s.depth > 1 else str(s.first) for s in res.schedule.stacks)
        assert stacks == p["stacks"]
        assert res.schedule.objective == "edp"
    # and through the command line
    out = tmp_path / "cli"
    res = run(["evaluate", *ARGS, "--schedule", str(files[-1]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "schedule.json").read_text())
    assert doc["total"]["energy_uJ"] == pytest.approx(float(pts[-1]["energy_uJ"]), abs=1e-6)
    assert doc["total"]["cycles"] == pytest.approx(float(pts[-1]["cycles"]), rel=1e-12)


def test_budgets_pick_the_best_point_that_meets_them(front: Path, tmp_path: Path):
    pts = rows(front / "pareto.csv")
    mid = len(pts) // 2
    budget = float(pts[mid]["cycles"])
    out = tmp_path / "cyc"
    res = run(["optimize", *ARGS, "--max-cycles", repr(budget), "-o", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "schedule.json").read_text())
    assert doc["total"]["cycles"] <= budget
    assert doc["total"]["energy_uJ"] == pytest.approx(float(pts[mid]["energy_uJ"]), abs=1e-6)
    assert doc["inputs"]["max_cycles"] == budget
    energy = float(pts[mid]["energy_uJ"])
    for objective, k in (("cycles", mid), ("energy", 0), ("edp", None)):
        res = api.optimize(
            workload=ARGS[1],
            tables=ARGS[3],
            capacity="unlimited",
            objective=objective,
            front=api.FrontOptions(max_energy_uJ=energy),
        )
        meets = [p for p in pts if float(p["energy_uJ"]) <= energy]
        if k is None:  # the lowest EDP among the points within the budget
            k = pts.index(min(meets, key=lambda p: float(p["energy_uJ"]) * float(p["cycles"])))
        assert res.schedule.total.cycles == pytest.approx(float(pts[k]["cycles"]), rel=1e-12), objective


def test_an_unmet_budget_prints_the_closest_point_exit_1_nothing_written(front: Path, tmp_path: Path):
    pts = rows(front / "pareto.csv")
    fewest = float(pts[-1]["cycles"])
    res = run(["optimize", *ARGS, "--max-cycles", str(fewest / 2), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "no schedule meets --max-cycles" in res.output and f"{fewest:.6g} cycles" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra", [["--objective", "edp"], ["--objective", "cycles"], ["--pareto"], ["--max-cycles", "5"]]
)
def test_tables_without_cycles_are_refused(tmp_path: Path, extra: list[str]):
    args = ["-w", str(ALEX / "inputs/AlexNet"), "-t", str(ALEX / "cost-tables"), *LEGACY]
    res = run(["optimize", *args, *extra, "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.startswith("deepfrack: error: ") and "cycles" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_evaluate_refuses_edp_without_cycles(tmp_path: Path):
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"stacks": [{"first": 0, "last": 3, "tile_shape": [13, 13]}]}))
    args = ["-w", str(ALEX / "inputs/AlexNet"), "-t", str(ALEX / "cost-tables"), *LEGACY]
    res = run(["evaluate", *args, "--schedule", str(sched), "--objective", "edp", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "cycles" in res.output
    assert not (tmp_path / "o").exists()


def test_run_with_edp_benchmarks_every_entry_and_writes_the_front(tmp_path: Path):
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    out = tmp_path / "out"
    arch = ["-a", str(SIMBA / "arch/simba_like.yaml"), "-c", str(SIMBA / "constraints")]
    args = ["run", "-w", str(net), *arch, "--jobs", "1", "--cache", str(tmp_path / "cache.sqlite"),
            "--max-stack-depth", "2"]  # fmt: skip
    res = run([*args, "--objective", "edp", "--pareto", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "benchmarked first" in res.output
    pts = rows(out / "pareto.csv")
    doc = json.loads((out / "schedule.json").read_text())
    edp = [float(p["energy_uJ"]) * float(p["cycles"]) for p in pts]
    assert doc["total"]["energy_uJ"] * doc["total"]["cycles"] == pytest.approx(min(edp), rel=1e-6)
    assert not (out / "pareto").exists()  # point schedules only with --pareto-schedules


@pytest.mark.parametrize(
    "opts, objective, field",
    [
        (api.FrontOptions(max_cycles=-1), "energy", "max_cycles"),
        (api.FrontOptions(max_energy_uJ=float("nan")), "energy", "max_energy_uJ"),
        (api.FrontOptions(epsilon=float("inf")), "edp", "epsilon"),
        (None, "last-level-accesses", "objective"),
    ],
)
def test_bad_front_options_are_input_errors(front: Path, opts, objective: str, field: str):
    with pytest.raises(InputError) as err:
        api.optimize(workload=ARGS[1], tables=ARGS[3], capacity="unlimited", objective=objective, front=opts)
    assert err.value.field == field


def test_a_lexicographic_objective_is_picked_from_the_front(front: Path):
    pts = rows(front / "pareto.csv")
    res = api.optimize(workload=ARGS[1], tables=ARGS[3], capacity="unlimited", objective="cycles,energy")
    assert res.front is not None and res.schedule.objective == "cycles,energy"
    assert res.schedule.total.cycles == pytest.approx(float(pts[-1]["cycles"]), rel=1e-12)
