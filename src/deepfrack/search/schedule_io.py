"""schedule.json: the schedule a run found or was given, with what it was given (a contract other tools
read). Layers are 0-based in network order; regions are [row, col, h, w] of the layer's output plane.
A join that reads tensors made both inside and outside its stack also has ``dram_input_variant`` and
``dram_input_share`` (docs/search.md)."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfrack.errors import InputError
from deepfrack.files import read_json
from deepfrack.rect import Rect
from deepfrack.residency import Variant, parse_variant
from deepfrack.search.schedule import LayerClaim, Schedule, StackLayer, StackSpec, Totals
from deepfrack.workload.layer import Network


def _uJ(pj: float) -> float:
    # 1e-6 uJ = 1 pJ: six decimals keep every picojoule and drop float noise
    return round(pj * 1e-6, 6)


def _cycles(c: float | None) -> float | int | None:
    """Cycles as an integer when whole (they are counts), else as given."""
    return int(c) if c is not None and float(c).is_integer() else c


def _totals(t: Totals) -> dict[str, Any]:
    return {"energy_uJ": _uJ(t.energy_pJ), "cycles": _cycles(t.cycles), "macs": t.macs}


def _layer_dict(sl: StackLayer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "layer": sl.layer,
        "variant_per_tile": [v.value for v in sl.variants],
        "regions": [r.as_list() for r in sl.regions],
    }
    if sl.dram_variant is not None:
        out["dram_input_variant"] = sl.dram_variant.value
        out["dram_input_share"] = sl.dram_share
    return out


def schedule_to_dict(schedule: Schedule, network: Network, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of a schedule. ``inputs`` records what the run was given (paths and the
    capacity per home level, or "unlimited")."""
    stacks = []
    for st in schedule.stacks:
        stacks.append(
            {
                "first": st.first,
                "last": st.last,
                "tile_shape": list(st.tile_shape),
                "tiles": [{"row": r.row, "col": r.col, "h": r.h, "w": r.w} for r in st.tiles],
                "cached_layers": list(st.cached_layers),
                "energy_uJ": _uJ(st.energy_pJ),
                "cycles": _cycles(st.cycles),
                "macs": st.macs,
                "layers": [_layer_dict(sl) for sl in st.layers],
            }
        )
    return {
        "receptive_field": schedule.receptive_field,
        "objective": schedule.objective,
        "inputs": dict(inputs),
        "network": [layer.summary() for layer in network.layers],
        "total": _totals(schedule.total),
        "layer_by_layer": _totals(schedule.layer_by_layer),
        "reduction_pct": round(100.0 * schedule.reduction, 4),
        "recompute_pct": round(100.0 * schedule.recompute, 4),
        "stacks": stacks,
    }


def schedule_to_json(schedule: Schedule, network: Network, inputs: Mapping[str, Any]) -> str:
    return json.dumps(schedule_to_dict(schedule, network, inputs), indent=1) + "\n"


