"""The report's pictures, as matplotlib ``Figure`` objects (Agg canvas, no pyplot state) and PNG bytes.

* energy by memory level, fused vs layer by layer (stacked bars, and level by level);
* energy per stack, fused vs the same layers run layer by layer;
* per multi-layer stack, its tiles on the last layer's output plane, numbered in compute order, beside
  how many times each output pixel of the stack's first layer is computed (the halo overlap);
* DRAM traffic per tensor, fused vs layer by layer.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import EngFormatter, MaxNLocator

from deepfrack.dims import TENSORS
from deepfrack.rect import Rect
from deepfrack.search.schedule import Schedule, Stack
from deepfrack.stats.summary import Summary
from deepfrack.workload.layer import Network

FUSED_COLOR = "#1f77b4"
LBL_COLOR = "#9e9e9e"
DPI = 100


def new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas, laid out by matplotlib's constrained layout (legends outside the axes
    included)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _pct(new: float, old: float) -> str:
    return "" if not old else f"{100 * (new / old - 1):+.1f}%"


# --------------------------------------------------------------------------------------------- #
# energy by level
# --------------------------------------------------------------------------------------------- #
def energy_by_level_figure(summary: Summary, title: str) -> Figure:
    """Left: the two schedules' energy as bars stacked by level (µJ). Right: each level's energy,
    fused vs layer by layer, with the change. Needs the per-level split (``summary.split_known``)."""
    levels = list(summary.levels)
    fl, bl = summary.fused.level_energy_pJ or {}, summary.layer_by_layer.level_energy_pJ or {}
    fig = new_figure(12, max(4.5, 0.45 * len(levels) + 2.5))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    colors = [f"C{i % 10}" for i in range(len(levels))]
    bottoms = np.zeros(2)
    for n, c in zip(levels, colors):
        vals = np.array([bl[n], fl[n]]) * 1e-6
        left.bar([0, 1], vals, 0.6, bottom=bottoms, color=c, label=n)
        bottoms += vals
    for x, total in enumerate(bottoms):
        left.annotate(
            f"{total:,.1f}", (x, total), ha="center", va="bottom", xytext=(0, 2), textcoords="offset points"
        )
    left.set_xticks([0, 1], ["layer by layer", "fused"])
    left.set_ylabel("energy (µJ)")
    left.set_title("energy by memory level")
    left.legend(
        reversed(left.get_legend_handles_labels()[0]),
        reversed(levels),
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        title="level",
    )
    left.margins(y=0.12)

    y = np.arange(len(levels))
    h = 0.38
    right.barh(y - h / 2, [bl[n] * 1e-6 for n in levels], h, color=LBL_COLOR, label="layer by layer")
    right.barh(y + h / 2, [fl[n] * 1e-6 for n in levels], h, color=FUSED_COLOR, label="fused")
    for i, n in enumerate(levels):
        right.annotate(
            _pct(fl[n], bl[n]),
            (max(fl[n], bl[n]) * 1e-6, i),
            va="center",
            xytext=(4, 0),
            textcoords="offset points",
            fontsize="small",
        )
    right.set_yticks(y, levels)
    right.invert_yaxis()  # the outermost level (DRAM) on top
    right.set_xlabel("energy (µJ)")
    right.set_title("per level: fused vs layer by layer (change)")
    right.legend(fontsize="small", loc="lower right")
    right.margins(x=0.15)
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------- #
# energy per stack
# --------------------------------------------------------------------------------------------- #
def stack_label(st: Stack) -> str:
    return f"{st.first}" if st.first == st.last else f"{st.first}-{st.last}"


def stack_energy_figure(
    schedule: Schedule, network: Network, per_layer_baseline_pJ: Sequence[float]
) -> Figure:
    """For each stack and in total, fused energy vs the same layers run layer by layer (µJ)."""
    labels, fused, lbl = [], [], []
    for st in schedule.stacks:
        labels.append(stack_label(st))
        fused.append(st.energy_pJ * 1e-6)
        lbl.append(sum(per_layer_baseline_pJ[i] for i in range(st.first, st.last + 1)) * 1e-6)
    labels.append("total")
    fused.append(schedule.total.energy_pJ * 1e-6)
    lbl.append(schedule.layer_by_layer.energy_pJ * 1e-6)

    fig = new_figure(max(5.0, 0.55 * len(labels) + 2), 4)
    ax = fig.add_subplot()
    xs = np.arange(len(labels))
    width = 0.4
    ax.bar(xs - width / 2, lbl, width, label="layer by layer", color=LBL_COLOR)
    ax.bar(xs + width / 2, fused, width, label="fused schedule", color=FUSED_COLOR)
    ax.set_xticks(list(xs), labels, rotation=45 if len(labels) > 14 else 0)
    ax.set_xlabel("stack (layers)")
    ax.set_ylabel("energy (µJ)")
    ax.set_title(f"{network.name}: {100 * schedule.reduction:.1f}% less energy than layer by layer")
    ax.legend()
    return fig


# --------------------------------------------------------------------------------------------- #
# tiles and halo
# --------------------------------------------------------------------------------------------- #
def coverage(plane: tuple[int, int], regions: Sequence[Rect]) -> np.ndarray:
    """How many of ``regions`` cover each pixel of a (height, width) plane."""
    diff = np.zeros((plane[0] + 1, plane[1] + 1), dtype=np.int64)
    for r in regions:
        diff[r.row, r.col] += 1
        diff[r.row + r.h, r.col] -= 1
        diff[r.row, r.col + r.w] -= 1
        diff[r.row + r.h, r.col + r.w] += 1
    return diff.cumsum(axis=0).cumsum(axis=1)[: plane[0], : plane[1]]


def _plane_axes(ax, plane: tuple[int, int], what: str) -> None:
    ax.set_xlim(0, plane[1])
    ax.set_ylim(plane[0], 0)  # row 0 at the top
    ax.set_aspect("equal")
    ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(8, integer=True))
    ax.set_xlabel(f"{what} column")
    ax.set_ylabel(f"{what} row")


def numbered_tiles(
    tiles: Sequence[Rect], ax_pts: tuple[float, float], plane: tuple[int, int]
) -> tuple[list[int], float]:
    """Which tiles (0-based) get their number, and the font size (points): every tile when its number
    fits in it at >= 7 pt, else the first tile of every n-th row of tiles and the last tile."""
    sx, sy = ax_pts[0] / plane[1], ax_pts[1] / plane[0]  # points per pixel
    digits = len(str(len(tiles)))
    # sized for the usual tile (the median): a narrow remainder band's numbers may touch its edges
    tile_w = float(np.median([t.w for t in tiles])) * sx
    tile_h = float(np.median([t.h for t in tiles])) * sy
    size = min(10.0, 0.85 * tile_w / (0.7 * digits), 0.75 * tile_h)
    if size >= 7:
        return list(range(len(tiles))), size
    row_starts = [i for i, t in enumerate(tiles) if t.col == tiles[0].col]
    band_h = min(tiles[i].h for i in row_starts) * sy
    size = max(6.0, min(9.0, 0.75 * band_h))
    step = max(1, int(np.ceil(1.4 * size / max(band_h, 1e-9))))
    chosen = row_starts[::step]
    if len(tiles) - 1 not in chosen:
        chosen.append(len(tiles) - 1)
    return chosen, size


def _tiles_panel(fig: Figure, ax, stack: Stack, network: Network) -> None:
    """The tiles on the last layer's output plane, as a checkerboard, numbered in compute order, the
    order traced by a thin line through their centres."""
    plane = network.layers[stack.last].out_plane
    rows = {r: i for i, r in enumerate(sorted({t.row for t in stack.tiles}))}
    cols = {c: i for i, c in enumerate(sorted({t.col for t in stack.tiles}))}
    for t in stack.tiles:
        shade = "#c6dbef" if (rows[t.row] + cols[t.col]) % 2 else "#eef4fa"
        ax.add_patch(Rectangle((t.col, t.row), t.w, t.h, facecolor=shade, edgecolor="#1f4e79", linewidth=0.5))
    centers = np.array([(t.col + t.w / 2, t.row + t.h / 2) for t in stack.tiles])
    if len(stack.tiles) > 1:
        ax.plot(centers[:, 0], centers[:, 1], color="#d62728", linewidth=0.7, alpha=0.45)
    _plane_axes(ax, plane, network.layers[stack.last].name)
    # the panel's size in points, before layout (laying the figure out twice costs as much as drawing it):
    # about 40% of the figure's width and 80% of its height, less on the long side's neighbour (equal aspect)
    width_pt, height_pt = 0.4 * fig.get_figwidth() * 72, 0.8 * fig.get_figheight() * 72
    scale = min(width_pt / plane[1], height_pt / plane[0])
    chosen, size = numbered_tiles(stack.tiles, (scale * plane[1], scale * plane[0]), plane)
    for i in chosen:
        ax.text(*centers[i], str(i + 1), ha="center", va="center", fontsize=size, color="#102a43")
    how = "every tile numbered" if len(chosen) == len(stack.tiles) else "first tile of each row numbered"
    n = len(stack.tiles)
    ax.set_title(
        f"layer {stack.last} ({network.layers[stack.last].name}) output {plane[0]}x{plane[1]}: "
        f"{n} tile{'s' if n > 1 else ''}\ncompute order row-major from the top-left ({how})",
        fontsize="medium",
    )


def _halo_panel(fig: Figure, ax, stack: Stack, network: Network) -> None:
    """How many tiles compute each output pixel of the stack's first layer, the first two tiles'
    regions outlined."""
    regions = stack.layers[0].regions
    plane = network.layers[stack.first].out_plane
    cov = coverage(plane, regions)
    cmax = max(int(cov.max()), 1)
    # 1 (computed once) pale, more recomputation darker; white where no tile computes a pixel
    cmap = ListedColormap(colormaps["YlOrRd"](np.linspace(0.15, 0.95, cmax))).with_extremes(under="#ffffff")
    im = ax.imshow(
        cov,
        cmap=cmap,
        norm=BoundaryNorm(np.arange(0.5, cmax + 1), cmax),
        extent=(0, plane[1], plane[0], 0),
        interpolation="nearest",
    )
    cbar = fig.colorbar(im, ax=ax, shrink=0.8, extend="min" if cov.min() == 0 else "neither")
    cbar.set_label("times each output pixel is computed" + (" (white: never)" if cov.min() == 0 else ""))
    cbar.set_ticks(np.unique(np.linspace(1, cmax, min(cmax, 8)).round().astype(int)))
    for i, color, style in ((0, "#1f4e79", "-"), (1, "#2ca02c", "--")):
        if i < len(regions):
            r = regions[i]
            ax.add_patch(
                Rectangle(
                    (r.col, r.row),
                    r.w,
                    r.h,
                    fill=False,
                    edgecolor=color,
                    linestyle=style,
                    linewidth=2.2,
                    label=f"tile {i + 1}'s region",
                )
            )
    if len(regions) > 1:
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    _plane_axes(ax, plane, network.layers[stack.first].name)
    computed, total = int(cov.sum()), plane[0] * plane[1]
    ax.set_title(
        f"layer {stack.first} ({network.layers[stack.first].name}) output {plane[0]}x{plane[1]}: "
        f"regions of the {len(regions)} tile{'s' if len(regions) > 1 else ''}\n"
        f"{computed:,} pixels computed for {total:,} "
        f"({100 * (computed / total - 1):+.1f}%)",
        fontsize="medium",
    )


def tiling_figure(stack: Stack, k: int, network: Network) -> Figure:
    """Left: the tiles on the stack's last layer's output plane, numbered in compute order (row-major
    from the top-left). Right: for the stack's first layer, how many tiles compute each of its output
    pixels (> 1: halo recomputed), with the first two tiles' regions outlined."""
    fig = new_figure(13, 6.4)
    left, right = fig.subplots(1, 2)
    _halo_panel(fig, right, stack, network)
    _tiles_panel(fig, left, stack, network)
    fig.suptitle(
        f"stack {k}: layers {stack.first}-{stack.last}, "
        f"tile shape {stack.tile_shape[0]}x{stack.tile_shape[1]}"
    )
    return fig


