"""Long runs and their state: a damaged result cache, whenever the damage shows, is one line naming the
file and what to do; Ctrl-C at any moment of a benchmark (also while it starts) is one line and exit 130;
long work prints progress when stderr is not a terminal; a benchmark too large to finish is refused up
front with the number of entries it would need."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepfrack.benchmark import progress as progress_module
from deepfrack.benchmark.cache import ResultCache
from deepfrack.benchmark.jobs import MAX_ENTRIES, enumerate_jobs
from deepfrack.benchmark.progress import ProgressLines
from deepfrack.cli import main
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS
from deepfrack.workload.layer import Layer, Network
from tests.benchmark.conftest import ARCH, CONSTRAINTS, FAKE, WORKLOAD
from tests.benchmark.test_resume import _cleanup
from tests.paths import ROOT


def _bench(tmp_path: Path, cache: Path, *extra: str, out: str = "out"):
    args = ["benchmark", "-w", str(WORKLOAD), "-a", str(ARCH), "-c", str(CONSTRAINTS), "--backend", FAKE]
    args += ["--jobs", "1", "--cache", str(cache), "-o", str(tmp_path / out), *extra]
    return CliRunner().invoke(main, args)


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("deepfrack: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def full_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cache")
    cache = tmp / "cache.sqlite"
    assert _bench(tmp, cache, "--variants", "SLC,WCC").exit_code == 0
    with sqlite3.connect(cache) as db:  # one file, no WAL beside it, as after a finished run
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    return cache


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_junk_in_the_middle_of_the_cache_is_one_line_whenever_found(
    tmp_path: Path, full_cache: Path, where: float
):
    data = bytearray(full_cache.read_bytes())
    assert len(data) > 3 * 4096
    at = int(len(data) * where) // 4096 * 4096  # a whole page of junk: the header stays valid
    data[at : at + 4096] = bytes((i * 7 + 3) % 256 for i in range(4096))
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(bytes(data))
    line = _one_error_line(_bench(tmp_path, cache, "--variants", "SLC,WCC,EWCC"))
    assert str(cache) in line and "delete the file" in line and "--cache" in line
    assert not (tmp_path / "out").exists()


def test_an_entry_that_does_not_decode_is_damage(tmp_path: Path, full_cache: Path):
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(full_cache.read_bytes())
    with sqlite3.connect(cache) as db:
        db.execute('UPDATE entries SET record = \'{"energy_pJ": "lots"}\' WHERE rowid = 3')
    line = _one_error_line(_bench(tmp_path, cache, "--variants", "SLC,WCC"))
    assert "not a usable deepfrack result cache (entry" in line and "does not decode" in line
    with ResultCache(full_cache) as ok:
        assert len(ok) > 0


def test_a_cache_in_use_or_a_folder_is_one_line(tmp_path: Path):
    (tmp_path / "dir.sqlite").mkdir()
    line = _one_error_line(_bench(tmp_path, tmp_path / "dir.sqlite"))
    assert "dir.sqlite" in line
    with pytest.raises(InputError, match="not a usable deepfrack result cache"):
        ResultCache(tmp_path / "dir.sqlite")


# ------------------------------------------------------------------------------------------------ #
# Ctrl-C
# ------------------------------------------------------------------------------------------------ #
# the entry point the `deepfrack` script calls, once imported (before that is Python's own start-up)
_STARTER = (
    "import sys; from deepfrack.__main__ import main; sys.stderr.write('started\\n'); sys.stderr.flush(); "
    "main()"
)


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5, 1.0, 2.0])
def test_ctrl_c_at_any_moment_is_one_line(tmp_path: Path, delay: float):
    """SIGINT to the whole process group (what a terminal sends) while Python imports deepfrack, while the
    inputs are read, while the workers start, or mid-run: one line on stderr, exit code 130."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    env.update(FAKE_DELAY="0.01", FAKE_HOLD_LAYER="3")
    args = ["benchmark", "-w", str(WORKLOAD), "-a", str(ARCH), "-c", str(CONSTRAINTS), "--backend", FAKE]
    args += [
        "--jobs",
        "2",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "-o",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", _STARTER, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline() == "started\n"  # past the interpreter's own start-up
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        _cleanup(proc)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("deepfrack: interrupted"), err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ #
# progress
# ------------------------------------------------------------------------------------------------ #
def test_progress_lines_come_every_few_seconds_and_not_before():
    now = [0.0]
    out = io.StringIO()
    p = ProgressLines("benchmark", "entries", every=5.0, stream=out, clock=lambda: now[0])
    for t, done in [(1.0, 10), (4.9, 40), (5.0, 50), (6.0, 60), (10.5, 100)]:
        now[0] = t
        p.update(done, 200)
    assert out.getvalue().splitlines() == [
        "benchmark: 50/200 entries (25%), 5 s, about 15 s left",
        "benchmark: 100/200 entries (50%), 10 s, about 10 s left",
    ]


def test_a_benchmark_prints_progress_lines_when_stderr_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)
    r = _bench(tmp_path, tmp_path / "c.sqlite", "--variants", "SLC", "--batch-size", "20")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("benchmark: ")]
    assert len(lines) >= 3 and lines[-1].startswith("benchmark: 108/108 entries (100%)")
    r = _bench(tmp_path, tmp_path / "c2.sqlite", "--variants", "SLC", "--no-progress", out="out2")
    assert r.exit_code == 0 and not any(
        ln.startswith("benchmark: ") and "/" in ln for ln in r.stderr.splitlines()
    )


# ------------------------------------------------------------------------------------------------ #
# limits
# ------------------------------------------------------------------------------------------------ #
def test_a_benchmark_too_large_is_refused_up_front_with_its_size():
    big = Network.chain("big", [Layer("c", C=3, M=8, P=2048, Q=2048, R=3, S=3)], source="big.yaml")
    start = time.process_time()
    with pytest.raises(InputError) as err:
        enumerate_jobs(big, "all", VARIANTS)
    assert time.process_time() - start < 1.0
    n = 2048 * 2048 * len(VARIANTS)
    assert str(err.value) == (
        f"big.yaml: shapes 'all' make {n:,} entries to benchmark, more than deepfrack computes in one run "
        f"({MAX_ENTRIES:,}); benchmark the shapes the search needs (shapes 'needed')"
    )
    assert len(enumerate_jobs(big, "square", VARIANTS)) == 2048 * len(VARIANTS)
