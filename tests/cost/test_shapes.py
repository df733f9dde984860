"""Problem shapes other than the CNN layer (conv1d, conv1d with output and input channels, a matrix
multiply, the grouped-convolution shape with an explicit G of 1, a strided and dilated conv1d): the
model's counts on random architectures and mappings equal the reference simulator of Timeloop's nest
analysis run directly on the declared dimensions and projections (not on the CNN layer deepfrack
embeds them in)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from deepfrack.arch.spec import Architecture, ArithmeticLevel, StorageLevel
from deepfrack.cost.analytic import analyze
from deepfrack.cost.mapping import MappingBatch, level_fanouts, mapping_from_directives
from deepfrack.cost.model import stats_of_simulation
from deepfrack.cost.nest import SPACE_X, SPACE_Y, TIME, Loop, LoopNest
from deepfrack.cost.nest_sim import CollapsedTile, SimResult, simulate
from deepfrack.dims import TENSORS
from deepfrack.errors import InputError
from deepfrack.workload.shapes import Problem, problem_from_doc
from tests.cost.helpers import prime_factors, stats_equal


def _ds(name, *ranks, rw=False):
    d = {"name": name, "projection": [list(r) for r in ranks]}
    if rw:
        d["read_write"] = True
    return d


#: name -> (shape, instance ranges {dim: (low, high inclusive)} or fixed ints)
SHAPES = {
    "conv1d": (
        {
            "dimensions": ["R", "P"],
            "data_spaces": [
                _ds("Weights", [["R"]]),
                _ds("Inputs", [["R"], ["P"]]),
                _ds("Outputs", [["P"]], rw=True),
            ],
        },
        {"R": (1, 4), "P": (2, 12)},
    ),
    "conv1d+oc": (
        {
            "dimensions": ["K", "R", "P"],
            "data_spaces": [
                _ds("Weights", [["K"]], [["R"]]),
                _ds("Inputs", [["R"], ["P"]]),
                _ds("Outputs", [["K"]], [["P"]], rw=True),
            ],
        },
        {"K": (2, 6), "R": (1, 3), "P": (2, 8)},
    ),
    "conv1d+oc+ic": (
        {
            "dimensions": ["C", "K", "R", "P"],
            "data_spaces": [
                _ds("Weights", [["C"]], [["K"]], [["R"]]),
                _ds("Inputs", [["C"]], [["R"], ["P"]]),
                _ds("Outputs", [["K"]], [["P"]], rw=True),
            ],
        },
        {"C": (1, 4), "K": (2, 4), "R": (1, 3), "P": (2, 6)},
    ),
    "matmul": (
        {
            "dimensions": ["M", "N", "K"],
            "data_spaces": [
                _ds("A", [["M"]], [["K"]]),
                _ds("B", [["K"]], [["N"]]),
                _ds("Z", [["M"]], [["N"]], rw=True),
            ],
        },
        {"M": (2, 8), "N": (2, 8), "K": (2, 8)},
    ),
    "grouped-conv-G1": (
        {
            "dimensions": ["C", "M", "R", "S", "N", "P", "Q", "G"],
            "coefficients": [
                {"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")
            ],
            "data_spaces": [
                _ds("Weights", [["C"]], [["M"]], [["R"]], [["S"]], [["G"]]),
                _ds(
                    "Inputs",
                    [["N"]],
                    [["C"]],
                    [["R", "Wdilation"], ["P", "Wstride"]],
                    [["S", "Hdilation"], ["Q", "Hstride"]],
                    [["G"]],
                ),
                _ds("Outputs", [["N"]], [["M"]], [["Q"]], [["P"]], [["G"]], rw=True),
            ],
        },
        {"C": (1, 3), "M": (1, 4), "R": (1, 3), "S": (1, 2), "N": 1, "P": (1, 5), "Q": (1, 4), "G": 1},
    ),
    "conv1d-strided": (
        {
            "dimensions": ["R", "P"],
            "coefficients": [{"name": "Wstride", "default": 1}, {"name": "Wdilation", "default": 1}],
            "data_spaces": [
                _ds("Weights", [["R"]]),
                _ds("Inputs", [["R", "Wdilation"], ["P", "Wstride"]]),
                _ds("Outputs", [["P"]], rw=True),
            ],
        },
        {"R": (2, 4), "P": (2, 9), "Wstride": (1, 3), "Wdilation": (1, 2)},
    ),
}


def _problem_doc(shape: dict, ranges: dict, rng) -> dict:
    inst = {k: v if isinstance(v, int) else int(rng.integers(v[0], v[1] + 1)) for k, v in ranges.items()}
    return {"problem": {"version": 0.4, "shape": {"name": "test", **copy.deepcopy(shape)}, "instance": inst}}


def _random_arch(rng) -> Architecture:
    L = int(rng.integers(1, 4))
    fans = [(int(rng.choice([1, 2])), 1)] + [
        (int(rng.choice([1, 2, 3])), int(rng.choice([1, 1, 2]))) for _ in range(L - 1)
    ]
    levels, mx, my = [], 1, 1
    for i in range(L):
        levels.append(
            StorageLevel(
                f"L{i}", "DRAM" if i == 0 else "storage", mx * my, mx, my, 16, 1, None if i == 0 else 10**6
            )
        )
        mx, my = mx * fans[i][0], my * fans[i][1]
    return Architecture("random", tuple(levels), ArithmeticLevel("mac", "intmac", mx * my, mx, my))


def _random_directives(arch: Architecture, dims: list[str], inst: dict, rng) -> list[dict]:
    """A random map.yaml in the problem's own names (factors, permutations, splits)."""
    fan = level_fanouts(arch)
    L = len(arch.levels)
    tf = [dict.fromkeys(dims, 1) for _ in range(L)]
    sf = [dict.fromkeys(dims, 1) for _ in range(L)]
    for d in dims:
        for p in prime_factors(inst[d]):
            i = int(rng.integers(0, L))
            if fan[i][0] * fan[i][1] > 1 and rng.random() < 0.4:
                sf[i][d] *= p
            else:
                tf[i][d] *= p
    out = []
    for i, lv in enumerate(arch.levels):
        out.append(
            {
                "target": lv.name,
                "type": "temporal",
                "factors": " ".join(f"{d}={tf[i][d]}" for d in dims),
                "permutation": "".join(rng.permutation(dims)),
            }
        )
        if fan[i][0] * fan[i][1] > 1:
            out.append(
                {
                    "target": lv.name,
                    "type": "spatial",
                    "factors": {d: sf[i][d] for d in dims},
                    "permutation": list(rng.permutation(dims)),
                    "split": int(rng.integers(0, len(dims) + 1)),
                }
            )
    return out


