"""Accelergy energy reference tables (ERT) -> :class:`~deepfrack.arch.spec.EnergyTable`.

Reads ``timeloop-mapper.ERT.yaml`` (v0.3: ``ERT: {version: 0.3, tables: [{name, actions: [{name,
arguments, energy}]}]}``; v0.4: the same with ``version: '0.4'``; v0.2: ``tables`` as a mapping from
component to actions) and ``ERT_summary.yaml`` (``ERT_summary: {table_summary: [...]}``).

Names are mapped to levels as Timeloop does (NVlabs/timeloop src/model/topology.cpp,
``Topology::Specs::ParseAccelergyERT``): the component name is the last dot-separated part of the
hierarchical name with its ``[a..b]`` range removed, so ``System.ws.PE[0..15].PEWeightBuffer[0..7]``
-> ``PEWeightBuffer`` and ``System_top_level.DRAM[1..1]`` -> ``DRAM``. Energies are pJ per action
(per block access for storage); where an action has several argument variants, Timeloop uses the
most expensive one (see ``EnergyTable.action_energy``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepfrack.arch.spec import ActionEnergy, Architecture, EnergyTable
from deepfrack.arch.yamlio import load_documents
from deepfrack.errors import InputError, shown

_RANGE = re.compile(r"\[[^\]]*\]")

#: the operations deepfrack's model charges per storage level and for the arithmetic units
STORAGE_OPS = ("read", "fill", "update")


def component_name(hierarchical: str) -> str:
    """``System.ws.PE[0..15].PEWeightBuffer[0..7]`` -> ``PEWeightBuffer`` (Timeloop's rule)."""
    return _RANGE.sub("", str(hierarchical)).rsplit(".", 1)[-1].strip()


#: the largest energy of one action accepted, in pJ (a DRAM access of a wide block is about 1e4 pJ)
MAX_ENERGY_PJ = 1e12


def _energy(value: Any, path: Path | None, field: str) -> float:
    """An action's energy in pJ: a number (or a numeric string), finite, at least 0 and at most
    MAX_ENERGY_PJ. A negative or NaN energy is refused rather than clamped: the tables would be silently
    wrong."""
    x: float | None = None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            x = float(value)
        except ValueError:
            x = None
    if x is None:
        raise InputError(path, field, f"expected an energy in pJ, got {shown(value)}")
    if not math.isfinite(x) or x < 0:
        raise InputError(path, field, f"an energy must be a finite number of pJ >= 0, got {shown(value)}")
    if x > MAX_ENERGY_PJ:
        raise InputError(
            path, field, f"{x:g} pJ for one action is more than deepfrack accepts ({MAX_ENERGY_PJ:g})"
        )
    return x


def _arguments(raw: Any, path: Path | None, field: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(path, field, f"expected a mapping of action arguments, got {shown(raw)}")
    return dict(raw)


def _actions(raw: Any, path: Path | None, field: str) -> list[ActionEnergy]:
    out: list[ActionEnergy] = []
    if isinstance(raw, dict):  # v0.2: {action: [{arguments, energy}] or {energy}}
        for name, entries in raw.items():
            entries = entries if isinstance(entries, list) else [entries]
            for j, e in enumerate(entries):
                if not isinstance(e, dict) or "energy" not in e:
                    raise InputError(path, f"{field}.{name}[{j}]", "expected an entry with an energy")
                out.append(
                    ActionEnergy(
                        str(name),
                        _energy(e["energy"], path, f"{field}.{name}[{j}].energy"),
                        _arguments(e.get("arguments"), path, f"{field}.{name}[{j}].arguments"),
                    )
                )
        return out
    if not isinstance(raw, list):
        raise InputError(path, field, "expected a list of actions")
    for j, a in enumerate(raw):
        f = f"{field}[{j}]"
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise InputError(path, f"{f}.name", "each action needs a name")
        if "energy" not in a:
            raise InputError(path, f"{f}.energy", f"action {a['name']!r} has no energy")
        out.append(
            ActionEnergy(
                a["name"],
                _energy(a["energy"], path, f"{f}.energy"),
                _arguments(a.get("arguments"), path, f"{f}.arguments"),
            )
        )
    return out


def ert_from_data(data: Mapping[str, Any], path: str | Path | None = None) -> EnergyTable:
    """EnergyTable from one parsed ERT (or ERT_summary) document, keyed by component name."""
    p = Path(path) if path is not None else None
    if "ERT" in data:
        root, key, tables_key = data["ERT"], "ERT", "tables"
    elif "ERT_summary" in data:
        root, key, tables_key = data["ERT_summary"], "ERT_summary", "table_summary"
    else:
        raise InputError(p, "ERT", "missing: expected an Accelergy ERT ('ERT: {version, tables}')")
    if not isinstance(root, dict) or tables_key not in root:
        raise InputError(p, f"{key}.{tables_key}", "missing")
    tables = root[tables_key]
    actions: dict[str, list[ActionEnergy]] = {}
    if isinstance(tables, dict):  # v0.2
        items = list(tables.items())
        for _i, (name, acts) in enumerate(items):
            actions.setdefault(component_name(name), []).extend(
                _actions(acts, p, f"{key}.{tables_key}.{name}")
            )
    elif isinstance(tables, list):
        for i, t in enumerate(tables):
            f = f"{key}.{tables_key}[{i}]"
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise InputError(p, f"{f}.name", "each table needs a component name")
            actions.setdefault(component_name(t["name"]), []).extend(
                _actions(t.get("actions"), p, f"{f}.actions")
            )
    else:
        raise InputError(p, f"{key}.{tables_key}", "expected a list of component tables")
    return EnergyTable({k: tuple(v) for k, v in actions.items()}, origin=f"ert:{p}" if p else "ert")


def check_energy_table(table: EnergyTable, arch: Architecture, path: str | Path | None = None) -> None:
    """InputError (naming the ERT file and the component) when an action the model charges is
    missing: read, fill and update of every storage level (fill and update may come from ``write``,
    as in Timeloop's priority lists) and compute of the arithmetic units. The v0.4 spatial
    placeholder levels are never accessed and need no entry."""
    for lv in arch.levels:
        if lv.is_dummy:
            continue
        if lv.name not in table.actions:
            raise InputError(
                path, f"ERT.tables[{lv.path or lv.name}]", f"no entry for storage level {lv.name}"
            )
        for op in STORAGE_OPS:
            if table.op_energy(lv.name, op) is None:
                raise InputError(
                    path,
                    f"ERT.tables[{lv.path or lv.name}].actions",
                    f"no {op} action for storage level {lv.name} "
                    f"(have: {', '.join(sorted({a.action for a in table.actions[lv.name]}))})",
                )
    ar = arch.arithmetic
    if ar.name not in table.actions:
        raise InputError(path, f"ERT.tables[{ar.path or ar.name}]", f"no entry for compute unit {ar.name}")
    if table.op_energy(ar.name, "compute") is None:
        raise InputError(
            path,
            f"ERT.tables[{ar.path or ar.name}].actions",
            f"no compute action (mac_random, mult_random, mac, mult or compute) for {ar.name}",
        )


def load_ert(path: str | Path, arch: Architecture | None = None) -> EnergyTable:
    """Energy table from an Accelergy ERT file (``timeloop-mapper.ERT.yaml`` or an ERT_summary).

    With ``arch``, every action the model needs must be present (``check_energy_table``)."""
    docs = [
        d
        for d in load_documents(path)
        if isinstance(d.data, dict) and ({"ERT", "ERT_summary"} & d.data.keys())
    ]
    if not docs:
        raise InputError(path, "ERT", "no Accelergy ERT found (expected 'ERT: {version, tables}')")
    if len(docs) > 1:
        raise InputError(docs[1].path, "ERT", f"a second ERT (the first is in {docs[0].path})")
    table = ert_from_data(docs[0].data, docs[0].path)
    if arch is not None:
        check_energy_table(table, arch, docs[0].path)
    return table


__all__ = ["check_energy_table", "component_name", "ert_from_data", "load_ert"]
