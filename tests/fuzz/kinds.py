"""The seed inputs (small valid ones, built from the bundled examples) and, for every input kind, how a
fuzz case is made from them: which file is mutated, with which mutator, and which command reads it.

A case names its inputs with ``@name`` tokens: ``@net.yaml`` is the case's mutated copy when the case
changed that entry, else the shared seed; ``@out`` is the case's output folder."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deepfrack.benchmark.tables_io import write_csv_table, write_json_tables
from deepfrack.workload.loaders import load_workload
from tests.fuzz.mutate import mutate_csv, mutate_json, mutate_yaml
from tests.paths import EXAMPLES, EXERCISES
from tests.synthetic import synthetic_table

FAKE = "tests.benchmark.fake_backend:make"

NET = {
    "network": "tiny",
    "layers": [
        {"name": "c1", "type": "conv", "C": 3, "M": 4, "R": 3, "S": 3, "P": 6, "Q": 6, "pad": 1},
        {"name": "p1", "type": "pool", "C": 4, "M": 4, "R": 2, "S": 2, "P": 3, "Q": 3, "stride": 2},
        {"name": "c2", "type": "conv", "C": 4, "M": 8, "R": 3, "S": 3, "P": 3, "Q": 3, "pad": 1},
    ],
}

_PROBLEM = """\
problem:
  shape:
    name: CNN-Layer
    dimensions: [C, M, R, S, N, P, Q]
    coefficients:
    - {{name: Wstride, default: 1}}
    - {{name: Hstride, default: 1}}
    - {{name: Wdilation, default: 1}}
    - {{name: Hdilation, default: 1}}
  instance:
    C: {C}
    M: {M}
    R: {R}
    S: {R}
    N: 1
    P: {P}
    Q: {P}
    Wstride: 1
    Hstride: 1
    Wdilation: 1
    Hdilation: 1
