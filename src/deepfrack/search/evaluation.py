"""Cost and check a given schedule (``evaluate``), and the layer-by-layer baseline.

The optimizer builds its final schedule with the same functions, so a schedule it returns and the
same schedule given to ``evaluate`` cost the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.cost.table import CostRecord, CostTable
from deepfrack.errors import ScheduleError
from deepfrack.objective import ENERGY, Objective
from deepfrack.rect import Rect
from deepfrack.residency import Variant
from deepfrack.search.costs import LevelUse, capacity_levels, missing_error
from deepfrack.search.graph import Role, layer_role, live_tensors, single_exit_break, words_per_pixel
from deepfrack.search.plan import walk_axis
from deepfrack.search.receptive import RULES, Rule, legacy_lookup
from deepfrack.search.schedule import Schedule, Stack, StackLayer, StackSpec, Totals
from deepfrack.workload.layer import Network


def layer_by_layer_records(network: Network, table: CostTable) -> list[CostRecord]:
    """The SLC record of every layer on its whole plane, in network order.
    MissingCostError naming the table when an SLC entry is absent."""
    return [_slc_record(network, table, i) for i in range(len(network))]


def _slc_record(network: Network, table: CostTable, i: int) -> CostRecord:
    q, p = network.layers[i].out_plane
    rec = table.get(i, Variant.SLC, q, p)
    if rec is None:
        raise missing_error(network, table, i, Variant.SLC, (q, p), None)
    return rec


def layer_by_layer(network: Network, table: CostTable) -> Totals:
    """Every layer alone, SLC on its whole plane. MissingCostError when an SLC entry is
    absent."""
    energy, cycles, macs = 0.0, 0.0, 0
    for layer, rec in zip(network.layers, layer_by_layer_records(network, table)):
        energy += rec.energy_pJ
        cycles = None if cycles is None or rec.cycles is None else cycles + rec.cycles
        macs += layer.macs
    return Totals(energy, cycles, macs)


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown receptive-field rule {rule!r}; expected one of {', '.join(RULES)}")


def check_partition(network: Network, specs: Sequence[StackSpec]) -> None:
    """ScheduleError unless the stacks cover layers 0..n-1 once each, contiguous and in order."""
    n = len(network)
    if not specs:
        raise ScheduleError(f"the schedule has no stacks; the network has {n} layers")
    expected = 0
    for k, sp in enumerate(specs):
        if not (0 <= sp.first < n and 0 <= sp.last < n):
            raise ScheduleError(f"stack {k} (layers {sp.first}-{sp.last}): layers must be in 0..{n - 1}")
        if sp.first > sp.last:
            raise ScheduleError(f"stack {k}: first layer {sp.first} is after its last layer {sp.last}")
        if sp.first < expected:
            overlap = sp.first
            raise ScheduleError(
                f"layer {overlap} ({network.layers[overlap].name}) is in two stacks (stack {k} starts at "
                f"{sp.first} but the previous stack ends at {expected - 1}); "
                "stacks must be contiguous and in order"
            )
        if sp.first > expected:
            raise ScheduleError(
                f"layer {expected} ({network.layers[expected].name}) is in no stack (stack {k} starts at "
                f"{sp.first}); stacks must be contiguous and in order"
            )
        expected = sp.last + 1
    if expected < n:
        raise ScheduleError(
            f"layer {expected} ({network.layers[expected].name}) is in no stack (the last stack "
            f"ends at {expected - 1})"
        )


def _check_spec(network: Network, k: int, sp: StackSpec, rule: Rule) -> None:
    """ScheduleError for a stack whose tile shape, cached layers or span is not valid."""
    last = network.layers[sp.last]
    q, p = last.out_plane
    name = f"stack {k} (layers {sp.first}-{sp.last})"
    th, tw = sp.tile_shape
    if th <= 0 or tw <= 0:
        raise ScheduleError(f"{name}: tile_shape {th}x{tw} must be positive")
    if th > q or tw > p:
        raise ScheduleError(
            f"{name}: tile_shape {th}x{tw} (h x w) is larger than layer {sp.last} ({last.name})'s "
            f"{q}x{p} output plane"
        )
    for l in sp.cached_layers:
        if not sp.first <= l <= sp.last:
            raise ScheduleError(f"{name}: cached layer {l} is outside the stack")
        if not network.layers[l].has_weights:
            raise ScheduleError(
                f"{name}: cached layer {l} ({network.layers[l].name}) is a "
                f"{network.layers[l].kind} layer and has no weights to cache"
            )
    if sp.first == sp.last:
        if (th, tw) != (q, p):
            raise ScheduleError(
                f"{name}: a single-layer stack runs as SLC on its whole plane; tile_shape must be "
                f"[{q}, {p}], got [{th}, {tw}]"
            )
        if sp.cached_layers:
            raise ScheduleError(f"{name}: a single-layer stack runs as SLC (one tile) and caches no weights")
        return
    _check_single_exit(network, name, sp)
    if rule == "exact":
        for l in range(sp.first + 1, sp.last + 1):
            inside = [j for j in network.producers(l) if j >= sp.first]
            if l in network.unchained and inside:
                raise ScheduleError(
                    f"{name}: layers {inside[-1]} ({network.layers[inside[-1]].name}) and "
                    f"{l} ({network.layers[l].name}) do not chain "
                    "(the workload gives no padding or pooling between them), so the exact "
                    "receptive-field rule cannot fuse them; split the stack there, give a network YAML with "
                    "padding and pooling, or use --receptive-field legacy"
                )
    else:
        for l in range(sp.first, sp.last):
            if network.consumers(l) != (l + 1,):
                raise ScheduleError(
                    f"{name}: the legacy rule reproduces the original DeepFrack, which fuses chains only, "
                    f"but layer {l} ({network.layers[l].name}) is read by layers "
                    f"{', '.join(map(str, network.consumers(l)))}; use the exact rule"
                )
    for l in sp.cached_layers:
        if layer_role(network, l, sp.first, sp.last).mixed:
            raise ScheduleError(
                f"{name}: cached layer {l} ({network.layers[l].name}) reads tensors made both inside and "
                "outside the stack; only a layer that reads one or the other has a cached variant"
            )


def _check_single_exit(network: Network, name: str, sp: StackSpec) -> None:
    """ScheduleError naming the first layer of the stack (but its last) read by a layer outside it."""
    broken = single_exit_break(network, sp.first, sp.last)
    if broken is None:
        return
    l, reader = broken
    what = network.layers[l].name
    if reader is None:
        raise ScheduleError(
            f"{name}: layer {l} ({what}) is a network output (no layer reads it), so it can only be "
            "the last layer of a stack; split the stack after it"
        )
    raise ScheduleError(
        f"{name}: layer {l} ({what}) is read by layer {reader} ({network.layers[reader].name}), "
        f"after the stack's last layer; every layer of a stack but its last must have all its consumers "
        "inside the stack (single exit)"
    )


def stack_spans(
    network: Network, table: CostTable | None, sp: StackSpec, rule: Rule
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer of a multi-layer stack: (row starts, row lengths, column starts, column lengths) of its
    bands, from the uniform grid ``sp.tile_shape`` on the last layer."""
    if rule == "legacy" and table is None:
        raise ValueError("the legacy rule needs the cost table")
    available = legacy_lookup(table) if rule == "legacy" else None  # type: ignore[arg-type]
    walks = [
        walk_axis(network, sp.last, sp.first, axis, np.array([sp.tile_shape[axis]]), rule, available)
        for axis in (0, 1)
    ]
    return {l: (*walks[0].spans(l), *walks[1].spans(l)) for l in range(sp.first, sp.last + 1)}


