"""schedule.json: the schedule a run found or was given, with what it was given (a contract other tools
read; see issue 2). Layers are 0-based in network order; regions are [row, col, h, w] of the layer's
output plane."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfrack.errors import InputError
from deepfrack.files import read_json
from deepfrack.search.schedule import Schedule, StackSpec, Totals
from deepfrack.workload.layer import Network


def _uJ(pj: float) -> float:
    # 1e-6 uJ = 1 pJ: six decimals keep every picojoule and drop float noise
    return round(pj * 1e-6, 6)


def _cycles(c: float | None) -> float | int | None:
    """Cycles as an integer when whole (they are counts), else as given."""
    return int(c) if c is not None and float(c).is_integer() else c


def _totals(t: Totals) -> dict[str, Any]:
    return {"energy_uJ": _uJ(t.energy_pJ), "cycles": _cycles(t.cycles), "macs": t.macs}


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
                "layers": [
                    {
                        "layer": sl.layer,
                        "variant_per_tile": [v.value for v in sl.variants],
                        "regions": [r.as_list() for r in sl.regions],
                    }
                    for sl in st.layers
                ],
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


def read_stack_specs(path: str | Path) -> list[StackSpec]:
    """The stacks of a schedule file. Per stack only ``first``, ``last``, ``tile_shape`` and
    ``cached_layers`` are read (a full schedule.json written by deepfrack also works)."""
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
        specs.append(StackSpec(first=first, last=last, tile_shape=(th, tw), cached_layers=cached_t))
    return specs
