"""Costs: cost records and tables, the analytical model (Timeloop-equivalent) and the mapper."""

from deepfrack.cost.table import CostKey, CostRecord, CostTable

__all__ = ["CostKey", "CostRecord", "CostTable"]
