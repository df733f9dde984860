"""The Timeloop backend's subprocess path, with a stand-in `timeloop-mapper` that records what it was given
and replays a recorded Timeloop output."""

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deepfrack.benchmark.backend import BackendUnavailable
from deepfrack.benchmark.executors import LocalExecutor
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.jobs import make_job
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.benchmark.timeloop import (
    make_timeloop_backend,
    problem_doc,
    read_output_folder,
    variant_constraint_docs,
)
from deepfrack.cli import main
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS, Variant
from deepfrack.workload.loaders import load_problem_folder
from tests.benchmark.conftest import ALEX, ARCH, CONSTRAINTS, ERT, MAPPER, WORKLOAD
from tests.paths import EXERCISES

SAMPLE = ALEX / "timeloop-samples" / "SLC_Layer2_Tile27"

STAND_IN = f"""#!{sys.executable}
# Stand-in for timeloop-mapper: logs its inputs, then replays a recorded run (or fails on request).
import json, os, shutil, sys
import yaml
docs = {{name: yaml.safe_load(open(name)) for name in sys.argv[1:]}}
with open(os.environ["STANDIN_LOG"], "a") as log:
    entry = {{"cwd": os.getcwd(), "pid": os.getpid(), "args": sys.argv[1:], "docs": docs}}
    log.write(json.dumps(entry) + "\\n")
mode = os.environ.get("STANDIN_MODE", "replay")
problem = next(d for d in docs.values() if isinstance(d, dict) and "problem" in d)
if mode == "sleep-on-P2" and problem["problem"]["instance"]["P"] == 2:
    import time
    time.sleep(60)
if mode == "nomap":
    print("MESSAGE: no valid mappings found within search criteria. Some suggestions:")
    sys.exit(0)
if mode == "crash":
    print("ERROR: boom", file=sys.stderr)
    sys.exit(3)
src = os.environ["STANDIN_REPLAY"]
for suffix in ("stats.txt", "map.yaml", "map.txt"):
    path = os.path.join(src, "timeloop-mapper." + suffix)
    if os.path.exists(path):
        shutil.copy(path, ".")
"""


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "timeloop-mapper"
    exe.write_text(STAND_IN)
    exe.chmod(0o755)
    log = tmp_path / "standin.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("STANDIN_LOG", str(log))
    monkeypatch.setenv("STANDIN_REPLAY", str(SAMPLE))
    monkeypatch.delenv("STANDIN_MODE", raising=False)
    return log


