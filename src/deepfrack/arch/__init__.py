"""Architectures: storage levels, compute, capacities, energy tables."""

from deepfrack.arch.capacity import CapacitySpec

__all__ = ["CapacitySpec"]
