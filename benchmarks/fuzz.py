"""Fuzz the command line with mutated inputs of every kind and print the outcomes by kind (not a test;
``tests/test_fuzz.py`` runs the same cases with a smaller budget).

    PYTHONPATH=src python benchmarks/fuzz.py [--cases 3300] [--seed 0] [--parallel 2] [--timeout 10]

Each case is one input file (or the command line) mutated from small valid seeds built from the bundled
examples -- network YAML, Timeloop problem folders, architecture, constraints, ERT, mapper.yaml, the
original's JSON tables, costs.csv, schedule.json, ``model`` inputs and options -- and one ``deepfrack``
command run on it in a forked child with a time limit (tests/fuzz/). A case must end with exit 0 and
valid outputs, or exit 2 with one line naming the file (or option) and nothing written; anything else
is listed by kind: crashes (a traceback, another exit code, a signal), hangs (over the time limit),
partial outputs, bad messages (several lines, over 300 characters, naming no file) and bad outputs
(exit 0 but unreadable outputs). The same seed gives the same cases on every machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fuzzer lives with the tests

from tests.fuzz.kinds import KINDS, build_seeds, make_case
from tests.fuzz.runner import DEFECTS, run_cases, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=3300, help="total cases, spread evenly over the kinds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=2, help="cases run at a time")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a case counts as a hang")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    ap.add_argument("--examples", type=int, default=3, help="defects shown per kind and outcome")
    args = ap.parse_args()

    kinds = [k for k in args.kinds.split(",") if k]
    per_kind = max(1, args.cases // len(kinds))
    with tempfile.TemporaryDirectory(prefix="deepfrack-fuzz-", dir=_tmp_root()) as tmp:
        base = build_seeds(Path(tmp) / "seeds")
        cases = (make_case(k, i, base, args.seed) for k in kinds for i in range(per_kind))
        n_cases = per_kind * len(kinds)
        start = time.perf_counter()
        results = []
        for n, r in enumerate(run_cases(cases, base, Path(tmp) / "work", args.timeout, args.parallel), 1):
            results.append(r)
            if n % 100 == 0:
                print(f"  {n}/{n_cases} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr)
        elapsed = time.perf_counter() - start
    cpu = _cpu_seconds()
    print(
        f"{len(results)} cases (seed {args.seed}, {per_kind} per kind), {elapsed:.0f} s wall, "
        f"{cpu:.0f} s CPU (cases and fuzzer)\n"
    )
    print(table(results))
    shown: dict[tuple[str, str], int] = defaultdict(int)
    print()
    for r in results:
        if r.outcome in DEFECTS and shown[(r.case.kind, r.outcome)] < args.examples:
            shown[(r.case.kind, r.outcome)] += 1
            print(f"{r.outcome:8} {r.case.name:16} {r.case.note[:120]}\n         -> {r.detail[:240]}")
    slow = sorted(results, key=lambda r: -r.seconds)[:5]
    print("\nslowest cases: " + ", ".join(f"{r.case.name} {r.seconds:.1f} s ({r.outcome})" for r in slow))


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the cases), user and system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _tmp_root() -> str | None:
    """/dev/shm when there is one: cases write many small files, which need not reach a disk."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


if __name__ == "__main__":
    main()
