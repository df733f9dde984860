"""The benchmark's result cache: one SQLite file (stdlib sqlite3), keyed by content hash.

Key of an entry = sha256 of the canonical JSON of

* the backend's fingerprint for the entry's variant (a hash of everything the result depends on besides
  the job: architecture, energy table, the variant's constraints, mapper settings, backend and version),
* the tile problem: the layer's dimensions other than P/Q (its name and padding left out -- a tile's
  cost does not depend on them, so the same conv in two networks shares entries),
* the variant, and then the tile shape (h x w, i.e. Q x P).

Work shared between entries (the built-in mapper's warm-start ladder of a layer problem) is kept in a
second table, ``shared``, by content key, as JSON.

Durability: WAL journal, one transaction per batch of results. A process killed at any point (Ctrl-C,
``kill -9``) leaves every committed batch in the file and no partial one; SQLite's journal makes the file
consistent on the next open. Only the parent process writes. ``synchronous=NORMAL`` is safe against a
process crash; after a power loss the last batches may be lost (never corrupted).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from deepfrack.arch.yamlio import Tagged
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.cost.table import CostRecord
from deepfrack.errors import InputError, shown
from deepfrack.workload.layer import Layer

SCHEMA_VERSION = 1
#: bump when the meaning of a cached entry changes (the key format, the record fields)
KEY_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('ok', 'infeasible')),
    record TEXT,
    reason TEXT NOT NULL DEFAULT '',
    backend TEXT NOT NULL DEFAULT '',
    problem TEXT NOT NULL DEFAULT '',
    variant TEXT NOT NULL DEFAULT '',
    tile_h INTEGER,
    tile_w INTEGER,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shared (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL);
"""


# --------------------------------------------------------------------------------------------- #
# canonical JSON and keys
# --------------------------------------------------------------------------------------------- #
#: the deepest nesting ``to_plain`` converts (parsed input files nest at most deepfrack.files.MAX_DEPTH)
MAX_PLAIN_DEPTH = 200


def to_plain(obj: Any, _depth: int = 0) -> Any:
    """Plain JSON data from dataclasses, enums, mappings, sequences, sets and paths (deterministic:
    sets are sorted, mapping keys become strings; a YAML ``Tagged`` mapping keeps its tag under "!").
    ValueError beyond ``MAX_PLAIN_DEPTH`` levels of nesting (a structure that contains itself)."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj.value if isinstance(obj, enum.Enum) else obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if _depth > MAX_PLAIN_DEPTH:
        raise ValueError(f"data nested deeper than {MAX_PLAIN_DEPTH} levels")
    d = _depth + 1
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, d) for v in obj]
    if isinstance(obj, Tagged):  # a v0.4 !Tag mapping: the tag is content too
        return {"!": obj.tag, **{str(k): to_plain(v, d) for k, v in obj.items()}}
    if isinstance(obj, dict):
        return {str(k): to_plain(v, d) for k, v in obj.items()}
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value, d)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name), d) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v, d) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted((to_plain(v, d) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    return str(obj)  # dates and other YAML scalars


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: equal data gives equal text."""
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def content_hash(obj: Any) -> str:
    """sha256 hex digest of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


#: Layer fields a tile's cost depends on, besides P and Q (the tile): not the name, not the padding
_PROBLEM_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Layer) if f.name not in ("name", "pad", "P", "Q")
)


@functools.lru_cache(maxsize=4096)
def _problem_json(values: tuple[Any, ...]) -> str:
    return canonical_json(dict(zip(_PROBLEM_FIELDS, values, strict=True)))


def problem_json(job: Job) -> str:
    """Canonical JSON of the job's layer dimensions other than the tile (P, Q), name and padding."""
    return _problem_json(tuple(getattr(job.layer, f) for f in _PROBLEM_FIELDS))


@functools.lru_cache(maxsize=4096)
def _key_prefix(fingerprint: str, problem: str, variant: str) -> str:
    return canonical_json(
        {
            "key_version": KEY_VERSION,
            "backend": fingerprint,
            "problem": json.loads(problem),
            "variant": variant,
        }
    )


def job_key(job: Job, fingerprint: str) -> str:
    """The cache key of a job under a backend fingerprint: sha256 of the canonical JSON of (key version,
    fingerprint, problem without the tile, variant) followed by the tile shape (h x w = Q x P)."""
    prefix = _key_prefix(fingerprint, problem_json(job), job.variant.value)
    return hashlib.sha256(f"{prefix}|shape={job.tile_h}x{job.tile_w}".encode()).hexdigest()


# --------------------------------------------------------------------------------------------- #
# records <-> JSON
# --------------------------------------------------------------------------------------------- #
def record_to_json(record: CostRecord) -> str:
    doc = {
        "energy_pJ": record.energy_pJ,
        "cycles": record.cycles,
        "macs": record.macs,
        "level_energy_pJ": dict(record.level_energy_pJ),
        "accesses": record.accesses,
        "mapping": record.mapping,
    }
    try:  # plain data already (what the backends record): the same text as through to_plain, at once
        return json.dumps(doc, separators=(",", ":"), allow_nan=False, check_circular=False)
    except (TypeError, ValueError):
        pass
    doc["accesses"] = to_plain(record.accesses)
    doc["mapping"] = to_plain(record.mapping)
    return json.dumps(doc, separators=(",", ":"))


def _num(value: Any, optional: bool = False) -> Any:
    if value is None and optional:
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"not a count or energy: {shown(value, 30)}")
    return value


