"""The original DeepFrack's six logged results, reproduced by `evaluate` under the legacy rule with
unlimited capacity (README.md section 6 of the reference set), and `optimize` never worse."""

from __future__ import annotations

import csv
import re
import warnings

import pytest

from deepfrack.benchmark.tables_io import read_tables
from deepfrack.search import StackSpec, evaluate, layer_by_layer, optimize
from deepfrack.workload.loaders import load_workload
from tests.paths import EXAMPLES

# workload and table folders of each logged run (examples/reference/deepfrack-examples/README.md, section 1)
FOLDERS = {
    ("AlexNet_Simba", ""): ("AlexNet_Simba/inputs/AlexNet", "AlexNet_Simba/cost-tables"),
    ("VGG_Simba", ""): ("VGG_Simba/inputs/VGG02", "VGG_Simba/cost-tables"),
    ("AlexNet_SystolicSimba", ""): (
        "AlexNet_SystolicSimba/inputs/AlexNet",
        "AlexNet_SystolicSimba/cost-tables",
    ),
    ("MobileNet_SimbaSystolic", ""): (
        "MobileNet_SimbaSystolic/inputs/MobileNet",
        "MobileNet_SimbaSystolic/cost-tables",
    ),
    ("GAN_Gemmini", "Generator"): (
        "GAN_Gemmini/inputs/problemCNN/Generator",
        "GAN_Gemmini/cost-tables/Generator",
    ),
    ("GAN_Gemmini", "Discriminator"): (
        "GAN_Gemmini/inputs/problemCNN/Discriminator",
        "GAN_Gemmini/cost-tables/Discriminator",
    ),
}


def _headlines() -> list[dict[str, str]]:
    with open(EXAMPLES / "reported-headlines.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["fused_energy_uJ"]]


def _specs(row: dict[str, str]) -> list[StackSpec]:
    """Stacks, tiles and caching patterns of a logged run, from the headline CSV."""
    stacks = [
        tuple(int(x) for x in m) for m in re.findall(r"\((\d+)-(\d+)\)", row["stacks_0based_inclusive"])
    ]
    tiles = [[int(t) for t in re.findall(r"\d+", part)] for part in row["tiles_used_per_stack"].split(";")]
    caching = row["weight_caching_per_stack"]
    patterns = caching.split(";") if ";" in caching or caching.isdigit() else [""] * len(stacks)
    specs = []
    for (first, last), ts, pattern in zip(stacks, tiles, patterns, strict=True):
        assert len(set(ts)) == 1  # the logged tilings are uniform squares
        cached = tuple(first + k for k, bit in enumerate(pattern) if bit == "1")
        specs.append(StackSpec(first, last, (ts[0], ts[0]), cached))
    return specs


ROWS = _headlines()


def test_all_six_logged_results_are_covered():
    assert sorted((r["example"], r["part"]) for r in ROWS) == sorted(FOLDERS)


@pytest.fixture(
    scope="module", params=ROWS, ids=lambda r: f"{r['example']}{'-' + r['part'] if r['part'] else ''}"
)
def logged(request):
    row = request.param
    wl, tb = FOLDERS[(row["example"], row["part"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # these folders' layers do not chain (no padding, no pooling)
        network = load_workload(EXAMPLES / wl)
    return row, network, read_tables(EXAMPLES / tb)


def test_evaluate_reproduces_the_log(logged):
    row, network, table = logged
    specs = _specs(row)
    schedule = evaluate(network, table, specs, capacity=None, rule="legacy")
    assert round(schedule.total.energy_uJ, 2) == round(float(row["fused_energy_uJ"]), 2)
    assert round(schedule.layer_by_layer.energy_uJ, 2) == round(float(row["single_layer_energy_uJ"]), 2)
    assert layer_by_layer(network, table) == schedule.layer_by_layer
    # the logged number of tiles per stack is what the uniform grid gives
    tiles = [part.count(" ") + 1 for part in row["tiles_used_per_stack"].split(";")]
    assert [len(s.tiles) for s in schedule.stacks] == tiles
    if row["fused_cycles"]:
        assert schedule.total.cycles == pytest.approx(float(row["fused_cycles"]))
        assert schedule.layer_by_layer.cycles == pytest.approx(float(row["single_layer_cycles"]))
    else:
        assert schedule.total.cycles is None


def test_optimize_is_never_worse(logged):
    row, network, table = logged
    schedule, stats = optimize(network, table, capacity=None, rule="legacy")
    assert schedule.total.energy_uJ <= float(row["fused_energy_uJ"]) + 1e-9
    assert stats.stacks_considered == len(network) * (len(network) + 1) // 2
    # what it found is a valid schedule that evaluate costs the same
    again = evaluate(
        network,
        table,
        [StackSpec(s.first, s.last, s.tile_shape, s.cached_layers) for s in schedule.stacks],
        rule="legacy",
    )
    assert again.total.energy_pJ == pytest.approx(schedule.total.energy_pJ, rel=1e-12)


def test_legacy_regions_of_alexnet():
    """The reference set's README.md, section 7: the logged AlexNet_Simba stack computes a 19x19 region of
    layer 1's 55x55 output."""
    network = load_workload(EXAMPLES / "AlexNet_Simba/inputs/AlexNet")
    table = read_tables(EXAMPLES / "AlexNet_Simba/cost-tables")
    schedule = evaluate(network, table, [StackSpec(0, 3, (13, 13))], rule="legacy")
    shapes = [sl.regions[0].shape for sl in schedule.stacks[0].layers]
    assert shapes == [(19, 19), (15, 15), (13, 13), (13, 13)]


def test_vgg_fused_region_fraction():
    """The reference set's README.md, section 7: VGG's fused schedule covers 4 x 23^2 of layer 1's 224^2
    output (4.2%)."""
    network = load_workload(EXAMPLES / "VGG_Simba/inputs/VGG02")
    table = read_tables(EXAMPLES / "VGG_Simba/cost-tables")
    schedule = evaluate(
        network,
        table,
        [StackSpec(0, 10, (7, 7), tuple(range(10))), StackSpec(11, 11, (14, 14))],
        rule="legacy",
    )
    first = schedule.stacks[0].layers[0]
    assert [r.shape for r in first.regions] == [(23, 23)] * 4
    assert first.variants == ("Start", "OutWCC", "OutWCC", "OutWCC")
    assert schedule.stacks[0].layers[-1].variants == ("ELBLC",) * 4  # layer 10 is not cached