def _factors(value) -> dict[str, int]:
    if isinstance(value, dict):
        return {k: int(v) for k, v in value.items()}
    return {k: int(v) for k, v in (item.split("=") for item in value.split())}


def _declared_nest(arch: Architecture, directives: list[dict], dims: list[str]) -> LoopNest:
    """Timeloop's loop nest built from the directives in the problem's own dimensions (loops innermost
    first: per level from the inside out, its spatial loops, X before Y, then its temporal loops; a
    level without loops gets one trivial loop)."""
    fan = level_fanouts(arch)
    names = arch.level_names
    per = {n: {} for n in names}
    for d in directives:
        per[d["target"]][d["type"]] = d
    loops: list[Loop] = []
    bounds = [0] * len(names)
    for li in range(len(names) - 1, -1, -1):
        lv = per[names[li]]
        sp = lv.get("spatial")
        if sp is not None:
            order = list(sp["permutation"]) + [d for d in dims if d not in sp["permutation"]]
            facs = _factors(sp["factors"])
            for pos, d in enumerate(order):
                if facs.get(d, 1) > 1:
                    loops.append(Loop(dims.index(d), facs[d], SPACE_X if pos < sp["split"] else SPACE_Y, li))
        added = 0
        tp = lv.get("temporal")
        if tp is not None:
            facs = _factors(tp["factors"])
            for d in tp["permutation"]:
                if facs.get(d, 1) > 1:
                    loops.append(Loop(dims.index(d), facs[d], TIME, li))
                    added += 1
        if not added:
            loops.append(Loop(0, 1, TIME, li))
        bounds[li] = len(loops) - 1
    return LoopNest(tuple(loops), tuple(bounds), tuple(fan))


