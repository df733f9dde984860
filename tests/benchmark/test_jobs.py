from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.benchmark.jobs import all_shapes, enumerate_jobs, make_job, square_shapes
from deepfrack.residency import VARIANTS, Variant
from deepfrack.search import required_shapes
from deepfrack.workload.layer import Layer, Network
from deepfrack.workload.loaders import load_network_yaml, load_problem_folder
from tests.benchmark.conftest import WORKLOAD


def test_alexnet_square_is_the_reference_benchmark():
    # The AlexNet_Simba reference ran 7 variants x 108 square tiles = 756 Timeloop runs.
    net = load_problem_folder(WORKLOAD)
    jobs = enumerate_jobs(net, "square")
    assert len(jobs) == 756
    per_layer = {i: sum(1 for j in jobs if j.layer_index == i and j.variant == Variant.SLC) for i in range(4)}
    assert per_layer == {0: 55, 1: 27, 2: 13, 3: 13}
    for j in jobs:
        assert j.tile_h == j.tile_w
        assert (j.tile_w, j.tile_h) == (j.layer.P, j.layer.Q)
        full = net.layers[j.layer_index]
        assert (j.layer.C, j.layer.M, j.layer.R, j.layer.S, j.layer.Wstride) == (
            full.C,
            full.M,
            full.R,
            full.S,
            full.Wstride,
        )
        assert j.layer.name == full.name
    assert [j.key for j in jobs] == sorted(
        (j.key for j in jobs), key=lambda k: (k[0], VARIANTS.index(k[1]), k[2], k[3])
    )
    assert jobs[0].describe() == "layer 1 (AlexNet_layer01), variant SLC, tile 1x1"


def test_non_square_layer_adds_the_whole_plane(tiny_net: Path):
    net = load_network_yaml(tiny_net)
    layer = net.layers[0]
    assert (layer.Q, layer.P) == (6, 8)
    assert square_shapes(layer) == [(t, t) for t in range(1, 7)] + [(6, 8)]
    assert len(all_shapes(layer)) == 48
    jobs = enumerate_jobs(net, "all", variants=["SLC", "wcc"])
    assert len(jobs) == 3 * 2 * 48
    assert {j.variant for j in jobs} == {Variant.SLC, Variant.WCC}


def test_needed_shapes(tiny_net: Path):
    net = load_network_yaml(tiny_net)
    needed = {
        (0, Variant.Start, 6, 8),
        (0, Variant.Start, 3, 4),
        (1, Variant.LBLC, 2, 2),
        (2, Variant.WCC, 1, 1),
    }
    jobs = enumerate_jobs(net, "needed", variants=[Variant.Start, Variant.LBLC], needed=needed)
    assert [j.key for j in jobs] == [
        (0, Variant.Start, 3, 4),
        (0, Variant.Start, 6, 8),
        (1, Variant.LBLC, 2, 2),
    ]
    with pytest.raises(ValueError, match="required_shapes"):
        enumerate_jobs(net, "needed")
    keys = required_shapes(net, 2)
    assert {j.key for j in enumerate_jobs(net, "needed", needed=keys)} == keys
    with pytest.raises(ValueError, match="does not fit"):
        enumerate_jobs(net, "needed", needed={(0, Variant.SLC, 7, 1)})
    with pytest.raises(ValueError, match="unknown shape set"):
        enumerate_jobs(net, "rectangles")


def test_make_job_rejects_tiles_outside_the_plane(tiny_net: Path):
    net = load_network_yaml(tiny_net)
    with pytest.raises(ValueError):
        make_job(net, 0, "SLC", 0, 3)
    with pytest.raises(ValueError):
        make_job(net, 0, "SLC", 6, 9)
    assert make_job(net, 0, "slc", 6, 8).layer == net.layers[0]


@settings(max_examples=50, deadline=None)
@given(P=st.integers(1, 12), Q=st.integers(1, 12))
def test_shape_sets_cover_the_plane(P: int, Q: int):
    layer = Layer("l", C=2, M=3, P=P, Q=Q)
    every = all_shapes(layer)
    assert len(every) == len(set(every)) == P * Q
    assert all(1 <= h <= Q and 1 <= w <= P for h, w in every)
    sq = square_shapes(layer)
    assert len(sq) == len(set(sq)) and set(sq) <= set(every)
    assert (Q, P) in sq  # the whole layer is always benchmarked
    assert sum(1 for h, w in sq if h == w) == min(P, Q)
    net = Network.chain("n", [layer])
    assert len(enumerate_jobs(net, "square")) == 7 * len(sq)
