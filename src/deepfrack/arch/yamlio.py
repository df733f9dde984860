"""Reading Timeloop/Accelergy YAML: one file, several files, or folders of them, merged the way
Timeloop merges the files given on its command line.

Timeloop concatenates every input file into one YAML document (NVlabs/timeloop
src/compound-config/compound-config.cpp, ``CompoundConfig(std::vector<std::string>)``) and rewrites
hyphenated keywords to underscores (src/compound-config/hyphens-to-underscores.cpp). We merge the
parsed documents instead, which gives the same result without the text tricks: top-level mappings
are combined, ``compound_components.classes`` lists are concatenated, and two files that both define
an architecture are an error. Keys are normalized to underscores (``word-bits`` -> ``word_bits``).

v0.4 files use YAML tags (``!Container``, ``!Component``, ``!Parallel``, ``!Hierarchical``,
``!Pipelined``, ``!Nothing``); they load as :class:`Tagged` mappings and the architecture parser
checks the tag names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deepfrack.errors import InputError
from deepfrack.files import YAML_SUFFIXES, YamlLoader, read_yaml


class Tagged(dict):
    """A YAML mapping that carried a local tag such as ``!Container``; ``tag`` is the name without
    the ``!``."""

    def __init__(self, tag: str, data: dict | None = None):
        super().__init__(data or {})
        self.tag = tag

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"!{self.tag} {dict.__repr__(self)}"


def find_tag(obj: Any, where: str = "") -> tuple[str, str] | None:
    """The (field path, tag) of the first tagged node inside ``obj`` (depth first, in document order), or
    None: for files where Timeloop takes no tags (problem, mapping, ERT). Walks without recursion."""
    stack: list[tuple[Any, str]] = [(obj, where)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, Tagged):
            return at or "(top)", node.tag
        if isinstance(node, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k)) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, f"{at}[{i}]") for i, v in reversed(list(enumerate(node))))
    return None


class _Loader(YamlLoader):
    """The checked safe loader (``deepfrack.files``), accepting local ``!Tag`` nodes (Timeloop v0.4
    front-end tags)."""


def _construct_tagged(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # honour "<<" merges inside tagged mappings
        return Tagged(suffix, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.ScalarNode) and loader.construct_scalar(node) in ("", None):
        return Tagged(suffix)
    if isinstance(node, yaml.SequenceNode):
        t = Tagged(suffix)
        t["_items"] = loader.construct_sequence(node, deep=True)
        return t
    return Tagged(suffix, {"_value": loader.construct_scalar(node)})


_Loader.add_multi_constructor("!", _construct_tagged)


@dataclass(frozen=True)
class Document:
    """One parsed YAML file."""

    path: Path
    data: Any


def underscore_keys(obj: Any, path: str | Path | None = None) -> Any:
    """Copy of ``obj`` with every mapping key's hyphens turned into underscores (Timeloop's
    hyphens-to-underscores rule, applied to keys only). Two keys of one mapping that become the same
    (``word-bits`` and ``word_bits``) are an InputError naming ``path`` and the field. Copies without
    recursion (the YAML reader bounds what it visits: aliases expanded, at most MAX_YAML_NODES)."""
    root: list[Any] = [None]
    # (source node, the container to put its copy in, the key or index there, field path)
    stack: list[tuple[Any, Any, Any, str]] = [(obj, root, 0, "")]
    while stack:
        node, into, slot, at = stack.pop()
        if isinstance(node, dict):
            copy: dict = Tagged(node.tag) if isinstance(node, Tagged) else {}
            for k, v in node.items():
                key = _us(k)
                if key in copy:
                    raise InputError(
                        path,
                        f"{at}.{k}" if at else str(k),
                        f"given twice, as {_other_spelling(node, k, key)!r} and {k!r} (hyphens and "
                        "underscores are the same in Timeloop's keys)",
                    )
                copy[key] = None
                stack.append((v, copy, key, f"{at}.{key}" if at else str(key)))
        elif isinstance(node, list):
            copy = [None] * len(node)
            stack.extend((v, copy, i, f"{at}[{i}]") for i, v in enumerate(node))
        else:
            copy = node
        into[slot] = copy
    return root[0]


def _other_spelling(node: dict, k: Any, key: Any) -> Any:
    return next((o for o in node if o != k and _us(o) == key), key)


def _us(key: Any) -> Any:
    return key.replace("-", "_") if isinstance(key, str) else key


def load_yaml(path: str | Path) -> Any:
    """Parse one YAML file (v0.4 tags allowed); InputError naming the file on a missing file or a
    syntax error."""
    return read_yaml(path, _Loader)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files in the order given; a folder stands for its YAML files (recursively, sorted by path)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in YAML_SUFFIXES)
            if not found:
                raise InputError(p, None, "folder holds no YAML files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(p, None, "file not found")
    return out


def load_documents(*paths: str | Path) -> list[Document]:
    """Every YAML file among ``paths`` (folders expanded), parsed, keys normalized to underscores."""
    docs = []
    for p in expand_paths(paths):
        data = load_yaml(p)
        docs.append(Document(p, underscore_keys(data, p) if data is not None else {}))
    return docs
