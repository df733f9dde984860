"""The core search (DeepFrack Core): fused stacks, tilings and weight caching from cost tables.

Public API:

* ``optimize(network, table, capacity=None, rule="exact", max_stack_depth=None, objective="energy",
  progress=None) -> (Schedule, SearchStats)``
* ``optimize_on_demand(network, source, capacity=None, rule="exact", max_stack_depth=None,
  objective="energy", progress=None) -> (Schedule, OnDemandStats)``: the same schedule as ``optimize``
  on a table of every needed entry, costing entries from a ``CostSource`` (``TableSource``,
  ``BenchmarkSource``) only as they can still change it
* ``evaluate(network, table, specs, capacity=None, rule="exact") -> Schedule``
* ``layer_by_layer(network, table) -> Totals``; ``layer_by_layer_records(network, table)`` (SLC per layer)
* receptive fields: ``receptive_field``, ``stack_regions``; tilings: ``grid``, ``tile_size_candidates``;
  caching: ``solve_knapsack``.
* ``required_shapes(network, max_stack_depth=None, capacity=None)``: the (layer, variant, h, w) entries
  ``optimize`` may look up under the exact rule (what ``deepfrack benchmark --shapes needed`` costs).
"""

from deepfrack.search.evaluation import evaluate, layer_by_layer, layer_by_layer_records
from deepfrack.search.knapsack import solve_knapsack
from deepfrack.search.ondemand import OnDemandStats, optimize_on_demand
from deepfrack.search.optimizer import optimize
from deepfrack.search.receptive import RULES, receptive_field, stack_regions
from deepfrack.search.required import required_shapes
from deepfrack.search.schedule import Schedule, SearchStats, Stack, StackLayer, StackSpec, Totals
from deepfrack.search.source import BenchmarkSource, CostSource, TableSource
from deepfrack.search.tiling import grid, square_candidates, tile_size_candidates

__all__ = [
    "RULES",
    "BenchmarkSource",
    "CostSource",
    "OnDemandStats",
    "Schedule",
    "SearchStats",
    "Stack",
    "StackLayer",
    "StackSpec",
    "TableSource",
    "Totals",
    "evaluate",
    "grid",
    "layer_by_layer",
    "layer_by_layer_records",
    "optimize",
    "optimize_on_demand",
    "receptive_field",
    "required_shapes",
    "solve_knapsack",
    "square_candidates",
    "stack_regions",
    "tile_size_candidates",
]
