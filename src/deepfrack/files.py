"""Reading input files with errors that name the file (and the line and column of a syntax error): every
reader of user input goes through these, so a missing file, a folder, binary content, bad syntax or a file
beyond the limits below is always one InputError, never a traceback or a hang.

Limits (docs/benchmark.md, "Input limits"): a YAML file is at most ``MAX_YAML_BYTES``, a JSON file
``MAX_JSON_BYTES``, a CSV file ``MAX_CSV_BYTES``; a YAML or JSON document nests at most ``MAX_DEPTH``
levels and a YAML document holds at most ``MAX_YAML_NODES`` nodes once its aliases are expanded (so an
alias "bomb" -- a few lines that expand to billions of nodes -- is refused before anything walks it); an
alias that refers to the node containing it is refused too. Mapping keys must be unique (YAML requires
it; PyYAML would silently keep the last, Timeloop's parser the first). PyYAML's errors, whatever their
Python type (a ``ValueError`` for the date ``2024-13-45`` or the integer ``!!int abc``, a ``KeyError`` for the
boolean ``!!bool maybe``), become one InputError with the line and column.

YAML is parsed by libyaml (PyYAML's C parser) when PyYAML was built with it, about three times faster
than the pure-Python parser on large files; the composition into nodes, where the limits are checked,
is PyYAML's Python code either way.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import Resolver

from deepfrack.errors import InputError, shown

YAML_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")

#: the largest YAML file read (bytes): far above any architecture, constraint or network file
MAX_YAML_BYTES = 16 << 20
#: the largest JSON file read (bytes): cost tables and schedules
MAX_JSON_BYTES = 256 << 20
#: the largest CSV file read (bytes): a costs.csv of a few million entries
MAX_CSV_BYTES = 1 << 30
#: the deepest nesting of mappings and lists in a YAML or JSON document
MAX_DEPTH = 100
#: the most nodes (scalars, lists, mappings) in one YAML document, aliases expanded
MAX_YAML_NODES = 2_000_000

try:  # libyaml's parser, when PyYAML was built with it
    from yaml._yaml import CParser as _CParser

    LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CParser = None
    LIBYAML = False


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_YAML_BYTES) -> str:
    """The text of ``path`` (UTF-8, a leading byte-order mark dropped); InputError naming it when it is
    missing, a folder, unreadable, not text, or larger than ``max_bytes``."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(p, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(p, None, f"is a folder, expected a {what}") from None
    except OSError as exc:
        raise InputError(p, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(
            p, None, f"larger than {max_bytes >> 20} MiB, the most deepfrack reads from a {what}"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(p, f"line {line}", "not a text file (not UTF-8)") from None


# --------------------------------------------------------------------------------------------- #
# YAML
# --------------------------------------------------------------------------------------------- #
class YamlLimitError(yaml.YAMLError):
    """A YAML document beyond the reader's limits (nesting, nodes after alias expansion, self-reference)."""

    def __init__(self, problem: str, mark: Any):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _CheckedComposer(Composer):
    """PyYAML's composer, counting as it goes: the nesting depth, and the nodes of the document with every
    alias counted as the size of the node it stands for (what a walk over the loaded data visits)."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # id(anchored node) -> its size, aliases expanded

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_YAML_NODES:
            raise YamlLimitError(
                f"more than {MAX_YAML_NODES:,} values once its aliases are expanded (an alias bomb?)", mark
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise YamlLimitError(
                        f"alias *{event.anchor} refers to a node that contains it", event.start_mark
                    )
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark)
        if event.anchor is not None:
            self._sizes[id(node)] = self._nodes - before
        return node

    def compose_document(self) -> Node:
        node = super().compose_document()
        self._sizes = {}
        return node


class _CheckedConstructor(SafeConstructor):
    """PyYAML's safe constructor, with every error it raises while building a value turned into a
    ``ConstructorError`` with the value's line and column, and duplicate keys refused."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
            value = node.value if isinstance(node, ScalarNode) else node.tag
            raise ConstructorError(
                None,
                None,
                f"cannot read {shown(value, 40)} as {node.tag.rsplit(':', 1)[-1]}: {exc}",
                node.start_mark,
            ) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        if isinstance(node, MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                    continue
                key = self.construct_object(key_node)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: PyYAML reports it below
                    continue
                if first is not None:
                    raise ConstructorError(
                        None,
                        None,
                        f"key {shown(key, 40)} given twice (first on line {first.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


if LIBYAML:

    class YamlLoader(_CheckedComposer, _CParser, _CheckedConstructor, Resolver):  # type: ignore[misc, valid-type]
        """The checked safe loader: libyaml's parser, PyYAML's composer and safe constructor with the
        limits of this module. Subclass it to add constructors (e.g. for local ``!Tags``)."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            _CheckedComposer.__init__(self)
            _CheckedConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class YamlLoader(Reader, Scanner, Parser, _CheckedComposer, _CheckedConstructor, Resolver):  # type: ignore[no-redef]
        """The checked safe loader (pure-Python parser: PyYAML was built without libyaml)."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _CheckedComposer.__init__(self)
            _CheckedConstructor.__init__(self)
            Resolver.__init__(self)


def _where(text: str, exc: yaml.YAMLError) -> str | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}"
    position = getattr(exc, "position", None)  # a ReaderError: an index into the text
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        return f"line {line}, column {position - (text.rfind(chr(10), 0, position) + 1) + 1}"
    return None


def parse_yaml(text: str, path: str | Path | None, loader: type[YamlLoader] = YamlLoader) -> Any:
    """Parse YAML text with the checked loader; InputError naming ``path`` with the line and column."""
    try:
        return yaml.load(text, Loader=loader)  # a SafeConstructor: no arbitrary objects
    except YamlLimitError as exc:
        raise InputError(path, _where(text, exc), exc.problem) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "malformed YAML"
        if getattr(exc, "context", None) and "while" not in str(problem):
            problem = f"{problem} ({exc.context})"
        if "{%" in text or "{{" in text:  # timeloopfe renders its inputs with Jinja2 first
            problem = "a Jinja2 template ({% %} or {{ }}); deepfrack does not render them: render it first"
        raise InputError(path, _where(text, exc), f"malformed YAML: {problem}") from None
    except RecursionError:  # the limits above keep the nesting far from Python's recursion limit
        raise InputError(path, None, f"nested deeper than {MAX_DEPTH} levels") from None


def read_yaml(path: str | Path, loader: type[YamlLoader] = YamlLoader) -> Any:
    """Parse one YAML file with ``loader`` (``YamlLoader`` or a subclass of it, e.g. one that reads
    Timeloop v0.4 tags)."""
    return parse_yaml(read_text(path, "YAML file", MAX_YAML_BYTES), Path(path), loader)


# --------------------------------------------------------------------------------------------- #
# JSON
# --------------------------------------------------------------------------------------------- #
class _JsonValueError(ValueError):
    pass


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _JsonValueError(f"key {shown(k, 40)} given twice in one object")
        out[k] = v
    return out


def _json_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _JsonValueError(f"number {shown(text, 40)} is out of range")
    return x


def _json_constant(name: str) -> Any:
    raise _JsonValueError(f"{name} is not a JSON number")


def depth_of(doc: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of lists and mappings in ``doc`` (counted without recursion), at most
    ``limit + 1`` (the walk stops there)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        deepest = max(deepest, d + 1)
        if deepest > limit:
            return deepest
        stack.extend((c, d + 1) for c in children)
    return deepest


def parse_json(text: str, path: str | Path | None) -> Any:
    """Parse JSON text: InputError naming ``path`` (with the line and column of a syntax error) on bad
    syntax, a key given twice in one object, NaN or Infinity, a number out of range, or nesting deeper
    than ``MAX_DEPTH``."""
    try:
        doc = json.loads(
            text, object_pairs_hook=_json_pairs, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"line {exc.lineno}, column {exc.colno}", f"malformed JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise InputError(path, None, f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # ours above, or an integer too long to convert
        raise InputError(path, None, f"malformed JSON: {exc}") from None
    if depth_of(doc) > MAX_DEPTH:
        raise InputError(path, None, f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
    return doc


def read_json(path: str | Path) -> Any:
    """Parse one JSON file (see ``parse_json``)."""
    return parse_json(read_text(path, "JSON file", MAX_JSON_BYTES), Path(path))


def yaml_files(folder: str | Path) -> list[Path]:
    """The YAML files directly in ``folder``, sorted by name."""
    return sorted(f for f in Path(folder).iterdir() if f.is_file() and f.suffix.lower() in YAML_SUFFIXES)


# --------------------------------------------------------------------------------------------- #
# writing
# --------------------------------------------------------------------------------------------- #
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_temp(folder: str | Path, name: str) -> Path:
    """A new empty hidden file in ``folder``, to be renamed onto ``folder/name`` once complete (an
    atomic replace). It gets the permissions a file created normally would (0666 minus the umask), not
    mkstemp's private 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file so that readers see either the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(path.parent, path.name)
    try:
        with open(tmp, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output_folder(out: str | Path) -> None:
    """InputError, before any long work, when ``out`` cannot be an output folder: it is a file, it sits
    under a file, or its nearest existing folder is not writable. Nothing is created here."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise InputError(out, None, "the output folder is a file")
        probe = out
    else:
        probe = out.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise InputError(out, None, f"cannot create the output folder: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(out, None, f"cannot create the output folder: {probe} is not writable")


@contextlib.contextmanager
def output_folder(out: str | Path) -> Iterator[Path]:
    """All-or-nothing outputs: yields a new hidden folder beside ``out`` to write into; when the block
    completes, its files and folders are moved into ``out`` (created if needed; same-named entries of a
    previous run are replaced, anything else in ``out`` is left alone), and when the block raises, the
    temporary folder is removed and ``out`` is untouched."""
    out = Path(out)
    check_output_folder(out)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise InputError(out, None, f"cannot create the output folder: {exc.strerror or exc}") from None
    try:
        yield tmp
        if not out.exists():
            os.replace(tmp, out)
            return
        for entry in sorted(tmp.iterdir()):
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".old", dir=out))
                os.replace(target, old / entry.name)
                os.replace(entry, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
