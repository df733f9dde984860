"""Mutations of input files: on the parsed document (a value replaced, a key renamed or dropped, a list
shortened, a type swapped) and on the text (truncation, stray characters, YAML tags and scalars that
PyYAML's constructors reject, alias bombs, self-references, deep nesting, binary junk, oversized files).

Every mutator takes a ``random.Random`` and returns the new content and a short description of what it
did (so that a failing case can be read and reproduced)."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import random
from collections.abc import Callable
from typing import Any

import yaml

from deepfrack.arch.yamlio import Tagged

#: replaced by an alias, a self-reference or deep nesting after the document is dumped as text
MARKER = "__FUZZ_MARKER__"

_LONG = "x" * 100_000
INTERESTING: tuple[Any, ...] = (
    0,
    -1,
    -3,
    1,
    2,
    3,
    7,
    64,
    1000,
    2**31,
    2**63,
    10**12,
    10**30,
    10**400,
    0.5,
    -0.5,
    1.5,
    1e-300,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    None,
    "",
    "abc",
    _LONG,
    "9**9**9",
    "10**10**10",
    "(1<<100000)",
    "2" + "*2" * 20_000,
    "(" * 3000 + "1" + ")" * 3000,
    "-" * 5000 + "1",
    "1e999",
    " 1 ",
    "0x1F",
    "2024-13-45",
    "nan",
    "inf",
    "ceil(log2(16))",
    "depth*2",
    "__import__('os').getcwd()",
    "max()",
    "log2(0)",
    "1/0",
    "-1",
    "1.5",
    "DRAM",
    "Weights",
    "Foo",
    "\x00",
    "\t",
    "é",
    "C=0",
    "C<=0",
    "P=1 Q=1 X=2",
    "RR",
    [],
    {},
    [1],
    [None],
    {"a": 1},
    ["x", "x", "x"],
    [[[]]],
)

_KEY_RENAMES: tuple[Callable[[str], str], ...] = (
    lambda k: k + "x",
    lambda k: k.upper(),
    lambda k: k.lower(),
    lambda k: k.replace("_", "-") if "_" in k else k.replace("-", "_") + "_",
    lambda k: k * 2,
    lambda k: "unknown_key",
    lambda k: " " + k,
    lambda k: k[:-1] or "?",
)


# --------------------------------------------------------------------------------------------- #
# text of any kind
# --------------------------------------------------------------------------------------------- #
def _truncated(text: str, rng: random.Random) -> tuple[str, str]:
    cut = rng.randrange(len(text) + 1)
    return text[:cut], f"truncated at {cut}"


def _with_junk(text: str, rng: random.Random, most: int) -> tuple[bytes, str]:
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, most)))
    data = text.encode()
    pos = rng.randrange(len(data) + 1)
    return data[:pos] + junk + data[pos:], f"{len(junk)} random bytes at {pos}"


# --------------------------------------------------------------------------------------------- #
# the parsed document
# --------------------------------------------------------------------------------------------- #
def node_paths(doc: Any, limit: int = 5000) -> list[tuple[Any, ...]]:
    """Paths (tuples of keys and indices) of every node below the root, breadth first."""
    out: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    while queue and len(out) < limit:
        path, node = queue.pop(0)
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for k, v in items:
            out.append((*path, k))
            queue.append(((*path, k), v))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for k in path[:-1]:
        node = node[k]
    return node


def _pick_value(rng: random.Random, old: Any) -> Any:
    if isinstance(old, (int, float)) and not isinstance(old, bool) and rng.random() < 0.4:
        return rng.choice(
            [old + 1, old - 1, old * 2, -old, 0, old * 10**9, old / 2, str(old), f"{old}*2", [old]]
        )
    return copy.deepcopy(rng.choice(INTERESTING))


def _set_key(parent: dict, old_key: Any, new_key: Any) -> dict:
    """``parent`` with ``old_key`` renamed to ``new_key`` in place (order kept); a Tagged keeps its tag."""
    items = [(new_key if k == old_key else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)
    return parent


def mutate_tree(doc: Any, rng: random.Random) -> tuple[Any, str]:
    """One structural mutation of a parsed document (a copy)."""
    doc = copy.deepcopy(doc)
    paths = node_paths(doc)
    if not paths:
        return rng.choice(INTERESTING), "whole document replaced"
    path = rng.choice(paths)
    parent = _parent(doc, path)
    key = path[-1]
    old = parent[key]
    where = ".".join(map(str, path))
    op = rng.randrange(10)
    if op <= 2:
        new = _pick_value(rng, old)
        parent[key] = new
        return doc, f"{where} = {_short(new)}"
    if op == 3:
        del parent[key]
        return doc, f"{where} deleted"
    if op == 4 and isinstance(parent, dict) and isinstance(key, str):
        new_key = rng.choice(_KEY_RENAMES)(key)
        if new_key in parent:
            parent[new_key + "_"] = old
            return doc, f"{where} added beside as {new_key}_"
        _set_key(parent, key, new_key)
        return doc, f"{where} renamed to {new_key!r}"
    if op == 5 and isinstance(parent, dict) and isinstance(key, str):
        twin = key.replace("_", "-") if "_" in key else key.replace("-", "_")
        twin = twin if twin != key else key + "_extra"
        parent[twin] = copy.deepcopy(_pick_value(rng, old) if rng.random() < 0.5 else old)
        return doc, f"{where}: key {twin!r} added beside"
    if op == 6 and isinstance(parent, list):
        choice = rng.randrange(3)
        if choice == 0:
            parent.insert(key, copy.deepcopy(old))
            return doc, f"{where} duplicated"
        if choice == 1:
            parent.clear()
            return doc, f"{'.'.join(map(str, path[:-1]))} emptied"
        rng.shuffle(parent)
        return doc, f"{'.'.join(map(str, path[:-1]))} shuffled"
    if op == 7:
        if isinstance(old, dict):
            parent[key] = list(old.values())
            return doc, f"{where}: mapping -> list of its values"
        if isinstance(old, list):
            parent[key] = old[0] if old else None
            return doc, f"{where}: list -> its first item"
        parent[key] = [old] if rng.random() < 0.5 else {"value": old}
        return doc, f"{where}: scalar wrapped"
    if op == 8:
        parent[key] = MARKER
        return doc, f"{where} = <marker>"
    if isinstance(parent, dict):
        parent[rng.choice(["RR", "extra", "unknown-key", "Q_", "wordbits"])] = _pick_value(rng, old)
        return doc, f"{'.'.join(map(str, path[:-1])) or '(top)'}: unknown key added"
    parent.append(copy.deepcopy(old))
    return doc, f"{where} appended again"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------------------------- #
# YAML text
# --------------------------------------------------------------------------------------------- #
class _Dumper(yaml.SafeDumper):
    pass


def _represent_tagged(dumper: yaml.SafeDumper, data: Tagged) -> yaml.Node:
    if "_items" in data:
        return dumper.represent_sequence(f"!{data.tag}", data["_items"])
    if "_value" in data:
        return dumper.represent_scalar(f"!{data.tag}", str(data["_value"]))
    return dumper.represent_mapping(f"!{data.tag}", dict(data))


_Dumper.add_representer(Tagged, _represent_tagged)


def dump_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=200)


def _bomb(levels: int = 9) -> str:
    lines = ["lol0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _marker_payload(rng: random.Random) -> tuple[str, str, str]:
    """(text before the document, replacement of the marker, description)."""
    choice = rng.randrange(6)
    if choice == 0:
        return _bomb(), "*l8", "alias bomb (9^9 nodes)"
    if choice == 1:
        return "", "&self [1, *self]", "self-referencing list"
    if choice == 2:
        return "", "&self {a: *self}", "self-referencing mapping"
    if choice == 3:
        n = rng.choice([50, 150, 1000, 100_000])
        return "", "[" * n + "]" * n, f"nested {n} deep"
    if choice == 4:
        n = rng.choice([150, 1000, 50_000])
        return "", "{a: " * n + "1" + "}" * n, f"mapping nested {n} deep"
    return _bomb(6), "{<<: *l5, x: 1}", "merge of an alias bomb"


_SCALARS = (
    "2024-13-45",
    "!!int abc",
    "!!bool maybe",
    "!!int ''",
    "!!float x",
    "!!timestamp 2024-13-45",
    "0b2",
    "1:99",
    ".nan",
    ".inf",
    "-.inf",
    "~",
    "!!binary '!!'",
    "!!python/object/apply:os.system ['true']",
    "!!set {a}",
    "!!omap [a]",
    "!Foo",
    "!!str",
    "1e400",
    "0o8",
    "0x",
    "*undefined",
    "&a",
    "!!int 1" + "0" * 5000,
    "1" + "0" * 5000,
    "? [a, b]",
    "[a, b]: c",
    "{a: 1}: b",
)


def mutate_yaml_text(text: str, rng: random.Random) -> tuple[str | bytes, str]:
    """One text-level mutation of a YAML file."""
    op = rng.randrange(12)
    lines = text.splitlines(keepends=True)
    if op == 0:
        return _truncated(text, rng)
    if op == 1 and lines:
        i = rng.randrange(len(lines))
        return "".join(lines[:i] + lines[i + 1 :]), f"line {i + 1} deleted"
    if op == 2 and lines:
        i = rng.randrange(len(lines))
        return "".join(lines[: i + 1] + lines[i:]), f"line {i + 1} duplicated"
    if op == 3:
        pos = rng.randrange(len(text) + 1)
        ch = rng.choice(":{}[],&*!|>'\"%@`#\t-?\n\x00\x85\ufeff")
        return text[:pos] + ch + text[pos:], f"{ch!r} inserted at {pos}"
    if op in (4, 5):
        # a scalar after ": " replaced by something PyYAML constructs specially (or rejects)
        spots = [i for i, ln in enumerate(lines) if ": " in ln and not ln.rstrip().endswith(":")]
        if spots:
            i = rng.choice(spots)
            head = lines[i].split(": ", 1)[0]
            new = rng.choice(_SCALARS)
            lines[i] = f"{head}: {new}\n"
            return "".join(lines), f"line {i + 1} value -> {new[:30]!r}"
    if op == 6:
        pre, payload, what = _marker_payload(rng)
        spots = [i for i, ln in enumerate(lines) if ": " in ln and not ln.rstrip().endswith(":")]
        if spots:
            i = rng.choice(spots)
            head = lines[i].split(": ", 1)[0]
            lines[i] = f"{head}: {payload}\n"
            return pre + "".join(lines), f"line {i + 1}: {what}"
    if op == 7:
        return _with_junk(text, rng, 64)
    if op == 8:
        return rng.choice(
            ["", "# only a comment\n", "---\n---\n", "...\n", "- a\n- b\n", "just text\n", "null\n", "[]\n"]
        ), "whole file replaced"
    if op == 9:
        return text + "---\n" + text, "second document appended"
    if op == 10 and rng.random() < 0.15:
        return text + "# " + "p" * (17 << 20) + "\n", "padded beyond 17 MiB"
    if op == 11:
        return "\ufeff" + text.replace("\n", "\r\n"), "BOM and CRLF"
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + "\t" + text[pos:], f"tab at {pos}"


def resolve_markers(text: str, rng: random.Random) -> tuple[str, str]:
    """Replace a tree mutation's marker by an alias bomb, a self-reference or deep nesting."""
    if MARKER not in text:
        return text, ""
    pre, payload, what = _marker_payload(rng)
    return pre + text.replace(f"'{MARKER}'", payload).replace(MARKER, payload), what