def _single_stack(network: Network, table: CostTable, i: int) -> Stack:
    rec = _slc_record(network, table, i)
    q, p = network.layers[i].out_plane
    tile = Rect(0, 0, q, p)
    return Stack(
        i,
        i,
        (q, p),
        (tile,),
        (),
        (StackLayer(i, (Variant.SLC,), (tile,)),),
        rec.energy_pJ,
        rec.cycles,
        network.layers[i].macs,
    )


def _layer_cost(
    network: Network,
    table: CostTable,
    rule: Rule,
    l: int,
    first_v: Variant,
    later_v: Variant,
    rows: np.ndarray,
    cols: np.ndarray,
) -> tuple[float, float | None]:
    """Energy (pJ) and cycles (None when a record lacks them) of layer ``l`` over all tiles, by tile class:
    the top-left tile uses ``first_v``, the others ``later_v``."""
    counts: Counter[tuple[Variant, int, int]] = Counter()
    counts[(first_v, int(rows[0]), int(cols[0]))] += 1
    hc, wc = Counter(rows.tolist()), Counter(cols.tolist())
    for h, nh in sorted(hc.items()):
        for w, nw in sorted(wc.items()):
            n = nh * nw - (1 if (h, w) == (rows[0], cols[0]) else 0)
            if n:
                counts[(later_v, h, w)] += n
    energy, cycles = 0.0, 0.0
    for (v, h, w), n in counts.items():
        rec = table.get(l, v, h, w)
        if rec is None:
            raise missing_error(network, table, l, v, (h, w), rule)
        energy += n * rec.energy_pJ
        cycles = None if cycles is None or rec.cycles is None else cycles + n * rec.cycles
    return energy, cycles