def _declared_projection(doc: dict) -> tuple:
    shape, inst = doc["problem"]["shape"], doc["problem"]["instance"]
    dims = shape["dimensions"]
    coef = {c["name"]: inst.get(c["name"], c["default"]) for c in shape.get("coefficients", [])}
    return tuple(
        tuple(
            tuple((dims.index(t[0]), coef[t[1]] if len(t) == 2 else 1) for t in rank)
            for rank in ds["projection"]
        )
        for ds in shape["data_spaces"]
    )


def _in_cnn_order(res: SimResult, problem: Problem, names: list[str]) -> SimResult:
    """The simulation's tiles with the data spaces in the order of the CNN tensors they play."""
    pos = [TENSORS.index(problem.tensors[n]) for n in names]
    tiles: list[list[CollapsedTile]] = []
    for lv in res.tiles:
        row: list = [None] * 3
        for i, t in enumerate(lv):
            row[pos[i]] = t
        tiles.append(row)
    return SimResult(tiles, res.compute_accesses, res.compute_replication, res.x_expansion, res.y_expansion)


@pytest.mark.parametrize("rule", ["legacy", "stationary"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_declared_shape_matches_simulator(name, rule):
    shape, ranges = SHAPES[name]
    rng = np.random.default_rng(list(SHAPES).index(name) * 2 + (rule == "stationary"))
    checked = spatial = 0
    for _ in range(12):
        doc = _problem_doc(shape, ranges, rng)
        problem = problem_from_doc(doc, Path("test.yaml"))
        assert not problem.is_cnn
        arch = _random_arch(rng)
        dims = shape["dimensions"]
        directives = _random_directives(arch, dims, doc["problem"]["instance"], rng)
        m = mapping_from_directives(directives, arch, problem.layer, problem=problem)
        a = analyze(MappingBatch.from_mappings([m]), level_fanouts(arch), problem.layer, rule).stats
        nest = _declared_nest(arch, directives, dims)
        res = simulate(nest, None, rule, projection=_declared_projection(doc), n_dims=len(dims))
        names = [ds["name"] for ds in shape["data_spaces"]]
        b = stats_of_simulation(_in_cnn_order(res, problem, names), nest)
        assert stats_equal(a, b) == [], (name, doc["problem"]["instance"], directives)
        checked += 1
        spatial += any(lp.kind != TIME for lp in nest.loops)
    assert checked == 12 and spatial >= 3


def test_matmul_names_and_roles():
    doc = _problem_doc(*SHAPES["matmul"][:1], {"M": 4, "N": 6, "K": 8}, None)
    problem = problem_from_doc(doc, Path("mm.yaml"))
    assert problem.tensors["Z"] == "Outputs"
    assert {problem.tensors["A"], problem.tensors["B"]} == {"Weights", "Inputs"}
    assert problem.layer.macs == 4 * 6 * 8


def test_groups_are_held_as_declared():
    """With G > 1 the shape is kept as declared (bounds, projections in role order) for the simulator."""
    doc = _problem_doc(SHAPES["grouped-conv-G1"][0], {**dict.fromkeys("CMRSNPQ", 2), "G": 3, "P": 5}, None)
    problem = problem_from_doc(doc, Path("g.yaml"))
    assert problem.layer is None and problem.declared is not None
    assert problem.declared.bounds == (2, 2, 2, 2, 2, 5, 2, 3)
    assert problem.declared.macs == 2**6 * 5 * 3
    assert problem.tensors == {"Weights": "Weights", "Inputs": "Inputs", "Outputs": "Outputs"}
    assert problem.declared.projection[0][-1] == ((7, 1),)  # Weights' last rank is G


def test_cnn_shape_maps_onto_itself():
    doc = _problem_doc(SHAPES["grouped-conv-G1"][0], {**dict.fromkeys("CMRSNPQ", 2), "G": 1, "P": 5}, None)
    problem = problem_from_doc(doc, Path("g1.yaml"))
    assert problem.index == {"C": 0, "M": 1, "R": 2, "S": 3, "N": 4, "P": 5, "Q": 6, "G": None}
    assert problem.layer.P == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["problem"]["shape"]["data_spaces"].append(_ds("Bias", [["M"]])),
            "4 data spaces",
        ),
        (
            lambda d: d["problem"]["shape"]["data_spaces"][0].update(read_write=True),
            "2 data spaces are read_write",
        ),
        (lambda d: d["problem"]["instance"].pop("Q"), "problem.instance.Q: missing"),
        (
            lambda d: d["problem"]["shape"]["data_spaces"][1]["projection"].append([["X"]]),
            "'X' is not a declared dimension",
        ),
    ],
)
def test_shapes_refused_with_one_line(change, message):
    doc = _problem_doc(SHAPES["grouped-conv-G1"][0], {**dict.fromkeys("CMRSNPQ", 2), "G": 1}, None)
    change(doc)
    with pytest.raises(InputError) as e:
        problem_from_doc(doc, Path("p.yaml"))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_size_one_dimension_takes_only_factor_one():
    doc = _problem_doc(SHAPES["grouped-conv-G1"][0], {**dict.fromkeys("CMRSNPQ", 1), "G": 1, "C": 2}, None)
    problem = problem_from_doc(doc, Path("g1.yaml"))
    arch = _random_arch(np.random.default_rng(0))
    top = arch.levels[0].name
    ok = [{"target": top, "type": "temporal", "factors": "C=2 G=1", "permutation": "GC"}]
    m = mapping_from_directives(ok, arch, problem.layer, problem=problem)
    assert m.factor_products()[0] == 2
    bad = [{"target": top, "type": "temporal", "factors": "C=1 G=2"}]
    with pytest.raises(InputError, match="G=1"):
        mapping_from_directives(bad, arch, problem.layer, problem=problem)


