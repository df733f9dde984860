"""Running fuzz cases: each in a forked child (so that a hang inside a C call, a memory blow-up or a crash
of the interpreter cannot take the fuzzer with it), with a wall-clock limit and an address-space limit,
and classifying what happened.

Outcomes: ``accepted`` (exit 0, outputs valid), ``error`` (exit 2 with one line naming the file or the
option, nothing written) and the defects: ``crash`` (a traceback, another exit code, a signal),
``hang`` (over the time limit), ``partial`` (failed but left output behind), ``message`` (exit 2 but the
message is not one line of at most ``MAX_MESSAGE`` characters naming a file or an option), ``output``
(exit 0 but the outputs are missing or unreadable)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import select
import shutil
import signal
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.kinds import Case

MAX_MESSAGE = 300
#: case-local entries: never taken from the seeds
_LOCAL = ("out", "cache.sqlite", "binary")
DEFECTS = ("crash", "hang", "partial", "message", "output")


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: str  # accepted, error, or one of DEFECTS
    detail: str
    seconds: float


def _resolve(token: str, case_dir: Path, base: Path, local: set[str]) -> str:
    if not token.startswith("@"):
        return token
    rel = token[1:]
    top = rel.split("/", 1)[0]
    return str((case_dir if top in local or top in _LOCAL else base) / rel)


def materialize(case: Case, case_dir: Path, base: Path) -> list[str]:
    """Write the case's files into ``case_dir`` and return its resolved argv."""
    case_dir.mkdir(parents=True, exist_ok=True)
    for top in case.copies:
        src = base / top
        if src.is_dir():
            shutil.copytree(src, case_dir / top, dirs_exist_ok=True)
        else:
            shutil.copy(src, case_dir / top)
    for rel, content in case.files.items():
        p = case_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8", errors="surrogatepass")
    local = {rel.split("/", 1)[0] for rel in case.files} | set(case.copies)
    return [_resolve(a, case_dir, base, local) for a in case.argv]


# --------------------------------------------------------------------------------------------- #
# in the child
# --------------------------------------------------------------------------------------------- #
def _check_outputs(check: str, out: Path, stdout: str) -> str:
    """'' when a successful run left what it should, else what is wrong."""
    import json as _json

    if check == "model":
        if not stdout.strip():
            return "no output on stdout"
        if stdout.lstrip().startswith("{"):
            doc = _json.loads(stdout)
            if "energy_pJ" not in doc:
                return "model --json without energy_pJ"
        return ""
    if check in ("schedule", "run"):
        doc = _json.loads((out / "schedule.json").read_text())
        if not isinstance(doc.get("stacks"), list) or "total" not in doc:
            return "schedule.json without stacks or total"
        if not (out / "deepfrack.log").read_text().strip():
            return "empty deepfrack.log"
        if not (out / "energy.png").read_bytes().startswith(b"\x89PNG"):
            return "energy.png is not a PNG"
    if check in ("tables", "run"):
        from deepfrack.benchmark.tables_io import read_tables

        read_tables(out / "tables" if check == "run" else out)
    return ""


def _out_dir(argv: list[str], case_dir: Path) -> Path:
    """The output folder the command line names (the last --out or -o wins, as in click)."""
    out = case_dir / "out"
    for flag, value in itertools.pairwise(argv):
        if flag in ("-o", "--out"):
            out = case_dir / value
    return out


def _child(argv: list[str], case: Case, case_dir: Path, result_file: Path, mem_bytes: int) -> None:
    from click.testing import CliRunner

    from deepfrack.cli import main

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mem_bytes if hard == resource.RLIM_INFINITY else min(mem_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    os.environ["XDG_CACHE_HOME"] = str(case_dir / "xdg")
    os.environ.pop("DEEPFRACK_CACHE", None)
    os.chdir(case_dir)
    res = CliRunner().invoke(main, argv, catch_exceptions=True)
    exc = res.exception
    tb = ""
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-3000:]
    bad_output = ""
    if res.exit_code == 0 and not tb:
        try:
            bad_output = _check_outputs(case.check, _out_dir(argv, case_dir), res.stdout)
        except Exception as e:  # any failure to read the outputs is what we are looking for
            bad_output = f"{type(e).__name__}: {e}"[:500]
    result_file.write_text(
        json.dumps(
            {
                "exit": res.exit_code,
                "stderr": res.stderr[:200_000],
                "traceback": tb,
                "bad_output": bad_output,
            }
        )
    )


