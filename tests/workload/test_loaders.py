import warnings
from pathlib import Path

import pytest

from deepfrack.errors import InputError
from deepfrack.workload import Layer
from deepfrack.workload.loaders import ChainWarning, load_network_yaml, load_problem_folder, load_workload
from tests.paths import EXAMPLES


def test_problem_folder_orders_by_last_integer_and_flags_unchained():
    with pytest.warns(ChainWarning, match="9 of 11"):
        net = load_problem_folder(EXAMPLES / "VGG_Simba/inputs/VGG02")
    assert [layer.name for layer in net.layers][:3] == ["VGG02_layer01", "VGG02_layer02", "VGG02_layer03"]
    assert [layer.P for layer in net.layers] == [224, 224, 112, 112, 56, 56, 56, 28, 28, 28, 14, 14]
    # 1x1 convs (layers 7 and 10, 1-based) chain with their producers; the 3x3 ones do not (no padding)
    assert net.unchained == frozenset({1, 2, 3, 4, 5, 7, 8, 10, 11})


def test_problem_folder_numbering_ignores_digits_before_the_last(tmp_path: Path):
    src = EXAMPLES / "AlexNet_Simba/inputs/AlexNet"
    for name, new in [("AlexNet_layer01.yaml", "x9_L2.yaml"), ("AlexNet_layer02.yaml", "x1_L10.yaml")]:
        (tmp_path / new).write_text((src / name).read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChainWarning)
        net = load_problem_folder(tmp_path)
    assert [layer.name for layer in net.layers] == ["x9_L2", "x1_L10"]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "net.yaml"
    p.write_text(text)
    return p


def test_network_yaml_with_padding_and_pooling(tmp_path: Path):
    p = _write(
        tmp_path,
        """
network: tiny
input: [8, 8]
layers:
  - {name: conv1, type: conv, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: [1, 1, 1, 1]}
  - {name: pool1, type: pool, C: 8, R: 2, S: 2, P: 4, Q: 4, stride: 2}
  - {name: conv2, C: 8, M: 4, R: 3, S: 1, P: 2, Q: 4, pad: [0, 0, 0, 0]}
""",
    )
    net = load_network_yaml(p)
    assert net.name == "tiny" and net.is_chain and not net.unchained
    assert net.layers[1] == Layer(
        "pool1", C=8, M=8, P=4, Q=4, R=2, S=2, Wstride=2, Hstride=2, kind="pool", pool="max"
    )
    assert net.layers[1].weights == 0 and net.layers[1].macs == 0
    assert net.layers[2].weights == 8 * 4 * 3
    assert net.input_plane_of(2) == (4, 4) and net.input_plane_of(0) == (8, 8)


@pytest.mark.parametrize(
    "layers, field",
    [
        ("  - {name: a, C: 3, M: 8, R: 3, S: 3, P: -8, Q: 8}", "layers[0].P"),
        ("  - {name: a, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, type: deconv}", "layers[0].type"),
        ("  - {name: a, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, pad: [1, 1]}", "layers[0].pad"),
        (
            "  - {name: a, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8}\n  - {name: b, C: 4, M: 8, P: 8, Q: 8}",
            "layers[1].C",
        ),
        (
            "  - {name: a, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8}\n"
            "  - {name: b, C: 8, M: 8, R: 3, S: 3, P: 8, Q: 6}",
            "layers[1].P",
        ),
        (
            "  - {name: a, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8}\n"
            "  - {name: b, C: 8, M: 8, R: 3, S: 3, P: 6, Q: 7}",
            "layers[1].Q",
        ),
        ("  - {name: a, C: 3, M: 8, R: 3, S: 3, P: 8, Q: 8, colour: red}", "layers[0].colour"),
    ],
)
def test_network_yaml_errors_name_file_and_field(tmp_path: Path, layers: str, field: str):
    p = _write(tmp_path, "network: bad\nlayers:\n" + layers + "\n")
    with pytest.raises(InputError) as err:
        load_network_yaml(p)
    assert err.value.field == field
    assert str(err.value).startswith(str(p))


def test_malformed_yaml_names_line(tmp_path: Path):
    p = _write(tmp_path, "network: x\nlayers: [\n  - {a: 1\n")
    with pytest.raises(InputError, match="malformed YAML") as err:
        load_workload(p)
    assert err.value.path == p


def test_floor_semantics_accepts_odd_plane(tmp_path: Path):
    # a 3x3 stride-2 conv with pad 1 maps both 7 and 8 columns to 4: either producer width chains
    p = _write(
        tmp_path,
        """
network: odd
layers:
  - {name: a, C: 3, M: 4, R: 1, S: 1, P: 7, Q: 8}
  - {name: b, C: 4, M: 4, R: 3, S: 3, P: 4, Q: 4, stride: 2, pad: [1, 1, 1, 1]}
""",
    )
    net = load_network_yaml(p)
    assert net.layers[1].accepts_input_plane(8, 7)