def mutate_yaml(text: str, rng: random.Random, n: int | None = None) -> tuple[str | bytes, str]:
    """1-3 mutations of a YAML file, structural (on the parsed document) or textual."""
    notes = []
    content: str | bytes = text
    for _ in range(n or rng.choice([1, 1, 1, 2, 3])):
        if isinstance(content, bytes) or len(content) > 1 << 20:
            break
        if rng.random() < 0.6:
            try:
                doc = yaml.load(content, Loader=_TagLoader)
            except Exception:  # whatever an earlier mutation made of it
                doc = None
            if isinstance(doc, (dict, list)):
                doc, note = mutate_tree(doc, rng)
                content, extra = resolve_markers(dump_yaml(doc), rng)
                notes.append(note + (f" ({extra})" if extra else ""))
                if extra:
                    break
                continue
        content, note = mutate_yaml_text(content, rng)
        notes.append(note)
    return content, "; ".join(notes)


class _TagLoader(yaml.SafeLoader):
    pass


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return Tagged(suffix, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Tagged(suffix, {"_items": loader.construct_sequence(node, deep=True)})
    return Tagged(suffix, {"_value": loader.construct_scalar(node)})


_TagLoader.add_multi_constructor("!", _construct_tagged)


# --------------------------------------------------------------------------------------------- #
# JSON text
# --------------------------------------------------------------------------------------------- #
def mutate_json(text: str, rng: random.Random) -> tuple[str | bytes, str]:
    """1-2 mutations of a JSON file."""
    notes = []
    content: str | bytes = text
    for _ in range(rng.choice([1, 1, 2])):
        if isinstance(content, bytes) or len(content) > 1 << 20:
            break
        if rng.random() < 0.6:
            try:
                doc = json.loads(content)
            except Exception:  # whatever an earlier mutation made of it
                doc = None
            if isinstance(doc, (dict, list)):
                doc, note = mutate_tree(doc, rng)
                out = json.dumps(doc, indent=1)
                if MARKER in out:
                    n = rng.choice([50, 1000, 100_000])
                    out = out.replace(f'"{MARKER}"', "[" * n + "]" * n)
                    note += f" (nested {n} deep)"
                content = out
                notes.append(note)
                continue
        content, note = _json_text(content, rng)
        notes.append(note)
    return content, "; ".join(notes)


def _json_text(text: str, rng: random.Random) -> tuple[str | bytes, str]:
    op = rng.randrange(8)
    if op == 0:
        return _truncated(text, rng)
    if op == 1:
        token = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1" + "0" * 5000, "null", '"1"'])
        spots = [i for i, c in enumerate(text) if c.isdigit() and (i == 0 or not text[i - 1].isalnum())]
        if spots:
            i = rng.choice(spots)
            j = i
            while j < len(text) and (text[j].isdigit() or text[j] in ".eE+-"):
                j += 1
            return text[:i] + token + text[j:], f"number at {i} -> {token[:20]}"
    if op == 2:
        i = text.find("{")
        if i >= 0:
            key = rng.choice(['"1"', '" 1 "', '"01"', '"1.0"', '"x"', '""', '"-1"', '"0"'])
            val = rng.choice(["1", "{}", '{"1": 5}', "[]", '"a"'])
            return text[: i + 1] + f"{key}: {val}, " + text[i + 1 :], f"key {key} inserted"
    if op == 3:
        return _with_junk(text, rng, 32)
    if op == 4:
        n = rng.choice([1000, 100_000])
        return "[" * n + "]" * n, f"nested {n} deep"
    if op == 5:
        return rng.choice(
            ["", "null", "[]", "{}", "1", '"text"', "{'a': 1}", "\ufeff{}"]
        ), "whole file replaced"
    if op == 6:
        pos = rng.randrange(len(text) + 1)
        ch = rng.choice('{}[],:"\\\n')
        return text[:pos] + ch + text[pos:], f"{ch!r} inserted at {pos}"
    return text + text, "doubled"


# --------------------------------------------------------------------------------------------- #
# CSV text
# --------------------------------------------------------------------------------------------- #
_CELLS = (
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e999",
    "abc",
    " 1 ",
    "1.5",
    "9" * 5000,
    "ok",
    "infeasible",
    "SLC",
    "slc",
    "XYZ",
    '"',
    ",",
    "1e-320",
    "0x10",
    "\uff11",  # a full-width digit one
    "2" * 20,
)


def mutate_csv(text: str, rng: random.Random) -> tuple[str | bytes, str]:
    """1-2 mutations of a CSV table (cells, columns, rows) or of its text."""
    rows = list(csv.reader(io.StringIO(text)))
    notes = []
    for _ in range(rng.choice([1, 1, 2])):
        if not rows:
            break
        op = rng.randrange(10)
        if op <= 3 and len(rows) > 1:
            r = rng.randrange(1, len(rows))
            c = rng.randrange(len(rows[r]) or 1)
            cell = rng.choice(_CELLS)
            if rows[r]:
                rows[r][c] = cell
            notes.append(f"row {r + 1} col {c + 1} = {cell[:20]!r}")
        elif op == 4:
            c = rng.randrange(len(rows[0]))
            name = rows[0][c]
            rows = [row[:c] + row[c + 1 :] for row in rows]
            notes.append(f"column {name!r} dropped")
        elif op == 5:
            c = rng.randrange(len(rows[0]))
            new = rng.choice(["Layer", "tile", "energy_uj", "energy_pJ_", "energy_pJ_DRAM", "status", ""])
            notes.append(f"header {rows[0][c]!r} -> {new!r}")
            rows[0][c] = new
        elif op == 6 and len(rows) > 1:
            r = rng.randrange(1, len(rows))
            rows.insert(r, list(rows[r]))
            notes.append(f"row {r + 1} duplicated")
        elif op == 7 and len(rows) > 1:
            r = rng.randrange(1, len(rows))
            if rng.random() < 0.5:
                rows[r] = rows[r][:-1]
                notes.append(f"row {r + 1} one field short")
            else:
                rows[r] = [*rows[r], "extra"]
                notes.append(f"row {r + 1} one field more")
        elif op == 8:
            rows = rows[:1]
            notes.append("only the header left")
        else:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            content, note = _csv_text(out.getvalue(), rng)
            return content, "; ".join([*notes, note])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue(), "; ".join(notes)


def _csv_text(text: str, rng: random.Random) -> tuple[str | bytes, str]:
    op = rng.randrange(5)
    if op == 0:
        return _truncated(text, rng)
    if op == 1:
        return _with_junk(text, rng, 32)
    if op == 2:
        return "\ufeff" + text.replace("\n", "\r\n"), "BOM and CRLF"
    if op == 3:
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + '"' + text[pos:], f"quote at {pos}"
    return rng.choice(["", "\n", "layer\n", "a,b,c\n1,2,3\n"]), "whole file replaced"
