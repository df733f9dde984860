"""Workloads: layers, networks and their loaders."""

from deepfrack.workload.layer import JOIN_KINDS, LAYER_KINDS, MAC_KINDS, NETWORK_INPUT, Layer, Network

__all__ = ["JOIN_KINDS", "LAYER_KINDS", "MAC_KINDS", "NETWORK_INPUT", "Layer", "Network"]
