"""Statistics of a schedule: where the energy goes (per stack, layer, region shape and memory level),
pictures of the tiles and their halo, and one report (``write_stats``).

The names below are loaded on first use, so that importing ``deepfrack.stats.report`` (the log) does
not import matplotlib and jinja2."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ComponentRow": "deepfrack.stats.components",
    "component_rows": "deepfrack.stats.components",
    "Summary": "deepfrack.stats.summary",
    "summarize": "deepfrack.stats.summary",
    "StatsFiles": "deepfrack.stats.write",
    "write_stats": "deepfrack.stats.write",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
