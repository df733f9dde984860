"""The hardened readers (deepfrack.files) and the one-line messages (deepfrack.errors): whatever a YAML or
JSON file holds, reading it ends, quickly, with the data or with one InputError naming the file, the line
and the column."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack import files
from deepfrack.arch.yamlio import Tagged, find_tag, load_yaml, underscore_keys
from deepfrack.errors import MAX_MESSAGE, InputError, clip, shown
from deepfrack.files import MAX_DEPTH, MAX_YAML_NODES, parse_json, parse_yaml, read_json, read_yaml
from tests.paths import EXAMPLES, EXERCISES

BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
)


def _error(text: str) -> InputError:
    with pytest.raises(InputError) as err:
        parse_yaml(text, Path("f.yaml"))
    return err.value


@pytest.mark.parametrize(
    "text, where, words",
    [
        (BOMB, "line 7", "aliases are expanded"),
        ("a: &x [1, *x]\n", "line 1, column 11", "refers to a node that contains it"),
        ("a: &x {b: *x}\n", "line 1, column 11", "refers to a node that contains it"),
        ("a: " + "[" * 150 + "]" * 150 + "\n", "line 1, column 103", f"deeper than {MAX_DEPTH}"),
        # PyYAML 6.0.4 and later refuse such nesting in their own scanner first, in their own words
        (
            "a: " + "[" * 200_000 + "]" * 200_000 + "\n",
            "line 1",
            (f"deeper than {MAX_DEPTH}", "maximum nesting depth"),
        ),
        ("a: " + "{b: " * 150 + "1" + "}" * 150 + "\n", "line 1", f"deeper than {MAX_DEPTH}"),
        ("a: 1\nb: 2024-13-45\n", "line 2, column 4", "month must be in 1..12"),
        ("a: !!int abc\n", "line 1, column 4", "invalid literal"),
        ("a: !!bool maybe\n", "line 1, column 4", "'maybe'"),
        ("a: !!int ''\n", "line 1, column 4", "cannot read"),
        ("a: !!int 0b2\n", "line 1, column 4", "cannot read"),
        ("a: " + "1" * 5000 + "\n", "line 1, column 4", "cannot read"),
        (
            "a: !!python/object/apply:os.system ['true']\n",
            "line 1, column 4",
            "could not determine a constructor",
        ),
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1", "key 'a' given twice (first on line 1)"),
        ("a: [1, 2\n", "line 2, column 1", "malformed YAML"),
        ("a: 1\n\tb: 2\n", "line 2", "malformed YAML"),
        ("a: \x00\n", "line 1", "malformed YAML"),
        ("a: *nothing\n", "line 1, column 4", "undefined alias"),
    ],
)
def test_bad_yaml_is_one_line_with_line_and_column(text: str, where: str, words: str | tuple[str, ...]):
    start = time.process_time()
    err = _error(text)
    assert time.process_time() - start < 5
    assert err.field is not None and err.field.startswith(where), err
    assert any(w in str(err) for w in ((words,) if isinstance(words, str) else words)), err
    assert str(err).startswith("f.yaml: ") and "\n" not in str(err)


def test_merges_and_shared_aliases_within_the_budget_load():
    doc = parse_yaml("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\nd: [*b, *b]\n", "f.yaml")
    assert doc["c"] == {"x": 1, "y": 3} and doc["d"] == [{"x": 1, "y": 2}] * 2


def test_the_node_budget_counts_expanded_aliases(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(files, "MAX_YAML_NODES", 50)
    parse_yaml("a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a]\n", "f.yaml")  # 10 + 4 + 30 + ...
    with pytest.raises(InputError, match="more than 50 values"):
        parse_yaml("a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a]\n", "f.yaml")
    assert MAX_YAML_NODES >= 1_000_000


def test_files_larger_than_the_limit_are_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    p = tmp_path / "big.yaml"
    p.write_text("a: 1\n" + "# padding\n" * 200)
    monkeypatch.setattr(files, "MAX_YAML_BYTES", 1000)
    with pytest.raises(InputError, match="larger than 0 MiB, the most deepfrack reads from a YAML file"):
        files.read_yaml(p)


def test_not_text_and_folders(tmp_path: Path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(InputError, match="line 2: not a text file"):
        read_yaml(p)
    with pytest.raises(InputError, match="is a folder"):
        read_yaml(tmp_path)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_yaml(bom) == {"a": 1}


@pytest.mark.parametrize(
    "path",
    [
        EXAMPLES / "AlexNet_Simba" / "inputs" / "simba_like" / "arch" / "simba_like.yaml",
        EXERCISES / "eyeriss_like" / "arch.yaml",
        EXERCISES / "simba_like" / "ref_outputs" / "parsed-processed-input.yaml",
        EXAMPLES / "AlexNet_Simba" / "timeloop-samples" / "SLC_Layer2_Tile27" / "timeloop-mapper.ERT.yaml",
    ],
)
def test_the_checked_loader_reads_what_pyyaml_reads(path: Path):
    class Plain(yaml.SafeLoader):
        pass

    Plain.add_multi_constructor(
        "!", lambda loader, suffix, node: Tagged(suffix, loader.construct_mapping(node, deep=True))
    )
    expected = yaml.load(path.read_text(), Loader=Plain)
    assert load_yaml(path) == expected


def test_libyaml_is_used_when_installed():
    assert yaml.__with_libyaml__ == files.LIBYAML
    if files.LIBYAML:
        assert issubclass(files.YamlLoader, yaml.cyaml.CParser)


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"a": 1, "a": 2}', "key 'a' given twice"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e999}', "out of range"),
        ('{"a": 1' + "0" * 5000 + "}", "malformed JSON"),
        ("[" * 100_000 + "]" * 100_000, f"deeper than {MAX_DEPTH}"),
        ("[" * 150 + "]" * 150, f"deeper than {MAX_DEPTH}"),
        ('{"a": [1, 2}', "line 1, column 12: malformed JSON"),
    ],
)
def test_bad_json_is_one_line(tmp_path: Path, text: str, words: str):
    p = tmp_path / "t.json"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        read_json(p)
    assert words in str(err.value) and str(err.value).startswith(str(p))


def test_json_with_a_bom_reads():
    assert parse_json("\ufeff{}".lstrip("\ufeff"), "t.json") == {}


# ------------------------------------------------------------------------------------------------ #
# walkers over loaded documents
# ------------------------------------------------------------------------------------------------ #
def _deep(n: int) -> dict:
    doc: dict = {"leaf-key": Tagged("Component", {"a-b": 1})}
    for _ in range(n):
        doc = {"x-y": [doc]}
    return doc


def test_walkers_need_no_recursion():
    doc = _deep(5000)  # far deeper than the reader allows: the walkers must not depend on it
    out = underscore_keys(doc)
    node = out
    for _ in range(5000):
        node = node["x_y"][0]
    assert node["leaf_key"] == {"a_b": 1} and node["leaf_key"].tag == "Component"
    where, tag = find_tag(doc)
    assert tag == "Component" and where.endswith("leaf-key")


def test_hyphen_and_underscore_spellings_of_one_key_collide():
    with pytest.raises(InputError) as err:
        underscore_keys({"a": {"word-bits": 8, "word_bits": 16}}, "arch.yaml")
    assert str(err.value).startswith("arch.yaml: a.word_bits: given twice, as 'word-bits' and 'word_bits'")


# ------------------------------------------------------------------------------------------------ #
# messages
# ------------------------------------------------------------------------------------------------ #
def test_messages_are_one_bounded_line():
    err = InputError("a/b/" * 100 + "net.yaml", "layers[2]." + "x" * 500, "bad value " + repr("v\n" * 10_000))
    text = str(err)
    assert len(text) <= MAX_MESSAGE and "\n" not in text
    assert text.startswith("...") and "net.yaml: layers[2]." in text and "..." in text


@given(st.text(max_size=2000), st.text(max_size=300), st.integers(20, 400))
@settings(max_examples=200, deadline=None)
def test_clip_keeps_its_bound(text: str, path: str, limit: int):
    out = clip(text, limit)
    assert len(out) <= max(limit, 5) and "\n" not in out
    one = clip(text, 10**9)
    assert out == one if len(one) <= limit else "..." in out
    err = InputError(path or None, None, text)
    assert len(str(err)) <= MAX_MESSAGE and "\n" not in str(err)


def test_a_long_message_loses_its_long_words_first():
    where = "/tmp/pytest-of-someone/pytest-180/popen-gw1/test_with_a_long_name0"
    entry = "no cost entry for layer 3 (conv4), variant SLC, tile 5x6"
    msg = f"does not match the tables: {where}/costs.csv: {entry}"
    assert clip(msg, 140) == f"does not match the tables: ...gw1/test_with_a_long_name0/costs.csv: {entry}"


def test_shown_truncates_a_value():
    assert shown("x" * 10) == repr("x" * 10)
    s = shown("x" * 1000, 30)
    assert len(s) == 30 and s.startswith("'xx") and "..." in s
