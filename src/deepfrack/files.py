"""Reading input files with errors that name the file (and the line of a syntax error): every reader of
user input goes through these, so a missing file, a folder, binary content or bad syntax is always one
InputError, never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from deepfrack.errors import InputError

YAML_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path``; InputError naming it when it is missing, a folder, unreadable or not text."""
    p = Path(path)
    try:
        return p.read_text()
    except FileNotFoundError:
        raise InputError(p, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(p, None, f"is a folder, expected a {what}") from None
    except UnicodeDecodeError:
        raise InputError(p, None, "not a text file") from None
    except OSError as exc:
        raise InputError(p, None, f"cannot read: {exc.strerror or exc}") from None


def read_yaml(path: str | Path, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """Parse one YAML file with ``loader`` (a SafeLoader or a subclass of it, e.g. one that reads
    Timeloop v0.4 tags)."""
    text = read_text(path, "YAML file")
    try:
        return yaml.load(text, Loader=loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise InputError(Path(path), where, f"malformed YAML: {problem}") from None


def read_json(path: str | Path) -> Any:
    """Parse one JSON file."""
    text = read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Path(path), f"line {exc.lineno}", f"malformed JSON: {exc.msg}") from None


def yaml_files(folder: str | Path) -> list[Path]:
    """The YAML files directly in ``folder``, sorted by name."""
    return sorted(f for f in Path(folder).iterdir() if f.is_file() and f.suffix.lower() in YAML_SUFFIXES)


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
