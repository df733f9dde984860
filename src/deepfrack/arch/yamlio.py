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
from deepfrack.files import YAML_SUFFIXES, read_yaml


class Tagged(dict):
    """A YAML mapping that carried a local tag such as ``!Container``; ``tag`` is the name without
    the ``!``."""

    def __init__(self, tag: str, data: dict | None = None):
        super().__init__(data or {})
        self.tag = tag

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"!{self.tag} {dict.__repr__(self)}"


def find_tag(obj: Any, where: str = "") -> tuple[str, str] | None:
    """The (field path, tag) of the first tagged node inside ``obj``, or None: for files where Timeloop
    takes no tags (problem, mapping, ERT)."""
    if isinstance(obj, Tagged):
        return where or "(top)", obj.tag
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = find_tag(v, f"{where}.{k}" if where else str(k))
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = find_tag(v, f"{where}[{i}]")
            if found:
                return found
    return None


class _Loader(yaml.SafeLoader):
    """SafeLoader that accepts local ``!Tag`` nodes (Timeloop v0.4 front-end tags)."""


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


def underscore_keys(obj: Any) -> Any:
    """Copy of ``obj`` with every mapping key's hyphens turned into underscores (Timeloop's
    hyphens-to-underscores rule, applied to keys only)."""
    if isinstance(obj, Tagged):
        out = Tagged(obj.tag, {_us(k): underscore_keys(v) for k, v in obj.items()})
        return out
    if isinstance(obj, dict):
        return {_us(k): underscore_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [underscore_keys(v) for v in obj]
    return obj


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
        docs.append(Document(p, underscore_keys(data) if data is not None else {}))
    return docs
