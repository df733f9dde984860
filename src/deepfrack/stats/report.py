"""Readable outputs of a search: the log (deepfrack.log) and a bar chart of fused vs layer-by-layer energy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from deepfrack.search.schedule import Schedule, SearchStats, Stack
from deepfrack.workload.layer import Network


def _fmt_shape(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _tiles_summary(st: Stack) -> str:
    """'4 tiles of 7x7' or '9 tiles: 4 of 5x5, 2 of 5x3, 2 of 3x5, 1 of 3x3' (grid with remainders)."""
    counts: dict[tuple[int, int], int] = {}
    for t in st.tiles:
        counts[t.shape] = counts.get(t.shape, 0) + 1
    n = len(st.tiles)
    if len(counts) == 1:
        return f"{n} tile{'s' if n > 1 else ''} of {_fmt_shape(next(iter(counts)))}"
    parts = ", ".join(f"{c} of {_fmt_shape(s)}" for s, c in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{n} tiles: {parts}"


def _layer_by_layer_of(st: Stack, per_layer_pJ: Sequence[float]) -> float:
    return sum(per_layer_pJ[i] for i in range(st.first, st.last + 1))


def render_log(
    schedule: Schedule,
    network: Network,
    inputs: Mapping[str, object],
    stats: SearchStats | None,
    elapsed_s: float,
    per_layer_baseline_pJ: Sequence[float] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The text of deepfrack.log: inputs, stacks (tiles, cached layers, energy), totals, reduction,
    recompute, search statistics and elapsed time."""
    names = [layer.name for layer in network.layers]
    out: list[str] = []
    out.append(f"deepfrack schedule for {network.name} ({len(network)} layers)")
    out.append(f"receptive field: {schedule.receptive_field}; objective: {schedule.objective}")
    for key, value in inputs.items():
        if value is None:
            continue
        if key == "capacity" and isinstance(value, Mapping):
            value = ", ".join(f"{lvl} {words:,} words" for lvl, words in value.items())
        out.append(f"{key}: {value}")
    for note in notes:
        out.append(f"note: {note}")
    out.append("")
    for k, st in enumerate(schedule.stacks, start=1):
        span = f"layer {st.first}" if st.first == st.last else f"layers {st.first}-{st.last}"
        out.append(
            f"Stack {k}: {span} ({names[st.first]}{'' if st.first == st.last else ' .. ' + names[st.last]}): "
            f"{st.energy_pJ * 1e-6:.2f} uJ"
        )
        out.append(
            f"  tiles: {_tiles_summary(st)} (tile shape {_fmt_shape(st.tile_shape)} on layer {st.last})"
        )
        cached = ", ".join(f"{i} ({names[i]})" for i in st.cached_layers) or "none"
        out.append(f"  weights cached: {cached}")
        if per_layer_baseline_pJ is not None:
            out.append(
                f"  layer by layer for these layers: "
                f"{_layer_by_layer_of(st, per_layer_baseline_pJ) * 1e-6:.2f} uJ"
            )
        if st.cycles is not None:
            out.append(f"  cycles: {st.cycles:,.0f}")
    out.append("")
    tot, base = schedule.total, schedule.layer_by_layer
    out.append(f"Fused schedule:  {tot.energy_pJ * 1e-6:.2f} uJ")
    out.append(f"Layer by layer:  {base.energy_pJ * 1e-6:.2f} uJ")
    out.append(f"Energy reduction: {100 * schedule.reduction:.2f}%")
    if tot.cycles is not None and base.cycles is not None:
        change = 0.0 if not base.cycles else 100 * (tot.cycles / base.cycles - 1)
        word = "more" if change > 0 else "fewer"
        out.append(
            f"Cycles: {tot.cycles:,.0f} fused vs {base.cycles:,.0f} layer by layer "
            f"({abs(change):.2f}% {word})"
        )
    if tot.macs >= base.macs:
        out.append(
            f"MACs: {tot.macs:,} fused vs {base.macs:,} layer by layer "
            f"(halo recompute {100 * schedule.recompute:.2f}%)"
        )
    elif schedule.receptive_field == "legacy":
        out.append(
            f"MACs: {tot.macs:,} fused vs {base.macs:,} layer by layer: the fused tiles compute only "
            f"{100 * tot.macs / base.macs:.2f}% of the network's MACs"
        )
        out.append(
            "note: the fused tiles do not cover every layer's output (the legacy rule ignores padding and "
            "pooling), so this saving is not a like-for-like comparison"
        )
    else:
        skipped = schedule.skipped_macs
        out.append(
            f"MACs: {tot.macs:,} fused vs {base.macs:,} layer by layer: {schedule.skipped_pixels:,} output "
            f"pixels that no consumer reads are not computed ({skipped:,} MACs; e.g. the last row of an odd "
            f"plane before a 2x2, stride-2 pool), more than the halo recompute adds "
            f"({tot.macs - (base.macs - skipped):,} MACs)"
        )
    if stats is not None:
        out.append("")
        out.append(
            f"Search: {stats.stacks_considered:,} stacks, {stats.tilings_considered:,} tilings considered; "
            f"{stats.tilings_skipped_missing:,} skipped for shapes missing from the tables, "
            f"{stats.tilings_skipped_capacity:,} for capacity"
        )
        for ex in stats.skipped_examples:
            out.append(f"  e.g. {ex}")
    out.append(f"Elapsed time: {elapsed_s:.3f} s")
    return "\n".join(out) + "\n"


def plot_energy(
    schedule: Schedule, network: Network, per_layer_baseline_pJ: Sequence[float], path: str | Path
) -> None:
    """Bar chart: for each stack and in total, fused energy vs the same layers run layer by layer (uJ)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, fused, lbl = [], [], []
    for st in schedule.stacks:
        labels.append(f"{st.first}" if st.first == st.last else f"{st.first}-{st.last}")
        fused.append(st.energy_pJ * 1e-6)
        lbl.append(_layer_by_layer_of(st, per_layer_baseline_pJ) * 1e-6)
    labels.append("total")
    fused.append(schedule.total.energy_pJ * 1e-6)
    lbl.append(schedule.layer_by_layer.energy_pJ * 1e-6)

    fig = Figure(figsize=(max(5.0, 0.7 * len(labels) + 2), 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = range(len(labels))
    width = 0.4
    ax.bar([x - width / 2 for x in xs], lbl, width, label="layer by layer", color="#9e9e9e")
    ax.bar([x + width / 2 for x in xs], fused, width, label="fused schedule", color="#1f77b4")
    ax.set_xticks(list(xs), labels)
    ax.set_xlabel("stack (layers)")
    ax.set_ylabel("energy (µJ)")
    ax.set_title(f"{network.name}: {100 * schedule.reduction:.1f}% less energy than layer by layer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
