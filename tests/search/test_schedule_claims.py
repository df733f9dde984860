"""``evaluate`` checks what a schedule file says: when a stack lists its tiles, and its layers their
regions, variants and DRAM input, they must be what the rules give for its tile_shape. A tile
removed, a region shrunk or shifted by a row, a tile_shape inconsistent with its tiles: one line naming
the stack, layer and tile (through the CLI: the schedule file), exit 2, nothing written."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepfrack.benchmark.tables_io import write_csv_table
from deepfrack.cli import main
from deepfrack.errors import InputError, ScheduleError
from deepfrack.search import StackSpec, evaluate
from deepfrack.search.schedule_io import read_stack_specs, schedule_to_dict
from deepfrack.workload.layer import Layer, Network
from deepfrack.workload.loaders import load_workload
from tests.synthetic import synthetic_table


def res_net() -> Network:
    """stem -> a -> b -> add(b, stem): fused from a, the add reads the stem's output from DRAM."""
    layers = (
        Layer("stem", C=2, M=3, P=7, Q=6, R=3, S=3, pad=(1, 1, 0, 2)),
        Layer("a", C=3, M=3, P=7, Q=6, R=3, S=3, pad=(2, 0, 1, 1)),
        Layer("b", C=3, M=3, P=7, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
        Layer("add", C=3, M=3, P=7, Q=6, kind="add", n_inputs=2),
    )
    return Network("res", layers, ((-1,), (0,), (1,), (2, 0)), input_plane=(6, 7))


@pytest.fixture
def case(tmp_path: Path):
    net = res_net()
    table = synthetic_table(net, seed=4)
    specs = [StackSpec(0, 0, (6, 7)), StackSpec(1, 3, (4, 3), (1,))]
    doc = schedule_to_dict(evaluate(net, table, specs), net, {})
    return net, table, doc, tmp_path / "schedule.json"


def check(net, table, doc, path: Path):
    path.write_text(json.dumps(doc))
    return evaluate(net, table, read_stack_specs(path))


def test_a_written_schedule_reads_back(case):
    net, table, doc, path = case
    add = doc["stacks"][1]["layers"][2]
    assert (add["dram_input_variant"], add["dram_input_share"]) == ("SLC", 0.5)
    assert "dram_input_variant" not in doc["stacks"][1]["layers"][0]
    again = check(net, table, doc, path)
    assert schedule_to_dict(again, net, {}) == doc
    specs = read_stack_specs(path)
    assert len(specs[1].tiles) == 6 and [c.layer for c in specs[1].layers] == [1, 2, 3]
    # a file without tiles or layers states nothing more
    for st in doc["stacks"]:
        del st["tiles"], st["layers"]
    assert check(net, table, doc, path).total == again.total


def _tile(doc, k):
    return doc["stacks"][1]["tiles"][k]


def _region(doc, layer, k):
    return doc["stacks"][1]["layers"][layer - 1]["regions"][k]


def remove_tile(doc):
    del doc["stacks"][1]["tiles"][2]


def shrink_region(doc):
    _region(doc, 1, 3)[2] -= 1  # one row fewer of layer a in tile 3


def shift_region(doc):
    _region(doc, 2, 4)[0] += 1  # layer b's region in tile 4 one row down


def shape_not_its_tiles(doc):
    doc["stacks"][1]["tile_shape"] = [3, 3]


def other_variant(doc):
    doc["stacks"][1]["layers"][1]["variant_per_tile"][5] = "WCC"


def other_share(doc):
    doc["stacks"][1]["layers"][2]["dram_input_share"] = 0.25


def fewer_regions(doc):
    doc["stacks"][1]["layers"][0]["regions"].pop()


def layer_missing(doc):
    del doc["stacks"][1]["layers"][1]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            remove_tile,
            "layer 3 (add), tile 2: the schedule says tile [4, 0, 2, 3] but tile_shape [4, 3] gives [0, 6",
        ),
        (shrink_region, "layer 1 (a), tile 3: the schedule says region "),
        (shift_region, "layer 2 (b), tile 4: the schedule says region "),
        (
            shape_not_its_tiles,
            "layer 3 (add), tile 0: the schedule says tile [0, 0, 4, 3] but tile_shape [3, 3]",
        ),
        (
            other_variant,
            "layer 2 (b), tile 5: the schedule says variant WCC but tile_shape [4, 3] and cached",
        ),
        (other_share, "layer 3 (add): the schedule says 0.25 of its input words come from DRAM but the"),
        (fewer_regions, "layer 1 (a), tile 5: the schedule lists 5 regions but tile_shape [4, 3] gives 6"),
        (layer_missing, "the schedule lists layers [1, 3] for the stack; expected 1..3 in order"),
    ],
)
def test_what_the_file_says_must_be_what_the_rules_give(case, mutate, message):
    net, table, doc, path = case
    bad = copy.deepcopy(doc)
    mutate(bad)
    with pytest.raises(ScheduleError) as exc:
        check(net, table, bad, path)
    assert str(exc.value).startswith("stack 1 (layers 1-3)")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "key, value, field",
    [
        ("tiles", "all", "stacks[1].tiles"),
        ("tiles", [[0, 0, 4]], "stacks[1].tiles[0]"),
        ("tiles", [{"row": 0, "col": 0, "h": -4, "w": 3}], "stacks[1].tiles[0]"),
        ("layers", {"layer": 1}, "stacks[1].layers"),
        ("layers", [{"regions": []}], "stacks[1].layers[0].layer"),
        ("layers", [{"layer": 1, "regions": [[0, 0, 1.5, 2]]}], "stacks[1].layers[0].regions[0]"),
        ("layers", [{"layer": 1, "variant_per_tile": ["Fused"]}], "stacks[1].layers[0].variant_per_tile[0]"),
        ("layers", [{"layer": 1, "dram_input_share": 2}], "stacks[1].layers[0].dram_input_share"),
    ],
)
def test_malformed_claims_name_the_field(case, key, value, field):
    _, _, doc, path = case
    doc["stacks"][1][key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        read_stack_specs(path)
    assert exc.value.field == field and exc.value.path == path


NET = """network: chain
input: [8, 8]
layers:
  - {name: c1, C: 2, M: 4, R: 3, S: 3, P: 8, Q: 8, pad: 1}
  - {name: p1, type: pool, C: 4, R: 2, S: 2, P: 4, Q: 4, stride: 2}
  - {name: c2, C: 4, M: 4, R: 3, S: 3, P: 4, Q: 4, pad: [0, 2, 1, 1]}
"""


def test_through_the_cli_the_error_names_the_schedule_file(tmp_path: Path):
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    write_csv_table(synthetic_table(load_workload(net), seed=1), tmp_path / "costs.csv")
    given = tmp_path / "given.json"
    given.write_text(json.dumps({"stacks": [{"first": 0, "last": 2, "tile_shape": [2, 3]}]}))
    args = ["evaluate", "-w", str(net), "-t", str(tmp_path / "costs.csv"), "--capacity", "unlimited"]
    res = CliRunner().invoke(main, [*args, "-s", str(given), "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "a/schedule.json").read_text())
    doc["stacks"][0]["layers"][0]["regions"][1][0] += 1  # c1's region in tile 1 one row down
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    res = CliRunner().invoke(main, [*args, "-s", str(bad), "-o", str(tmp_path / "b")])
    assert res.exit_code == 2
    [line] = res.output.strip().splitlines()
    assert line.startswith(f"deepfrack: error: {bad}: stack 0 (layers 0-2), layer 0 (c1), tile 1: ")
    assert not (tmp_path / "b").exists()
