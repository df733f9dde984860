"""The original's ``mapper.yaml`` (Timeloop's mapper section), read into settings for a mapper.

Timeloop reads ``optimization-metric`` (one) or ``optimization-metrics`` (a lexicographic list; default
``[edp]``); the reference runs used ``[delay, energy]``: fewest cycles first, then least energy. The
other keys steer Timeloop's random search (threads, timeout, victory condition, algorithm, ...). The
Timeloop backend passes the whole file to ``timeloop-mapper``; the built-in mapper honors the metrics
and lists the Timeloop-only keys in ``MapperSettings.ignored`` so the CLI can say it ignores them.
(Key names and defaults from Timeloop's ``src/applications/mapper/mapper.cpp``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfrack.errors import InputError, shown
from deepfrack.files import read_yaml

#: metrics Timeloop's mapper knows; deepfrack's mappers accept the same names
METRICS: tuple[str, ...] = ("delay", "energy", "edp", "last-level-accesses")
#: when no mapper.yaml is given: energy first (what DeepFrack's tables hold), then cycles
DEFAULT_METRICS: tuple[str, ...] = ("energy", "delay")

_INT_KEYS = {
    "num-threads": 1,
    "timeout": 0,
    "heartbeat": 0,
    "victory-condition": 0,
    "search-size": 0,
    "sync-interval": 0,
    "max-permutations-per-if-visit": 1,
}
#: the largest integer option accepted (Timeloop reads them as 32-bit integers)
MAX_OPTION = 2**31 - 1
_BOOL_KEYS = {
    "live-status",
    "log-stats",
    "log-suboptimal",
    "log-all",
    "diagnostics",
    "penalize-consecutive-bypass-fails",
    "emit-whoop-nest",
}
_STR_KEYS = {"algorithm", "out-prefix"}
_ALGORITHMS = {"random-pruned", "random", "exhaustive", "linear-pruned", "hybrid"}


@dataclass(frozen=True)
class MapperSettings:
    """optimization_metrics: lexicographic objective, first metric first. options: every other key of the
    file, as read (Timeloop search options). source: the file, when one was given. error: when the file
    parsed as YAML but its settings are unusable (``settings_from_doc``), why -- one line naming the file
    and key; a benchmark then records every entry as infeasible with it (the metrics and options are the
    defaults then, and mean nothing)."""

    optimization_metrics: tuple[str, ...] = DEFAULT_METRICS
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    error: str | None = None

    @property
    def ignored(self) -> tuple[str, ...]:
        """Keys a deepfrack mapper does not use (Timeloop search options)."""
        return tuple(sorted(self.options))


def parse_mapper_doc(doc: Any, path: str | Path | None = None) -> MapperSettings:
    """Settings from a parsed mapper.yaml (``{mapper: {...}}``; a bare mapping is accepted too).

    InputError naming the file and key on a value Timeloop would reject (unknown metric or algorithm, a
    wrongly typed option). Keys deepfrack does not know are kept in ``options`` (Timeloop versions add
    options; the Timeloop backend passes them on)."""
    if isinstance(doc, Mapping) and "mapper" in doc:
        body = doc["mapper"]
        prefix = "mapper"
    else:
        body = doc
        prefix = ""

    def where(k: str) -> str:
        return f"{prefix}.{k}" if prefix else k

    if not isinstance(body, Mapping):
        raise InputError(
            path,
            prefix or None,
            "expected a mapping of mapper options (e.g. optimization-metrics: [delay, energy])",
        )
    # Timeloop reads its keys with hyphens and underscores alike: so do we, and two spellings of one
    # key are an error rather than one silently winning
    spelled: dict[str, Any] = {}
    for k in body:
        canon = str(k).replace("_", "-")
        if canon in spelled:
            raise InputError(path, where(str(k)), f"given twice, as {spelled[canon]!r} and {k!r}")
        spelled[canon] = k
    canon_body = {str(k).replace("_", "-"): (k, v) for k, v in body.items()}
    metrics: tuple[str, ...] = DEFAULT_METRICS
    if "optimization-metric" in canon_body and "optimization-metrics" in canon_body:
        raise InputError(
            path, where("optimization-metric"), "give optimization-metric or optimization-metrics, not both"
        )
    raw: Any = None
    key = ""
    if "optimization-metric" in canon_body:
        key, one = canon_body["optimization-metric"]
        raw = [one]
    elif "optimization-metrics" in canon_body:
        key, raw = canon_body["optimization-metrics"]
    if raw is not None:
        if isinstance(raw, str) or not isinstance(raw, list) or not raw:
            raise InputError(
                path,
                where(key),
                f"must be a non-empty list of metrics ({', '.join(METRICS)}), got {shown(raw)}",
            )
        for m in raw:
            if not isinstance(m, str) or m not in METRICS:
                raise InputError(
                    path, where(key), f"unknown metric {shown(m)}; expected one of {', '.join(METRICS)}"
                )
        if len(set(raw)) != len(raw):
            raise InputError(path, where(key), f"a metric is listed twice: {shown(raw)}")
        metrics = tuple(raw)
    options: dict[str, Any] = {}
    for canon, (k, v) in canon_body.items():
        if canon in ("optimization-metric", "optimization-metrics"):
            continue
        if canon in _INT_KEYS:
            if isinstance(v, bool) or not isinstance(v, int) or not _INT_KEYS[canon] <= v <= MAX_OPTION:
                raise InputError(
                    path,
                    where(str(k)),
                    f"must be an integer from {_INT_KEYS[canon]} to {MAX_OPTION:,}, got {shown(v)}",
                )
        elif canon in _BOOL_KEYS:
            if not isinstance(v, bool):
                raise InputError(path, where(str(k)), f"must be True or False, got {shown(v)}")
        elif canon == "algorithm":
            if not isinstance(v, str) or v not in _ALGORITHMS:
                raise InputError(
                    path,
                    where(str(k)),
                    f"unknown algorithm {shown(v)}; expected one of {', '.join(sorted(_ALGORITHMS))}",
                )
        elif canon in _STR_KEYS and not isinstance(v, str):
            raise InputError(path, where(str(k)), f"must be a string, got {shown(v)}")
        options[str(k)] = v
    return MapperSettings(metrics, options, str(path) if path is not None else None)


def _parse_file_doc(doc: Any, path: str | Path) -> MapperSettings:
    if doc is None:
        raise InputError(path, None, "empty file; expected mapper: {optimization-metrics: [...], ...}")
    return parse_mapper_doc(doc, path)


def load_mapper_settings(path: str | Path | None) -> MapperSettings:
    """Settings from a mapper.yaml file, or the defaults when ``path`` is None. InputError on a file
    that cannot be read or parsed, and on unusable settings."""
    if path is None:
        return MapperSettings()
    return _parse_file_doc(read_yaml(path), path)


def settings_from_doc(doc: Any, path: str | Path) -> MapperSettings:
    """Settings from a mapper.yaml already parsed as YAML; unusable settings (an unknown metric, a
    wrongly typed option, an empty file) give ``MapperSettings(error=...)`` instead of an InputError,
    so that a benchmark records its entries as infeasible with the cause rather than stopping."""
    try:
        return _parse_file_doc(doc, path)
    except InputError as exc:
        return MapperSettings(source=str(path), error=str(exc))