def _role_cost(
    network: Network,
    table: CostTable,
    rule: Rule,
    l: int,
    role: Role,
    cached: bool,
    rows: np.ndarray,
    cols: np.ndarray,
) -> tuple[float, float | None]:
    """Energy and cycles of layer ``l`` over all tiles in its role; a mixed join costs
    ``on + share x (dram - on)`` (summed over tiles, which is the same as per tile)."""
    first_v, later_v = role.variant(False), role.variant(cached)
    energy, cycles = _layer_cost(network, table, rule, l, first_v, later_v, rows, cols)
    dram_v = role.dram_variant
    if dram_v is None:
        return energy, cycles
    e_dram, c_dram = _layer_cost(network, table, rule, l, dram_v, dram_v, rows, cols)
    f = role.outside
    energy += f * (e_dram - energy)
    cycles = None if cycles is None or c_dram is None else cycles + f * (c_dram - cycles)
    return energy, cycles


def _check_capacity(network: Network, k: int, sp: StackSpec, spans, levels: Sequence[LevelUse]) -> None:
    """ScheduleError naming the first (tile, layer) step, in compute order, whose live words exceed a
    level: cached weights, the in-stack tensors this or a later layer reads (``graph.live_tensors``)
    and the layer's output unless it is the last one, each at its home level."""
    if not levels:
        return
    cached_words = sum(network.layers[l].weights for l in sp.cached_layers)
    nr, nc = spans[sp.last][1].size, spans[sp.last][3].size
    areas: dict[int, np.ndarray] = {}

    def area(l: int) -> np.ndarray:
        if l not in areas:
            areas[l] = np.outer(spans[l][1], spans[l][3])
        return areas[l]

    worst: tuple[int, int, LevelUse, int, int, int, int] | None = None
    for l in range(sp.first, sp.last + 1):
        live = live_tensors(network, sp.first, sp.last, l)
        lay = network.layers[l]
        for lv in levels:
            w_words = cached_words if lv.weights else 0
            in_words = np.zeros((nr, nc), dtype=np.int64)
            held = np.zeros((nr, nc), dtype=np.int64)
            out_words = np.zeros((nr, nc), dtype=np.int64)
            if lv.inputs:
                for t, reader in live:
                    words = words_per_pixel(network, reader, t) * area(t)
                    if reader == l:
                        in_words = in_words + words
                    else:
                        held = held + words
            if l < sp.last and lv.outputs:
                out_words = lay.N * lay.M * area(l)
            over = np.flatnonzero((w_words + in_words + held + out_words).ravel() > lv.words)
            if over.size:
                t = int(over[0])
                if worst is None or (t, l) < (worst[0], worst[1]):
                    flat = (in_words.ravel()[t], held.ravel()[t], out_words.ravel()[t])
                    worst = (t, l, lv, w_words, *(int(x) for x in flat))
    if worst is None:
        return
    t, l, lv, w_words, in_w, held_w, out_w = worst
    r, c = divmod(t, nc)
    rs, rl, cs, cl = spans[sp.last]
    tile = Rect(int(rs[r]), int(cs[c]), int(rl[r]), int(cl[c]))
    need = w_words + in_w + held_w + out_w
    held_text = f" + {held_w:,} held for later layers" if held_w else ""
    raise ScheduleError(
        f"stack {k} (layers {sp.first}-{sp.last}), "
        f"tile {t} [row {tile.row}, col {tile.col}, {tile.h}x{tile.w}]: "
        f"layer {l} ({network.layers[l].name}) needs {need:,} words at {lv.name} "
        f"({w_words:,} cached weights + {in_w:,} input{held_text} + {out_w:,} output) "
        f"but {lv.name} holds {int(lv.words):,}"
    )


