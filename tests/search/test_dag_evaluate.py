"""``evaluate`` on graphs, by hand: variants by what a layer reads, a join's on-chip / DRAM mix by operands
and by channels, single exit, held skip tensors in the capacity check, pixels no consumer reads, the
legacy rule on branches, and the log's account of fused MACs."""

from __future__ import annotations

import numpy as np
import pytest

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.errors import ScheduleError
from deepfrack.residency import Variant
from deepfrack.search import StackSpec, evaluate
from deepfrack.search.graph import layer_role, outside_share, single_exit_lowest
from deepfrack.search.plan import walk_axis
from deepfrack.stats.report import render_log
from deepfrack.workload.layer import Layer, Network
from tests.synthetic import synthetic_table

GB = {"Weights": "WB", "Inputs": "GB", "Outputs": "GB"}


def conv(name: str, c: int, m: int, size: int = 6, k: int = 3) -> Layer:
    pad = (k - 1) // 2
    return Layer(name, C=c, M=m, P=size, Q=size, R=k, S=k, pad=(pad, k - 1 - pad, pad, k - 1 - pad))


@pytest.fixture
def res() -> Network:
    """stem -> a -> b -> add(b, stem) -> pool: a residual block whose skip is the stem's output."""
    layers = (
        conv("stem", 2, 4),
        conv("a", 4, 4),
        conv("b", 4, 4),
        Layer("add", C=4, M=4, P=6, Q=6, kind="add", n_inputs=2),
        Layer("pool", C=4, M=4, P=3, Q=3, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max"),
    )
    return Network("res", layers, ((-1,), (0,), (1,), (2, 0), (3,)), input_plane=(6, 6))


def alone(net: Network, layers) -> list[StackSpec]:
    return [StackSpec(i, i, net.layers[i].out_plane) for i in layers]


def test_a_join_that_reads_dram_mixes_its_entries(res):
    table = synthetic_table(res, seed=3)
    sched = evaluate(res, table, [*alone(res, [0]), StackSpec(1, 3, (6, 6)), *alone(res, [4])])
    st = sched.stacks[1]
    a, b, add = st.layers
    assert (a.variants, b.variants, add.variants) == ((Variant.Start,), (Variant.LBLC,), (Variant.ELBLC,))
    assert (add.dram_variant, add.dram_share) == (Variant.SLC, 0.5)
    assert a.dram_variant is None and b.dram_variant is None
    e = {(l, v): table.get(l, v, 6, 6).energy_pJ for l in (1, 2, 3) for v in Variant}
    on, dram = e[3, Variant.ELBLC], e[3, Variant.SLC]
    expected = e[1, Variant.Start] + e[2, Variant.LBLC] + on + 0.5 * (dram - on)
    assert st.energy_pJ == pytest.approx(expected, rel=1e-12)


def test_a_join_inside_the_whole_block_reads_on_chip(res):
    table = synthetic_table(res, seed=3)
    sched = evaluate(res, table, [StackSpec(0, 4, (1, 3), (0, 2))])
    layers = sched.stacks[0].layers
    assert [sl.variants[0] for sl in layers] == [Variant.Start] + [Variant.LBLC] * 3 + [Variant.ELBLC]
    later = [Variant.OutWCC, Variant.LBLC, Variant.WCC, Variant.LBLC, Variant.ELBLC]
    assert [sl.variants[1] for sl in layers] == later
    assert all(sl.dram_variant is None for sl in layers)
    # a middle join that reads DRAM mixes LBLC with Start
    role = layer_role(res, 3, 1, 4)
    assert (role.variant(False), role.dram_variant, role.outside) == (Variant.LBLC, Variant.Start, 0.5)


def test_concat_share_is_by_channels():
    layers = (
        conv("x", 2, 2),
        conv("y", 2, 6, k=1),
        Layer("cat", C=8, M=8, P=6, Q=6, kind="concat", n_inputs=2),
        Layer("cat_in", C=11, M=11, P=6, Q=6, kind="concat", n_inputs=3),
    )
    net = Network("cat", layers, ((-1,), (0,), (1, 0), (-1, 2, -1)), input_plane=(6, 6))
    assert outside_share(net, 2, 1) == pytest.approx(2 / 8)  # x (2 channels) is outside, y (6) inside
    assert outside_share(net, 2, 0) == 0.0 and outside_share(net, 2, 2) == 1.0
    # the network input carries what is left of C (11 - 8 = 3 channels, read twice)
    assert outside_share(net, 3, 2) == pytest.approx(3 / 11)
    add = Layer("add", C=2, M=2, P=6, Q=6, kind="add", n_inputs=3)
    net3 = Network("add3", (conv("x", 2, 2), conv("y", 2, 2), add), ((-1,), (0,), (1, 0, -1)))
    assert outside_share(net3, 2, 1) == pytest.approx(2 / 3)  # by operands: x and the input are outside


def test_single_exit_is_checked(res):
    table = synthetic_table(res, seed=3)
    with pytest.raises(ScheduleError) as exc:
        evaluate(res, table, [StackSpec(0, 2, (3, 3)), *alone(res, [3, 4])])
    assert str(exc.value) == (
        "stack 0 (layers 0-2): layer 0 (stem) is read by layer 3 (add), after the stack's last layer; "
        "every layer of a stack but its last must have all its consumers inside the stack (single exit)"
    )
    assert single_exit_lowest(res, 2) == 1 and single_exit_lowest(res, 3) == 0
    with pytest.raises(ValueError, match="single exit"):
        walk_axis(res, 2, 0, 0, np.array([1, 2]), "exact")


def test_a_network_output_ends_its_stack():
    layers = (conv("x", 2, 2), conv("head1", 2, 3), conv("head2", 2, 3))
    net = Network("two heads", layers, ((-1,), (0,), (0,)), input_plane=(6, 6))
    table = synthetic_table(net, seed=1)
    with pytest.raises(ScheduleError, match=r"layer 1 \(head1\) is a network output .* can only be the last"):
        evaluate(net, table, [StackSpec(0, 2, (2, 2))])
    assert evaluate(net, table, [StackSpec(0, 0, (6, 6)), StackSpec(1, 1, (6, 6)), StackSpec(2, 2, (6, 6))])


def test_capacity_holds_the_skip_tensor_until_its_add(res):
    table = synthetic_table(res, seed=3)
    spec = [StackSpec(0, 3, (6, 6)), *alone(res, [4])]
    # one tile of 6 x 6 x 4 channels = 144 words per tensor; while b runs: a's output (its input),
    # the stem's output (held for the add) and b's output
    with pytest.raises(ScheduleError) as exc:
        evaluate(res, table, spec, capacity=CapacitySpec(home=GB, words={"GB": 431}))
    assert str(exc.value) == (
        "stack 0 (layers 0-3), tile 0 [row 0, col 0, 6x6]: layer 2 (b) needs 432 words at GB "
        "(0 cached weights + 144 input + 144 held for later layers + 144 output) but GB holds 431"
    )
    assert evaluate(res, table, spec, capacity=CapacitySpec(home=GB, words={"GB": 432}))
    # without the stem the skip tensor comes from DRAM: 288 words is enough
    spec2 = [*alone(res, [0]), StackSpec(1, 3, (6, 6)), *alone(res, [4])]
    assert evaluate(res, table, spec2, capacity=CapacitySpec(home=GB, words={"GB": 288}))
    need = r"needs 288 words .* \(0 cached weights \+ 144 input \+ 144 output"
    with pytest.raises(ScheduleError, match=need):
        evaluate(res, table, spec2, capacity=CapacitySpec(home=GB, words={"GB": 287}))


def test_legacy_rule_fuses_chains_only(res):
    table = synthetic_table(res, seed=3)
    branch = r"legacy rule .* chains only.* layer 0 \(stem\) is read by layers 1, 3"
    with pytest.raises(ScheduleError, match=branch):
        evaluate(res, table, [StackSpec(0, 3, (2, 2)), *alone(res, [4])], rule="legacy")
    sched = evaluate(res, table, [*alone(res, [0, 1, 2]), StackSpec(3, 4, (1, 1))], rule="legacy")
    assert sched.stacks[3].layers[0].variants[0] == Variant.Start  # the add reads both operands from DRAM


@pytest.fixture
def odd() -> Network:
    """A 5 x 5 conv before a 2x2, stride-2 pool: the conv's last row and column are read by nobody."""
    layers = (
        conv("conv", 2, 3, size=5),
        Layer("pool", C=3, M=3, P=2, Q=2, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max"),
    )
    return Network.chain("odd", layers, input_plane=(5, 5))


def test_pixels_no_consumer_reads_are_not_computed_and_the_log_says_so(odd):
    table = synthetic_table(odd, seed=2)
    sched = evaluate(odd, table, [StackSpec(0, 1, (1, 1))])
    assert sched.skipped_pixels == 9 and sched.skipped_macs == 9 * odd.layers[0].macs_for(1, 1)
    assert sched.total.macs == sched.layer_by_layer.macs - sched.skipped_macs
    log = render_log(sched, odd, {}, None, 0.0)
    assert (
        f"MACs: {sched.total.macs:,} fused vs {sched.layer_by_layer.macs:,} layer by layer: 9 output pixels "
        "that no consumer reads are not computed (486 MACs; e.g. the last row of an odd plane before a 2x2, "
        "stride-2 pool), more than the halo recompute adds (0 MACs)"
    ) in log
    assert "legacy" not in log
    legacy = evaluate(odd, table, [StackSpec(0, 1, (1, 1))], rule="legacy")
    assert "the legacy rule ignores padding and pooling" in render_log(legacy, odd, {}, None, 0.0)


def test_a_layer_that_reads_both_sides_cannot_be_cached():
    layers = (conv("x", 2, 2), conv("y", 2, 2), conv("both", 2, 2))
    net = Network("two operands", layers, ((-1,), (0,), (1, 0)), input_plane=(6, 6))
    table = synthetic_table(net, seed=1)
    with pytest.raises(ScheduleError, match=r"cached layer 2 \(both\) reads tensors made both inside"):
        evaluate(net, table, [StackSpec(0, 0, (6, 6)), StackSpec(1, 2, (3, 3), (2,))])
    assert evaluate(net, table, [StackSpec(0, 0, (6, 6)), StackSpec(1, 2, (3, 3), (1,))])
