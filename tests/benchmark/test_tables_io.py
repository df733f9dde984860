from pathlib import Path

import pytest

from deepfrack.benchmark.tables_io import read_csv_table, read_tables, write_csv_table, write_json_tables
from deepfrack.cost import CostRecord, CostTable
from deepfrack.errors import InputError
from deepfrack.residency import Variant
from tests.paths import EXAMPLES


def test_original_json_tables_are_one_based_and_square():
    t = read_tables(EXAMPLES / "AlexNet_Simba/cost-tables")
    assert t.square_only and len(t) == 7 * (55 + 27 + 13 + 13)
    # SLC.json "1": {"55": ...} is layer 0, full 55x55 tile
    rec = t.get(0, Variant.SLC, 55, 55)
    assert rec is not None and rec.energy_uJ == pytest.approx(378.06)
    assert t.get(0, Variant.SLC, 55, 54) is None


def test_mobilenet_cycles_are_read():
    t = read_tables(EXAMPLES / "MobileNet_SimbaSystolic/cost-tables")
    rec = t.get(9, Variant.SLC, 7, 7)
    assert rec is not None and rec.cycles == 191488.0


def test_csv_round_trip(tmp_path: Path):
    t = CostTable()
    t.add(
        0,
        Variant.Start,
        3,
        5,
        CostRecord(energy_pJ=1.5e6, cycles=100.0, macs=42, level_energy_pJ={"DRAM": 1.0}),
    )
    t.add(1, Variant.SLC, 4, 4, CostRecord(energy_pJ=2.25e6))
    t.infeasible.add((1, Variant.WCC, 4, 4))
    write_csv_table(t, tmp_path / "costs.csv")
    back = read_csv_table(tmp_path / "costs.csv")
    assert back.get(0, Variant.Start, 3, 5) == t.get(0, Variant.Start, 3, 5)
    assert back.get(1, Variant.SLC, 4, 4).energy_pJ == pytest.approx(2.25e6)
    assert back.infeasible == {(1, Variant.WCC, 4, 4)}
    write_json_tables(back, tmp_path / "json")
    j = read_tables(tmp_path / "json")
    assert j.get(1, Variant.SLC, 4, 4).energy_pJ == pytest.approx(2.25e6)
    assert j.get(0, Variant.Start, 3, 5) is None  # JSON tables hold square tiles only


@pytest.mark.parametrize(
    "text, field",
    [
        ("layer,variant,tile_h,tile_w\n1,SLC,1,1\n", "header"),
        ("layer,variant,tile_h,tile_w,energy_uJ\n1,XYZ,1,1,0.5\n", "line 2.variant"),
        ("layer,variant,tile_h,tile_w,energy_uJ\n0,SLC,1,1,0.5\n", "line 2.layer"),
        ("layer,variant,tile_h,tile_w,energy_uJ\n1,SLC,1,1,abc\n", "line 2.energy_uJ"),
        ("layer,variant,tile_h,tile_w,energy_uJ\n1,SLC,1\n", "line 2"),
    ],
)
def test_csv_errors_name_field(tmp_path: Path, text: str, field: str):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        read_csv_table(p)
    assert err.value.field == field


def test_malformed_json_table(tmp_path: Path):
    (tmp_path / "SLC.json").write_text('{"1": {"4": ')
    with pytest.raises(InputError, match="malformed JSON"):
        read_tables(tmp_path)


def test_a_benchmark_output_folder_is_read_from_its_csv(tmp_path: Path):
    t = CostTable()
    t.add(0, Variant.Start, 3, 5, CostRecord(energy_pJ=1.5e6, cycles=100.0, macs=42))
    t.add(0, Variant.Start, 4, 4, CostRecord(energy_pJ=2.5e6, cycles=120.0, macs=50))
    t.infeasible.add((0, Variant.WCC, 4, 4))
    write_csv_table(t, tmp_path / "costs.csv")
    write_json_tables(t, tmp_path)
    back = read_tables(tmp_path)
    assert back.get(0, Variant.Start, 3, 5) is not None  # a rectangle: only the CSV has it
    assert back.get(0, Variant.Start, 4, 4).cycles == 120.0 and back.infeasible == {(0, Variant.WCC, 4, 4)}


