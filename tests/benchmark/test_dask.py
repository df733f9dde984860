"""The benchmark on a Dask cluster: the same tables as the local pool, a killed worker survived, bad
schedulers refused up front. One LocalCluster (2 worker processes, one thread each) serves the module."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from click.testing import CliRunner  # noqa: E402

from deepfrack.benchmark.backend import resolve_backend  # noqa: E402
from deepfrack.benchmark.cache import ResultCache  # noqa: E402
from deepfrack.benchmark.dask_executor import (  # noqa: E402
    DaskExecutor,
    EvaluatorPlugin,
    _check_workers,
    _failed,
)
from deepfrack.benchmark.executors import LocalExecutor, make_executor  # noqa: E402
from deepfrack.benchmark.inputs import load_inputs  # noqa: E402
from deepfrack.benchmark.jobs import enumerate_jobs  # noqa: E402
from deepfrack.benchmark.runner import run_benchmark  # noqa: E402
from deepfrack.cli import main  # noqa: E402
from deepfrack.errors import InputError  # noqa: E402
from deepfrack.workload.loaders import load_network_yaml  # noqa: E402
from tests.benchmark.conftest import ARCH, CONSTRAINTS, FAKE, WORKLOAD  # noqa: E402
from tests.benchmark.fake_backend import FakeBackend, make  # noqa: E402
from tests.benchmark.test_resume import _cleanup, _rows, _wait_rows  # noqa: E402
from tests.paths import ROOT  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture
def setup(tiny_net: Path, tmp_path: Path):
    return load_network_yaml(tiny_net), load_inputs(ARCH, constraints=CONSTRAINTS), tmp_path


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _bench(tmp: Path, label: str, jobs, backend, executor, batch_size: int = 4):
    with ResultCache(tmp / f"{label}.sqlite") as cache:
        return run_benchmark(jobs, backend, cache, executor, out_dir=tmp / label, batch_size=batch_size)


@pytest.mark.parametrize("backend_name", ["fake", "builtin"])
def test_same_tables_as_the_local_pool(setup, cluster, backend_name: str):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square")
    backend = make(inputs) if backend_name == "fake" else resolve_backend("builtin", inputs)
    local = _bench(tmp, "local", jobs, backend, LocalExecutor(2))
    with DaskExecutor(cluster.scheduler_address) as ex:
        assert ex.workers == 2
        dask = _bench(tmp, "dask", jobs, backend, ex)
        # the run's plugin is gone from the workers afterwards
        plugins = ex._client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert not any(p.startswith("deepfrack-") for names in plugins.values() for p in names)
    s, d = local.summary, dask.summary
    assert (d.entries, d.unique, d.computed, d.failed, d.workers) == (147, 98, 98, 0, 2)
    assert (s.computed, s.infeasible) == (d.computed, d.infeasible)
    assert _files(tmp / "dask") == _files(tmp / "local")  # byte for byte


class _InterruptAfter:
    """Passes ``after`` batches through, then raises KeyboardInterrupt in the consumer (Ctrl-C)."""

    def __init__(self, inner, after: int):
        self.inner, self.after, self.workers = inner, after, inner.workers

    def run(self, backend, batches):
        with contextlib.closing(self.inner.run(backend, batches)) as stream:
            for n, item in enumerate(stream):
                if n == self.after:
                    raise KeyboardInterrupt
                yield item


def _scheduler_tasks(client) -> list[str]:
    return client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])


def test_interrupted_then_resumed(setup, cluster):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square")
    backend = make(inputs)
    with DaskExecutor(cluster.scheduler_address) as ex, ResultCache(tmp / "c.sqlite") as cache:
        with pytest.raises(KeyboardInterrupt):
            run_benchmark(jobs, backend, cache, _InterruptAfter(ex, 3), out_dir=tmp / "out", batch_size=4)
        assert len(cache) == 3 * 4 and not (tmp / "out").exists()
        # nothing of the interrupted run is left on the cluster
        # the batches in flight were cancelled: the scheduler forgets every task of the run
        deadline = time.monotonic() + 30
        while _scheduler_tasks(ex._client) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _scheduler_tasks(ex._client) == []
        again = run_benchmark(jobs, backend, cache, ex, out_dir=tmp / "out", batch_size=4)
    assert (again.summary.from_cache, again.summary.computed) == (12, 98 - 12)
    assert _bench(tmp, "ref", jobs, backend, LocalExecutor(2)).summary.computed == 98
    assert _files(tmp / "out") == _files(tmp / "ref")


def _busy_worker(client) -> tuple[str, int] | None:
    """(address, pid) of a worker executing a task now."""
    busy = client.run(lambda dask_worker: (dask_worker.state.executing_count, os.getpid()))
    for address, (executing, pid) in sorted(busy.items()):
        if executing:
            return address, pid
    return None


def test_a_worker_killed_mid_batch_has_its_batch_retried(setup, cluster, client):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square", variants=["SLC", "WCC"])
    slow = FakeBackend(inputs_digest={v: inputs.content(v) for v in {j.variant for j in jobs}}, delay_s=0.05)
    killed: list[tuple[str, int]] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = _busy_worker(client)
            if found:
                os.kill(found[1], signal.SIGKILL)
                killed.append(found)
                return
            time.sleep(0.01)

    with DaskExecutor(cluster.scheduler_address) as ex:
        killer = threading.Thread(target=kill_one)
        killer.start()
        try:
            dask = _bench(tmp, "dask", jobs, slow, ex)  # 4 jobs x 0.05 s a batch
        finally:
            killer.join()
    assert killed, "no worker was caught mid-batch; nothing was tested"
    assert dask.summary.failed == 0 and dask.summary.computed == dask.summary.unique
    assert _bench(tmp, "ref", jobs, make(inputs), LocalExecutor(2)).summary.failed == 0
    assert _files(tmp / "dask") == _files(tmp / "ref")
    # the nanny restarted the killed worker: a new process holds its place
    client.wait_for_workers(2, timeout=60)
    pids = client.run(os.getpid)
    assert killed[0][1] not in pids.values()


def test_a_worker_with_other_code_refuses_its_batches(setup, cluster, client):
    net, inputs, tmp = setup
    jobs = enumerate_jobs(net, "square", variants=["SLC"])
    with pytest.raises(InputError, match="runs other deepfrack code than this client"):
        _check_workers(client, "other code", cluster.scheduler_address)
    with DaskExecutor(cluster.scheduler_address) as ex:
        ex._code = "other code"  # as if the client ran another deepfrack
        res = _bench(tmp, "dask", jobs, make(inputs), ex)
    assert res.summary.failed == len(jobs) and res.summary.computed == res.summary.unique
    ((status, reason),) = res.summary.causes
    assert status == "failed" and "WorkerMismatch" in reason and "install the same deepfrack" in reason
    with ResultCache(tmp / "dask.sqlite") as cache:  # failed entries are not cached
        assert len(cache) == 0


def test_the_plugin_builds_one_evaluator_per_thread(setup):
    _, inputs, _ = setup
    plugin = EvaluatorPlugin(make(inputs), code="x")
    plugin.setup(worker=None)  # type: ignore[arg-type]
    plugin._checked = True  # (the code check is the test above's)
    first = plugin.evaluator()
    assert plugin.evaluator() is first
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(plugin.evaluator()))
    t.start()
    t.join()
    assert other[0] is not first


# --------------------------------------------------------------------------------------------- #
# the CLI
# --------------------------------------------------------------------------------------------- #
def _cli_args(tiny_net: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        "benchmark",
        "-w",
        str(tiny_net),
        "-a",
        str(ARCH),
        "-c",
        str(CONSTRAINTS),
        "--backend",
        FAKE,
        "--variants",
        "SLC,WCC",
        "--cache",
        str(tmp / "cache.sqlite"),
        "-o",
        str(tmp / "out"),
        "--no-progress",
        *extra,
    ]


def test_cli_scheduler_from_the_environment(tiny_net: Path, tmp_path: Path, cluster):
    runner = CliRunner()
    env = {"DEEPFRACK_SCHEDULER": cluster.scheduler_address}
    res = runner.invoke(main, _cli_args(tiny_net, tmp_path), env=env)
    assert res.exit_code == 0, res.output
    assert "benchmark (fake, 2 workers): 42 entries (28 distinct): 28 computed" in res.output
    assert (tmp_path / "out" / "costs.csv").is_file()


def test_cli_unreachable_scheduler(tiny_net: Path, tmp_path: Path):
    import socket

    with socket.socket() as s:  # a local port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(main, _cli_args(tiny_net, tmp_path, "--scheduler", f"tcp://127.0.0.1:{port}"))
    assert res.exit_code == 2
    assert res.output == (
        f"deepfrack: error: --scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "
        "connection refused\n"
    )
    assert list(tmp_path.iterdir()) == [tiny_net]  # no cache, no output folder


def test_a_server_that_is_not_a_scheduler():
    """A port where something accepts connections but never answers (another service): Dask's client
    alone would wait there for ever."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(
            InputError, match=f"cannot reach the Dask scheduler at {address}: no answer within 0.5 s"
        ):
            DaskExecutor(address, connect_timeout=0.5)
        assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no-such-thing", "'no-such-thing' is neither 'local', a scheduler address"),
        ("{tmp}/bad.json", "bad.json: not a Dask scheduler file"),
        ("{tmp}/empty.json", "empty.json: address: a Dask scheduler file names the scheduler's address"),
    ],
)
def test_cli_bad_scheduler_value(tiny_net: Path, tmp_path: Path, value: str, message: str):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("{}")
    res = CliRunner().invoke(main, _cli_args(tiny_net, tmp_path, "--scheduler", value.format(tmp=tmp_path)))
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and message in res.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache.sqlite").exists()


