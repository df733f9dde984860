"""The four v0.4 timeloop-accelergy-exercises designs through `deepfrack model ... --json`, against
the stats.txt of Timeloop's own run; and a v0.3 run of the original DeepFrack's reference sample."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deepfrack.cli import main
from tests.cost.helpers import EXERCISES, SIMBA_DIR, V04_DESIGNS, exercise_files, read_stats
from tests.paths import EXAMPLES


def _run(files):
    res = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.mark.parametrize("design", V04_DESIGNS)
def test_v04_design_matches_stats(design):
    out = _run(exercise_files(design))
    stats, summary = read_stats(EXERCISES / design / "ref_outputs/timeloop-mapper.stats.txt")
    assert out["rules"] == "timeloop-2024"
    assert out["valid"] is True and out["violations"] == []
    assert out["cycles"] == summary["cycles"]
    assert out["macs"] == summary["computes"]
    assert abs(out["energy_pJ"] / 1e6 - summary["energy_uJ"]) <= 0.005 + 1e-9  # stats prints uJ to 0.01
    assert abs(out["energy_pJ"] / 1e6 - summary["energy_uJ"]) / summary["energy_uJ"] < 0.01
    checked = 0
    for lv in out["levels"]:
        st = stats.get(lv["name"])
        if st is None:  # the v0.4 spatial placeholder levels print nothing
            assert lv["per_instance"] == {}
            continue
        assert lv["cycles"] == st["Cycles"]
        assert abs(lv["leakage_pJ"] - st.get("Leakage energy (total)", 0.0)) <= 0.006
        for tn, ds in st["ds"].items():
            pi = lv["per_instance"][tn]
            assert pi["reads"] == ds["Scalar reads (per-instance)"], (lv["name"], tn)
            assert pi["fills"] == ds["Scalar fills (per-instance)"], (lv["name"], tn)
            assert pi["updates"] == ds["Scalar updates (per-instance)"], (lv["name"], tn)
            assert pi["partition_size"] == ds["Partition size"]
            assert pi["utilized_capacity"] == ds["Utilized capacity"]
            assert pi["utilized_instances"] == ds["Utilized instances (max)"]
            assert abs(pi["energy_pJ"] - ds["Energy (total)"]) <= 0.006
            # summed counts are per instance x utilized instances
            assert lv["reads"][tn] == pi["reads"] * pi["utilized_instances"]
            checked += 1
        assert set(lv["per_instance"]) == set(st["ds"])
    assert checked >= 5


def test_eyeriss_halo_rule():
    """eyeriss_like's global-buffer input fills: Timeloop's 'legacy' translation rule refetches the
    whole tile when the translation changes (no halo credit); 157,296 as in its stats.txt."""
    out = _run(exercise_files("eyeriss_like"))
    glb = next(lv for lv in out["levels"] if lv["name"] == "shared_glb")
    assert glb["per_instance"]["Inputs"]["fills"] == 157296


def test_v03_sample_matches_stats():
    """The original DeepFrack's SLC Layer2 Tile27 run (v0.3 files, Timeloop of 2023)."""
    sample = EXAMPLES / "AlexNet_Simba/timeloop-samples/SLC_Layer2_Tile27"
    files = [
        SIMBA_DIR / "arch",
        EXAMPLES / "AlexNet_Simba/inputs/AlexNet/AlexNet_layer02.yaml",
        sample / "timeloop-mapper.map.yaml",
        sample / "timeloop-mapper.ERT.yaml",
    ]
    out = _run(files)
    stats, summary = read_stats(sample / "timeloop-mapper.stats.txt")
    assert out["rules"] == "timeloop-2023"
    assert out["cycles"] == summary["cycles"] == 437400
    assert abs(out["energy_pJ"] / 1e6 - summary["energy_uJ"]) <= 0.005
    for lv in out["levels"]:
        for tn, ds in stats[lv["name"]]["ds"].items():
            pi = lv["per_instance"][tn]
            assert (pi["reads"], pi["fills"], pi["updates"]) == (
                ds["Scalar reads (per-instance)"],
                ds["Scalar fills (per-instance)"],
                ds["Scalar updates (per-instance)"],
            )
