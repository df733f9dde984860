"""Kill a real `deepfrack benchmark` process (kill -9, Ctrl-C) mid-run, run it again, and compare with an
uninterrupted run: nothing lost, nothing corrupt, the same files."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.benchmark.conftest import ARCH, CONSTRAINTS, FAKE, TINY_NET, WORKLOAD
from tests.paths import ROOT

TOTAL = 756  # AlexNet_Simba: 7 variants x 108 square tiles, all distinct
HOLD_LAYER = 3  # its 91 entries come last and hang in interrupted runs


def _run_args(out: Path, cache: Path, batch_size: int = 6) -> list[str]:
    return [
        sys.executable,
        "-m",
        "deepfrack",
        "benchmark",
        "--workload",
        str(WORKLOAD),
        "--arch",
        str(ARCH),
        "--constraints",
        str(CONSTRAINTS),
        "--backend",
        FAKE,
        "--jobs",
        "2",
        "--batch-size",
        str(batch_size),
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--no-progress",
    ]


def _env(delay: float, pid_log: Path | None = None, hold_layer: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env["FAKE_DELAY"] = str(delay)
    for var in ("FAKE_WEIGHT_CAPACITY", "FAKE_FAIL", "FAKE_PID_LOG", "FAKE_HOLD_LAYER"):
        env.pop(var, None)
    if hold_layer is not None:
        env["FAKE_HOLD_LAYER"] = str(hold_layer)
    if pid_log is not None:
        env["FAKE_PID_LOG"] = str(pid_log)
    return env


def _rows(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def _start(
    out: Path, cache: Path, delay: float, pid_log: Path | None = None, batch_size: int = 6
) -> subprocess.Popen:
    """A run to interrupt: the last layer's jobs hang (FAKE_HOLD_LAYER), so it cannot finish first however
    slow the machine is."""
    return subprocess.Popen(
        _run_args(out, cache, batch_size),
        env=_env(delay, pid_log, hold_layer=HOLD_LAYER),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie is dead too
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def _wait_rows(proc: subprocess.Popen, cache: Path, at_least: int, limit_s: float = 60.0) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        n = _rows(cache)
        if n >= at_least:
            return n
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run committed nothing in time")


def _cleanup(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # orphaned workers, if any
    proc.wait()


def _finish(out: Path, cache: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        _run_args(out, cache), env=_env(0.0), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("ref")
    done = _finish(tmp / "out", tmp / "cache.sqlite")
    assert f"{TOTAL} entries ({TOTAL} distinct): {TOTAL} computed, 0 from cache" in done.stderr
    return _files(tmp / "out")


@pytest.mark.parametrize("kill_after_rows", [0, 30])
def test_kill_9_then_resume(tmp_path: Path, reference: dict[str, bytes], kill_after_rows: int):
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    proc = _start(out, cache, delay=0.01)
    try:
        if kill_after_rows:
            _wait_rows(proc, cache, kill_after_rows)
        else:
            time.sleep(0.3)  # during start-up: imports, workers spawning
        proc.send_signal(signal.SIGKILL)  # the parent only, as `kill -9 <pid>` does
        proc.wait(timeout=10)
    finally:
        _cleanup(proc)
    saved = _rows(cache)
    assert saved < TOTAL, "the run finished before it was killed; nothing was tested"
    assert not out.exists()  # outputs are written only at the end
    if cache.exists():
        con = sqlite3.connect(cache)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
    done = _finish(out, cache)
    assert f"{TOTAL - saved} computed, {saved} from cache" in done.stderr
    assert _files(out) == reference


def test_ctrl_c_then_resume(tmp_path: Path, reference: dict[str, bytes]):
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    proc = _start(out, cache, delay=0.01)
    try:
        _wait_rows(proc, cache, 12)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground process group
        _, err = proc.communicate(timeout=30)
    finally:
        _cleanup(proc)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    saved = _rows(cache)
    assert 12 <= saved < TOTAL
    assert not out.exists()
    done = _finish(out, cache)
    assert f"{saved} from cache" in done.stderr
    assert _files(out) == reference


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="workers follow a killed parent on Linux only"
)
def test_workers_follow_a_killed_parent(tmp_path: Path):
    out, cache, pids = tmp_path / "out", tmp_path / "cache.sqlite", tmp_path / "workers.txt"
    # batches of 3 entries x 20 s: a worker that did not follow its parent would run on for up to a
    # minute, well past the 15 s we give the workers to die (the property is "eventually dies", not
    # "dies within a deadline": a loaded machine may be slow to deliver and handle the signal)
    proc = _start(out, cache, delay=20.0, pid_log=pids, batch_size=3)
    try:
        workers = _wait_workers(proc, pids, 2)
        time.sleep(0.5)  # let them pick up their first batch
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15.0
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers)
    finally:
        _cleanup(proc)


def _wait_workers(proc: subprocess.Popen, pid_log: Path, n: int, limit_s: float = 60.0) -> list[int]:
    """The process ids of the first ``n`` workers, once they have built their evaluators."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = [int(x) for x in pid_log.read_text().split()] if pid_log.exists() else []
        if len(found) >= n:
            return found[:n]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the workers did not start in time")


# --------------------------------------------------------------------------------------------- #
# `deepfrack run` (on demand): killed mid-run, run again
# --------------------------------------------------------------------------------------------- #
def _run_cmd(net: Path, out: Path, cache: Path) -> list[str]:
    return [
        sys.executable, "-m", "deepfrack", "run", "-w", str(net), "-a", str(ARCH), "-c", str(CONSTRAINTS),
        "--backend", FAKE, "--jobs", "2", "--cache", str(cache), "-o", str(out), "--no-progress",
    ]  # fmt: skip


def _schedule(out: Path) -> dict:
    doc = json.loads((out / "schedule.json").read_text())
    return {k: doc[k] for k in ("stacks", "total", "layer_by_layer")}


def test_on_demand_run_killed_then_resumed(tmp_path: Path):
    """The search asks for entries round by round; killed while a round hangs, the run leaves the
    committed entries in the cache and writes nothing; run again, it computes only the rest and writes
    what an uninterrupted run writes."""
    net = tmp_path / "tiny.yaml"
    net.write_text(TINY_NET)
    ref = subprocess.run(
        _run_cmd(net, tmp_path / "ref", tmp_path / "ref.sqlite"), env=_env(0.0), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    total = _rows(tmp_path / "ref.sqlite")
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    proc = subprocess.Popen(
        _run_cmd(net, out, cache), env=_env(0.01, hold_layer=2), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_rows(proc, cache, 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        _cleanup(proc)
    saved = _rows(cache)
    assert 3 <= saved < total
    assert not out.exists()
    done = subprocess.run(
        _run_cmd(net, out, cache), env=_env(0.0), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"{total - saved} computed, {saved} from cache" in done.stderr
    assert _schedule(out) == _schedule(tmp_path / "ref")
    assert _files(out / "tables") == _files(tmp_path / "ref" / "tables")
