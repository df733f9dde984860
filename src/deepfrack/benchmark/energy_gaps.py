"""Energy tables with missing actions: which entries they can still cost.

An ERT may lack an action the model charges (a storage level's read, fill or update, the compute
unit's MAC), or a whole component. That does not make every entry uncostable: an entry whose mapping
never performs the action does not need its energy (an ERT without DRAM actions still serves the WCC
variant, where DRAM keeps nothing). So a benchmark records exactly the entries whose mapping needs a
missing action as infeasible, with the cause, and costs the others.

How, for the built-in mapper: the missing actions get a **0 pJ placeholder** (``complete``), the mapper
searches as usual, and the chosen mapping is checked (``needed``): if it performs a missing action
(a non-zero read, fill or update count at that level, or MACs for the compute unit), the entry is
infeasible. If it does not, its cost is exact and it is the best mapping whatever the missing energies
are: they are at least 0, so any mapping that needs them costs at least what the search saw, and
mappings that do not need them cost exactly that (energy, delay, EDP and last-level accesses all only
grow with an action's energy). The Timeloop backend applies the same check to the mapping Timeloop
chose.

Which actions count as missing follows the model (``deepfrack.cost.timeloop_post.arch_tables``):
Timeloop's priority lists of ERT action names for each operation (``TimeloopRules.actions``), a level's
``vector-access-energy`` attribute standing for all three, the compute unit's ``energy`` attribute for
its MAC; the v0.4 placeholder levels keep nothing and need no entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deepfrack.arch.spec import ActionEnergy, Architecture, EnergyTable
from deepfrack.cost.table import CostRecord
from deepfrack.cost.timeloop_post import TimeloopRules
from deepfrack.errors import InputError

STORAGE_OPS: tuple[str, ...] = ("read", "fill", "update")
#: record access counts that perform each storage operation
_COUNTS = {"read": "reads", "fill": "fills", "update": "updates"}


@dataclass(frozen=True)
class MissingAction:
    """An operation the energy table has no energy for. level: the storage level or compute unit;
    op: "read", "fill", "update" or "compute"; cause: one line naming the file and field, e.g.
    ``ERT.yaml: ERT.tables[System.ws.GlobalBuffer].actions: no read action for storage level GlobalBuffer
    (have: idle, write)``."""

    level: str
    op: str
    cause: str


def _has(table: EnergyTable, component: str, names: Sequence[str]) -> bool:
    return any(table.action_energy(component, n) is not None for n in names)


def missing_actions(
    table: EnergyTable, arch: Architecture, rules: TimeloopRules, path: str | Path | None = None
) -> tuple[MissingAction, ...]:
    """Every operation the model may charge that ``table`` has no energy for (module docstring), in
    architecture order (outermost level first, the compute unit last)."""
    out: list[MissingAction] = []
    for lv in arch.levels:
        if lv.is_dummy:
            continue
        attrs = lv.attributes or {}
        if any(attrs.get(k) is not None for k in ("vector-access-energy", "vector_access_energy")):
            continue
        where = f"ERT.tables[{lv.path or lv.name}]"
        if lv.name not in table.actions:
            cause = str(InputError(path, where, f"no entry for storage level {lv.name}"))
            out += [MissingAction(lv.name, op, cause) for op in STORAGE_OPS]
            continue
        have = ", ".join(sorted({a.action for a in table.actions[lv.name]}))
        for op in STORAGE_OPS:
            if not _has(table, lv.name, rules.actions[op]):
                names = " or ".join(rules.actions[op])
                cause = str(
                    InputError(
                        path,
                        f"{where}.actions",
                        f"no {op} action ({names}) for storage level {lv.name} (have: {have})",
                    )
                )
                out.append(MissingAction(lv.name, op, cause))
    ar = arch.arithmetic
    if (ar.attributes or {}).get("energy") is None and not _has(table, ar.name, rules.actions["compute"]):
        where = f"ERT.tables[{ar.path or ar.name}]"
        if ar.name not in table.actions:
            cause = str(InputError(path, where, f"no entry for compute unit {ar.name}"))
        else:
            cause = str(
                InputError(
                    path,
                    f"{where}.actions",
                    f"no compute action ({' or '.join(rules.actions['compute'])}) for {ar.name}",
                )
            )
        out.append(MissingAction(ar.name, "compute", cause))
    return tuple(out)


def complete(table: EnergyTable, gaps: Iterable[MissingAction], rules: TimeloopRules) -> EnergyTable:
    """``table`` with a 0 pJ placeholder for every missing action (named after the first action name
    Timeloop tries for the operation), so that the model can score every mapping."""
    extra: dict[str, list[ActionEnergy]] = {}
    for g in gaps:
        extra.setdefault(g.level, []).append(
            ActionEnergy(rules.actions[g.op][0], 0.0, {"deepfrack": "missing: 0 pJ placeholder"})
        )
    if not extra:
        return table
    actions = dict(table.actions)
    for level, acts in extra.items():
        actions[level] = tuple(actions.get(level, ())) + tuple(acts)
    return EnergyTable(actions, origin=table.origin)


def needed(record: CostRecord, gaps: Iterable[MissingAction]) -> list[MissingAction]:
    """The missing actions a costed mapping performs: a non-zero count of that operation at that level
    (``record.accesses``), or MACs for the compute unit."""
    out = []
    for g in gaps:
        if g.op == "compute":
            used = bool(record.macs)
        else:
            counts = (record.accesses.get(g.level) or {}).get(_COUNTS[g.op]) or {}
            used = any(n for n in counts.values())
        if used:
            out.append(g)
    return out


def reason(used: Sequence[MissingAction]) -> str:
    """Why an entry is infeasible: the causes of the missing actions its mapping needs, each once."""
    return "its mapping needs an action the energy table lacks: " + "; ".join(
        dict.fromkeys(g.cause for g in used)
    )


__all__ = ["MissingAction", "complete", "missing_actions", "needed", "reason"]
