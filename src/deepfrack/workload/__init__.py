"""Workloads: layers, networks and their loaders."""

from deepfrack.workload.layer import LAYER_KINDS, MAC_KINDS, Layer, Network

__all__ = ["LAYER_KINDS", "MAC_KINDS", "Layer", "Network"]
