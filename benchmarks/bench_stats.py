"""What the statistics and the report add to a run (prints figures; not a test).

    PYTHONPATH=src python benchmarks/bench_stats.py [--tables DIR --workload W [--arch A --constraints C]]

CPU time (``time.process_time``) of ``optimize`` and of ``write_stats`` on the same tables, back to back
in one process, three rounds (the first pays matplotlib's and jinja2's imports). Without options:
examples/networks/vgg16.yaml with synthetic tables holding every shape the search may ask for
(tests/synthetic.py; energy only, so the per-level pictures are skipped). With --tables: real tables,
e.g. the folder ``deepfrack run`` writes (out/alexnet/tables).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the synthetic tables live with the tests

from tests.synthetic import synthetic_table

from deepfrack.arch import capacity_spec, load_architecture, load_constraints
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.search import optimize
from deepfrack.search.required import required_shapes
from deepfrack.workload.loaders import load_workload

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", type=Path, default=ROOT / "examples/networks/vgg16.yaml")
    ap.add_argument("--tables", type=Path)
    ap.add_argument("--arch", type=Path)
    ap.add_argument("--constraints", type=Path)
    args = ap.parse_args()
    net = load_workload(args.workload)
    if args.tables is None:
        table = synthetic_table(net, seed=0, keys=required_shapes(net))
        what = f"{net.name}, synthetic tables ({len(table):,} entries)"
    else:
        table = read_tables(args.tables)
        what = f"{net.name}, {args.tables} ({len(table):,} entries)"
    cap = None
    if args.arch is not None and args.constraints is not None:
        cap = capacity_spec(load_architecture(args.arch), load_constraints(args.constraints))
    print(what, "capacity:", "unlimited" if cap is None else dict(cap.words))
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(3):
            t = time.process_time()
            schedule, _ = optimize(net, table, capacity=cap)
            search = time.process_time() - t
            t = time.process_time()
            from deepfrack.stats import write_stats

            written = write_stats(Path(tmp) / str(i), schedule, net, table, {"workload": str(args.workload)})
            stats = time.process_time() - t
            print(
                f"round {i + 1}: optimize {search:.2f} s, write_stats {stats:.2f} s CPU "
                f"({len(written.files)} files, {len(schedule.stacks)} stacks, "
                f"{sum(len(s.tiles) for s in schedule.stacks if s.depth > 1)} fused tiles)"
            )


if __name__ == "__main__":
    main()
