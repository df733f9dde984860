"""Timeloop's ISPASS 2020 exercises (declared problem shapes, a Container as a mapping target) through
`deepfrack model ... --json`, against the stats.txt of Timeloop's own runs: the model exercises with
their hand-written mappings, the mapper exercises with the mapping Timeloop's mapper chose."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from deepfrack.cli import main
from tests.cost.helpers import read_stats
from tests.paths import EXERCISES

ISPASS = EXERCISES / "ispass2020-conv1d"
#: (exercise, map file (None: the mapper's, in the run's folder), run folder)
RUNS = [
    ("00-model-conv1d-1level", "conv1d-1level", ""),
    ("01-model-conv1d-2level", "conv1d-2level-os", "os"),
    ("01-model-conv1d-2level", "conv1d-2level-ws", "ws"),
    ("02-model-conv1d+oc-2level", "conv1d+oc-2level-os", "no-tiling"),
    ("02-model-conv1d+oc-2level", "conv1d+oc-2level-os-tiled", "tiling"),
    ("03-model-conv1d+oc-3level", "conv1d+oc-3level", "no-bypass"),
    ("03-model-conv1d+oc-3level", "conv1d+oc-3level-bypass", "bypass"),
    ("04-model-conv1d+oc-3levelspatial", "conv1d+oc+ic-3levelspatial-cp-ws", "cp"),
    ("04-model-conv1d+oc-3levelspatial", "conv1d+oc+ic-3levelspatial-kp-ws", "kp"),
    ("05-mapper-conv1d+oc-3level", None, "baked"),
    ("05-mapper-conv1d+oc-3level", None, "freebypass"),
    ("05-mapper-conv1d+oc-3level", None, "null"),
    ("06-mapper-convlayer-eyeriss", None, ""),
]


@pytest.mark.parametrize(("exercise", "mapping", "run"), RUNS)
def test_ispass_exercise_matches_stats(exercise, mapping, run):
    ex = ISPASS / exercise
    ref = ex / "ref-output" / run
    tool = "timeloop-model" if mapping else "timeloop-mapper"
    map_file = ex / "map" / f"{mapping}.map.yaml" if mapping else ref / f"{tool}.map.yaml"
    files = [ex / "arch", map_file, ex / "prob", ref / f"{tool}.ERT.yaml"]
    res = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    stats, summary = read_stats(ref / f"{tool}.stats.txt")
    assert out["valid"] is True
    assert out["cycles"] == summary["cycles"]
    assert out["macs"] == summary["computes"]
    # the stats print energy per compute in fJ to 0.01
    text = (ref / f"{tool}.stats.txt").read_text()
    fj = float(re.search(r"\n\s+Total\s+= ([0-9.]+)", text).group(1))
    assert abs(out["energy_pJ"] / out["macs"] * 1000 - fj) <= 0.006
    checked = 0
    for lv in out["levels"]:
        st = stats.get(lv["name"])
        if st is None:  # the spatial placeholder level of exercise 04 prints nothing
            assert lv["per_instance"] == {}
            continue
        assert lv["cycles"] == st["Cycles"]
        assert set(lv["per_instance"]) == set(st["ds"])
        for tn, ds in st["ds"].items():
            pi = lv["per_instance"][tn]
            assert pi["reads"] == ds["Scalar reads (per-instance)"], (lv["name"], tn)
            assert pi["fills"] == ds["Scalar fills (per-instance)"], (lv["name"], tn)
            assert pi["updates"] == ds["Scalar updates (per-instance)"], (lv["name"], tn)
            assert pi["utilized_capacity"] == ds["Utilized capacity"]
            assert pi["utilized_instances"] == ds["Utilized instances (max)"]
            assert abs(pi["energy_pJ"] - ds["Energy (total)"]) <= 0.006
            checked += 1
    assert checked >= 3


INTERFACE = EXERCISES / "interface2024"


def test_interface_2024_run_matches_stats():
    """The 2024 exercise's processed input (the grouped-convolution shape with G=1, a PE container with
    a spatial fan-out, an empty ``mapping: []``) with the mapper's mapping: Timeloop's counts."""
    out_dir = INTERFACE / "outputs"
    files = [
        out_dir / f
        for f in ("parsed-processed-input.yaml", "timeloop-mapper.map.yaml", "timeloop-mapper.ERT.yaml")
    ]
    res = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    stats, summary = read_stats(out_dir / "timeloop-mapper.stats.txt")
    assert (out["cycles"], out["macs"]) == (summary["cycles"], summary["computes"])
    assert abs(out["energy_pJ"] / 1e6 - summary["energy_uJ"]) <= 0.005 + 1e-9
    checked = 0
    for lv in out["levels"]:
        for tn, ds in stats.get(lv["name"], {"ds": {}})["ds"].items():
            pi = lv["per_instance"][tn]
            got = (pi["reads"], pi["fills"], pi["updates"])
            want = tuple(ds[f"Scalar {k} (per-instance)"] for k in ("reads", "fills", "updates"))
            assert got == want, (lv["name"], tn)
            checked += 1
    assert checked >= 4


def test_jinja_templates_refused_with_one_line():
    res = CliRunner().invoke(main, ["model", str(INTERFACE / "inputs")])
    assert res.exit_code == 2
    assert "Jinja2" in res.output and res.output.count("\n") == 1


def test_dense_dot_product_matches_stats():
    """A problem of three data spaces with its own names (A[K], B[K], Z[M], M = 1)."""
    d = EXERCISES / "dot_product"
    ref = d / "ref_outputs"
    files = [d / "arch.yaml", EXERCISES / "_components", d / "problem.yaml"]
    files += [ref / "timeloop-mapper.map.yaml", ref / "timeloop-mapper.ERT.yaml"]
    res = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    text = (ref / "timeloop-mapper.stats.txt").read_text()
    assert out["problem"]["data_spaces"]["Z"] == "Outputs"
    assert out["cycles"] == int(re.search(r"\nCycles: (\d+)", text).group(1)) == 16
    fj = float(re.search(r"\n\s+Total\s+= ([0-9.]+)", text).group(1))
    assert abs(out["energy_pJ"] / out["macs"] * 1000 - fj) <= 0.006
    # per level and data space, Timeloop's per-instance scalar reads
    checked = 0
    for lv in out["levels"]:
        block = text.split(f"=== {lv['name']} ===", 1)
        if len(block) < 2:
            continue
        for name, pi in lv["per_instance"].items():
            m = re.search(rf"\n\s+{name}:\n(?:.*\n)*?\s+Scalar reads \(per-instance\)\s+: (\d+)", block[1])
            assert m is not None and pi["reads"] == int(m.group(1)), (lv["name"], name)
            checked += 1
    assert checked >= 3