# --------------------------------------------------------------------------------------------- #
# DRAM traffic
# --------------------------------------------------------------------------------------------- #
def dram_traffic_figure(summary: Summary, title: str) -> Figure:
    """Words each tensor moves to and from DRAM (reads + updates), fused vs layer by layer. Needs the
    DRAM counts (``summary.dram_known``)."""
    kinds = [*TENSORS, "total"]
    f = [summary.fused.dram_total(t) or 0.0 for t in TENSORS]
    b = [summary.layer_by_layer.dram_total(t) or 0.0 for t in TENSORS]
    f.append(sum(f))
    b.append(sum(b))
    fig = new_figure(7.5, 4.5)
    ax = fig.add_subplot()
    xs = np.arange(len(kinds))
    width = 0.4
    ax.bar(xs - width / 2, b, width, color=LBL_COLOR, label="layer by layer")
    ax.bar(xs + width / 2, f, width, color=FUSED_COLOR, label="fused")
    for x, fv, bv in zip(xs, f, b):
        ax.annotate(
            _pct(fv, bv),
            (x, max(fv, bv)),
            ha="center",
            va="bottom",
            xytext=(0, 2),
            textcoords="offset points",
            fontsize="small",
        )
    ax.set_xticks(list(xs), kinds)
    ax.yaxis.set_major_formatter(EngFormatter())
    ax.set_ylabel("words moved to and from DRAM")
    ax.set_title(title)
    ax.legend()
    ax.margins(y=0.12)
    return fig
