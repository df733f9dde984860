"""The log of a search (deepfrack.log): inputs, stacks, totals, recompute and what the search skipped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deepfrack.search.ondemand import OnDemandStats
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


def _order_and_recompute(st: Stack, network: Network) -> list[str]:
    """The compute order of a stack's tiles and the MACs it recomputes (halo) over its layers alone."""
    alone = sum(network.layers[l].macs for l in range(st.first, st.last + 1))
    extra = st.macs - (alone - st.skipped_macs)  # fused = alone - skipped + recomputed halo
    pct = f" ({100 * extra / alone:+.2f}%)" if alone else ""
    if extra >= 0:
        macs = f"  recomputed MACs (halo): {extra:,}{pct} over these layers alone"
        if st.skipped_macs:
            macs += f", less {st.skipped_macs:,} MACs of pixels no consumer reads"
    else:
        macs = f"  MACs: {-extra:,} fewer than these layers alone{pct}: the tiles do not compute every output"
    return ["  compute order: row-major from the top-left (left to right, then the next row down)", macs]


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
    for k, st in enumerate(schedule.stacks):  # numbered from 0, as in schedule.json
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
        if st.first != st.last:
            out.extend(_order_and_recompute(st, network))
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
        if isinstance(stats, OnDemandStats):
            out.append(
                f"On demand: {stats.entries_requested:,} entries asked for ({stats.entries_computed:,} "
                f"computed, the rest from the cache) in {stats.rounds} rounds; "
                f"{stats.tilings_resolved:,} tilings costed exactly"
            )
    out.append(f"Elapsed time: {elapsed_s:.3f} s")
    return "\n".join(out) + "\n"