def record_from_json(text: str) -> CostRecord:
    """The record ``record_to_json`` wrote; ValueError when the text is not such a record."""
    d = json.loads(text)
    if not isinstance(d, dict):
        raise ValueError("not a cost record")
    _num(d.get("energy_pJ"))
    _num(d.get("cycles"), optional=True)
    _num(d.get("macs"), optional=True)
    for k in ("level_energy_pJ", "accesses"):
        if not isinstance(d.get(k) or {}, dict):
            raise ValueError(f"{k} is not a mapping")
    return CostRecord(
        energy_pJ=d["energy_pJ"],
        cycles=d.get("cycles"),
        macs=d.get("macs"),
        level_energy_pJ=d.get("level_energy_pJ") or {},
        accesses=d.get("accesses") or {},
        mapping=d.get("mapping"),
    )


# --------------------------------------------------------------------------------------------- #
# the cache
# --------------------------------------------------------------------------------------------- #
class ResultCache:
    """Cached outcomes by key. ``ok`` and ``infeasible`` outcomes are stored; ``error`` outcomes (a
    crashed evaluator, a failed binary) are not, so a re-run retries them.

    Use as a context manager, or call ``close()``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                self.path, None, f"cannot create the cache's folder: {exc.strerror or exc}"
            ) from None
        self._db: sqlite3.Connection | None = None
        with self._guard():
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise InputError(
                    self.path,
                    None,
                    f"cache schema {shown(row[0], 20)} is not this deepfrack's ({SCHEMA_VERSION}); "
                    "give another --cache file",
                )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Any SQLite error, and any entry that does not decode, whenever it shows (a damaged page may
        be found only when a query reads it): one InputError naming the cache and how to go on."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise InputError(
                    self.path,
                    None,
                    f"the result cache is in use by another run ({exc}); wait, or give another --cache",
                ) from None
            raise self._damaged(exc) from None
        except (sqlite3.DatabaseError, _BadEntry) as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> InputError:
        return InputError(
            self.path,
            None,
            f"not a usable deepfrack result cache ({exc}): delete the file (it holds only results that can "
            "be computed again) or give another --cache",
        )

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "cache closed"
        return self._db

    # -- context manager
    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # -- reads
    def __len__(self) -> int:
        with self._guard():
            return int(self.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def _rows(self, table: str, columns: str, keys: Iterable[str]) -> Iterator[tuple]:
        """The rows of ``table`` whose key is in ``keys``, in chunks (SQLite's parameter limit)."""
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            yield from self.db.execute(f"SELECT {columns} FROM {table} WHERE key IN ({marks})", chunk)

    def get_many(self, keys: Iterable[str]) -> dict[str, Outcome]:
        """Cached outcomes of the given keys (missing keys are absent from the result)."""
        found: dict[str, Outcome] = {}
        with self._guard():
            for key, status, record, reason in self._rows("entries", "key, status, record, reason", keys):
                found[key] = _outcome(key, status, record, reason)
        return found

    # -- writes
    def put_many(self, items: Iterable[tuple[str, Job, Outcome]], backend: str = "") -> int:
        """Store outcomes in one transaction (all or nothing); returns how many were stored."""
        now = time.time()
        rows = []
        for key, job, outcome in items:
            if outcome.status == "error":
                continue
            rows.append(
                (
                    key,
                    outcome.status,
                    record_to_json(outcome.record) if outcome.record is not None else None,
                    outcome.reason,
                    backend,
                    problem_json(job),
                    job.variant.value,
                    job.tile_h,
                    job.tile_w,
                    now,
                )
            )
        if not rows:
            return 0
        with self._guard(), self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def get_shared(self, keys: Iterable[str]) -> dict[str, Any]:
        """Shared work by key (JSON data; missing keys are absent)."""
        found: dict[str, Any] = {}
        with self._guard():
            for key, value in self._rows("shared", "key, value", keys):
                try:
                    found[key] = json.loads(value)
                except (TypeError, ValueError):
                    raise _BadEntry(f"shared entry {str(key)[:12]}... does not decode") from None
        return found

    def put_shared(self, items: Mapping[str, Any]) -> None:
        """Store shared work (JSON data) in one transaction."""
        if not items:
            return
        now = time.time()
        rows = [(k, json.dumps(v, separators=(",", ":")), now) for k, v in items.items()]
        with self._guard(), self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO shared VALUES (?,?,?)", rows)

    def _transaction(self) -> _Tx:
        return _Tx(self.db)


class _BadEntry(ValueError):
    """A cached entry that does not decode (a damaged file)."""


def _outcome(key: str, status: Any, record: Any, reason: Any) -> Outcome:
    try:
        if status == "ok":
            return Outcome.ok(record_from_json(record))
        if status == "infeasible" and isinstance(reason, str):
            return Outcome.infeasible(reason)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    raise _BadEntry(f"entry {key[:12]}... does not decode")


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            with contextlib.suppress(sqlite3.Error):  # the error being raised says what went wrong
                self.db.execute("ROLLBACK")


def default_cache_path() -> Path:
    """``$DEEPFRACK_CACHE``, else ``$XDG_CACHE_HOME/deepfrack/benchmark.sqlite`` (``~/.cache`` by default):
    one cache shared by every run, so overlapping workloads reuse entries."""
    env = os.environ.get("DEEPFRACK_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deepfrack" / "benchmark.sqlite"