def _skipped_pixels(
    network: Network, l: int, rows: tuple[np.ndarray, ...], cols: tuple[np.ndarray, ...]
) -> int:
    """Pixels of layer ``l``'s plane outside every tile's region (the regions of a grid are every
    row band x every column band, so their union is the union of the rows x that of the columns)."""
    q, p = network.layers[l].out_plane
    return q * p - _union_length(rows, q) * _union_length(cols, p)


def _union_length(spans: tuple[np.ndarray, ...], extent: int) -> int:
    """Rows (or columns) of ``0..extent - 1`` inside at least one of the (starts, lengths) spans."""
    starts, lengths = spans
    diff = np.zeros(extent + 1, dtype=np.int64)
    np.add.at(diff, np.clip(starts, 0, extent), 1)
    np.add.at(diff, np.clip(starts + lengths, 0, extent), -1)
    return int((np.cumsum(diff)[:-1] > 0).sum())


def build_stack(
    network: Network, table: CostTable, k: int, sp: StackSpec, rule: Rule, levels: Sequence[LevelUse]
) -> Stack:
    """Check and cost stack ``k``: regions of every layer for every tile, variants, totals; and that
    what ``sp`` states besides (tiles, regions, variants) is what the rules give."""
    _check_spec(network, k, sp, rule)
    if sp.first == sp.last:
        stack = _single_stack(network, table, sp.first)
    else:
        stack = _fused_stack(network, table, k, sp, rule, levels)
    _check_stated(network, k, sp, stack)
    return stack


def _fused_stack(
    network: Network, table: CostTable, k: int, sp: StackSpec, rule: Rule, levels: Sequence[LevelUse]
) -> Stack:
    spans = stack_spans(network, table, sp, rule)
    cached = set(sp.cached_layers)
    _check_capacity(network, k, sp, spans, levels)
    energy, cycles, macs, skipped, skipped_macs = 0.0, 0.0, 0, 0, 0
    layers = []
    rs, rl, cs, cl = spans[sp.last]
    tiles = tuple(
        Rect(int(rs[r]), int(cs[c]), int(rl[r]), int(cl[c])) for r in range(rl.size) for c in range(cl.size)
    )
    for l in range(sp.first, sp.last + 1):
        role = layer_role(network, l, sp.first, sp.last)
        lrs, lrl, lcs, lcl = spans[l]
        e, cyc = _role_cost(network, table, rule, l, role, l in cached, lrl, lcl)
        energy += e
        cycles = None if cycles is None or cyc is None else cycles + cyc
        lay = network.layers[l]
        macs += lay.macs_for(1, 1) * int(lrl.sum()) * int(lcl.sum())
        n_skipped = _skipped_pixels(network, l, (lrs, lrl), (lcs, lcl))
        skipped += n_skipped
        skipped_macs += lay.macs_for(1, 1) * n_skipped
        regions = tuple(
            Rect(int(lrs[r]), int(lcs[c]), int(lrl[r]), int(lcl[c]))
            for r in range(lrl.size)
            for c in range(lcl.size)
        )
        variants = (role.variant(False),) + (role.variant(l in cached),) * (len(regions) - 1)
        share = role.outside if role.mixed else 0.0
        layers.append(StackLayer(l, variants, regions, role.dram_variant, share))
    return Stack(
        sp.first,
        sp.last,
        tuple(sp.tile_shape),
        tiles,
        tuple(sorted(cached)),
        tuple(layers),
        energy,
        cycles,
        macs,
        skipped,
        skipped_macs,
    )


