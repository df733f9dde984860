"""Which deepfrack code computed a result: a digest of the modules a backend's results depend on, for
its cache fingerprint.

The result cache is shared by every run (``~/.cache/deepfrack/benchmark.sqlite``) and outlives any one
version of the code: a mapper that changed must not be served the old mapper's results. A version
number bumped by hand is forgotten; so a backend's fingerprint holds ``code_digest(roots)``: the
package version and a hash of the source of the ``roots`` modules and of every deepfrack module they
import, transitively (imports inside functions included), within the packages that compute results
(``MODEL_PACKAGES``: the cost model and mapper, the architecture/constraint/energy parsers, the
workload). The benchmark's plumbing (jobs, cache, executors, runner) and the search are not followed:
they do not change what a backend computes for a job.

Modules are hashed as their compiled code without docstrings (bytecode, names, constants; not line
numbers): comments, docstrings and layout do not count, any change to the code does (and so does
another Python version, whose bytecode differs). Sources are read with ``importlib.resources``, so an
installed package hashes the same way as a source tree.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import importlib.resources
import types
from collections.abc import Iterable

from deepfrack import _version

PACKAGE = "deepfrack"
#: modules under these names are followed when they are imported (a name, or a package prefix)
MODEL_PACKAGES: tuple[str, ...] = (
    "deepfrack.cost",
    "deepfrack.arch",
    "deepfrack.workload",
    "deepfrack.errors",
    "deepfrack.files",
    "deepfrack.rect",
    "deepfrack.dims",
    "deepfrack.residency",
    "deepfrack.objective",
)


def _source(module: str) -> tuple[str, bool] | None:
    """The source text of a deepfrack module (``a.b`` -> ``a/b.py``, or ``a/b/__init__.py`` for a
    package) and whether it is a package; None when there is no such module."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    root = importlib.resources.files(PACKAGE)
    folder = root.joinpath(*parts[1:]) if len(parts) > 1 else root
    if len(parts) > 1:
        plain = folder.parent.joinpath(f"{parts[-1]}.py")
        if plain.is_file():
            return plain.read_text(encoding="utf-8"), False
    init = folder.joinpath("__init__.py")
    if init.is_file():
        return init.read_text(encoding="utf-8"), True
    return None


_IMPORT_NAME, _IMPORT_FROM, _EXTENDED_ARG = (
    dis.opmap["IMPORT_NAME"],
    dis.opmap["IMPORT_FROM"],
    dis.opmap["EXTENDED_ARG"],
)


@functools.lru_cache(maxsize=512)
def _compiled(text: str, name: str) -> types.CodeType:
    """The module's code without docstrings (``optimize=2``)."""
    return compile(text, name, "exec", optimize=2, dont_inherit=True)


def _imported(code: types.CodeType) -> list[str]:
    """Every module an import statement anywhere in ``code`` (nested functions and classes included)
    names: ``import a.b`` names ``a.b``; ``from a import b`` names ``a`` and ``a.b`` (b may be a
    module). Absolute imports (the project's rule); a relative one names nothing here."""
    out: list[str] = []
    raw, ext, current = code.co_code, 0, ""
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | ext
        ext = arg << 8 if op == _EXTENDED_ARG else 0
        if op == _IMPORT_NAME:
            current = code.co_names[arg]
            out.append(current)
        elif op == _IMPORT_FROM and current:
            out.append(f"{current}.{code.co_names[arg]}")
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out += _imported(const)
    return out


def _followed(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in MODEL_PACKAGES)


def _closure(roots: Iterable[str]) -> dict[str, types.CodeType]:
    codes: dict[str, types.CodeType] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in codes:
            continue
        found = _source(name)
        if found is None:  # ``from a import b`` where b is not a module
            continue
        codes[name] = code = _compiled(found[0], name)
        todo += [m for m in _imported(code) if m not in codes and _followed(m)]
    return codes


def _hash_code(h: hashlib._Hash, code: types.CodeType) -> None:
    """What a code object does: its bytecode, names and constants (nested code recursively); not its
    line numbers, so comments and layout do not count."""
    h.update(code.co_code)
    h.update(
        repr(
            (
                code.co_name,
                code.co_names,
                code.co_varnames,
                code.co_freevars,
                code.co_cellvars,
                code.co_argcount,
                code.co_posonlyargcount,
                code.co_kwonlyargcount,
                code.co_flags,
            )
        ).encode()
    )
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(h, const)
        else:
            h.update(_const_text(const).encode())


def _const_text(const: object) -> str:
    """repr of a constant, with frozensets (``x in {"a", "b"}``) sorted: their order follows string
    hashing, which changes from one process to the next."""
    if isinstance(const, frozenset):
        return "frozenset({" + ", ".join(sorted(_const_text(c) for c in const)) + "})"
    if isinstance(const, tuple):
        return "(" + ", ".join(_const_text(c) for c in const) + ",)"
    return repr(const)


def module_closure(roots: Iterable[str]) -> tuple[str, ...]:
    """The modules ``code_digest(roots)`` hashes, sorted."""
    return tuple(sorted(_closure(roots)))


def code_digest(roots: Iterable[str]) -> str:
    """sha256 of the package version and of the code (bytecode without docstrings, line numbers or
    comments) of ``roots`` and of the modules they import within ``MODEL_PACKAGES``, transitively
    (module docstring)."""
    h = hashlib.sha256(f"{PACKAGE} {_version.__version__}\n".encode())
    for name, code in sorted(_closure(roots).items()):
        h.update(f"\n# {name}\n".encode())
        _hash_code(h, code)
    return h.hexdigest()


__all__ = ["MODEL_PACKAGES", "code_digest", "module_closure"]
