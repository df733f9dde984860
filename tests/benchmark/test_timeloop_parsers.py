"""The Timeloop output parsers against the real recorded runs (and their extracted CSV/JSONL values)."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from deepfrack.benchmark.timeloop import (
    TimeloopParseError,
    parse_factors,
    parse_map_txt,
    parse_map_yaml,
    parse_stats,
    read_output_folder,
)
from tests.paths import EXAMPLES, EXERCISES

SAMPLES = sorted(EXAMPLES.glob("*/timeloop-samples/*_Layer*_Tile*"))
# outermost first, the arithmetic level last: CostRecord's level order
LEVELS = ("DRAM", "GlobalBuffer", "PEInputBuffer", "PEWeightBuffer", "PEAccuBuffer", "PEWeightRegs", "LMAC")


def _sample_id(folder: Path) -> tuple[str, str, int, int]:
    dataflow, layer, tile = folder.name.split("_")
    return folder.parents[1].name, dataflow, int(layer[len("Layer") :]), int(tile[len("Tile") :])


def _csv_row(example: str, dataflow: str, layer: int, tile: int) -> dict[str, str]:
    with (EXAMPLES / example / "timeloop-per-tile.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if (row["dataflow"], row["layer"], row["tile"]) == (dataflow, str(layer), str(tile)):
                return row
    raise LookupError((example, dataflow, layer, tile))


def _jsonl(example: str, dataflow: str, layer: int, tile: int) -> dict:
    with (EXAMPLES / example / "timeloop-mappings.jsonl").open() as f:
        for line in f:
            d = json.loads(line)
            if (d["dataflow"], d["layer"], d["tile"]) == (dataflow, layer, tile):
                return d
    raise LookupError((example, dataflow, layer, tile))


def test_there_are_four_samples():
    assert len(SAMPLES) == 4


@pytest.mark.parametrize("folder", SAMPLES, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_stats_match_the_per_tile_csv(folder: Path):
    example, dataflow, layer, tile = _sample_id(folder)
    row = _csv_row(example, dataflow, layer, tile)
    rec = read_output_folder(folder)
    stats = parse_stats((folder / "timeloop-mapper.stats.txt").read_text())
    assert stats.energy_uJ_summary == float(row["energy_uJ"])
    assert rec.cycles == int(row["cycles"])
    assert rec.macs == int(row["computes"])
    assert stats.utilization == pytest.approx(float(row["utilization"]))
    assert list(rec.level_energy_pJ) == list(LEVELS)
    for level in LEVELS:
        assert rec.level_energy_pJ[level] == pytest.approx(float(row[f"energy_pJ_{level}"]), abs=0.006)
    # the summary line is the rounded total
    assert round(rec.energy_pJ * 1e-6, 2) == float(row["energy_uJ"])
    for short, level in (("dram", "DRAM"), ("glb", "GlobalBuffer")):
        for ds in ("Weights", "Inputs", "Outputs"):
            for kind in ("reads", "updates", "fills"):
                cell = row[f"{short}_{ds.lower()}_{kind}"]
                got = rec.accesses[level][kind].get(ds)
                assert got == (int(cell) if cell != "" else None), (level, ds, kind)


@pytest.mark.parametrize("folder", SAMPLES, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_stats_and_mapping_match_the_jsonl(folder: Path):
    ref = _jsonl(*_sample_id(folder))
    tl = ref["timeloop"]
    stats = parse_stats((folder / "timeloop-mapper.stats.txt").read_text())
    assert stats.energy_pJ == pytest.approx(tl["energy_pJ"], abs=0.01)
    assert (stats.cycles, stats.computes) == (tl["cycles"], tl["computes"])
    a = stats.arithmetic
    assert [a.name, a.instances, a.utilized_instances, a.computes, a.cycles, a.energy_pJ] == [
        tl["arithmetic"][k]
        for k in ("name", "instances", "utilized_instances", "computes", "cycles", "energy_pJ")
    ]
    assert stats.networks_energy_pJ == tl["networks_energy_pJ"]
    assert len(stats.levels) == len(tl["levels"])
    for lv, want in zip(stats.levels, tl["levels"], strict=True):
        assert (lv.level, lv.name, lv.instances, lv.size_words, lv.cycles) == (
            want["level"],
            want["name"],
            want["instances"],
            want["size_words"],
            want["cycles"],
        )
        assert lv.energy_pJ == pytest.approx(want["energy_pJ"], abs=0.006)
        assert set(lv.dataspaces) == set(want["dataspaces"])
        for ds, d in lv.dataspaces.items():
            w = want["dataspaces"][ds]
            for field in (
                "reads",
                "fills",
                "updates",
                "temporal_reductions",
                "utilized_instances",
                "utilized_capacity",
                "partition_size",
                "energy_per_scalar_access_pJ",
                "energy_pJ",
            ):
                assert getattr(d, field) == w[field], (lv.name, ds, field)
    # the mapping, from map.txt (every sample) and from map.yaml (the SLC samples have one)
    assert parse_map_txt((folder / "timeloop-mapper.map.txt").read_text()) == ref["mapping"]
    if (folder / "timeloop-mapper.map.yaml").is_file():
        assert parse_map_yaml((folder / "timeloop-mapper.map.yaml").read_text()) == ref["mapping"]
        assert read_output_folder(folder).mapping == ref["mapping"]


@pytest.mark.parametrize(
    "design", ["eyeriss_like", "simba_like", "simple_output_stationary", "simple_weight_stationary"]
)
def test_v04_outputs(design: str):
    folder = EXERCISES / design / "ref_outputs"
    stats = parse_stats((folder / "timeloop-mapper.stats.txt").read_text())
    # the printed terms (with v0.4's leakage) add up to the summary energy
    assert round(stats.energy_pJ * 1e-6, 2) == stats.energy_uJ_summary
    assert stats.computes == 10838016  # C3 M32 R3 S3 P112 Q112
    from_txt = parse_map_txt((folder / "timeloop-mapper.map.txt").read_text())
    from_yaml = parse_map_yaml(yaml.safe_load((folder / "timeloop-mapper.map.yaml").read_text()))
    assert from_txt == from_yaml
    for dim, size in {"C": 3, "M": 32, "R": 3, "S": 3, "N": 1, "P": 112, "Q": 112}.items():
        product = 1
        for d in from_yaml:
            if d["type"] != "datatype":
                product *= d["factors"][dim]
        assert product == size, dim


def test_utilization_percent_and_factors():
    stats = parse_stats((EXERCISES / "simba_like" / "ref_outputs" / "timeloop-mapper.stats.txt").read_text())
    assert stats.utilization == pytest.approx(0.1875)
    assert parse_factors("C1 M16 R1") == {"C": 1, "M": 16, "R": 1}
    assert parse_factors("P=1 Q=1 M<=4") == {"P": 1, "Q": 1, "M": 4}


def test_not_timeloop_output():
    with pytest.raises(TimeloopParseError):
        parse_stats("hello\nworld\n")
    with pytest.raises(TimeloopParseError):
        parse_map_txt("nothing here")
    truncated = (SAMPLES[0] / "timeloop-mapper.stats.txt").read_text().split("Summary Stats")[0]
    with pytest.raises(TimeloopParseError, match="Energy"):
        parse_stats(truncated)