def _check_stated(network: Network, k: int, sp: StackSpec, stack: Stack) -> None:
    """ScheduleError naming the stack, layer and tile where what ``sp`` states (tiles, regions,
    variants, a join's DRAM-input entry) differs from what the rules give."""
    name = f"stack {k} (layers {sp.first}-{sp.last})"
    shape = f"tile_shape [{sp.tile_shape[0]}, {sp.tile_shape[1]}]"
    if sp.tiles is not None:
        where = f"{name}, layer {sp.last} ({network.layers[sp.last].name})"
        _same_per_tile(where, "tile", sp.tiles, stack.tiles, shape)
    if sp.layers is None:
        return
    stated = [c.layer for c in sp.layers]
    if stated != list(range(sp.first, sp.last + 1)):
        raise ScheduleError(
            f"{name}: the schedule lists layers {stated} for the stack; "
            f"expected {sp.first}..{sp.last} in order"
        )
    cached = f"{shape} and cached layers {list(sp.cached_layers)}"
    for claim, sl in zip(sp.layers, stack.layers):
        where = f"{name}, layer {sl.layer} ({network.layers[sl.layer].name})"
        if claim.regions is not None:
            _same_per_tile(where, "region", claim.regions, sl.regions, shape)
        if claim.variants is not None:
            _same_per_tile(where, "variant", claim.variants, sl.variants, cached)
        if claim.dram_variant is not None and claim.dram_variant != sl.dram_variant:
            rule_v = sl.dram_variant.value if sl.dram_variant is not None else "none"
            raise ScheduleError(
                f"{where}: the schedule says its DRAM-input variant is {claim.dram_variant.value} "
                f"but the rules give {rule_v}"
            )
        if claim.dram_share is not None and abs(claim.dram_share - sl.dram_share) > 1e-9:
            raise ScheduleError(
                f"{where}: the schedule says {claim.dram_share:g} of its input words come from DRAM "
                f"but the rules give {sl.dram_share:g}"
            )


def _fmt(x: object) -> str:
    return str(x.as_list()) if isinstance(x, Rect) else str(x)


def _same_per_tile(where: str, what: str, stated: Sequence, derived: Sequence, given: str) -> None:
    for t, (a, b) in enumerate(zip(stated, derived)):
        if a != b:
            raise ScheduleError(
                f"{where}, tile {t}: the schedule says {what} {_fmt(a)} but {given} gives {_fmt(b)}"
            )
    if len(stated) != len(derived):
        t = min(len(stated), len(derived))
        raise ScheduleError(
            f"{where}, tile {t}: the schedule lists {len(stated)} {what}s but {given} gives "
            f"{len(derived)} tiles"
        )


def assemble(
    network: Network, table: CostTable, stacks: Sequence[Stack], rule: str, objective: str
) -> Schedule:
    """A Schedule from costed stacks, with totals and the layer-by-layer baseline."""
    energy = sum(s.energy_pJ for s in stacks)
    cycles = None if any(s.cycles is None for s in stacks) else sum(s.cycles for s in stacks)  # type: ignore[misc]
    macs = sum(s.macs for s in stacks)
    return Schedule(
        tuple(stacks), Totals(energy, cycles, macs), layer_by_layer(network, table), rule, objective
    )


def evaluate(
    network: Network,
    table: CostTable,
    specs: Sequence[StackSpec],
    capacity: CapacitySpec | None = None,
    rule: Rule = "exact",
    objective: Objective | str = ENERGY,
) -> Schedule:
    """Cost a given schedule (per stack: first, last, tile_shape (h, w) on the last layer, cached layers).
    ``objective`` is recorded in the schedule (what the schedule was chosen for); it does not change
    the costs. The network may branch and join (docs/search.md, "Networks that branch and join").

    Raises ScheduleError when the stacks do not cover every layer once in order, a stack breaks single
    exit (a layer other than its last is read by a layer after it), a tile shape is not positive or
    larger than the plane, a cached layer is outside its stack or has no weights, a stack spans an
    unchained pair under the exact rule or a branch under the legacy rule, an on-chip level overflows,
    or what a spec states besides (tiles, regions, variants) is not what the rules give for its tile
    shape; MissingCostError when the table lacks an entry the schedule needs.
    """
    _check_rule(rule)
    name = Objective.parse(objective).name
    check_partition(network, specs)
    levels = capacity_levels(capacity)
    stacks = [
        build_stack(
            network,
            table,
            k,
            replace(sp, tile_shape=tuple(sp.tile_shape), cached_layers=tuple(sorted(set(sp.cached_layers)))),
            rule,
            levels,
        )
        for k, sp in enumerate(specs)
    ]
    return assemble(network, table, stacks, rule, name)
