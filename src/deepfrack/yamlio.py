"""Reading YAML files with errors that name the file (and the line of a syntax error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deepfrack.errors import InputError


def read_yaml(path: str | Path, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """Parse one YAML file with ``loader`` (a SafeLoader or a subclass of it, e.g. one that reads
    Timeloop v0.4 tags). InputError naming the file on a missing file, a folder, binary content or a
    syntax error (with its line)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InputError(p, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(p, None, "is a folder, expected a YAML file") from None
    except UnicodeDecodeError:
        raise InputError(p, None, "not a text file") from None
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise InputError(p, where, f"malformed YAML: {problem}") from None
