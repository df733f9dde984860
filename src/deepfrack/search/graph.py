"""Fusion over a network graph: which stacks are valid, how each layer of a stack runs, and which
tensors a tile keeps on chip (docs/search.md, "Networks that branch and join").

A stack is a contiguous run ``first..last`` of the network's layer order (a topological order).

* **Single exit**: every layer of a stack but its last has all its consumers inside the stack; a
  layer that no layer reads is a network output and can only end a stack. The stacks ending at a
  layer ``last`` that keep this rule are then exactly those starting in
  ``single_exit_lowest(network, last) .. last``.
* A tensor made outside the stack and read inside comes from DRAM; the last layer's output goes to
  DRAM; every other layer's output stays on chip.
* **Roles** (``layer_role``): a layer that reads only in-stack tensors has its input on chip (LBLC,
  ELBLC as the last layer; WCC / EWCC when its weights are cached); one that reads only tensors made
  outside the stack reads them from DRAM (Start; OutWCC when cached). A join (add, concat) that reads
  both costs ``on + f x (dram - on)``: ``on`` its on-chip-input entry, ``dram`` its DRAM-input entry
  for the same region (Start in the middle of a stack, SLC as its last layer), ``f`` the outside
  operands' share of its input words. On a chain this gives the first / middle / last variants.
* **Live tensors** (``live_tensors``, for the capacity check): at a (tile, layer) step, an in-stack
  tensor made earlier in the tile stays on chip while a layer at or after this step still reads it
  (a skip tensor until its add).
"""

from __future__ import annotations

from dataclasses import dataclass

from deepfrack.residency import Variant, variant_for
from deepfrack.workload.layer import NETWORK_INPUT, Network


def single_exit_break(network: Network, first: int, last: int) -> tuple[int, int | None] | None:
    """The first layer of ``first..last - 1`` that breaks single exit and its first consumer after
    ``last`` (None when no layer reads it: a network output); None when the stack keeps the rule."""
    for l in range(first, last):
        readers = network.consumers(l)
        if not readers:
            return l, None
        if readers[-1] > last:
            return l, next(c for c in readers if c > last)
    return None


def single_exit_lowest(network: Network, last: int, floor: int = 0) -> int:
    """The lowest first layer (not below ``floor``) of a stack ending at ``last`` under single exit:
    the stacks ``[j..last]`` with ``single_exit_lowest(network, last) <= j <= last`` keep every
    consumer of their non-last layers inside, and no other stack ending at ``last`` does."""
    j = last
    while j > floor:
        readers = network.consumers(j - 1)
        if not readers or readers[-1] > last:
            break
        j -= 1
    return j


def operand_channels(network: Network, layer: int) -> tuple[float, ...]:
    """Channels of each operand of ``layer``, in ``network.inputs`` order. A concat's operands carry
    their producers' channels (operands that read the network input share what is left of C); every
    other layer reads C channels from each operand."""
    lay = network.layers[layer]
    ops = network.inputs[layer]
    if lay.kind != "concat":
        return tuple(float(lay.C) for _ in ops)
    known = sum(network.layers[p].M for p in ops if p != NETWORK_INPUT)
    n_net = sum(p == NETWORK_INPUT for p in ops)
    rest = (lay.C - known) / n_net if n_net else 0.0
    return tuple(rest if p == NETWORK_INPUT else float(network.layers[p].M) for p in ops)


def outside_share(network: Network, layer: int, first: int) -> float:
    """Share of ``layer``'s input words that come from tensors made before layer ``first`` (or from the
    network input): 0 when it reads only tensors of layers ``first..``, 1 when it reads none of them;
    for a join that reads both, the outside operands' channels over all its operands' channels (for
    an add, the outside operands over all operands; for a concat, the outside channels over C)."""
    ops = network.inputs[layer]
    outside = [p < first for p in ops]
    if not any(outside):
        return 0.0
    if all(outside):
        return 1.0
    channels = operand_channels(network, layer)
    return sum(c for c, out in zip(channels, outside) if out) / sum(channels)


@dataclass(frozen=True)
class Role:
    """How one layer runs in a multi-layer stack. ``last``: its output goes to DRAM (the stack's last
    layer). ``outside``: the share of its input words read from DRAM (``outside_share``)."""

    last: bool
    outside: float

    @property
    def mixed(self) -> bool:
        """A join that reads both in-stack tensors and tensors made outside the stack."""
        return 0.0 < self.outside < 1.0

    def variant(self, cached: bool) -> Variant:
        """The entry the layer is looked up under (a mixed join: its on-chip-input entry); ``cached``:
        its weights are cached and this tile reuses them."""
        if self.outside == 1.0:  # never the last layer: under single exit it reads the layer before it
            return variant_for("first", cached)
        return variant_for("last" if self.last else "middle", cached)

    def cached_variant(self, has_weights: bool) -> Variant | None:
        """The entry of a tile that reuses cached weights; None when the layer cannot be cached (no
        weights, or a mixed join)."""
        return self.variant(True) if has_weights and not self.mixed else None

    @property
    def dram_variant(self) -> Variant | None:
        """A mixed join's DRAM-input entry (Start in the middle of a stack, SLC as its last layer);
        None for any other layer."""
        if not self.mixed:
            return None
        return Variant.SLC if self.last else Variant.Start


def layer_role(network: Network, layer: int, first: int, last: int) -> Role:
    """The role of ``layer`` in the multi-layer stack ``first..last`` (single exit assumed)."""
    return Role(layer == last, outside_share(network, layer, first))


def role_is_final(network: Network, layer: int, first: int) -> bool:
    """True when ``layer``'s role stays the same in every stack that starts at ``first`` or below it (and
    holds ``layer`` as a layer other than its first and last): every layer it reads is at or after
    ``first``, so moving the first layer further down changes nothing it reads."""
    return min(network.producers(layer), default=layer) >= first


def live_tensors(network: Network, first: int, last: int, layer: int) -> tuple[tuple[int, int], ...]:
    """The in-stack tensors that are on chip while ``layer`` runs, besides its own output: every
    output of layers ``first..layer - 1`` that a layer of ``layer..last`` still reads, as (tensor,
    its first reader at or after ``layer``). Each tensor once."""
    out = []
    for t in range(first, layer):
        reader = next((c for c in network.consumers(t) if layer <= c <= last), None)
        if reader is not None:
            out.append((t, reader))
    return tuple(out)


def words_per_pixel(network: Network, reader: int, tensor: int) -> int:
    """Words per output pixel of ``tensor`` as layer ``reader`` reads it (batch x channels): a concat
    reads its operand's channels, any other layer its C."""
    lay = network.layers[reader]
    channels = network.layers[tensor].M if lay.kind == "concat" else lay.C
    return lay.N * channels
