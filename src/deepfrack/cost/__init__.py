"""Costs: residency variants, cost records and tables, the analytical model and the mapper."""

from deepfrack.cost.table import CostKey, CostRecord, CostTable
from deepfrack.cost.variants import ON_CHIP, TENSORS, VARIANTS, Variant, parse_variant, variant_for

__all__ = [
    "ON_CHIP",
    "TENSORS",
    "VARIANTS",
    "CostKey",
    "CostRecord",
    "CostTable",
    "Variant",
    "parse_variant",
    "variant_for",
]
