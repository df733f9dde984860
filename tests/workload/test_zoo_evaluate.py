"""The zoo's branching networks go through the search's DAG rules: fused schedules over their residual
blocks, inception modules and inverted residuals evaluate, and a stack that leaves a skip tensor
behind is refused (single exit). Synthetic tables at a 32 x 32 input keep this fast."""

from __future__ import annotations

import pytest

from deepfrack.errors import ScheduleError
from deepfrack.search import evaluate
from deepfrack.search.graph import single_exit_lowest
from deepfrack.search.schedule import StackSpec
from deepfrack.workload.zoo import zoo_network
from tests.synthetic import synthetic_table


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "googlenet"])
@pytest.mark.parametrize("tile", [1, 2])
def test_deepest_single_exit_stacks_evaluate(name: str, tile: int):
    net = zoo_network(name, (32, 32))
    table = synthetic_table(net, seed=3)
    specs, last = [], len(net) - 1
    while last >= 0:  # from the end: the deepest stack ending at `last` that single exit allows
        first = single_exit_lowest(net, last)
        q, p = net.layers[last].out_plane
        specs.insert(0, StackSpec(first, last, (min(tile, q), min(tile, p)), ()))
        last = first - 1
    schedule = evaluate(net, table, specs)
    assert [(s.first, s.last) for s in schedule.stacks] == [(s.first, s.last) for s in specs]
    assert schedule.total.macs >= net.macs  # every output computed, halos recomputed


def test_a_stack_that_leaves_a_skip_tensor_behind_is_refused():
    net = zoo_network("resnet18", (32, 32))
    table = synthetic_table(net, seed=3)
    add = next(i for i, layer in enumerate(net.layers) if layer.name == "layer1.0.add")
    specs = [StackSpec(i, i, net.layers[i].out_plane, ()) for i in range(len(net))]
    specs[add : add + 2] = [StackSpec(add, add + 1, (2, 2), ())]  # the add and the next block's conv1
    with pytest.raises(ScheduleError, match=r"layer1\.0\.add\).*single exit"):
        evaluate(net, table, specs)
