"""Timeloop's CNN-layer problem: its seven dimensions and three tensors, named and numbered once.

Dimensions (Timeloop's names): C input channels, M output channels, R x S kernel (width x height),
N batch, P x Q output plane (width x height). Arrays indexed by dimension use this order, and the
integer constants ``C, M, R, S, N, P, Q`` are their positions in it. Tensors (Timeloop's data spaces)
are Weights, Inputs and Outputs, in that order.
"""

from __future__ import annotations

DIMS: tuple[str, ...] = ("C", "M", "R", "S", "N", "P", "Q")
#: dimension name -> position in DIMS
DIM_INDEX: dict[str, int] = {d: i for i, d in enumerate(DIMS)}
N_DIMS = len(DIMS)
C, M, R, S, N, P, Q = range(N_DIMS)

TENSORS: tuple[str, str, str] = ("Weights", "Inputs", "Outputs")
#: number of tensors
NT = len(TENSORS)
WEIGHTS, INPUTS, OUTPUTS = range(NT)
