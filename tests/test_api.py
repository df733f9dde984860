"""The Python API: the whole job from Python returns plain data, writes what the CLI writes, names bad
input by argument (never by command-line flag), and writes its outputs all or nothing."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import deepfrack
from deepfrack import api
from deepfrack.cli import main
from deepfrack.errors import InputError
from deepfrack.search.schedule import Schedule
from tests.benchmark.conftest import ARCH, CONSTRAINTS, FAKE, TINY_NET


@pytest.fixture
def net(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY_NET)
    return p


def _run(net: Path, tmp_path: Path, **kw):
    return api.run(
        workload=net,
        arch=ARCH,
        constraints=CONSTRAINTS,
        backend=FAKE,
        jobs=1,
        cache=tmp_path / "cache.sqlite",
        **kw,
    )


def test_run_from_python_returns_the_schedule_and_writes_what_the_cli_writes(net: Path, tmp_path: Path):
    res = _run(net, tmp_path, out=tmp_path / "py")
    assert isinstance(res.schedule, Schedule)
    assert res.schedule.total.energy_pJ <= res.schedule.layer_by_layer.energy_pJ
    assert res.benchmark is not None and res.benchmark.summary.entries > 0
    names = {p.relative_to(tmp_path / "py").as_posix() for p in res.outputs}
    assert {"schedule.json", "deepfrack.log", "energy.png", "tables/costs.csv"} <= names
    assert all(p.exists() for p in res.outputs)

    cli = CliRunner().invoke(
        main,
        ["run", "-w", str(net), "-a", str(ARCH), "-c", str(CONSTRAINTS), "--backend", FAKE, "--jobs", "1",
         "--cache", str(tmp_path / "cache.sqlite"), "-o", str(tmp_path / "cli")],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    py_doc = json.loads((tmp_path / "py/schedule.json").read_text())
    cli_doc = json.loads((tmp_path / "cli/schedule.json").read_text())
    for doc in (py_doc, cli_doc):
        doc["inputs"].pop("tables")
    assert py_doc == cli_doc
    assert (tmp_path / "py/tables/costs.csv").read_text() == (tmp_path / "cli/tables/costs.csv").read_text()


def test_the_package_exports_the_api():
    assert deepfrack.run is api.run and deepfrack.optimize is api.optimize
    assert deepfrack.evaluate is api.evaluate and deepfrack.write_outputs is api.write_outputs
    assert deepfrack.benchmark.__name__ == "deepfrack.benchmark"  # the stage's package, not rebound


def test_optimize_then_evaluate_the_written_schedule(net: Path, tmp_path: Path):
    bench = api.benchmark(
        workload=net, arch=ARCH, constraints=CONSTRAINTS, backend=FAKE, jobs=1, shapes="needed",
        cache=tmp_path / "cache.sqlite", out=tmp_path / "tables",
    )  # fmt: skip
    assert (tmp_path / "tables/costs.csv").exists()
    opt = api.optimize(workload=net, tables=bench.table, capacity="unlimited", out=tmp_path / "opt")
    ev = api.evaluate(
        workload=net, tables=tmp_path / "tables/costs.csv", schedule=tmp_path / "opt/schedule.json",
        capacity="unlimited",
    )  # fmt: skip
    assert ev.schedule.total.energy_pJ == pytest.approx(opt.schedule.total.energy_pJ, rel=1e-12)
    assert [(s.first, s.last, s.tile_shape) for s in ev.schedule.stacks] == [
        (s.first, s.last, s.tile_shape) for s in opt.schedule.stacks
    ]


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda net: api.optimize(workload=net, tables="x.csv", capacity="arch"), "arch"),
        (lambda net: api.optimize(workload=net, tables="x.csv", capacity="lots"), "capacity"),
        (lambda net: api.benchmark(workload=net, arch=ARCH, shapes="round"), "shapes"),
        (lambda net: api.benchmark(workload=net, arch=ARCH, variants=["XYZ"]), "variants"),
        (lambda net: api.optimize(workload=net, tables="x.csv", receptive_field="fuzzy"), "receptive_field"),
        (lambda net: api.optimize(workload=net, tables="x.csv", objective="speed"), "objective"),
    ],
)
def test_bad_arguments_name_the_argument_not_a_flag(net: Path, call, field: str):
    with pytest.raises(InputError) as err:
        call(net)
    assert err.value.field == field and "--" not in str(err.value)


def test_a_failure_while_writing_leaves_no_output_folder(net: Path, tmp_path: Path, monkeypatch):
    def broken_plot(*args, **kwargs):
        raise OSError("disk full")

    import deepfrack.stats.write

    monkeypatch.setattr(deepfrack.stats.write, "write_stats_into", broken_plot)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        _run(net, tmp_path, out=out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary folder left


def test_a_failure_in_the_search_leaves_the_previous_outputs_untouched(
    net: Path, tmp_path: Path, monkeypatch
):
    out = tmp_path / "out"
    _run(net, tmp_path, out=out)
    (out / "mine.txt").write_text("a file of the user's")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken_search(*args, **kwargs):
        raise InputError("tables.csv", "layer 3", "no entry")

    monkeypatch.setattr(api, "search_schedule", broken_search)  # --exhaustive
    monkeypatch.setattr(api, "optimize_on_demand", broken_search)  # the default: on demand
    with pytest.raises(InputError):
        _run(net, tmp_path, out=out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_a_second_run_replaces_its_own_files_and_keeps_the_users(net: Path, tmp_path: Path):
    out = tmp_path / "out"
    _run(net, tmp_path, out=out)
    (out / "mine.txt").write_text("keep me")
    (out / "tables" / "stale.json").write_text("{}")
    res = _run(net, tmp_path, out=out)
    assert (out / "mine.txt").read_text() == "keep me"
    assert not (out / "tables" / "stale.json").exists()  # tables/ is the run's own folder: replaced whole
    assert all(p.exists() for p in res.outputs)


def test_the_readme_python_example_runs(net: Path, tmp_path: Path, monkeypatch):
    """The README's Python section runs against the real API (on the tiny network with the test backend
    instead of AlexNet with the mapper, to stay fast)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("## Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    real_run = api.run
    seen = {}

    def small_run(**kw):
        seen.update(kw)
        kw.update(workload=net, backend=FAKE, jobs=1, cache=tmp_path / "c.sqlite", out=tmp_path / "out")
        return real_run(**kw)

    monkeypatch.setattr(api, "run", small_run)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    exec(compile(code, "README.md", "exec"), {})
    assert Path(seen["arch"]).exists() and Path(seen["constraints"]).exists()
    assert (tmp_path / "out" / "schedule.json").exists()
