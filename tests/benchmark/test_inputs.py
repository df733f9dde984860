from pathlib import Path

import pytest
import yaml

from deepfrack.arch.yamlio import Tagged, load_yaml
from deepfrack.benchmark.inputs import SourceFile, load_inputs
from deepfrack.errors import InputError
from deepfrack.residency import VARIANTS, Variant
from tests.benchmark.conftest import ARCH, COMPONENTS, CONSTRAINTS, ERT, MAPPER
from tests.paths import EXERCISES


@pytest.mark.parametrize("seven_files", [True, False])
def test_files_are_read_once(tmp_path: Path, seven_files: bool):
    """Evaluators (on a cluster's workers, perhaps on another machine) never read the input files again:
    every constraint set comes from what was read when the inputs were loaded."""
    import shutil

    folder = tmp_path / "constraints"
    shutil.copytree(CONSTRAINTS, folder)
    if not seven_files:
        for v in VARIANTS:
            (folder / f"{v.value}.yaml").unlink()
    inp = load_inputs(ARCH, constraints=folder)
    before = {v: inp.constraints_for(v) for v in VARIANTS}
    shutil.rmtree(folder)
    assert {v: inp.constraints_for(v) for v in VARIANTS} == before
    # the seven files differ at DRAM only; made from the shared file, the variants do too
    assert len({c.key() for c in before.values()}) == 7


def test_reference_inputs():
    inp = load_inputs(ARCH, constraints=CONSTRAINTS, mapper=MAPPER, ert=ERT)
    assert set(inp.variant_files) == set(VARIANTS)
    assert [Path(c.path).name for c in inp.constraints] == ["simba_like_map_constraints.yaml"]
    assert sorted(Path(c.path).name for c in inp.components) == sorted(
        p.name for p in COMPONENTS.glob("*.yaml")
    )
    assert inp.mapper.optimization_metrics == ("delay", "energy")
    assert inp.dram == "DRAM"
    names = [lv.name for lv in inp.architecture.levels]
    assert names == [
        "DRAM",
        "GlobalBuffer",
        "PEInputBuffer",
        "PEWeightBuffer",
        "PEAccuBuffer",
        "PEWeightRegs",
    ]
    assert inp.energy_table is not None and "GlobalBuffer" in inp.energy_table.actions
    # the seven files differ only at DRAM, so the per-variant content differs only in the variant file
    a, b = inp.content(Variant.SLC), inp.content(Variant.WCC)
    assert (
        a["variant_file"] != b["variant_file"]
        and a["arch"] == b["arch"]
        and a["constraints"] == b["constraints"]
    )


def test_content_ignores_comments_and_layout(tmp_path: Path):
    copy = tmp_path / "arch.yaml"
    copy.write_text("# a comment\n" + yaml.safe_dump(yaml.safe_load(ARCH.read_text()), indent=4))
    one = load_inputs(ARCH, components=COMPONENTS).content(Variant.SLC)
    two = load_inputs(copy, components=COMPONENTS).content(Variant.SLC)
    assert one == two
    changed = tmp_path / "arch2.yaml"
    changed.write_text(ARCH.read_text().replace("memory_depth: 2048", "memory_depth: 4096"))
    assert load_inputs(changed, components=COMPONENTS).content(Variant.SLC)["arch"] != one["arch"]


def test_constraints_forms(tmp_path: Path):
    single = load_inputs(ARCH, constraints=CONSTRAINTS / "SLC.yaml")
    assert not single.variant_files and len(single.constraints) == 1
    folder = tmp_path / "c"
    folder.mkdir()
    for name in ("Start.yaml", "WCC.yaml", "simba_like_map_constraints.yaml"):
        (folder / name).write_text((CONSTRAINTS / name).read_text())
    part = load_inputs(ARCH, constraints=folder, variants=[Variant.Start, Variant.WCC])
    assert set(part.variant_files) == {Variant.Start, Variant.WCC} and part.variants == (
        Variant.Start,
        Variant.WCC,
    )
    with pytest.raises(InputError, match="no constraint file for variant SLC"):
        load_inputs(ARCH, constraints=folder)


def test_v04_architecture_reads_with_its_tags(tmp_path: Path):
    arch = EXERCISES / "simba_like" / "arch.yaml"
    doc = load_yaml(arch)
    assert "nodes" in doc["architecture"]
    inp = load_inputs(arch, components=EXERCISES / "_components")
    assert inp.arch.doc == doc and str(inp.architecture.version) == "0.4"
    # the tags are content: the same file with one !Component turned into a !Container hashes differently
    text = arch.read_text()
    assert "!Component" in text
    changed = tmp_path / "arch.yaml"
    changed.write_text(text.replace("!Component", "!Container", 1))
    assert load_yaml(changed) == doc  # equal as dicts ...
    assert SourceFile(str(changed), load_yaml(changed)).digest != inp.arch.digest  # ... not as content


def test_tagged_documents_are_written_back_with_their_tags(tmp_path: Path):
    from deepfrack.benchmark.timeloop import _deep_copy, _dump

    doc = load_yaml(EXERCISES / "simba_like" / "arch.yaml")
    back = load_yaml(_dump(tmp_path / "out.yaml", _deep_copy(doc)))
    assert back == doc and SourceFile("x", back).digest == SourceFile("y", doc).digest
    assert isinstance(back["architecture"]["nodes"][0], Tagged)


@pytest.mark.parametrize(
    "which, text, field",
    [
        ("arch", "architecture:\n  subtree: [\n", "line 3, column 1"),
        (
            "arch",
            "architecture:\n  subtree:\n    - local:\n        - {class: DRAM}\n",
            "architecture.subtree[0].name",
        ),
        ("constraints", "architecture_constraints:\n  targets: 3\n", "architecture_constraints.targets"),
        (
            "constraints",
            "architecture_constraints:\n  targets:\n    - {target: DRAM}\n",
            "architecture_constraints.targets[0].type",
        ),
        (
            "constraints",
            "architecture_constraints:\n  targets:\n    - {target: L2, type: datatype, keep: [Inputs]}\n",
            "architecture_constraints.targets[0].target",
        ),
        (
            "ert",
            "ERT:\n  version: 0.3\n  tables:\n    - name: System.DRAM\n"
            "      actions:\n        - {name: read, energy: fast}\n",
            "ERT.tables[0].actions[0].energy",
        ),
    ],
)
def test_broken_input_files_name_file_and_field(tmp_path: Path, which: str, text: str, field: str):
    p = tmp_path / f"{which}.yaml"
    p.write_text(text)
    kwargs = {"arch": ARCH}
    kwargs[which] = p
    with pytest.raises(InputError) as err:
        load_inputs(**kwargs)
    assert err.value.field == field
    assert str(err.value).startswith(str(p))


def test_missing_paths(tmp_path: Path):
    with pytest.raises(InputError, match="file not found"):
        load_inputs(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="components folder not found"):
        load_inputs(ARCH, components=tmp_path / "nope")
    with pytest.raises(InputError, match="constraints not found"):
        load_inputs(ARCH, constraints=tmp_path / "nope")
