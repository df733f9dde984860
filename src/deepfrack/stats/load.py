"""A schedule.json read back for its statistics, checked against the cost tables and the network.

The stacks of the file are costed again from the tables (``deepfrack.search.evaluate``, without the
capacity check: the schedule was checked when it was made), and the file's totals must equal what the
tables give: a schedule made with other tables, for another network, or one that uses an entry the
tables lack is an InputError naming the schedule file and the entry, before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfrack.benchmark.tables_io import check_table
from deepfrack.cost.table import CostTable
from deepfrack.errors import InputError, MissingCostError, ScheduleError
from deepfrack.files import read_json
from deepfrack.search import evaluate
from deepfrack.search.schedule import Schedule, Totals
from deepfrack.search.schedule_io import read_stack_specs
from deepfrack.workload.layer import LAYER_KINDS, Layer, Network

_INT_FIELDS = ("C", "M", "R", "S", "P", "Q", "N", "Wstride", "Hstride", "Wdilation", "Hdilation", "groups")


@dataclass(frozen=True)
class LoadedSchedule:
    schedule: Schedule
    network: Network
    inputs: dict[str, Any]


def _positive(value: Any, path: Path, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(path, field, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _layer(entry: Any, path: Path, i: int) -> Layer:
    """One layer of schedule.json's ``network`` list (``Layer.summary()``'s fields)."""
    where = f"network[{i}]"
    if not isinstance(entry, dict):
        raise InputError(path, where, "must be an object of layer fields")
    fields = {"name", "type", "pad", "pool", "n_inputs", *_INT_FIELDS}
    unknown = sorted(set(entry) - fields)
    if unknown:
        raise InputError(path, f"{where}.{unknown[0]}", f"unknown field; known: {', '.join(sorted(fields))}")
    missing = sorted(fields - set(entry) - {"pool", "n_inputs"})
    if missing:
        raise InputError(path, f"{where}.{missing[0]}", "missing")
    if entry["type"] not in LAYER_KINDS:
        raise InputError(
            path, f"{where}.type", f"must be one of {', '.join(LAYER_KINDS)}, got {entry['type']!r}"
        )
    pad = entry["pad"]
    if not isinstance(pad, list) or len(pad) != 4:
        raise InputError(path, f"{where}.pad", f"must be [left, right, top, bottom], got {pad!r}")
    dims = {k: _positive(entry[k], path, f"{where}.{k}") for k in _INT_FIELDS}
    return Layer(
        name=str(entry["name"]),
        kind=entry["type"],
        pad=tuple(_positive(p, path, f"{where}.pad", 0) for p in pad),  # type: ignore[arg-type]
        pool=entry.get("pool"),
        n_inputs=_positive(entry.get("n_inputs", 1), path, f"{where}.n_inputs"),
        **dims,
    )


def network_from_schedule(doc: dict[str, Any], path: Path) -> Network:
    """The chain of layers schedule.json's ``network`` lists; consecutive layers whose channels or
    planes do not agree are marked unchained, as a folder of Timeloop problem files is. A network with
    joins (add, concat) cannot be rebuilt: the file lists its layers but not its edges."""
    raw = doc.get("network")
    if not isinstance(raw, list) or not raw:
        raise InputError(path, "network", "missing or empty: give the workload (--workload)")
    layers = [_layer(e, path, i) for i, e in enumerate(raw)]
    for i, layer in enumerate(layers):
        if layer.n_inputs > 1 or layer.kind in ("add", "concat"):
            raise InputError(
                path,
                f"network[{i}]",
                f"{layer.name} joins several tensors, and schedule.json does not record which layers feed "
                "which: give the workload (--workload)",
            )
    unchained = {
        i
        for i in range(1, len(layers))
        if layers[i].C != layers[i - 1].M or not layers[i].accepts_input_plane(*layers[i - 1].out_plane)
    }
    workload = (doc.get("inputs") or {}).get("workload") if isinstance(doc.get("inputs"), dict) else None
    name = Path(workload).stem if isinstance(workload, str) else path.parent.name or path.stem
    return Network.chain(name, layers, unchained=unchained, source=str(path))


def check_same_network(doc: dict[str, Any], network: Network, path: Path) -> None:
    """InputError unless schedule.json's ``network`` lists exactly the workload's layers (when it lists
    them at all)."""
    raw = doc.get("network")
    if raw is None:
        return
    mine = [layer.summary() for layer in network.layers]
    if not isinstance(raw, list) or len(raw) != len(mine):
        n = len(raw) if isinstance(raw, list) else "no"
        raise InputError(
            path, "network", f"lists {n} layers but the workload has {len(mine)}: made for another network?"
        )
    for i, (a, b) in enumerate(zip(raw, mine)):
        if a != b:
            diff = next((k for k in b if not isinstance(a, dict) or a.get(k) != b[k]), "name")
            got = a.get(diff) if isinstance(a, dict) else a
            raise InputError(
                path,
                f"network[{i}].{diff}",
                f"{got!r} in the file but {b[diff]!r} in the workload's layer {i} ({b['name']}): "
                "made for another network?",
            )


def _setting(doc: dict[str, Any], path: Path, key: str, allowed: tuple[str, ...]) -> str:
    value = doc.get(key, allowed[0])
    if value not in allowed:
        raise InputError(path, key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _same(file_value: Any, value: float | None, tol: float) -> bool:
    if file_value is None or value is None:
        return file_value is None and value is None
    if isinstance(file_value, bool) or not isinstance(file_value, (int, float)):
        return False
    return math.isclose(float(file_value), value, rel_tol=1e-9, abs_tol=tol)


def check_totals(doc: dict[str, Any], schedule: Schedule, path: Path) -> None:
    """InputError naming the first total of the file (a stack's, the schedule's, layer by layer's) that
    the tables do not give: energy (to the file's 1e-6 uJ), cycles and MACs."""
    parts: list[tuple[str, Any, Totals]] = [("total", doc.get("total"), schedule.total)]
    parts.append(("layer_by_layer", doc.get("layer_by_layer"), schedule.layer_by_layer))
    stacks = doc.get("stacks") or []
    for k, st in enumerate(schedule.stacks):
        parts.insert(k, (f"stacks[{k}]", stacks[k], Totals(st.energy_pJ, st.cycles, st.macs)))
    for where, got, want in parts:
        if not isinstance(got, dict):
            raise InputError(path, where, "missing its totals (energy_uJ, cycles, macs)")
        checks = (
            ("energy_uJ", want.energy_pJ * 1e-6, 1e-6, "uJ"),
            ("cycles", want.cycles, 1e-6, "cycles"),
            ("macs", want.macs, 0.0, "MACs"),
        )
        for key, value, tol, unit in checks:
            if key in got and not _same(got[key], value, tol):
                given = f"{value:.6f}" if key == "energy_uJ" else repr(value)
                raise InputError(
                    path,
                    f"{where}.{key}",
                    f"{got[key]!r} {unit} in the file, but the tables give {given}: "
                    "were these the tables the schedule was made with?",
                )


def load_schedule(
    path: str | Path, table: CostTable, network: Network | None = None, tables_path: str | Path | None = None
) -> LoadedSchedule:
    """schedule.json costed again from ``table``: the schedule, its network (``network``, checked
    against the file's, or rebuilt from the file) and the run's inputs (the file's, with the schedule
    and tables given here). InputError naming the file and the entry when they do not match."""
    p = Path(path)
    doc = read_json(p)
    if not isinstance(doc, dict):
        raise InputError(p, None, "expected a schedule object with 'stacks'")
    if network is None:
        network = network_from_schedule(doc, p)
    else:
        check_same_network(doc, network, p)
    check_table(table, network)
    specs = read_stack_specs(p)
    rule = _setting(doc, p, "receptive_field", ("exact", "legacy"))
    objective = _setting(doc, p, "objective", ("energy", "cycles", "edp"))
    try:
        schedule = evaluate(network, table, specs, capacity=None, rule=rule, objective=objective)  # type: ignore[arg-type]
    except (ScheduleError, MissingCostError) as exc:
        raise InputError(p, None, f"does not match the tables or the network: {exc}") from None
    check_totals(doc, schedule, p)
    inputs = dict(doc["inputs"]) if isinstance(doc.get("inputs"), dict) else {}
    inputs["schedule"] = str(p.resolve())
    if tables_path is not None:
        inputs["tables"] = str(Path(tables_path).resolve())
    return LoadedSchedule(schedule, network, inputs)