def _kill_tree(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


@dataclass
class _Running:
    case: Case
    pid: int
    pidfd: int | None
    case_dir: Path
    argv: list[str]
    out_before: bool
    start: float


def _start(case: Case, base: Path, work: Path, mem_bytes: int) -> _Running:
    case_dir = work / case.name.replace("#", "_")
    shutil.rmtree(case_dir, ignore_errors=True)
    argv = materialize(case, case_dir, base)
    out_before = (case_dir / "out").exists()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so that its workers are killed with it
        code = 0
        try:
            os.setpgid(0, 0)
            _child(argv, case, case_dir, case_dir / ".result.json", mem_bytes)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also here: no race with the child's own call
    try:
        fd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    return _Running(case, pid, fd, case_dir, argv, out_before, start)


def _finish(run: _Running, status: int | None, timeout: float) -> Result:
    seconds = time.monotonic() - run.start
    case = run.case
    try:
        _kill_tree(run.pid)  # a hung child, or any worker it left behind
        if status is None:
            os.waitpid(run.pid, 0)
            return Result(case, "hang", f"still running after {timeout:.0f} s", seconds)
        if os.WIFSIGNALED(status):
            return Result(case, "crash", f"killed by signal {os.WTERMSIG(status)}", seconds)
        result_file = run.case_dir / ".result.json"
        if not result_file.exists():
            return Result(case, "crash", f"child exited {os.WEXITSTATUS(status)} without a result", seconds)
        data = json.loads(result_file.read_text())
        return classify(case, data, run.case_dir, run.argv, run.out_before, seconds)
    finally:
        if run.pidfd is not None:
            os.close(run.pidfd)
        shutil.rmtree(run.case_dir, ignore_errors=True)


def _out_written(case_dir: Path, before: bool) -> bool:
    out = case_dir / "out"
    if before:  # a file the case put where the output folder goes: it must be untouched
        return out.is_dir()
    return out.exists()


def _names(argv: list[str]) -> set[str]:
    """What a message may name: every argument that is not an option, as given, as a path and by the
    names of its folders."""
    names = set()
    for a in argv[1:]:
        if a.startswith("-"):
            continue
        p = Path(a)
        names.update({a, str(p), p.name, *(q.name for q in p.parents if q.name)})
    names.discard("")
    return names


def classify(
    case: Case, data: dict, case_dir: Path, argv: list[str], out_before: bool, seconds: float
) -> Result:
    code, stderr, tb = data["exit"], data["stderr"], data["traceback"]
    if tb or "Traceback (most recent call last)" in stderr:
        return Result(case, "crash", (tb or stderr).strip().splitlines()[-1][:300], seconds)
    if code == 0:
        if data["bad_output"]:
            return Result(case, "output", data["bad_output"], seconds)
        return Result(case, "accepted", "", seconds)
    if code != 2:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        return Result(case, "crash", f"exit code {code}: {last[:300]}", seconds)
    if _out_written(case_dir, out_before):
        return Result(case, "partial", "exit 2 but the output folder was written", seconds)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("deepfrack: error: ")]
    others = [
        ln
        for ln in lines
        if not ln.startswith(("deepfrack: error: ", "deepfrack: warning: ", "deepfrack: note: "))
    ]
    if len(errors) != 1 or others or not lines or lines[-1] is not errors[0]:
        shown = (others or lines or ["(no message)"])[0]
        return Result(case, "message", f"not one error line ({len(lines)} lines): {shown[:200]}", seconds)
    msg = errors[0]
    if len(msg) > MAX_MESSAGE:
        return Result(case, "message", f"{len(msg)} characters: {msg[:150]}...", seconds)
    body = msg[len("deepfrack: error: ") :]
    if not (any(n and n in body for n in _names(argv)) or "--" in body or "Usage" in body):
        return Result(case, "message", f"names no file or option: {msg[:200]}", seconds)
    return Result(case, "error", msg, seconds)


# --------------------------------------------------------------------------------------------- #
# many cases
# --------------------------------------------------------------------------------------------- #
def run_cases(
    cases: Iterable[Case],
    base: Path,
    work: Path,
    timeout: float = 10.0,
    parallel: int = 1,
    mem_bytes: int = 3 << 30,
) -> Iterator[Result]:
    """Run cases in forked children, ``parallel`` at a time, yielding results as they finish."""
    pending = iter(cases)
    running: list[_Running] = []
    exhausted = False
    while running or not exhausted:
        while not exhausted and len(running) < parallel:
            case = next(pending, None)
            if case is None:
                exhausted = True
            else:
                running.append(_start(case, base, work, mem_bytes))
        if not running:
            break
        wait = max(0.0, min(r.start + timeout for r in running) - time.monotonic())
        fds = [r.pidfd for r in running if r.pidfd is not None]
        if len(fds) == len(running):
            select.select(fds, [], [], wait)
        else:
            time.sleep(min(wait, 0.005))
        still = []
        for r in running:
            done, status = os.waitpid(r.pid, os.WNOHANG)
            if done:
                yield _finish(r, status, timeout)
            elif time.monotonic() - r.start > timeout:
                yield _finish(r, None, timeout)
            else:
                still.append(r)
        running = still


def run_case(case: Case, base: Path, work: Path, timeout: float = 10.0) -> Result:
    """Run one case in a forked child and classify the outcome."""
    return next(run_cases([case], base, work, timeout))


COLUMNS = (
    "cases",
    "clean errors",
    "accepted",
    "crashes",
    "hangs",
    "partial outputs",
    "bad messages",
    "bad outputs",
)
_KEYS = ("error", "accepted", "crash", "hang", "partial", "message", "output")


def table(results: Iterable[Result]) -> str:
    """The outcomes by kind, as a Markdown table with a total row."""
    by_kind: dict[str, Counter] = {}
    for r in results:
        by_kind.setdefault(r.case.kind, Counter())[r.outcome] += 1
    total: Counter = Counter()
    rows = ["| kind | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for kind, c in by_kind.items():
        total.update(c)
        rows.append(f"| {kind} | {sum(c.values())} | " + " | ".join(str(c[k]) for k in _KEYS) + " |")
    rows.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[k]) for k in _KEYS) + " |")
    return "\n".join(rows)