def test_square_only_is_derived_from_the_keys_whatever_the_format(tmp_path: Path):
    # a costs.csv of `benchmark --shapes square` on square layers holds square tiles only: the search
    # must get the same hint as for the original's JSON tables
    from deepfrack.errors import MissingCostError
    from deepfrack.search import StackSpec, evaluate
    from deepfrack.workload.layer import Layer, Network
    from tests.synthetic import synthetic_table

    net = Network.chain(
        "two",
        [
            Layer("a", C=3, M=8, P=6, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
            Layer("b", C=8, M=8, P=6, Q=6, R=3, S=3, pad=(1, 1, 1, 1)),
        ],
    )
    full = synthetic_table(net, seed=1)
    square = CostTable(records={k: r for k, r in full.records.items() if k[2] == k[3]})
    square.infeasible.add((0, Variant.WCC, 2, 2))
    write_csv_table(square, tmp_path / "costs.csv")
    back = read_csv_table(tmp_path / "costs.csv")
    assert back.square_only
    with pytest.raises(MissingCostError, match="those tables hold only square tiles"):
        evaluate(net, back, [StackSpec(0, 1, (3, 6))])
    assert not full.square_only and not CostTable().square_only
    back.infeasible.add((1, Variant.SLC, 2, 3))  # an infeasible rectangle was benchmarked: not square-only
    assert not back.square_only
    back.add(0, Variant.SLC, 6, 6, full.get(0, Variant.SLC, 6, 6))
    back.infeasible.discard((1, Variant.SLC, 2, 3))
    assert back.square_only  # follows the keys as the table changes


@pytest.mark.parametrize(
    "rows, field, words",
    [
        (
            ["1,SLC,2,3,ok,0.5", "1,SLC,2,3,ok,0.7"],
            "line 3",
            "layer 1, variant SLC, tile 2x3 is given twice, on lines 2 and 3",
        ),
        (
            ["1,WCC,2,2,infeasible,", "2,SLC,1,1,ok,1", "1,WCC,2,2,infeasible,"],
            "line 4",
            "given twice, on lines 2 and 4",
        ),
        (
            ["1,WCC,2,2,ok,0.5", "1,wcc,2,2,infeasible,"],
            "line 3",
            "layer 1, variant WCC, tile 2x2 is ok on line 2 and infeasible on line 3",
        ),
        (["1,WCC,2,2,infeasible,", "1,WCC,2,2,ok,0.5"], "line 3", "is infeasible on line 2 and ok on line 3"),
    ],
)
def test_csv_entry_given_twice(tmp_path: Path, rows: list[str], field: str, words: str):
    p = tmp_path / "costs.csv"
    p.write_text("layer,variant,tile_h,tile_w,status,energy_uJ\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as err:
        read_csv_table(p)
    assert err.value.field == field and words in err.value.message and str(err.value).startswith(str(p))


def test_check_table_against_the_network(tmp_path: Path):
    from deepfrack.benchmark.tables_io import check_table
    from deepfrack.workload.layer import Layer, Network

    net = Network.chain(
        "n", [Layer("a", C=3, M=8, P=8, Q=6, R=3, S=3), Layer("b", C=8, M=8, P=6, Q=4, R=3, S=3)]
    )
    t = CostTable(source=str(tmp_path / "costs.csv"))
    t.add(0, Variant.SLC, 6, 8, CostRecord(energy_pJ=1.0))
    t.add(1, Variant.SLC, 4, 6, CostRecord(energy_pJ=1.0))
    check_table(t, net)  # every shape fits its layer
    t.infeasible.add((1, Variant.WCC, 4, 7))  # 7 columns > layer 2's 6
    with pytest.raises(InputError) as err:
        check_table(t, net)
    assert err.value.field == "layer 2" and str(err.value).startswith(str(tmp_path / "costs.csv"))
    assert (
        "variant WCC has a 4x7 tile (h x w), larger than the output plane of layer 2 (b), 4x6"
        in err.value.message
    )
    t.infeasible.clear()
    t.add(0, Variant.Start, 8, 6, CostRecord(energy_pJ=1.0))  # h and w swapped: 8 rows > 6
    with pytest.raises(InputError, match="Start has a 8x6 tile"):
        check_table(t, net)
    t.add(2, Variant.SLC, 1, 1, CostRecord(energy_pJ=1.0))
    with pytest.raises(InputError, match="the workload has only 2 layers"):
        check_table(t, net)
