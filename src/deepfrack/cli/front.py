"""Options of ``deepfrack optimize`` and ``deepfrack run`` for energy and cycles together: the objective
(energy, cycles, edp), the energy-cycles front's files and budgets (docs/search.md, "Energy and cycles
together"); an unmet budget prints the closest point and exits with code 1."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from deepfrack import api
from deepfrack.cli.common import options

OBJECTIVE = click.option(
    "--objective",
    type=click.Choice(["energy", "cycles", "edp"]),
    default="energy",
    show_default=True,
    help="What to minimize: energy, cycles, or edp (energy x cycles of the whole schedule, from the exact "
    "energy-cycles front). cycles and edp need cycles in every table entry.",
)

FRONT = options(
    click.option(
        "--pareto",
        is_flag=True,
        help="Also write pareto.csv and pareto.png: every non-dominated (energy, cycles) schedule.",
    ),
    click.option(
        "--pareto-schedules",
        is_flag=True,
        help="--pareto, and every front point's schedule as pareto/point-NNN.json.",
    ),
    click.option(
        "--pareto-epsilon",
        type=click.FloatRange(min=0, max=1e6),
        default=0.0,
        show_default=True,
        help="Thin the front: every exact point is within a factor 1 + EPSILON in energy and in cycles of "
        "a point kept (0: the exact front).",
    ),
    click.option(
        "--max-cycles",
        type=click.FloatRange(min=0),
        default=None,
        help="Latency budget: the best schedule (by --objective) of the front with at most N cycles.",
    ),
    click.option(
        "--max-energy-uJ",
        "max_energy_uj",
        type=click.FloatRange(min=0),
        default=None,
        help="Energy budget: the best schedule (by --objective) of the front with at most X uJ.",
    ),
)


def front_options(
    pareto: bool,
    pareto_schedules: bool,
    epsilon: float,
    max_cycles: float | None,
    max_energy_uj: float | None,
) -> api.FrontOptions:
    return api.FrontOptions(pareto or pareto_schedules, pareto_schedules, epsilon, max_cycles, max_energy_uj)


@contextlib.contextmanager
def budget_exit() -> Iterator[None]:
    """An unmet budget: one line with the closest point on stderr, exit code 1."""
    try:
        yield
    except api.BudgetNotMet as exc:
        click.echo(f"deepfrack: {exc.describe(_as_option)}", err=True)
        sys.exit(1)


def _as_option(argument: str, value: float) -> str:
    """A budget as the command line gives it: ``max_cycles`` is ``--max-cycles``."""
    return f"--{argument.replace('_', '-')} {value:g}"
