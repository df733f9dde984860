"""Test helper: a copy of an Accelergy ERT with one component's table, or one of its actions, removed."""

from pathlib import Path

import yaml

from deepfrack.arch.ert import component_name


def ert_without(src: Path, dst: Path, component: str, action: str | None) -> Path:
    """Write to ``dst`` the ERT ``src`` without ``component``'s table (action None) or without that
    component's ``action``; return ``dst``."""
    doc = yaml.safe_load(src.read_text())
    tables = doc["ERT"]["tables"]
    if action is None:
        doc["ERT"]["tables"] = [t for t in tables if component_name(t["name"]) != component]
    else:
        for t in tables:
            if component_name(t["name"]) == component:
                t["actions"] = [a for a in t["actions"] if a["name"] != action]
    dst.write_text(yaml.safe_dump(doc))
    return dst