def _calls(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _by_key(docs: dict, key: str) -> list:
    return [d for d in docs.values() if isinstance(d, dict) and key in d]


def _dram_targets(docs: dict) -> list[dict]:
    return [
        t
        for d in _by_key(docs, "architecture_constraints")
        for t in d["architecture_constraints"]["targets"]
        if t["target"] == "DRAM" and t["type"] == "datatype"
    ]


def test_one_run_as_the_original_did(stand_in: Path):
    inputs = load_inputs(ARCH, constraints=CONSTRAINTS, mapper=MAPPER, ert=ERT)
    backend = make_timeloop_backend(inputs)
    net = load_problem_folder(WORKLOAD)
    job = make_job(net, 1, Variant.SLC, 27, 27)
    (outcome,) = backend.evaluator().evaluate([job])
    assert outcome.status == "ok"
    assert outcome.record == read_output_folder(SAMPLE)
    ref = next(
        json.loads(x)
        for x in (ALEX / "timeloop-mappings.jsonl").open()
        if '"dataflow":"SLC","layer":2,"tile":27,' in x
    )
    assert outcome.record.mapping == ref["mapping"]

    (call,) = _calls(stand_in)
    docs = call["docs"]
    assert not Path(call["cwd"]).exists()  # a temporary folder, removed afterwards
    (problem,) = _by_key(docs, "problem")
    assert problem["problem"]["instance"] == {
        "C": 96,
        "M": 256,
        "R": 5,
        "S": 5,
        "N": 1,
        "P": 27,
        "Q": 27,
        "Wstride": 1,
        "Hstride": 1,
        "Wdilation": 1,
        "Hdilation": 1,
    }
    assert _by_key(docs, "architecture") == [yaml.safe_load(ARCH.read_text())]
    assert len(_by_key(docs, "compound_components")) == 4
    assert _by_key(docs, "ERT") == [yaml.safe_load(ERT.read_text())]
    (mapper,) = _by_key(docs, "mapper")
    assert mapper["mapper"] == {**yaml.safe_load(MAPPER.read_text())["mapper"], "live-status": False}
    # the variant's own file (SLC: no DRAM target) plus the shared mapspace constraints
    assert _by_key(docs, "architecture_constraints") == [
        yaml.safe_load((CONSTRAINTS / "SLC.yaml").read_text())
    ]
    assert _by_key(docs, "mapspace_constraints") == [
        yaml.safe_load((CONSTRAINTS / "simba_like_map_constraints.yaml").read_text())
    ]


def test_variants_made_from_one_constraints_file_equal_the_originals_seven():
    # deriving the variants from SLC.yaml by changing only what DRAM keeps gives the original's files
    inputs = load_inputs(ARCH, constraints=CONSTRAINTS / "SLC.yaml")
    for v in VARIANTS:
        (doc,) = variant_constraint_docs(inputs, v, "DRAM")
        original = yaml.safe_load((CONSTRAINTS / f"{v.value}.yaml").read_text())["architecture_constraints"][
            "targets"
        ]

        def norm(targets):
            out = []
            for t in targets:
                t = dict(t)
                for k in ("keep", "bypass"):
                    if k in t:
                        t[k] = sorted(t[k])
                out.append(json.dumps(t, sort_keys=True))
            return sorted(out)

        want = norm(original)
        if v == Variant.SLC:  # the original SLC file leaves DRAM to Timeloop's default: keep everything
            want = norm(
                [
                    *original,
                    {
                        "target": "DRAM",
                        "type": "datatype",
                        "keep": ["Weights", "Inputs", "Outputs"],
                        "bypass": [],
                    },
                ]
            )
        assert norm(doc["architecture_constraints"]["targets"]) == want, v
    # no constraints at all: a document with just the DRAM target
    (only,) = variant_constraint_docs(load_inputs(ARCH), Variant.Start, "DRAM")
    assert only == {
        "architecture_constraints": {
            "targets": [
                {"target": "DRAM", "type": "datatype", "keep": ["Weights", "Inputs"], "bypass": ["Outputs"]}
            ]
        }
    }


def test_problem_file_is_timeloops_cnn_layer():
    ref = yaml.safe_load((WORKLOAD / "AlexNet_layer01.yaml").read_text())["problem"]
    net = load_problem_folder(WORKLOAD)
    doc = problem_doc(net.layers[0])["problem"]
    assert doc["instance"] == ref["instance"]

    def shape(s):
        return {
            **s,
            "data-spaces": sorted(s["data-spaces"], key=lambda d: d["name"]),
            "coefficients": sorted(s["coefficients"], key=lambda c: c["name"]),
        }

    assert shape(doc["shape"]) == shape(ref["shape"])


def test_no_mapping_is_infeasible_and_a_crash_is_a_failure(stand_in: Path, monkeypatch: pytest.MonkeyPatch):
    inputs = load_inputs(ARCH, constraints=CONSTRAINTS)
    job = make_job(load_problem_folder(WORKLOAD), 3, Variant.WCC, 5, 5)
    monkeypatch.setenv("STANDIN_MODE", "nomap")
    (out,) = make_timeloop_backend(inputs).evaluator().evaluate([job])
    assert out.status == "infeasible" and "no valid mapping" in out.reason
    monkeypatch.setenv("STANDIN_MODE", "crash")
    (out,) = make_timeloop_backend(inputs).evaluator().evaluate([job])
    assert (
        out.status == "error"
        and out.reason == "timeloop-mapper exited with code 3 and wrote no stats: ERROR: boom"
    )
    # the WCC run got WCC's file: DRAM keeps nothing
    assert _dram_targets(_calls(stand_in)[-1]["docs"]) == [
        {"target": "DRAM", "type": "datatype", "keep": [], "bypass": ["Inputs", "Outputs", "Weights"]}
    ]


def test_stopping_the_workers_stops_timeloop(stand_in: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STANDIN_MODE", "sleep-on-P2")
    backend = make_timeloop_backend(load_inputs(ARCH, constraints=CONSTRAINTS))
    net = load_problem_folder(WORKLOAD)
    stream = LocalExecutor(1).run(backend, [[make_job(net, 0, Variant.SLC, t, t)] for t in (1, 2)])
    _, (first,) = next(stream)
    assert first.status == "ok"
    deadline = time.monotonic() + 30
    while len(_calls(stand_in)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    call = _calls(stand_in)[1]
    assert _alive(call["pid"])
    stream.close()  # what Ctrl-C or an error in the parent does: the workers are terminated ...
    deadline = time.monotonic() + 10
    while _alive(call["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(call["pid"])  # ... and take their timeloop-mapper with them
    assert not Path(call["cwd"]).exists()  # and remove its temporary folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_fingerprint_covers_the_binary_and_the_variant_file(stand_in: Path):
    inputs = load_inputs(ARCH, constraints=CONSTRAINTS, mapper=MAPPER)
    a = make_timeloop_backend(inputs)
    assert a.fingerprint(Variant.SLC) != a.fingerprint(Variant.WCC)
    exe = Path(a.binary)
    exe.write_text(exe.read_text() + "# another version\n")
    assert make_timeloop_backend(inputs).fingerprint(Variant.SLC) != a.fingerprint(Variant.SLC)


def test_missing_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="timeloop-mapper not found on PATH"):
        make_timeloop_backend(load_inputs(ARCH))
    r = CliRunner().invoke(
        main,
        [
            "benchmark",
            "--workload",
            str(WORKLOAD),
            "--arch",
            str(ARCH),
            "--backend",
            "timeloop",
            "--out",
            str(tmp_path / "out"),
            "--cache",
            str(tmp_path / "c.sqlite"),
        ],
    )
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "deepfrack: error: --backend timeloop: timeloop-mapper not found on PATH; install Timeloop "
        "(https://timeloop.csail.mit.edu) or use --backend builtin"
    ]
    assert not (tmp_path / "out").exists()


def test_v04_architecture_is_refused():
    with pytest.raises(InputError, match=re.escape("v0.3")):
        make_timeloop_backend(
            load_inputs(EXERCISES / "simba_like" / "arch.yaml", components=EXERCISES / "_components")
        )


def test_cli_with_the_timeloop_backend(stand_in: Path, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    small = yaml.safe_load((WORKLOAD / "AlexNet_layer03.yaml").read_text())
    small["problem"]["instance"].update(P=2, Q=2)
    (work / "small_layer01.yaml").write_text(yaml.safe_dump(small))
    args = [
        "benchmark",
        "--workload",
        str(work),
        "--arch",
        str(ARCH),
        "--constraints",
        str(CONSTRAINTS),
        "--mapper",
        str(MAPPER),
        "--backend",
        "timeloop",
        "--variants",
        "SLC,WCC",
        "--jobs",
        "2",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(tmp_path / "out"),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "4 entries (4 distinct): 4 computed, 0 from cache, 0 infeasible, 0 failed" in r.stderr
    calls = _calls(stand_in)
    seen = set()
    for c in calls:
        (problem,) = _by_key(c["docs"], "problem")
        inst = problem["problem"]["instance"]
        dram = _dram_targets(c["docs"])
        seen.add((inst["P"], inst["Q"], inst["C"], tuple(dram[0]["keep"]) if dram else None))
    assert seen == {(1, 1, 256, None), (2, 2, 256, None), (1, 1, 256, ()), (2, 2, 256, ())}
    table = read_tables(tmp_path / "out" / "costs.csv")
    assert len(table) == 4
    assert table.get(0, Variant.WCC, 2, 2).energy_uJ == pytest.approx(1359.28627934)  # the replayed run
    r = CliRunner().invoke(main, args)
    assert "0 computed, 4 from cache" in r.stderr and len(_calls(stand_in)) == 4


def test_missing_ert_actions_and_unusable_mapper_settings(stand_in: Path, tmp_path: Path):
    net = load_problem_folder(WORKLOAD)
    job = make_job(net, 1, Variant.SLC, 27, 27)
    doc = yaml.safe_load(ERT.read_text())
    # the replayed SLC mapping reads and updates DRAM: an ERT without DRAM makes it infeasible, with the cause
    doc["ERT"]["tables"] = [t for t in doc["ERT"]["tables"] if t["name"] != "System.DRAM"]
    ert = tmp_path / "ERT.yaml"
    ert.write_text(yaml.safe_dump(doc))
    (outcome,) = (
        make_timeloop_backend(load_inputs(ARCH, constraints=CONSTRAINTS, ert=ert)).evaluator().evaluate([job])
    )
    assert outcome.status == "infeasible"
    assert outcome.reason == (
        f"its mapping needs an action the energy table lacks: {ert}: "
        "ERT.tables[System.DRAM]: no entry for storage level DRAM"
    )
    assert len(_calls(stand_in)) == 1  # Timeloop ran; its mapping is what needs DRAM

    mapper = tmp_path / "mapper.yaml"
    mapper.write_text("mapper:\n  optimization-metrics: [cycles]\n")
    backend = make_timeloop_backend(load_inputs(ARCH, constraints=CONSTRAINTS, mapper=mapper))
    assert backend.fingerprint(Variant.SLC)
    (outcome,) = backend.evaluator().evaluate([job])
    assert outcome.status == "infeasible" and outcome.reason.startswith(
        f"unusable mapper settings: {mapper}: mapper.optimization-metrics"
    )
    assert len(_calls(stand_in)) == 1  # not run: Timeloop would reject the file
