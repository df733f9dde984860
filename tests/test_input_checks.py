"""Input that would be silently wrong is refused (one line naming file and field), and input Timeloop
ignores is warned about: misspelled problem dimensions, two levels of one name, negative or NaN energies,
keys that collide once normalized, duplicate columns; plus the type checks at the boundaries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deepfrack.arch import load_architecture, load_ert
from deepfrack.benchmark.mapper_config import load_mapper_settings
from deepfrack.benchmark.tables_io import read_csv_table, read_json_tables
from deepfrack.cost.model_io import load_model_inputs
from deepfrack.errors import InputError
from deepfrack.workload.loaders import load_problem, load_workload
from tests.paths import EXAMPLES, EXERCISES

SIMBA = EXAMPLES / "AlexNet_Simba" / "inputs" / "simba_like"
ERT = EXAMPLES / "AlexNet_Simba" / "timeloop-samples" / "SLC_Layer2_Tile27" / "timeloop-mapper.ERT.yaml"
PROBLEM = EXAMPLES / "AlexNet_Simba" / "inputs" / "AlexNet" / "AlexNet_layer01.yaml"


def _edited(src: Path, dst: Path, old: str, new: str) -> Path:
    text = src.read_text()
    assert old in text
    dst.write_text(text.replace(old, new, 1))
    return dst


# ------------------------------------------------------------------------------------------------ #
# problems
# ------------------------------------------------------------------------------------------------ #
def test_a_misspelled_dimension_is_refused_not_defaulted(tmp_path: Path):
    p = _edited(PROBLEM, tmp_path / "p.yaml", "    R: 11\n", "    RR: 11\n")
    with pytest.raises(InputError) as err:
        load_problem(p)
    assert str(err.value).startswith(f"{p}: problem.instance.R: missing: Timeloop needs every dimension")
    assert "'RR' a misspelling" in str(err.value)


def test_an_unknown_instance_key_is_ignored_with_a_warning(tmp_path: Path):
    p = _edited(PROBLEM, tmp_path / "p.yaml", "    R: 11\n", "    R: 11\n    Rx: 3\n")
    with pytest.warns(UserWarning, match=r"problem.instance.Rx: unknown key, ignored \(as Timeloop does\)"):
        layer = load_problem(p)
    assert layer.R == 11


def test_model_reads_problems_the_same_way(tmp_path: Path):
    p = _edited(
        EXERCISES / "_include" / "default_problem.yaml", tmp_path / "p.yaml", "    N: 1\n", "    NN: 1\n"
    )
    ws = EXERCISES / "simple_weight_stationary"
    with pytest.raises(InputError, match=r"problem.instance.N: missing"):
        load_model_inputs(
            ws / "arch.yaml", EXERCISES / "_components", p, ws / "ref_outputs/timeloop-mapper.map.yaml"
        )


def test_model_names_the_files_when_none_defines_a_part(tmp_path: Path):
    ws = EXERCISES / "simple_weight_stationary"
    with pytest.raises(InputError) as err:
        load_model_inputs(
            ws / "arch.yaml", EXERCISES / "_components", EXERCISES / "_include" / "default_problem.yaml"
        )
    msg = str(err.value)  # the three paths, shortened at the start when long
    end = "none of the 3 files given defines a mapping (a top-level 'mapping:' key)"
    assert msg.endswith(f"default_problem.yaml: mapping: {end}")
    assert "_components, " in msg and len(msg) <= 280


# ------------------------------------------------------------------------------------------------ #
# architectures
# ------------------------------------------------------------------------------------------------ #
def test_two_levels_of_one_name_are_refused(tmp_path: Path):
    arch = tmp_path / "arch.yaml"
    _edited(SIMBA / "arch" / "simba_like.yaml", arch, "name: PEInputBuffer", "name: PEWeightBuffer")
    with pytest.raises(InputError) as err:
        load_architecture(arch, SIMBA / "arch" / "components")
    assert "a second level named 'PEWeightBuffer' (the first is architecture." in str(err.value)
    assert str(err.value).startswith(f"{arch}: architecture.subtree[0]")


def test_two_spellings_of_one_attribute_are_refused(tmp_path: Path):
    arch = tmp_path / "arch.yaml"
    _edited(SIMBA / "arch" / "simba_like.yaml", arch, "word-bits: 16", "word-bits: 16\n        word_bits: 8")
    with pytest.raises(InputError, match="given twice, as 'word-bits' and 'word_bits'"):
        load_architecture(arch)


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("depth: 2048", "depth: [2048]", "expected a number"),
        ("depth: 2048", "depth: {a: 1}", "expected a number"),
        ("depth: 2048", "depth: .nan", "not a finite number"),
        ("depth: 2048", "depth: -2048", "must be positive"),
        ("depth: 2048", "depth: 0", "must be positive"),
        ("depth: 2048", "depth: 1000000000000000", "more than deepfrack handles"),
        ("depth: 2048", "depth: 2024-01-01", "expected a number"),
    ],
)
def test_wrong_types_in_attributes_name_the_field(tmp_path: Path, old: str, new: str, words: str):
    arch = _edited(SIMBA / "arch" / "simba_like.yaml", tmp_path / "arch.yaml", old, new)
    with pytest.raises(InputError) as err:
        load_architecture(arch)
    assert ".attributes.memory_depth: " in str(err.value) and words in str(err.value), str(err.value)


# ------------------------------------------------------------------------------------------------ #
# energy tables
# ------------------------------------------------------------------------------------------------ #
@pytest.mark.parametrize("bad", ["-1.5", ".nan", ".inf", "-.inf", "true", "[1]", "1e15"])
def test_negative_or_nan_energies_are_refused_not_clamped(tmp_path: Path, bad: str):
    text = ERT.read_text()
    i = text.index("energy: ")
    j = text.index("\n", i)
    p = tmp_path / "ERT.yaml"
    p.write_text(text[:i] + f"energy: {bad}" + text[j:])
    with pytest.raises(InputError) as err:
        load_ert(p)
    assert str(err.value).startswith(f"{p}: ERT.tables[0].actions[0].energy: ")


# ------------------------------------------------------------------------------------------------ #
# tables
# ------------------------------------------------------------------------------------------------ #
@pytest.mark.parametrize(
    "doc, words",
    [
        ({"1": {"1": 1.0}, " 1 ": {"2": 1.0}}, "layer 1 is given twice, as '1' and ' 1 '"),
        ({"1": {"1": 1.0, "01": 2.0}}, "tile 1 is given twice, as '1' and '01'"),
        ({"1": {"1": True}}, "must be a number"),
        ({"1": {"1": [1]}}, "must be a number"),
        ({"1": {"1.5": 1.0}}, "must be a positive integer"),
        ({"1": {"1": -1}}, "finite non-negative"),
    ],
)
def test_json_table_keys_that_collide_or_bad_values_are_refused(tmp_path: Path, doc: dict, words: str):
    (tmp_path / "SLC.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        read_json_tables(tmp_path)
    assert words in str(err.value) and str(err.value).startswith(str(tmp_path / "SLC.json"))


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "layer,variant,tile_h,tile_w,energy_uJ,energy_uJ\n1,SLC,1,1,1,2\n",
            "column 'energy_uJ' is given twice",
        ),
        ("layer,variant,tile_h,tile_w,energy_uJ,energy_pJ_\n1,SLC,1,1,1,2\n", "names no level"),
        (
            "layer,variant,tile_h,tile_w,energy_uJ,macs\n1,SLC,1,1,1,2.5\n",
            "line 2.macs: must be a whole number",
        ),
        ("layer,variant,tile_h,tile_w,energy_uJ\n1,SLC,1,1," + "9" * 5000 + "\n", "finite non-negative"),
        ("layer,variant,tile_h,tile_w,energy_uJ\n" + "9" * 5000 + ",SLC,1,1,1\n", "line 2.layer"),
        ("layer,variant,tile_h,tile_w,energy_uJ\n1,SLC,1,1," + '"1' + "x" * 200_000 + '"\n', "malformed CSV"),
    ],
)
def test_csv_tables_that_would_be_misread_are_refused(tmp_path: Path, text: str, words: str):
    p = tmp_path / "costs.csv"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        read_csv_table(p)
    assert words in str(err.value) and str(err.value).startswith(str(p)) and len(str(err.value)) <= 280


# ------------------------------------------------------------------------------------------------ #
# mapper.yaml
# ------------------------------------------------------------------------------------------------ #
def test_mapper_keys_read_with_hyphens_or_underscores(tmp_path: Path):
    p = tmp_path / "mapper.yaml"
    p.write_text("mapper:\n  optimization_metrics: [energy]\n  num_threads: 4\n")
    s = load_mapper_settings(p)
    assert s.optimization_metrics == ("energy",) and s.options == {"num_threads": 4}
    p.write_text("mapper:\n  optimization_metrics: [energy]\n  optimization-metrics: [delay]\n")
    with pytest.raises(InputError, match=r"mapper.optimization-metrics: given twice"):
        load_mapper_settings(p)
    p.write_text("mapper:\n  timeout: 100000000000\n")
    with pytest.raises(InputError, match=r"mapper.timeout: must be an integer from 0 to"):
        load_mapper_settings(p)


def test_a_problem_folder_with_a_misspelled_file_names_it(tmp_path: Path):
    folder = tmp_path / "net"
    shutil.copytree(EXAMPLES / "AlexNet_Simba" / "inputs" / "AlexNet", folder)
    bad = folder / "AlexNet_layer02.yaml"
    bad.write_text(bad.read_text().replace("    C: ", "    CC: "))
    with pytest.raises(InputError, match=r"AlexNet_layer02.yaml: problem.instance.C: missing"):
        load_workload(folder)
