"""The energy-cycles front on networks of the zoo (prints figures; not a test).

    PYTHONPATH=src python benchmarks/bench_pareto.py --root DIR [--networks alexnet,vgg16,resnet18]
        [--arch simba-like] [--make] [--jobs 2] [--cache FILE] [--repeat 2]

Per network (a zoo name or a network file's path, e.g. examples/networks/alexnet.yaml), the tables are
DIR/NAME/tables: every entry the search may use on the architecture with its capacity, as
``deepfrack run -w NAME -a ARCH --exhaustive -o DIR/NAME`` writes them (``--make`` runs that first when
they are missing). Then, in this process, back to back (CPU seconds,
``time.process_time``, the best of ``--repeat``):

* the energy search alone (``deepfrack.search.optimize``);
* the front (``deepfrack.search.pareto.pareto_front``) and the front with every point's schedule built
  and checked (``evaluated_front``: what ``deepfrack optimize --objective edp --pareto`` does before
  writing);

and the front's size and its energy-, cycles- and EDP-optimal points against layer by layer.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deepfrack import api
from deepfrack.benchmark.inputs import load_inputs
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.search import optimize
from deepfrack.search.pareto import evaluated_front, pareto_front


def _cpu(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def one(name: str, root: Path, arch: str, repeat: int) -> None:
    network, _ = api.load_network(name)
    table = read_tables(root / name / "tables")
    cap = api.capacity_of(load_inputs(arch))
    t_energy, (sched, _) = _cpu(lambda: optimize(network, table, capacity=cap), repeat)
    t_front, (points, _) = _cpu(lambda: pareto_front(network, table, capacity=cap), repeat)
    t_eval, (front, stats) = _cpu(
        lambda: evaluated_front(network, table, capacity=cap, objective="edp"), repeat
    )
    lbl = sched.layer_by_layer
    print(f"\n{name}: {len(network)} layers, {len(table.records):,} table entries")
    print(
        f"  CPU s: energy search {t_energy:.2f}; front {t_front:.2f} ({t_front / t_energy:.1f}x); "
        f"front + every point's schedule checked {t_eval:.2f} ({t_eval / t_energy:.1f}x); "
        f"{stats.knapsacks_solved:,} two-objective knapsacks"
    )
    print(f"  front: {len(front.points)} points (dynamic program: {len(points)})")
    base_edp = lbl.energy_uJ * lbl.cycles
    print(
        f"  layer by layer: {lbl.energy_uJ:,.1f} uJ, {lbl.cycles:,.0f} cycles, EDP {base_edp:.4g} uJ x cycles"
    )
    for what in ("energy", "cycles", "edp"):
        k = front.best(what)
        p, s = front.points[k], front.schedules[k]
        e_uJ, edp = p.energy_pJ * 1e-6, p.edp * 1e-6
        fused = sum(st.depth > 1 for st in s.stacks)
        print(
            f"  {what}-optimal (point {k}): {e_uJ:,.1f} uJ ({e_uJ / lbl.energy_uJ - 1:+.2%}), "
            f"{p.cycles:,.0f} cycles ({p.cycles / lbl.cycles - 1:+.2%}), "
            f"EDP {edp:.4g} ({edp / base_edp - 1:+.2%}); {len(s.stacks)} stacks, {fused} fused"
        )
    # the front's lowest energy is the energy search's optimum
    assert abs(sched.total.energy_pJ / front.points[0].energy_pJ - 1) < 1e-9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--networks", default="alexnet,vgg16,resnet18")
    ap.add_argument("--arch", default="simba-like")
    ap.add_argument("--make", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    for name in args.networks.split(","):
        if args.make and not (args.root / name / "tables").exists():
            api.run(workload=name, arch=args.arch, exhaustive=True, jobs=args.jobs, cache=args.cache,
                    out=args.root / name)  # fmt: skip
        one(name, args.root, args.arch, args.repeat)


if __name__ == "__main__":
    main()
