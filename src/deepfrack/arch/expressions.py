"""Arithmetic expressions in input files (Timeloop v0.4 attributes such as ``depth: 2048*4`` or
``width: datawidth * n_words``, names from ``variables:``), evaluated within bounds.

timeloopfe evaluates such attributes as Python expressions. deepfrack accepts the arithmetic part of that
language and refuses, with one InputError naming the file and the field, whatever it cannot bound:

* numbers (integers and decimals; not booleans, strings or complex numbers) and known names, whose
  values are numbers or expressions themselves (evaluated once each; a name that refers to itself,
  directly or through others, is an error);
* ``+ - * / // % **``, unary ``+ -``, parentheses, and the functions ``ceil floor log2 log max min
  round int abs sqrt``; nothing else (no attributes, subscripts, comparisons, shifts, strings, lambdas);
* ``len(a.b.c)`` of a dotted name whose value is a list or a mapping (timeloopfe's
  ``len(spec.problem.instance)``: the number of entries of the problem's instance, when the caller
  provides it under that name);
* at most ``MAX_EXPRESSION_CHARS`` characters and ``MAX_EXPRESSION_DEPTH`` levels of nesting;
* every value, intermediate ones included, at most ``MAX_VALUE`` (2**63) in magnitude, and every
  exponent at most ``MAX_EXPONENT`` in magnitude (unless the base is 0, 1 or -1).

So ``9**9**9``, ``10**10**10`` or a product of huge powers is refused at once instead of being computed
for minutes. (Why not the ``simpleeval`` package: it bounds exponents and shifts but not products -- a
44-character product of four ``9**3999999`` takes half a minute of CPU -- and it evaluates strings,
comparisons and conditionals that attribute values never need; bounding it would mean replacing most
of its operators.)
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deepfrack.errors import InputError, clip, shown

#: the longest expression, in characters
MAX_EXPRESSION_CHARS = 1000
#: the deepest nesting of an expression (each operator and call within another counts one level)
MAX_EXPRESSION_DEPTH = 100
#: the largest magnitude of any value an expression computes
MAX_VALUE = 2**63
#: the largest magnitude of an exponent (for a base other than 0, 1 and -1)
MAX_EXPONENT = 64

Number = int | float


class ExpressionError(ValueError):
    """Why an expression cannot be evaluated (made an InputError by ``evaluate_expression``)."""


class _SelfReference(ExpressionError):
    pass


def _check(x: Number) -> Number:
    if isinstance(x, float) and not math.isfinite(x):
        raise ExpressionError(f"{x} is not a finite number")
    if abs(x) > MAX_VALUE:
        raise ExpressionError("a value larger than 2**63 in magnitude")
    return x


def _power(a: Number, b: Number) -> Number:
    if a not in (0, 1, -1) and abs(b) > MAX_EXPONENT:
        raise ExpressionError(f"exponent {shown(b, 20)} is larger than {MAX_EXPONENT} in magnitude")
    if a < 0 and not float(b).is_integer():
        raise ExpressionError("a negative number to a fractional power is not a real number")
    if a not in (0, 1, -1) and b > 0 and b * math.log2(abs(a)) > 63:
        raise ExpressionError("a value larger than 2**63 in magnitude")
    return a**b


_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: _power,
}


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or abs(ndigits) > 20:
        raise ExpressionError("round's digits must be an integer between -20 and 20")
    return round(x, ndigits)


#: name -> (function, least and most arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "ceil": (math.ceil, 1, 1),
    "floor": (math.floor, 1, 1),
    "log2": (math.log2, 1, 1),
    "log": (math.log, 1, 2),
    "max": (max, 2, 64),
    "min": (min, 2, 64),
    "round": (_round, 1, 2),
    "int": (int, 1, 1),
    "abs": (abs, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
}


def _literal(text: str) -> Number | None:
    """A plain number written as one (``12``, ``-3``, ``1e5``, ``0.25``), else None."""
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return None


class _Evaluator:
    """One evaluation: names resolved at most once each, with the chain being resolved kept to find
    names that refer to themselves."""

    def __init__(self, names: Mapping[str, Any]):
        self.names = names
        self.values: dict[str, Number] = {}
        self.resolving: list[str] = []

    def text(self, text: str) -> Number:
        number = _literal(text)
        if number is not None:
            if not math.isfinite(number):
                raise ExpressionError("not a finite number")
            return _check(number)
        if len(text) > MAX_EXPRESSION_CHARS:
            raise ExpressionError(f"longer than {MAX_EXPRESSION_CHARS} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ExpressionError("expected a number or an arithmetic expression") from None
        if isinstance(tree.body, ast.Name) and tree.body.id not in self.names:
            raise ExpressionError("expected a number or an arithmetic expression (this name is not defined)")
        return self.node(tree.body, 1)

    def name(self, name: str) -> Number:
        if name in self.values:
            return self.values[name]
        if name not in self.names:
            raise ExpressionError(f"unknown name {shown(name, 30)}")
        if name in self.resolving:
            chain = " -> ".join([*self.resolving[self.resolving.index(name) :], name])
            raise _SelfReference(f"{name} refers to itself ({clip(chain, 60)})")
        value = self.names[name]
        self.resolving.append(name)
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ExpressionError(f"{name} is {shown(value, 30)}, not a number")
            result = self.text(value) if isinstance(value, str) else _check(value)
        except _SelfReference:
            raise
        except ExpressionError as exc:
            if str(exc).startswith(f"{name} is "):
                raise
            raise ExpressionError(f"{name} is {shown(value, 30)}: {exc}") from None
        finally:
            self.resolving.pop()
        self.values[name] = result
        return result

    def length(self, node: ast.AST) -> int:
        """``len`` of a dotted name (``spec.problem.instance``) whose value is a list or a mapping."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise ExpressionError("len takes a name such as spec.problem.instance")
        dotted = ".".join([node.id, *reversed(parts)])
        value = self.names.get(dotted)
        if not isinstance(value, (list, tuple, Mapping)):
            raise ExpressionError(f"len of {shown(dotted, 40)}: not a list or mapping known here")
        return len(value)

    def node(self, node: ast.AST, depth: int) -> Number:
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_EXPRESSION_DEPTH} levels")
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ExpressionError(f"{shown(v, 30)} is not a number")
            return _check(v)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = self.node(node.operand, depth + 1)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            a = self.node(node.left, depth + 1)
            b = self.node(node.right, depth + 1)
            try:
                return _check(_BINARY[type(node.op)](a, b))
            except ZeroDivisionError:
                raise ExpressionError("division by zero") from None
            except OverflowError:
                raise ExpressionError("a value larger than 2**63 in magnitude") from None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "len"
            and len(node.args) == 1
            and not node.keywords
        ):
            return self.length(node.args[0])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            spec = _FUNCTIONS.get(node.func.id)
            if spec is not None:
                fn, least, most = spec
                if not least <= len(node.args) <= most or any(isinstance(a, ast.Starred) for a in node.args):
                    raise ExpressionError(f"{node.func.id} takes {least}..{most} arguments")
                args = [self.node(a, depth + 1) for a in node.args]
                try:
                    return _check(fn(*args))
                except (ValueError, TypeError, OverflowError, ZeroDivisionError) as exc:
                    if isinstance(exc, ExpressionError):
                        raise
                    raise ExpressionError(f"{node.func.id}: {exc}") from None
        raise ExpressionError(f"{_describe(node)} is not allowed (only arithmetic on numbers and names)")