"""
PROBLEMS = {
    "tiny_layer01.yaml": {"C": 3, "M": 4, "R": 3, "P": 6},
    "tiny_layer02.yaml": {"C": 4, "M": 4, "R": 3, "P": 4},
    "tiny_layer03.yaml": {"C": 4, "M": 2, "R": 1, "P": 4},
}

SIMBA = EXAMPLES / "AlexNet_Simba" / "inputs" / "simba_like"
SIMBA_ERT = EXAMPLES / "AlexNet_Simba" / "timeloop-samples" / "SLC_Layer2_Tile27" / "timeloop-mapper.ERT.yaml"
WS = EXERCISES / "simple_weight_stationary"


@dataclass(frozen=True)
class Case:
    """One fuzz case: ``argv`` for ``deepfrack`` (``@name`` tokens resolved by the runner), the entries it
    copies from the seeds into its own folder (``copies``, top-level names), the files it then writes
    there (``files``, relative paths), and what a successful run must have produced (``check``)."""

    kind: str
    index: int
    argv: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    copies: tuple[str, ...] = ()
    check: str = "schedule"
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind}#{self.index}"


# --------------------------------------------------------------------------------------------- #
# the seeds
# --------------------------------------------------------------------------------------------- #
def build_seeds(base: Path) -> Path:
    """Write the seed inputs into ``base`` (small, valid) and return it."""
    from click.testing import CliRunner

    from deepfrack.cli import main

    base.mkdir(parents=True, exist_ok=True)
    (base / "net.yaml").write_text(yaml.safe_dump(NET, sort_keys=False))
    net = load_workload(base / "net.yaml")
    write_csv_table(synthetic_table(net, seed=1), base / "costs.csv")
    probs = base / "problems"
    probs.mkdir(exist_ok=True)
    for name, dims in PROBLEMS.items():
        (probs / name).write_text(_PROBLEM.format(**dims))
    pnet = load_workload(probs)
    squares = [
        (l, v, t, t) for l, lay in enumerate(pnet.layers) for v in _variants() for t in range(1, lay.P + 1)
    ]
    (base / "jsontables").mkdir(exist_ok=True)
    write_json_tables(synthetic_table(pnet, seed=2, keys=squares), base / "jsontables")
    shutil.copytree(SIMBA / "arch", base / "arch", dirs_exist_ok=True)
    shutil.copytree(SIMBA / "constraints", base / "constraints", dirs_exist_ok=True)
    shutil.copy(SIMBA / "mapper" / "mapper.yaml", base / "mapper.yaml")
    shutil.copy(SIMBA_ERT, base / "ert.yaml")
    model = base / "model"
    model.mkdir(exist_ok=True)
    shutil.copy(WS / "arch.yaml", model / "arch.yaml")
    shutil.copytree(EXERCISES / "_components", model / "components", dirs_exist_ok=True)
    shutil.copy(EXERCISES / "_include" / "default_problem.yaml", model / "problem.yaml")
    shutil.copy(WS / "ref_outputs" / "timeloop-mapper.map.yaml", model / "map.yaml")
    shutil.copy(WS / "ref_outputs" / "timeloop-mapper.ERT.yaml", model / "ERT.yaml")
    runner = CliRunner()
    args = ["optimize", "-w", str(base / "net.yaml"), "-t", str(base / "costs.csv")]
    r = runner.invoke(main, [*args, "--capacity", "unlimited", "-o", str(base / "opt")])
    assert r.exit_code == 0, r.output
    shutil.copy(base / "opt" / "schedule.json", base / "schedule.json")
    bench = ["benchmark", "-w", str(base / "net.yaml"), "-a", str(base / "arch" / "simba_like.yaml")]
    bench += ["-c", str(base / "constraints"), "--backend", FAKE, "--jobs", "1", "--shapes", "square"]
    r = runner.invoke(main, [*bench, "--cache", str(base / "cache.sqlite"), "-o", str(base / "bench")])
    assert r.exit_code == 0, r.output
    with sqlite3.connect(base / "cache.sqlite") as db:  # one self-contained file (no WAL beside it)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    return base


def _variants():
    from deepfrack.residency import VARIANTS

    return VARIANTS


def _read(base: Path, rel: str) -> str:
    return (base / rel).read_text()


# --------------------------------------------------------------------------------------------- #
# command lines
# --------------------------------------------------------------------------------------------- #
def _optimize(tables: str = "@costs.csv", workload: str = "@net.yaml", *extra: str) -> tuple[str, ...]:
    return ("optimize", "-w", workload, "-t", tables, "--capacity", "unlimited", *extra, "-o", "@out")


def _benchmark(*extra: str, workload: str = "@net.yaml", shapes: str = "square") -> tuple[str, ...]:
    return (
        "benchmark",
        "-w",
        workload,
        "-a",
        "@arch/simba_like.yaml",
        "-c",
        "@constraints",
        "--backend",
        FAKE,
        "--jobs",
        "1",
        "--shapes",
        shapes,
        *extra,
        "--cache",
        "@cache.sqlite",
        "-o",
        "@out",
    )


def _run(*extra: str) -> tuple[str, ...]:
    return (
        "run",
        "-w",
        "@net.yaml",
        "-a",
        "@arch/simba_like.yaml",
        "-c",
        "@constraints",
        "--jobs",
        "1",
        *extra,
        "--cache",
        "@cache.sqlite",
        "-o",
        "@out",
    )


def _model(*extra: str) -> tuple[str, ...]:
    return (
        "model",
        "@model/arch.yaml",
        "@model/components",
        "@model/problem.yaml",
        "@model/map.yaml",
        "@model/ERT.yaml",
        *extra,
    )


def _evaluate(tables: str = "@costs.csv") -> tuple[str, ...]:
    return (
        "evaluate",
        "-w",
        "@net.yaml",
        "-t",
        tables,
        "--capacity",
        "unlimited",
        "-s",
        "@schedule.json",
        "-o",
        "@out",
    )


# --------------------------------------------------------------------------------------------- #
# the kinds
# --------------------------------------------------------------------------------------------- #
Maker = Callable[[Path, random.Random, int], Case]


def _mutated(kind: str, i: int, base: Path, rel: str, rng: random.Random, mutator, **kw) -> Case:
    content, note = mutator(_read(base, rel), rng)
    top = rel.split("/", 1)[0]
    copies = (top,) if "/" in rel else ()
    return Case(kind, i, files={rel: content}, copies=copies, note=f"{rel}: {note}", **kw)


def _network(base: Path, rng: random.Random, i: int) -> Case:
    c = _mutated("network", i, base, "net.yaml", rng, mutate_yaml, argv=())
    if i % 3 == 2:
        return _with(c, _benchmark(shapes="needed"), "tables")
    return _with(c, _optimize(), "schedule")


def _problems(base: Path, rng: random.Random, i: int) -> Case:
    rel = "problems/" + rng.choice(sorted(PROBLEMS))
    c = _mutated("problems", i, base, rel, rng, mutate_yaml, argv=())
    if i % 2:
        return _with(c, _benchmark(workload="@problems"), "tables")
    return _with(c, _optimize("@jsontables", "@problems", "--receptive-field", "legacy"), "schedule")


def _arch(base: Path, rng: random.Random, i: int) -> Case:
    if i % 3 == 0:
        c = _mutated("architecture", i, base, "model/arch.yaml", rng, mutate_yaml, argv=())
        return _with(c, _model("--json") if i % 2 else _model(), "model")
    rel = (
        "arch/simba_like.yaml"
        if rng.random() < 0.8
        else "arch/components/" + rng.choice(sorted(p.name for p in (base / "arch" / "components").iterdir()))
    )
    c = _mutated("architecture", i, base, rel, rng, mutate_yaml, argv=())
    if i % 7 == 1:
        return _with(c, _run(), "run")
    return _with(c, _benchmark(), "tables")


def _constraints(base: Path, rng: random.Random, i: int) -> Case:
    rel = "constraints/" + rng.choice(sorted(p.name for p in (base / "constraints").iterdir()))
    c = _mutated("constraints", i, base, rel, rng, mutate_yaml, argv=())
    if i % 3 == 2:
        argv = ("optimize", "-w", "@net.yaml", "-t", "@costs.csv", "-a", "@arch/simba_like.yaml")
        return _with(c, (*argv, "-c", "@" + rel, "-o", "@out"), "schedule")
    return _with(c, _benchmark(), "tables")


def _ert(base: Path, rng: random.Random, i: int) -> Case:
    if i % 3 == 0:
        c = _mutated("ert", i, base, "model/ERT.yaml", rng, mutate_yaml, argv=())
        return _with(c, _model("--json"), "model")
    c = _mutated("ert", i, base, "ert.yaml", rng, mutate_yaml, argv=())
    if i % 6 == 1:
        return _with(c, _run("--ert", "@ert.yaml"), "run")
    return _with(c, _benchmark("--ert", "@ert.yaml"), "tables")


def _mapper(base: Path, rng: random.Random, i: int) -> Case:
    c = _mutated("mapper", i, base, "mapper.yaml", rng, mutate_yaml, argv=())
    if i % 6 == 1:
        return _with(c, _run("--mapper", "@mapper.yaml"), "run")
    return _with(c, _benchmark("--mapper", "@mapper.yaml"), "tables")


def _json_tables(base: Path, rng: random.Random, i: int) -> Case:
    names = sorted(p.name for p in (base / "jsontables").iterdir())
    rel = "jsontables/" + rng.choice(names)
    c = _mutated("json-tables", i, base, rel, rng, mutate_json, argv=())
    return _with(c, _optimize("@jsontables", "@problems", "--receptive-field", "legacy"), "schedule")


def _csv_tables(base: Path, rng: random.Random, i: int) -> Case:
    c = _mutated("csv-tables", i, base, "costs.csv", rng, mutate_csv, argv=())
    if i % 3 == 2:
        return _with(c, _evaluate(), "schedule")
    extra = ("--objective", "cycles") if i % 5 == 1 else ()
    return _with(c, _optimize("@costs.csv", "@net.yaml", *extra), "schedule")


def _schedule(base: Path, rng: random.Random, i: int) -> Case:
    c = _mutated("schedule", i, base, "schedule.json", rng, mutate_json, argv=())
    return _with(c, _evaluate(), "schedule")


def _model_inputs(base: Path, rng: random.Random, i: int) -> Case:
    rel = rng.choice(["model/problem.yaml", "model/map.yaml", "model/problem.yaml", "model/map.yaml"])
    if rng.random() < 0.1:
        rel = "model/components/" + rng.choice(
            sorted(p.name for p in (base / "model" / "components").iterdir())
        )
    c = _mutated("model", i, base, rel, rng, mutate_yaml, argv=())
    return _with(c, _model("--json") if i % 2 else _model(), "model")


def _with(case: Case, argv: tuple[str, ...], check: str) -> Case:
    return Case(case.kind, case.index, argv, case.files, case.copies, check, case.note)


# --------------------------------------------------------------------------------------------- #
# options
# --------------------------------------------------------------------------------------------- #
_OPTION_VALUES = (
    "0",
    "-1",
    "1",
    "2",
    "100000000000000000000",
    "abc",
    "",
    "/nonexistent/x",
    "@net.yaml",
    "@problems",
    "@out",
    "@costs.csv",
    "@jsontables/SLC.json",
    "@binary",
)
_EXTRA_OPTIONS = (
    ("--max-stack-depth", ("0", "1", "2", "1000", "-3", "x")),
    ("--shapes", ("all", "needed", "square", "bogus")),
    ("--variants", ("SLC,,WCC", "slc", "XYZ", "", "SLC,SLC", "WCC")),
    ("--objective", ("cycles", "energy", "edp")),
    ("--receptive-field", ("legacy", "exact", "other")),
    ("--capacity", ("arch", "unlimited", "none")),
    (
        "--backend",
        ("bogus", "os:getcwd", "tests.fuzz.nothing:x", "deepfrack:__version__", "timeloop", "builtin"),
    ),
    ("--batch-size", ("0", "1", "1000000")),
    ("--jobs", ("0", "1", "2")),
    ("--rules", ("timeloop-2023", "timeloop-2024", "x")),
    ("--bogus", ("1",)),
    ("--json", ()),
    ("--progress", ()),
    ("--no-progress", ()),
)


def _cache_variant(base: Path, rng: random.Random) -> tuple[bytes | None, str]:
    """A damaged copy of a valid result cache (or None: a folder where the cache should be)."""
    data = (base / "cache.sqlite").read_bytes()
    op = rng.randrange(6)
    if op == 0:
        return b"not a database at all\n" * 10, "cache: junk file"
    if op == 1:
        return data[: rng.randrange(len(data))], "cache: truncated"
    if op == 2:
        pos = rng.randrange(len(data) // 4, len(data))
        junk = bytes(rng.randrange(256) for _ in range(rng.choice([16, 512, 4096])))
        return data[:pos] + junk + data[pos + len(junk) :], f"cache: junk in the middle at {pos}"
    if op == 3:
        return b"", "cache: empty file"
    if op == 4:
        page = 4096 * rng.randrange(1, max(2, len(data) // 4096))
        return data[:page] + b"\x00" * 4096 + data[page + 4096 :], f"cache: page at {page} zeroed"
    return None, "cache: a folder"


def _options(base: Path, rng: random.Random, i: int) -> Case:
    pick = i % 6
    argv: list[str]
    check = {0: "schedule", 1: "tables", 2: "schedule", 3: "model", 4: "run", 5: "tables"}[pick]
    argv = list([_optimize(), _benchmark(), _evaluate(), _model(), _run(), _benchmark(shapes="needed")][pick])
    files: dict[str, str | bytes] = {"binary": bytes(range(256)) * 4}
    notes = []
    for _ in range(rng.choice([1, 1, 2])):
        op = rng.randrange(6)
        opts = [k for k, a in enumerate(argv) if a.startswith("-") and k > 0]
        if op == 0 and opts:
            k = rng.choice(opts)
            takes_value = k + 1 < len(argv) and not argv[k + 1].startswith("-")
            notes.append(f"{argv[k]} dropped")
            del argv[k : k + (2 if takes_value else 1)]
        elif op == 1 and opts:
            k = rng.choice(opts)
            if k + 1 < len(argv) and not argv[k + 1].startswith("-"):
                v = rng.choice(_OPTION_VALUES)
                notes.append(f"{argv[k]} {v!r}")
                argv[k + 1] = v
        elif op == 2:
            name, values = rng.choice(_EXTRA_OPTIONS)
            argv[1:1] = [name, rng.choice(values)] if values else [name]
            notes.append(f"{' '.join(argv[1:3]) if values else name} added")
        elif op == 3:
            content, note = _cache_variant(base, rng)
            if content is None:
                files["cache.sqlite/keep"] = ""
            else:
                files["cache.sqlite"] = content
            notes.append(note)
        elif op == 4:
            files["out"] = rng.choice(["a file where the output folder goes\n", ""])
            notes.append("--out is a file")
        else:
            cmd = rng.choice(["optimize", "evaluate", "benchmark", "run", "model"])
            notes.append(f"command {argv[0]} -> {cmd}")
            argv[0] = cmd
    return Case("options", i, tuple(argv), files, (), check, "; ".join(notes))


KINDS: dict[str, Maker] = {
    "network": _network,
    "problems": _problems,
    "architecture": _arch,
    "constraints": _constraints,
    "ert": _ert,
    "mapper": _mapper,
    "json-tables": _json_tables,
    "csv-tables": _csv_tables,
    "schedule": _schedule,
    "model": _model_inputs,
    "options": _options,
}


def make_case(kind: str, index: int, base: Path, seed: int = 0) -> Case:
    """The ``index``-th case of ``kind`` (the same case for the same seed, on every machine)."""
    rng = random.Random(f"{seed}:{kind}:{index}")
    return KINDS[kind](base, rng, index)


def describe(case: Case) -> str:
    return json.dumps({"case": case.name, "note": case.note[:300], "argv": list(case.argv)})
