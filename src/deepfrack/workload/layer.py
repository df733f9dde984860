"""Layers and networks in Timeloop's CNN-layer vocabulary.

Axes: P, R, Wstride, Wdilation and the left/right padding are the **width** axis; Q, S, Hstride,
Hdilation and the top/bottom padding are the **height** axis (Timeloop's CNN-Layer projection:
input width = R * Wdilation + P * Wstride). Planes and tiles are written (height, width).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LAYER_KINDS: tuple[str, ...] = ("conv", "depthwise", "fc", "pool", "add", "concat")
#: kinds that carry weights and multiply-accumulate (pooling, adds and concatenations do not)
MAC_KINDS: frozenset[str] = frozenset({"conv", "depthwise", "fc"})
#: kinds that join several input tensors (``Layer.n_inputs`` of them)
JOIN_KINDS: frozenset[str] = frozenset({"add", "concat"})
#: the operand index that stands for the network's input in ``Network.inputs``
NETWORK_INPUT = -1


@dataclass(frozen=True)
class Layer:
    """One operator. Dimensions are Timeloop's: N batch, C input channels, M output channels,
    R x S kernel (width x height), P x Q output plane (width x height).

    ``pad`` is (left, right, top, bottom). ``groups`` = C for a depthwise layer. A pool layer has
    C == M and no weights; ``pool`` names its operation ("max" or "avg"). ``n_inputs`` is the number
    of input tensors: 1, except for an ``add`` (element-wise sum of ``n_inputs`` tensors of C
    channels each, C == M) and a ``concat`` (C == M = the sum of its inputs' channels).
    """

    name: str
    C: int
    M: int
    P: int
    Q: int
    R: int = 1
    S: int = 1
    N: int = 1
    Wstride: int = 1
    Hstride: int = 1
    Wdilation: int = 1
    Hdilation: int = 1
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    kind: str = "conv"
    groups: int = 1
    pool: str | None = None
    n_inputs: int = 1

    # --- sizes ----------------------------------------------------------------------------
    @property
    def has_weights(self) -> bool:
        return self.kind in MAC_KINDS

    @property
    def weights(self) -> int:
        """Weight words (0 for pool and add layers)."""
        if not self.has_weights:
            return 0
        return self.C * self.M * self.R * self.S // self.groups

    @property
    def out_plane(self) -> tuple[int, int]:
        """Output plane (height, width) = (Q, P)."""
        return (self.Q, self.P)

    def macs_for(self, h: int, w: int) -> int:
        """MACs to compute an output region of h rows x w columns (0 for pool and add)."""
        if not self.has_weights:
            return 0
        return self.N * self.M * h * w * self.R * self.S * self.C // self.groups

    @property
    def macs(self) -> int:
        return self.macs_for(self.Q, self.P)

    def input_words(self, h: int, w: int) -> int:
        """Words of an input region of h x w (all input channels, whole batch)."""
        return self.N * self.C * h * w

    def output_words(self, h: int, w: int) -> int:
        """Words of an output region of h x w (all output channels, whole batch)."""
        return self.N * self.M * h * w

    # --- planes ---------------------------------------------------------------------------
    @property
    def kernel_extent(self) -> tuple[int, int]:
        """Dilated kernel extent (height, width)."""
        return ((self.S - 1) * self.Hdilation + 1, (self.R - 1) * self.Wdilation + 1)

    @property
    def min_input_plane(self) -> tuple[int, int]:
        """Smallest input plane (height, width) that yields this layer's output plane with its
        padding: (Q-1)*Hstride + S_extent - top - bottom, same for the width."""
        kh, kw = self.kernel_extent
        left, right, top, bottom = self.pad
        return (
            (self.Q - 1) * self.Hstride + kh - top - bottom,
            (self.P - 1) * self.Wstride + kw - left - right,
        )

    def accepts_input_plane(self, h: int, w: int) -> bool:
        """True when an input plane h x w gives exactly this layer's P x Q output (floor semantics:
        needed <= plane < needed + stride)."""
        nh, nw = self.min_input_plane
        return nh <= h < nh + self.Hstride and nw <= w < nw + self.Wstride

    def summary(self) -> dict[str, object]:
        """Every field of the layer, as listed for each layer in schedule.json."""
        return {
            "name": self.name,
            "type": self.kind,
            "C": self.C,
            "M": self.M,
            "R": self.R,
            "S": self.S,
            "P": self.P,
            "Q": self.Q,
            "N": self.N,
            "Wstride": self.Wstride,
            "Hstride": self.Hstride,
            "Wdilation": self.Wdilation,
            "Hdilation": self.Hdilation,
            "pad": list(self.pad),
            "groups": self.groups,
            "pool": self.pool,
            "n_inputs": self.n_inputs,
        }


@dataclass(frozen=True)
class Network:
    """Layers in topological order and, per layer, the tensors it reads.

    ``inputs[i]``: the operands of layer i, in order: producer layer indices (each < i), or
    ``NETWORK_INPUT`` (-1) for the network's input. A chain has ``inputs == ((-1,), (0,), (1,), ...)``.
    ``input_plane`` is the network's input (height, width) when the workload states it.
    ``unchained`` holds every consumer index i whose input plane is *not* known to be its producer's
    output (a folder of Timeloop problem files where consecutive layers do not agree): under the
    exact receptive-field rule no stack spans that edge.
    """

    name: str
    layers: tuple[Layer, ...]
    inputs: tuple[tuple[int, ...], ...] = ()
    input_plane: tuple[int, int] | None = None
    unchained: frozenset[int] = field(default_factory=frozenset)
    source: str | None = None

    def __post_init__(self) -> None:
        n = len(self.layers)
        if not self.inputs:
            object.__setattr__(self, "inputs", tuple((i - 1,) for i in range(n)))
        if len(self.inputs) != n:
            raise ValueError(f"inputs lists {len(self.inputs)} operand tuples for {n} layers")
        for i, ops in enumerate(self.inputs):
            if not ops:
                raise ValueError(f"layer {i} ({self.layers[i].name}) reads no tensor")
            for p in ops:
                if not NETWORK_INPUT <= p < i:
                    raise ValueError(
                        f"layer {i} ({self.layers[i].name}) reads {p}: operands must be earlier layers "
                        "(topological order) or the network input (-1)"
                    )
        consumers: list[list[int]] = [[] for _ in range(n)]
        for i, ops in enumerate(self.inputs):
            for p in dict.fromkeys(ops):
                if p >= 0:
                    consumers[p].append(i)
        object.__setattr__(self, "_consumers", tuple(tuple(c) for c in consumers))

    @classmethod
    def chain(
        cls,
        name: str,
        layers: list[Layer] | tuple[Layer, ...],
        input_plane: tuple[int, int] | None = None,
        unchained: frozenset[int] | set[int] = frozenset(),
        source: str | None = None,
    ) -> Network:
        layers = tuple(layers)
        inputs = tuple((i - 1,) for i in range(len(layers)))
        return cls(name, layers, inputs, input_plane, frozenset(unchained), source)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(producer, consumer) pairs between layers, in consumer order (the network input excluded)."""
        return tuple((p, i) for i, ops in enumerate(self.inputs) for p in dict.fromkeys(ops) if p >= 0)

    @property
    def is_chain(self) -> bool:
        return self.inputs == tuple((i - 1,) for i in range(len(self.layers)))

    def producers(self, i: int) -> tuple[int, ...]:
        """The layers whose outputs layer i reads (distinct, in operand order; the network input excluded)."""
        return tuple(p for p in dict.fromkeys(self.inputs[i]) if p >= 0)

    def consumers(self, i: int) -> tuple[int, ...]:
        """The layers that read layer i's output, ascending."""
        return self._consumers[i]  # type: ignore[attr-defined]

    def reads_network_input(self, i: int) -> bool:
        return NETWORK_INPUT in self.inputs[i]

    def input_plane_of(self, i: int) -> tuple[int, int]:
        """The plane (height, width) layer i reads (all operands of a join have the same plane): its
        first producer's output plane when the link is known, the network input when it reads that
        and it is given, else the smallest plane that yields its output."""
        prods = self.producers(i)
        if prods and i not in self.unchained:
            return self.layers[prods[0]].out_plane
        if not prods and self.input_plane is not None:
            return self.input_plane
        return self.layers[i].min_input_plane

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def weights(self) -> int:
        """Weight words of every layer (conv, depthwise and fc layers have weights)."""
        return sum(layer.weights for layer in self.layers)

    def operand_names(self, i: int) -> tuple[str, ...]:
        """The names of the tensors layer i reads, in order (``input`` for the network's input)."""
        return tuple("input" if p == NETWORK_INPUT else self.layers[p].name for p in self.inputs[i])