_SYMBOLS = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.MatMult: "@",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"the function {shown(node.func.id, 30)}"
    if isinstance(node, ast.BinOp):
        return f"the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}"
    if isinstance(node, ast.UnaryOp):
        return f"the operator {'~' if isinstance(node.op, ast.Invert) else 'not'}"
    return f"a {type(node).__name__.lower()} expression"


def evaluate_expression(
    text: str | Number, names: Mapping[str, Any], path: str | Path | None, field: str | None
) -> Number:
    """The value of ``text`` (a number, or an expression over ``names``; see the module docstring).
    ``names`` maps a name to a number or to an expression over the same names. InputError naming
    ``path`` and ``field`` when the expression cannot be evaluated within the bounds."""
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise InputError(path, field, f"expected a number or an expression, got {shown(text, 60)}")
    try:
        if isinstance(text, str):
            return _Evaluator(names).text(text)
        return _check(text)
    except ExpressionError as exc:
        raise InputError(path, field, f"{shown(text, 60)}: {exc}") from None


_FACTOR_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*(<=|>=|=)\s*(.+?)\s*")
_INTEGER = re.compile(r"\s*-?[0-9]+\s*")


def evaluate_integer(
    text: str | Number, names: Mapping[str, Any], path: str | Path | None, field: str | None
) -> int:
    """:func:`evaluate_expression` of a value that must be an integer (a factor, a split)."""
    v = evaluate_expression(text, names, path, field)
    if isinstance(v, float):
        if not v.is_integer():
            raise InputError(path, field, f"{shown(text, 60)} is {v}, not an integer")
        v = int(v)
    return v


def evaluate_factors(value: Any, names: Mapping[str, Any], path: str | Path | None, field: str) -> Any:
    """Loop factors (``"C=2 M=4"``, ``"C=2,M=n*2"``, ``["C=2", "M=min(n, 8)"]`` or ``{C: 2, M: "n*2"}``)
    with every value that is not an integer literal evaluated as an expression over ``names``, as
    timeloopfe evaluates its specification's strings. A string is cut into factors the way timeloopfe
    cuts it (at commas if it has any, else at white space), so an expression with spaces needs the
    comma or the list form, one with a comma (``min(n, 8)``) the list form. ``value`` comes back
    unchanged when no value needs evaluating (the factor parsers then read it as before), else as a
    list of ``"X=n"`` strings or a mapping of integers."""
    if isinstance(value, Mapping):
        if all(not isinstance(v, str) or _INTEGER.fullmatch(v) for v in value.values()):
            return value
        return {
            k: evaluate_integer(v, names, path, f"{field}.{k}") if isinstance(v, str) else v
            for k, v in value.items()
        }
    if isinstance(value, str):
        text = value.split("#", 1)[0]
        items = text.split(",") if "," in text else text.split()
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        return value
    matches = [_FACTOR_TOKEN.fullmatch(it) for it in items]
    if all(m is None or _INTEGER.fullmatch(m.group(3)) for m in matches):
        return value
    out = []
    for it, m in zip(items, matches):
        if m is not None and not _INTEGER.fullmatch(m.group(3)):
            dim, op = m.group(1), m.group(2)
            try:
                v = evaluate_integer(m.group(3), names, path, field)
            except InputError as exc:
                raise InputError(
                    exc.path, exc.field, f"malformed factor {shown(it.strip(), 40)}: {exc.message}"
                ) from None
            it = f"{dim}{op}{v}"
        out.append(it)
    return out


__all__ = [
    "MAX_EXPONENT",
    "MAX_EXPRESSION_CHARS",
    "MAX_EXPRESSION_DEPTH",
    "MAX_VALUE",
    "ExpressionError",
    "evaluate_expression",
    "evaluate_factors",
    "evaluate_integer",
]