def test_cli_without_dask(tiny_net: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    res = CliRunner().invoke(main, _cli_args(tiny_net, tmp_path, "--scheduler", "local"))
    assert res.exit_code == 2
    assert res.output == (
        "deepfrack: error: --scheduler: running on Dask needs the dask extra: pip install 'deepfrack[dask]'\n"
    )
    assert not (tmp_path / "out").exists()
    with make_executor(2) as ex:  # without --scheduler, Dask is not needed
        assert isinstance(ex, LocalExecutor)


def test_failed_batches_name_the_cause():
    killed = _failed(distributed.KilledWorker("deepfrack-x-batch-3", None, 3), 2)
    assert [o.status for o in killed] == ["error", "error"]
    assert "died each time" in killed[0].reason
    (other,) = _failed(KeyError("deepfrack-x"), 1)
    assert other.status == "error" and other.reason == "on the Dask worker: KeyError: 'deepfrack-x'"


def test_cli_run_on_the_cluster(tiny_net: Path, tmp_path: Path, cluster):
    """`deepfrack run --scheduler` gives the tables and schedule of the local pool."""

    def run(label: str, *extra: str) -> dict:
        args = ["run", "-w", str(tiny_net), "-a", str(ARCH), "-c", str(CONSTRAINTS), "--backend", FAKE]
        args += ["--cache", str(tmp_path / f"{label}.sqlite"), "-o", str(tmp_path / label), *extra]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        return json.loads((tmp_path / label / "schedule.json").read_text())

    local = run("local", "--jobs", "2")
    dask = run("dask", "--scheduler", cluster.scheduler_address)
    assert dask["stacks"] == local["stacks"] and dask["total"] == local["total"]
    assert _files(tmp_path / "dask" / "tables") == _files(tmp_path / "local" / "tables")


def test_cli_ctrl_c_on_a_local_cluster(tmp_path: Path):
    """Ctrl-C (SIGINT to the terminal's process group: the client and the cluster's workers) stops a
    `--scheduler local` run with one line and exit code 130; the same command then resumes."""
    cache, out = tmp_path / "cache.sqlite", tmp_path / "out"
    args = [sys.executable, "-m", "deepfrack", "benchmark", "-w", str(WORKLOAD), "-a", str(ARCH)]
    args += ["-c", str(CONSTRAINTS), "--backend", FAKE, "--jobs", "2", "--batch-size", "6"]
    args += ["--cache", str(cache), "-o", str(out), "--no-progress", "--scheduler", "local"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]), FAKE_DELAY="0.01")
    # the last layer's batches hang, so the run is surely going when the interrupt comes
    proc = subprocess.Popen(
        args,
        env={**env, "FAKE_HOLD_LAYER": "3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_rows(proc, cache, 12)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        _cleanup(proc)
    assert proc.returncode == 130, err
    assert err.splitlines() == [
        f"deepfrack: interrupted; {out} was not written. Finished entries are saved in {cache}: "
        "run the same command again to resume."
    ]
    saved = _rows(cache)
    assert 12 <= saved < 756 and not out.exists()
    # resumed by the local pool: the cache does not care which executor filled it
    done = subprocess.run(args[:-2], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{756 - saved} computed, {saved} from cache" in done.stderr
