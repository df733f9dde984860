"""Architectures: storage levels, compute, capacities, energy tables.

Public API::

    load_architecture(*paths) -> Architecture          Timeloop arch YAML v0.3 / v0.4 (+ component classes)
    load_constraints(*paths_or_docs) -> Constraints   architecture / mapspace / v0.4 node constraints
    check_constraints(arch, constraints)              InputError on a bad target or a contradiction
    capacity_spec(arch, constraints) -> CapacitySpec  home level and words per tensor
    load_ert(path, arch=None) -> EnergyTable          Accelergy ERT (v0.2/v0.3/v0.4, ERT_summary)
    variant_constraints(constraints, arch, variant)   one residency variant (only DRAM's keep/bypass changes)
    load_variant_folder(dir, arch=None)               the original's folder of seven constraint files
    builtin_energy_table(arch) -> EnergyTable         45 nm energies when no ERT is given
                                                      (sources in docs/arch.md)
"""

from deepfrack.arch.capacity import CapacitySpec, capacity_spec
from deepfrack.arch.constraints import check_constraints, effective_keep, load_constraints, parse_target_list
from deepfrack.arch.energy import builtin_energy_table
from deepfrack.arch.ert import check_energy_table, load_ert
from deepfrack.arch.parse import architecture_from_data, load_architecture
from deepfrack.arch.residency import all_variant_constraints, load_variant_folder, variant_constraints
from deepfrack.arch.spec import (
    ActionEnergy,
    Architecture,
    ArithmeticLevel,
    ComponentClass,
    Constraints,
    EnergyTable,
    FactorBound,
    StorageLevel,
    TargetConstraint,
)

__all__ = [
    "ActionEnergy",
    "Architecture",
    "ArithmeticLevel",
    "CapacitySpec",
    "ComponentClass",
    "Constraints",
    "EnergyTable",
    "FactorBound",
    "StorageLevel",
    "TargetConstraint",
    "all_variant_constraints",
    "architecture_from_data",
    "builtin_energy_table",
    "capacity_spec",
    "check_constraints",
    "check_energy_table",
    "effective_keep",
    "load_architecture",
    "load_constraints",
    "load_ert",
    "load_variant_folder",
    "parse_target_list",
    "variant_constraints",
]
