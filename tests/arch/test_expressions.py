"""The bounded expression evaluator (deepfrack.arch.expressions): arithmetic as timeloopfe writes it in
attributes; whatever it cannot bound is one InputError naming the file and the field, within a second."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfrack.arch import load_architecture
from deepfrack.arch.expressions import MAX_EXPONENT, MAX_VALUE, evaluate_expression
from deepfrack.errors import InputError

NAMES = {"depth": "16*2", "width": 64, "x": "y", "y": "x", "a": "b*b", "b": "3", "tech": "45nm"}


@pytest.mark.parametrize(
    "text, value",
    [
        ("2048*4", 8192),
        ("depth*2", 64),
        ("ceil(log2(16))", 4),
        ("max(width, 2) // 3", 21),
        ("a + 1", 10),
        ("2**0.5", 2**0.5),
        ("-(3 - 5) % 4", 2),
        ("1_000", 1000),
        (" 12 ", 12),
        ("1e3", 1000.0),
        ("round(2.567, 2)", 2.57),
        ("2**63", MAX_VALUE),
        (7, 7),
    ],
)
def test_arithmetic_evaluates(text, value):
    assert evaluate_expression(text, NAMES, "arch.yaml", "depth") == value


@pytest.mark.parametrize(
    "text, words",
    [
        ("9**9**9", f"larger than {MAX_EXPONENT}"),
        ("10**10**10", f"larger than {MAX_EXPONENT}"),
        ("(1<<100000)", "the operator <<"),
        ("2**64", "larger than 2**63"),
        ("9**3999999*9**3999999", f"larger than {MAX_EXPONENT}"),
        ("(2**62)*(2**62)", "larger than 2**63"),
        ("2" + "*2" * 150, "nested deeper than"),
        ("(" * 300 + "1" + ")" * 300, "expected a number or an arithmetic expression"),
        ("-" * 999 + "1", "nested deeper than"),
        ("1+" * 600 + "1", "longer than 1000 characters"),
        ("x + 1", "x refers to itself (x -> y -> x)"),
        ("tech * 2", "'45nm'"),
        ("__import__('os').getcwd()", "is not allowed"),
        ("width.bit_length()", "is not allowed"),
        ("[1, 2][0]", "is not allowed"),
        ("'a' * 10", "is not a number"),
        ("True + 1", "True is not a number"),
        ("1 if width else 2", "is not allowed"),
        ("1/0", "division by zero"),
        ("log2(0)", "log2"),
        ("(-8)**0.5", "not a real number"),
        ("max(3)", "max takes 2..64 arguments"),
        ("round(5, -10**18)", "round's digits"),
        ("lots", "expected a number or an arithmetic expression"),
        ("nan", "not a finite number"),
        ("1e999", "not a finite number"),
        ("1j", "is not a number"),
    ],
)
def test_what_cannot_be_bounded_is_one_line_within_a_second(text, words):
    start = time.process_time()
    with pytest.raises(InputError) as err:
        evaluate_expression(text, NAMES, "arch.yaml", "nodes[2].attributes.depth")
    assert time.process_time() - start < 1.0
    msg = str(err.value)
    assert msg.startswith("arch.yaml: nodes[2].attributes.depth: ") and words in msg, msg
    assert "\n" not in msg and len(msg) <= 280


@given(
    st.recursive(
        st.integers(-(10**6), 10**6).map(str) | st.sampled_from(["depth", "width", "a", "b"]),
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), inner).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        max_leaves=30,
    )
)
@settings(max_examples=300, deadline=None)
def test_any_arithmetic_ends_quickly_with_a_bounded_value_or_an_error(text):
    start = time.process_time()
    try:
        v = evaluate_expression(text, NAMES, "arch.yaml", "f")
    except InputError:
        pass
    else:
        assert abs(v) <= MAX_VALUE
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize(
    "variables, depth, words",
    [
        ("{}", "9**9**9", "'9**9**9': exponent 387420489 is larger than 64 in magnitude"),
        (
            '{big: "10**10**10"}',
            "big",
            "'big': big is '10**10**10': exponent 10000000000 is larger than 64 in magnitude",
        ),
    ],
)
def test_an_attribute_that_cannot_be_bounded_names_file_and_field(
    tmp_path: Path, variables: str, depth: str, words: str
):
    arch = tmp_path / "arch.yaml"
    arch.write_text(
        textwrap.dedent(
            f"""\
            variables: {variables}
            architecture:
              version: 0.4
              nodes:
              - !Container {{name: system}}
              - !Component {{name: DRAM, class: DRAM, attributes: {{width: 64, datawidth: 16}}}}
              - !Component {{name: buf, class: SRAM, attributes: {{depth: {depth}, width: 64, datawidth: 8}}}}
              - !Component {{name: mac, class: intmac, attributes: {{}}}}
            """
        )
    )
    start = time.process_time()
    with pytest.raises(InputError) as err:
        load_architecture(arch)
    assert time.process_time() - start < 1.0
    assert str(err.value) == f"{arch}: architecture.nodes[2].attributes.depth: {words}"
