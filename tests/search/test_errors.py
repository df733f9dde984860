"""Every ScheduleError and MissingCostError of evaluate / optimize, with messages that say what to change."""

from __future__ import annotations

import re
import warnings

import pytest

from deepfrack.arch.capacity import CapacitySpec
from deepfrack.benchmark.tables_io import read_tables
from deepfrack.errors import InputError, MissingCostError, ScheduleError
from deepfrack.residency import Variant
from deepfrack.search import StackSpec, evaluate, layer_by_layer, optimize
from deepfrack.workload.layer import Layer, Network
from deepfrack.workload.loaders import load_workload
from tests.paths import EXAMPLES
from tests.synthetic import synthetic_table


@pytest.fixture
def net():
    layers = [
        Layer("conv1", C=3, M=4, P=6, Q=8, R=3, S=3, pad=(1, 1, 1, 1)),
        Layer("pool1", C=4, M=4, P=3, Q=4, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max"),
        Layer("conv2", C=4, M=5, P=3, Q=4, R=3, S=3, pad=(1, 1, 1, 1)),
    ]
    return Network.chain("tiny", layers, input_plane=(8, 6))


@pytest.fixture
def table(net):
    return synthetic_table(net, seed=1)


def _err(excinfo) -> str:
    return str(excinfo.value)


def test_a_valid_schedule(net, table):
    s = evaluate(net, table, [StackSpec(0, 2, (2, 3), (0, 2))])
    assert len(s.stacks) == 1 and len(s.stacks[0].tiles) == 2
    assert s.stacks[0].cached_layers == (0, 2)


@pytest.mark.parametrize(
    "specs, words",
    [
        ([StackSpec(0, 1, (4, 3))], ["layer 2 (conv2) is in no stack"]),
        ([StackSpec(1, 2, (4, 3))], ["layer 0 (conv1) is in no stack"]),
        ([StackSpec(0, 1, (4, 3)), StackSpec(1, 2, (4, 3))], ["layer 1 (pool1) is in two stacks"]),
        ([StackSpec(1, 2, (4, 3)), StackSpec(0, 0, (8, 6))], ["in no stack", "contiguous and in order"]),
        (
            [StackSpec(0, 0, (8, 6)), StackSpec(2, 2, (4, 3)), StackSpec(1, 1, (4, 3))],
            ["layer 1 (pool1) is in no stack"],
        ),
        ([StackSpec(0, 5, (4, 3))], ["layers must be in 0..2"]),
        ([StackSpec(2, 0, (4, 3))], ["after its last layer"]),
        ([], ["no stacks"]),
    ],
)
def test_partition_errors(net, table, specs, words):
    with pytest.raises(ScheduleError) as e:
        evaluate(net, table, specs)
    for w in words:
        assert w in _err(e)


@pytest.mark.parametrize(
    "spec, words",
    [
        (StackSpec(0, 2, (0, 3)), ["stack 0 (layers 0-2)", "tile_shape 0x3", "positive"]),
        (StackSpec(0, 2, (2, -1)), ["must be positive"]),
        (StackSpec(0, 2, (5, 3)), ["tile_shape 5x3", "larger than layer 2 (conv2)'s 4x3 output plane"]),
        (StackSpec(0, 2, (2, 3), (3,)), ["cached layer 3 is outside the stack"]),
        (StackSpec(0, 2, (2, 3), (1,)), ["cached layer 1 (pool1) is a pool layer and has no weights"]),
    ],
)
def test_stack_errors(net, table, spec, words):
    with pytest.raises(ScheduleError) as e:
        evaluate(net, table, [spec])
    for w in words:
        assert w in _err(e)


def test_single_layer_stacks_are_slc_on_the_whole_plane(net, table):
    with pytest.raises(ScheduleError, match=r"whole plane; tile_shape must be \[8, 6\]"):
        evaluate(net, table, [StackSpec(0, 0, (4, 6)), StackSpec(1, 2, (4, 3))])
    with pytest.raises(ScheduleError, match="caches no weights"):
        evaluate(net, table, [StackSpec(0, 0, (8, 6), (0,)), StackSpec(1, 2, (4, 3))])


def test_capacity_error_names_stack_tile_layer_level_and_words(net, table):
    cap = CapacitySpec(home={"Weights": "WB", "Inputs": "GB", "Outputs": "GB"}, words={"GB": 100, "WB": 1000})
    # tile 0 = rows 0-1 of conv2 (3x3, pad 1) needs pool1 rows 0-2 and columns 0-2; pool1 (2x2, stride 2)
    # needs conv1 rows 0-5, columns 0-5: conv1's output region is 6 x 6 x 4 channels = 144 words
    with pytest.raises(ScheduleError) as e:
        evaluate(net, table, [StackSpec(0, 2, (2, 3))], capacity=cap)
    msg = _err(e)
    assert "stack 0 (layers 0-2), tile 0 [row 0, col 0, 2x3]" in msg
    assert (
        "layer 0 (conv1) needs 144 words at GB (0 cached weights + 0 input + 144 output) but GB holds 100"
        in msg
    )
    # weights: conv1 has 108, conv2 180 weights
    cap_w = CapacitySpec(
        home={"Weights": "WB", "Inputs": "GB", "Outputs": "GB"}, words={"GB": 10_000, "WB": 200}
    )
    evaluate(net, table, [StackSpec(0, 2, (2, 3), (0,))], capacity=cap_w)
    with pytest.raises(
        ScheduleError,
        match=r"needs 288 words at WB \(288 cached weights \+ 0 input \+ 0 output\) "
        r"but WB holds 200",
    ):
        evaluate(net, table, [StackSpec(0, 2, (2, 3), (0, 2))], capacity=cap_w)
    # unlimited: fine
    evaluate(net, table, [StackSpec(0, 2, (2, 3), (0, 2))], capacity=None)


def test_missing_entry_names_layer_variant_and_shape(net, table):
    del table.records[(2, Variant.EWCC, 2, 3)]
    evaluate(net, table, [StackSpec(0, 2, (2, 3), (0,))])  # conv2 not cached: EWCC not needed
    with pytest.raises(MissingCostError) as e:
        evaluate(net, table, [StackSpec(0, 2, (2, 3), (0, 2))])
    assert _err(e).startswith(
        f"{table.source}: no cost entry for layer 2 (conv2), variant EWCC, tile 2x3 (h x w) "
        "[layer 3 in the table files' 1-based numbering]"
    )
    assert (e.value.layer, e.value.variant, e.value.shape) == (2, "EWCC", (2, 3))


def test_infeasible_entry_says_so(net, table):
    key = (2, Variant.EWCC, 2, 3)
    del table.records[key]
    table.infeasible.add(key)
    with pytest.raises(MissingCostError, match=r"no valid mapping for it$"):
        evaluate(net, table, [StackSpec(0, 2, (2, 3), (0, 2))])
    table.reasons[key] = "mapper.yaml: optimization-metrics: unknown metric 'speed'"
    with pytest.raises(
        MissingCostError,
        match=re.escape("no valid mapping for it: mapper.yaml: optimization-metrics: unknown"),
    ):
        evaluate(net, table, [StackSpec(0, 2, (2, 3), (0, 2))])


def _original(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_workload(EXAMPLES / f"{name}/inputs/AlexNet"), read_tables(
            EXAMPLES / f"{name}/cost-tables"
        )


def test_exact_rule_does_not_fuse_unchained_layers():
    network, table = _original("AlexNet_Simba")
    spec = [StackSpec(0, 3, (13, 13))]
    with pytest.raises(ScheduleError) as e:
        evaluate(network, table, spec, rule="exact")
    assert "layers 0 (AlexNet_layer01) and 1 (AlexNet_layer02) do not chain" in _err(e)
    assert "--receptive-field legacy" in _err(e)
    evaluate(network, table, spec, rule="legacy")
    # optimize under the exact rule runs layer by layer there
    schedule, _ = optimize(network, table, rule="exact")
    assert [s.depth for s in schedule.stacks] == [1, 1, 1, 1]
    assert schedule.total == schedule.layer_by_layer


def test_square_only_tables_hint_under_the_exact_rule():
    layers = [
        Layer("a", C=3, M=8, P=13, Q=13, R=3, S=3, pad=(1, 1, 1, 1)),
        Layer("b", C=8, M=8, P=13, Q=13, R=3, S=3, pad=(1, 1, 1, 1)),
    ]
    network = Network.chain("two", layers)
    table = synthetic_table(network, seed=3)
    table.records = {k: r for k, r in table.records.items() if k[2] == k[3]}
    with pytest.raises(MissingCostError) as e:
        evaluate(network, table, [StackSpec(0, 1, (5, 13))])
    assert "those tables hold only square tiles; use --receptive-field legacy or deepfrack benchmark" in _err(
        e
    )
    # optimize skips those tilings, counts them and says why
    schedule, stats = optimize(network, table)
    assert stats.tilings_skipped_missing > 0
    assert any("square tiles" in ex for ex in stats.skipped_examples)
    # what it chose needs only entries the table has: square regions everywhere
    assert any(s.depth > 1 for s in schedule.stacks)
    assert all(r.h == r.w for s in schedule.stacks for sl in s.layers for r in sl.regions)


def test_optimize_without_slc_for_a_whole_plane(net, table):
    del table.records[(1, Variant.SLC, 4, 3)]
    with pytest.raises(MissingCostError, match=r"layer 1 \(pool1\), variant SLC, tile 4x3"):
        optimize(net, table)
    with pytest.raises(MissingCostError):
        layer_by_layer(net, table)


def test_bad_options(net, table):
    with pytest.raises(ValueError, match="receptive-field rule"):
        optimize(net, table, rule="approximate")
    with pytest.raises(ValueError, match="receptive-field rule"):
        evaluate(net, table, [StackSpec(0, 2, (4, 3))], rule="approximate")
    with pytest.raises(ValueError, match="objective"):
        optimize(net, table, objective="area")
    with pytest.raises(ValueError, match="max_stack_depth"):
        optimize(net, table, max_stack_depth=0)
    no_cycles = synthetic_table(net, seed=1, cycles=False)
    with pytest.raises(InputError, match="cycles"):
        optimize(net, no_cycles, objective="cycles")


def test_a_tensor_without_a_home_level_never_stays_on_chip(net, table):
    spec = [StackSpec(0, 2, (2, 3), (0,))]
    no_weights = CapacitySpec(home={"Inputs": "GB", "Outputs": "GB"}, words={"GB": 10_000})
    with pytest.raises(ScheduleError, match=r"needs 108 words at \(no on-chip level keeps Weights\)"):
        evaluate(net, table, spec, capacity=no_weights)
    evaluate(net, table, [StackSpec(0, 2, (2, 3))], capacity=no_weights)
    sched, _ = optimize(net, table, capacity=no_weights)
    assert not any(s.cached_layers for s in sched.stacks)
    no_outputs = CapacitySpec(home={"Weights": "WB", "Inputs": "GB"}, words={"GB": 10_000, "WB": 10_000})
    with pytest.raises(
        ScheduleError, match=r"layer 0 \(conv1\) needs .* at \(no on-chip level keeps Outputs\)"
    ):
        evaluate(net, table, spec, capacity=no_outputs)
    sched, _ = optimize(net, table, capacity=no_outputs)
    assert all(s.depth == 1 for s in sched.stacks)  # nothing can pass between fused layers