def test_older_problem_layouts():
    """``shape: cnn-layer`` names Timeloop's built-in shape; bounds may sit directly under ``problem``;
    a projection may list one dimension per rank; other built-in shape names and flattening are refused."""
    flat = {"problem": {"shape": "cnn-layer", "C": 3, "M": 4, "R": 1, "S": 1, "N": 1, "P": 5, "Q": 6}}
    assert problem_from_doc(flat, Path("p.yaml")).layer.Q == 6
    short = _problem_doc(SHAPES["matmul"][0], {"M": 4, "N": 6, "K": 8}, None)
    for ds in short["problem"]["shape"]["data_spaces"]:
        ds["projection"] = [rank[0][0] for rank in ds["projection"]]
    assert problem_from_doc(short, Path("p.yaml")).layer.macs == 4 * 6 * 8
    with pytest.raises(InputError, match="cnn-layer only"):
        problem_from_doc({"problem": {"shape": "matmul", "instance": {"M": 1}}}, Path("p.yaml"))
    flat2 = _problem_doc(SHAPES["matmul"][0], {"M": 4, "N": 6, "K": 8}, None)
    flat2["problem"]["shape"]["flatten"] = [{"name": "X", "dimensions": ["M", "N"]}]
    with pytest.raises(InputError, match="flattened dimensions are not supported"):
        problem_from_doc(flat2, Path("p.yaml"))
