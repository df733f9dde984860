"""The loop nest Timeloop builds from an architecture and a mapping, and the CNN-layer projections.

Every storage level is a temporal *tiling level*; a level whose fan-out to the next inner level
(inner mesh / own mesh, X and Y apart) exceeds 1 also gets a spatial tiling level just inside its
temporal one (NVlabs/timeloop, src/mapping/arch-properties.cpp and src/mapping/parser.cpp). The loops
are listed as Timeloop's nest analysis walks them, **innermost loop first**: for each storage level
from the inside out, its spatial loops (permutation order, the first ``split`` dimensions on X, the
rest on Y) then its temporal loops. Factor-1 loops are dropped; a temporal level left empty gets one
trivial loop (on the last dimension, Q for the CNN layer; bound 1) so that every storage level has a
boundary loop (its outermost loop).

Storage levels themselves are numbered as everywhere in deepfrack: **outermost first**, the index
in ``Architecture.levels`` (Timeloop numbers them from the innermost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfrack.arch.spec import Architecture
from deepfrack.cost.mapping import LoopMapping, level_fanouts
from deepfrack.dims import NT, C, M, N, P, Q, R, S
from deepfrack.workload.layer import Layer

TIME, SPACE_X, SPACE_Y = 0, 1, 2

#: bool [3, 7]: the loop dimensions (C M R S N P Q) each tensor (Weights, Inputs, Outputs) depends on
RELEVANT = np.array(
    [
        [1, 1, 1, 1, 0, 0, 0],  # Weights: C M R S
        [1, 0, 1, 1, 1, 1, 1],  # Inputs: C R S N P Q
        [0, 1, 0, 0, 1, 1, 1],  # Outputs: M N P Q
    ],
    bool,
)
RELEVANT.setflags(write=False)

#: The nine data coordinates the three tensors use, as combinations of loop dimensions: C M R S N
#: P Q, then the Inputs width (Wdilation R + Wstride P) and height (Hdilation S + Hstride Q); and per
#: tensor, its four data coordinates (in the order of :func:`projections`) among them.
N_COORDS = 9
TENSOR_COORDS = ((C, M, R, S), (N, C, 7, 8), (N, M, Q, P))


def projections(layer: Layer) -> tuple[tuple[tuple[tuple[int, int], ...], ...], ...]:
    """Timeloop's CNN-layer projections: per tensor (Weights, Inputs, Outputs), per data dimension,
    the (operation dimension, coefficient) terms. Inputs: width = Wstride*P + Wdilation*R, height =
    Hstride*Q + Hdilation*S (padding is not part of Timeloop's problem)."""
    return (
        (((C, 1),), ((M, 1),), ((R, 1),), ((S, 1),)),
        (
            ((N, 1),),
            ((C, 1),),
            ((R, layer.Wdilation), (P, layer.Wstride)),
            ((S, layer.Hdilation), (Q, layer.Hstride)),
        ),
        (((N, 1),), ((M, 1),), ((Q, 1),), ((P, 1),)),
    )


def proj_matrix(layer: Layer) -> np.ndarray:
    """The projections as a matrix, int64 [3, 4, 7]: data coordinate e of tensor t = sum over d of
    A[t, e, d] x loop coordinate d."""
    A = np.zeros((NT, 4, 7), np.int64)
    for t, coords in enumerate(projections(layer)):
        for e, terms in enumerate(coords):
            for d, coef in terms:
                A[t, e, d] = coef
    return A


@dataclass(frozen=True)
class Loop:
    dim: int
    end: int
    kind: int  # TIME, SPACE_X or SPACE_Y
    storage: int  # the storage level it belongs to (index in Architecture.levels)

    @property
    def spatial(self) -> bool:
        return self.kind != TIME


@dataclass(frozen=True)
class LoopNest:
    """Loops innermost first; per storage level (outermost first), ``boundaries[l]`` is the index of
    its outermost loop and ``fanout[l]`` its (X, Y) fan-out to the next inner level."""

    loops: tuple[Loop, ...]
    boundaries: tuple[int, ...]
    fanout: tuple[tuple[int, int], ...]


def build_nest(arch: Architecture, mapping: LoopMapping) -> LoopNest:
    """Timeloop's loop nest for this mapping (see the module docstring)."""
    fan = level_fanouts(arch)
    L = len(mapping.levels)
    loops: list[Loop] = []
    boundaries = [0] * L
    for l in range(L - 1, -1, -1):  # the loops are listed from the innermost level outward
        lm = mapping.levels[l]
        fx, fy = fan[l]
        if fx * fy > 1:
            for pos, d in enumerate(lm.spatial_order):
                f = lm.spatial[d]
                if f > 1:
                    loops.append(Loop(d, f, SPACE_X if pos < lm.split else SPACE_Y, l))
        added = 0
        for d in lm.temporal_order:
            f = lm.temporal[d]
            if f > 1:
                loops.append(Loop(d, f, TIME, l))
                added += 1
        if added == 0:
            loops.append(Loop(len(lm.temporal) - 1, 1, TIME, l))  # the last dimension (Q for a CNN layer)
        boundaries[l] = len(loops) - 1
    return LoopNest(tuple(loops), tuple(boundaries), tuple(fan))