def _int(value: Any, path: Path, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(path, field, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _rect(value: Any, path: Path, field: str) -> Rect:
    """A region as written: [row, col, h, w], or {"row", "col", "h", "w"} (how tiles are written)."""
    if isinstance(value, dict) and set(value) == {"row", "col", "h", "w"}:
        value = [value["row"], value["col"], value["h"], value["w"]]
    if not isinstance(value, list) or len(value) != 4:
        raise InputError(
            path, field, f"must be [row, col, h, w] or {{row, col, h, w}}, got {reprlib.repr(value)}"
        )
    return Rect(*(_int(v, path, field, 0) for v in value))


def _list(value: Any, path: Path, field: str, what: str) -> list:
    if not isinstance(value, list):
        raise InputError(path, field, f"must be a list of {what}, got {reprlib.repr(value)}")
    return value


def _variant(value: Any, path: Path, field: str) -> Variant:
    try:
        return parse_variant(value)
    except ValueError as exc:
        raise InputError(path, field, str(exc)) from None


def _layer_claim(entry: Any, path: Path, where: str) -> LayerClaim:
    """What a stack's ``layers[j]`` entry states: its layer, regions, variants and DRAM input."""
    if not isinstance(entry, dict):
        raise InputError(path, where, "must be an object with layer, variant_per_tile and regions")
    if "layer" not in entry:
        raise InputError(path, f"{where}.layer", "missing")
    layer = _int(entry["layer"], path, f"{where}.layer", 0)
    regions = variants = None
    if "regions" in entry:
        f = f"{where}.regions"
        regions = tuple(
            _rect(r, path, f"{f}[{t}]") for t, r in enumerate(_list(entry["regions"], path, f, "regions"))
        )
    if "variant_per_tile" in entry:
        f = f"{where}.variant_per_tile"
        values = _list(entry["variant_per_tile"], path, f, "variant names")
        variants = tuple(_variant(v, path, f"{f}[{t}]") for t, v in enumerate(values))
    dram_v = None
    if "dram_input_variant" in entry:
        dram_v = _variant(entry["dram_input_variant"], path, f"{where}.dram_input_variant")
    share = entry.get("dram_input_share")
    is_number = isinstance(share, (int, float)) and not isinstance(share, bool)
    if share is not None and not (is_number and 0 <= share <= 1):
        raise InputError(
            path, f"{where}.dram_input_share", f"must be a number in [0, 1], got {reprlib.repr(share)}"
        )
    return LayerClaim(layer, regions, variants, dram_v, None if share is None else float(share))


def read_stack_specs(path: str | Path) -> list[StackSpec]:
    """The stacks of a schedule file. Per stack ``first``, ``last`` and ``tile_shape`` are required,
    ``cached_layers`` optional. When a stack also has ``tiles`` or ``layers`` (as in a schedule.json
    written by deepfrack), they are read too, and ``evaluate`` checks that the tiles, and each layer's
    ``regions``, ``variant_per_tile`` and DRAM input, are what the rules give for ``tile_shape``."""
    p = Path(path)
    doc = read_json(p)
    if not isinstance(doc, dict) or not isinstance(doc.get("stacks"), list) or not doc["stacks"]:
        raise InputError(
            p, "stacks", "missing or empty; expected a list of {first, last, tile_shape, cached_layers}"
        )
    specs = []
    for i, st in enumerate(doc["stacks"]):
        where = f"stacks[{i}]"
        if not isinstance(st, dict):
            raise InputError(p, where, "must be an object")
        for key in ("first", "last", "tile_shape"):
            if key not in st:
                raise InputError(p, f"{where}.{key}", "missing")
        first = _int(st["first"], p, f"{where}.first", 0)
        last = _int(st["last"], p, f"{where}.last", 0)
        shape = st["tile_shape"]
        if not isinstance(shape, Sequence) or isinstance(shape, str) or len(shape) != 2:
            raise InputError(p, f"{where}.tile_shape", f"must be [height, width], got {shape!r}")
        th = _int(shape[0], p, f"{where}.tile_shape[0]", 1)
        tw = _int(shape[1], p, f"{where}.tile_shape[1]", 1)
        cached = st.get("cached_layers", [])
        if not isinstance(cached, list):
            raise InputError(p, f"{where}.cached_layers", f"must be a list of layer indices, got {cached!r}")
        cached_t = tuple(_int(c, p, f"{where}.cached_layers", 0) for c in cached)
        tiles = layers = None
        if "tiles" in st:
            f = f"{where}.tiles"
            tiles = tuple(_rect(t, p, f"{f}[{k}]") for k, t in enumerate(_list(st["tiles"], p, f, "tiles")))
        if "layers" in st:
            f = f"{where}.layers"
            entries = _list(st["layers"], p, f, "layer objects")
            layers = tuple(_layer_claim(e, p, f"{f}[{j}]") for j, e in enumerate(entries))
        specs.append(StackSpec(first, last, (th, tw), cached_t, tiles, layers))
    return specs
