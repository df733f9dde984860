"""Grouped convolutions with G > 1 (a dimension in all three data spaces): deepfrack's model evaluates
them with the reference simulator of Timeloop's nest analysis run on the declared projections
(``deepfrack.cost.model.evaluate_shape``). Checked here against the closed-form model of the CNN layer:
with the G loop outermost, every group is a fresh copy of the one-group problem, so every count is G
times the one-group count and only the outermost tile grows G-fold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from deepfrack.arch.energy import builtin_energy_table
from deepfrack.arch.spec import Architecture, ArithmeticLevel, StorageLevel
from deepfrack.cli import main
from deepfrack.cost.analytic import analyze
from deepfrack.cost.mapping import MappingBatch, level_fanouts, mapping_from_directives
from deepfrack.cost.model import TIMELOOP_2023, evaluate_shape, shape_stats
from deepfrack.errors import InputError
from deepfrack.workload.shapes import problem_from_doc
from tests.cost.test_shapes import SHAPES, _problem_doc, _random_arch, _random_directives

GROUPED = SHAPES["grouped-conv-G1"][0]
RANGES = {"C": (1, 3), "M": (1, 3), "R": (1, 3), "S": (1, 2), "N": (1, 2), "P": (1, 4), "Q": (1, 3)}
CNN_DIMS = list("CMRSNPQ")


def _with_groups(directives: list[dict], top: str, g: int) -> list[dict]:
    """The one-group directives with a G loop of ``g`` outermost at level ``top``."""
    out = []
    for d in directives:
        d = dict(d)
        if d["target"] == top and d["type"] == "temporal":
            d["factors"] = d["factors"] + f" G={g}"
            d["permutation"] = d["permutation"] + "G"
        elif d["type"] == "temporal":
            d["factors"] = d["factors"] + " G=1"
        out.append(d)
    return out


@pytest.mark.parametrize("rule", ["legacy", "stationary"])
def test_groups_outermost_are_g_copies_of_one_group(rule):
    rng = np.random.default_rng(14 + (rule == "stationary"))
    spatial = 0
    for _ in range(10):
        g = int(rng.integers(2, 4))
        one = _problem_doc(GROUPED, {**RANGES, "G": 1}, rng)
        inst = one["problem"]["instance"]
        grouped = _problem_doc(GROUPED, {**inst, "G": g}, rng)
        p1 = problem_from_doc(one, Path("g1.yaml"))
        pg = problem_from_doc(grouped, Path("g.yaml"))
        assert p1.declared is None and pg.layer is None and pg.declared is not None
        arch = _random_arch(rng)
        d1 = _random_directives(arch, CNN_DIMS, inst, rng)
        dg = _with_groups(d1, arch.levels[0].name, g)
        m1 = mapping_from_directives(d1, arch, p1.layer, problem=p1)
        mg = mapping_from_directives(dg, arch, None, problem=pg)
        a = analyze(MappingBatch.from_mappings([m1]), level_fanouts(arch), p1.layer, rule).stats
        s = shape_stats(arch, pg.declared, mg, rule)
        where = (inst, g, dg)
        # only the outermost tile holds every group
        assert np.array_equal(s.size[0, :, 0], g * a.size[0, :, 0]), where
        assert np.array_equal(s.size[1:, :, 0], a.size[1:, :, 0]), where
        for f in ("fanout", "replication", "x_exp", "y_exp"):
            assert np.array_equal(getattr(s, f)[:, 0], getattr(a, f)[:, 0]), (f, where)
        assert s.compute_accesses[0] == g * a.compute_accesses[0]
        assert s.compute_replication[0] == a.compute_replication[0]
        assert np.array_equal(s.link[..., 0], g * a.link[..., 0]), where
        for lv in range(len(arch.levels)):
            for t in range(3):
                got = {int(m): float(v) for m, v in zip(s.mc[lv, t, :, 0], s.acc[lv, t, :, 0]) if v}
                want = {int(m): g * float(v) for m, v in zip(a.mc[lv, t, :, 0], a.acc[lv, t, :, 0]) if v}
                assert got == want, (lv, t, where)
        spatial += bool(a.compute_replication[0] > 1)
    assert spatial >= 3


def _files(tmp_path: Path, g: int, directives: list[dict]) -> list[Path]:
    arch = {
        "architecture": {
            "version": 0.3,
            "subtree": [
                {
                    "name": "System",
                    "local": [
                        {"name": "DRAM", "class": "DRAM", "attributes": {"width": 64, "word-bits": 16}}
                    ],
                    "subtree": [
                        {
                            "name": "PE[0..3]",
                            "local": [
                                {
                                    "name": "Buffer",
                                    "class": "SRAM",
                                    "attributes": {"depth": 4096, "width": 16, "word-bits": 16},
                                },
                                {"name": "mac", "class": "intmac", "attributes": {"datawidth": 16}},
                            ],
                        }
                    ],
                }
            ],
        }
    }
    inst = {"C": 2, "M": 3, "R": 3, "S": 1, "N": 1, "P": 4, "Q": 2, "G": g}
    prob = _problem_doc(GROUPED, inst, None)
    out = []
    for name, doc in (("arch", arch), ("prob", prob), ("map", {"mapping": directives})):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        out.append(path)
    return out


def test_grouped_convolution_from_the_command_line(tmp_path):
    """Four groups, one per PE: each PE computes one group, so the per-PE buffer counts are those of
    the one-group layer and the MACs are four times as many."""
    temporal_dram = {"target": "DRAM", "type": "temporal", "factors": "C1 M1 R1 S1 N1 P1 Q1 G1"}
    spatial = {"target": "DRAM", "type": "spatial", "factors": "G4", "permutation": "GCMRSNPQ"}
    temporal_buf = {"target": "Buffer", "type": "temporal", "factors": "C2 M3 R3 S1 N1 P4 Q2 G1"}
    files = _files(tmp_path, 4, [temporal_dram, spatial, temporal_buf])
    r = CliRunner().invoke(main, ["model", *map(str, files), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["problem"]["nest_analysis"] == "simulated"
    assert doc["macs"] == 4 * 2 * 3 * 3 * 4 * 2
    # the same with one group on one PE: each of the four PEs did exactly that
    one = _files(tmp_path, 1, [temporal_dram, temporal_buf])
    r1 = CliRunner().invoke(main, ["model", *map(str, one), "--json"])
    assert r1.exit_code == 0, r1.output
    doc1 = json.loads(r1.output)
    buf = {k: doc["levels"][1][k] for k in ("reads", "fills", "updates")}
    buf1 = {k: {t: 4 * v for t, v in doc1["levels"][1][k].items()} for k in ("reads", "fills", "updates")}
    assert buf == buf1
    for t, st in doc["levels"][1]["per_instance"].items():
        st1 = doc1["levels"][1]["per_instance"][t]
        assert (st["utilized_instances"], st1["utilized_instances"]) == (4, 1)
        for k in ("reads", "fills", "updates", "partition_size", "utilized_capacity"):
            assert st[k] == st1[k], (t, k)
        assert st["energy_pJ"] == pytest.approx(4 * st1["energy_pJ"])  # energy over all instances
    # no group shares data with another: the DRAM reads are the one-group reads four times
    assert doc["levels"][0]["reads"] == {t: 4 * v for t, v in doc1["levels"][0]["reads"].items()}


def test_too_many_loops_for_the_simulator_is_one_line():
    """Three levels with a loop of 2 on each of the eight dimensions: 24 loops, 2^24 simulated steps."""
    levels = tuple(
        StorageLevel(f"L{i}", "DRAM" if i == 0 else "storage", 1, 1, 1, 16, 1, None if i == 0 else 10**6)
        for i in range(3)
    )
    arch = Architecture("deep", levels, ArithmeticLevel("mac", "intmac", 1, 1, 1))
    pg = problem_from_doc(_problem_doc(GROUPED, dict.fromkeys("CMRSNPQG", 8), None), Path("g.yaml"))
    twos = " ".join(f"{d}2" for d in "CMRSNPQG")
    loops = [{"target": f"L{i}", "type": "temporal", "factors": twos} for i in range(3)]
    m = mapping_from_directives(loops, arch, None, problem=pg, source="map.yaml")
    with pytest.raises(InputError, match="24 temporal loops") as e:
        evaluate_shape(arch, builtin_energy_table(arch), pg.declared, m, TIMELOOP_2023)
    assert "\n" not in str(e.value) and "map.yaml" in str(e.value)


def test_shapes_that_do_not_embed_even_without_groups_are_refused():
    """An outer product (each dimension in one data space only) is no CNN layer, groups or not."""
    shape = {
        "dimensions": ["A", "B", "K"],
        "data_spaces": [
            {"name": "X", "projection": [[["A"]]]},
            {"name": "Y", "projection": [[["B"]]]},
            {"name": "Z", "projection": [[["K"]]], "read_write": True},
        ],
    }
    with pytest.raises(InputError, match="not those of a CNN layer") as e:
        problem_from_doc(_problem_doc(shape, {"A": 2, "B": 3, "K": 4}, None), Path("p.yaml"))
    assert "\n" not in str(e.value)
