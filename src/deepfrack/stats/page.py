"""The report's content as plain data, rendered by jinja2 templates shipped with the package
(``templates/report.html.j2``: one self-contained page, pictures embedded as data URIs;
``templates/report.md.j2``: the same tables for terminals and diffs)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from deepfrack.search.schedule import Schedule
from deepfrack.stats.summary import SummaryLine
from deepfrack.workload.layer import Network


def uJ(pj: float) -> float:
    """Microjoules rounded as schedule.json writes them (six decimals: every picojoule)."""
    return round(pj * 1e-6, 6)


@dataclass(frozen=True)
class Picture:
    """A picture of the report: its file name and title, its PNG bytes, or why it was skipped."""

    name: str
    title: str
    png: bytes | None = None
    skipped: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png or b"").decode("ascii")


@dataclass(frozen=True)
class StackLine:
    """One stack of the report's stack table (energies in µJ as schedule.json gives them)."""

    index: int
    layers: str
    names: str
    tiles: int
    tile_shape: str
    cached: str
    fused_uJ: float
    layer_by_layer_uJ: float
    recomputed_macs: int

    @property
    def saving_pct(self) -> float:
        return 0.0 if not self.layer_by_layer_uJ else 100.0 * (1.0 - self.fused_uJ / self.layer_by_layer_uJ)


def stack_lines(schedule: Schedule, network: Network, baseline_pJ: Sequence[float]) -> list[StackLine]:
    names = [layer.name for layer in network.layers]
    out = []
    for k, st in enumerate(schedule.stacks):
        span = range(st.first, st.last + 1)
        out.append(
            StackLine(
                index=k,
                layers=f"{st.first}" if st.first == st.last else f"{st.first}-{st.last}",
                names=names[st.first] if st.first == st.last else f"{names[st.first]} .. {names[st.last]}",
                tiles=len(st.tiles),
                tile_shape=f"{st.tile_shape[0]}x{st.tile_shape[1]}",
                cached=", ".join(str(l) for l in st.cached_layers) or "none",
                fused_uJ=uJ(st.energy_pJ),
                layer_by_layer_uJ=uJ(sum(baseline_pJ[l] for l in span)),
                recomputed_macs=st.macs - sum(network.layers[l].macs for l in span) + st.skipped_macs,
            )
        )
    return out


def headline(schedule: Schedule) -> dict[str, Any]:
    """The totals of both schedules, as schedule.json gives them, and the changes."""
    tot, base = schedule.total, schedule.layer_by_layer
    cycles_change = None
    if tot.cycles is not None and base.cycles:
        cycles_change = 100.0 * (tot.cycles / base.cycles - 1.0)
    return {
        "fused_uJ": uJ(tot.energy_pJ),
        "layer_by_layer_uJ": uJ(base.energy_pJ),
        "reduction_pct": round(100.0 * schedule.reduction, 4),
        "fused_cycles": tot.cycles,
        "layer_by_layer_cycles": base.cycles,
        "cycles_change_pct": cycles_change,
        "fused_macs": tot.macs,
        "layer_by_layer_macs": base.macs,
        "recompute_pct": round(100.0 * schedule.recompute, 4),
    }


def input_lines(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's inputs as (name, text), the given ones only."""
    out = []
    for key, value in inputs.items():
        if value is None:
            continue
        if key == "capacity" and isinstance(value, Mapping):
            value = ", ".join(f"{lvl} {words:,} words" for lvl, words in value.items())
        out.append((key, str(value)))
    return out


def fmt_number(x: float | int | None, digits: int = 2) -> str:
    """Thousands separators; integers without decimals; '' for None."""
    if x is None:
        return ""
    if isinstance(x, int) or (float(x).is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    return f"{x:,.{digits}f}"


def fmt_pct(x: float | None) -> str:
    return "" if x is None else f"{x:+.2f}%"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("deepfrack.stats", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_number
    env.filters["pct"] = fmt_pct
    return env


def report_context(
    schedule: Schedule,
    network: Network,
    inputs: Mapping[str, Any],
    baseline_pJ: Sequence[float],
    summary_lines: Sequence[SummaryLine],
    pictures: Sequence[Picture],
    notes: Sequence[str],
) -> dict[str, Any]:
    return {
        "network": network.name,
        "n_layers": len(network),
        "receptive_field": schedule.receptive_field,
        "objective": schedule.objective,
        "inputs": input_lines(inputs),
        "headline": headline(schedule),
        "stacks": stack_lines(schedule, network, baseline_pJ),
        "summary": list(summary_lines),
        "pictures": [p for p in pictures if p.png is not None],
        "skipped": [p for p in pictures if p.png is None],
        "notes": list(notes),
    }


def render(template: str, context: Mapping[str, Any]) -> str:
    """``report.html`` or ``report.md`` from the context of ``report_context``."""
    return _environment().get_template(f"{template}.j2").render(**context)
