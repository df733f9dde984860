"""Reads the SPECS part of a Timeloop stats.txt (test helper): level number -> name and specs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LevelSpecs:
    number: int
    name: str
    specs: dict[str, str]

    def int(self, key: str) -> int | None:
        v = self.specs.get(key)
        if v is None or v.strip() == "-":
            return None
        return int(v.split()[0])

    def float(self, key: str) -> float | None:
        v = self.specs.get(key)
        if v is None or v.strip() == "-":
            return None
        return float(v.split()[0])

    def mesh(self) -> tuple[int, int]:
        m = re.search(r"\((\d+)\*(\d+)\)", self.specs["Instances"])
        assert m, self.specs["Instances"]
        return int(m.group(1)), int(m.group(2))


def read_level_specs(path: Path) -> list[LevelSpecs]:
    """Levels in the order stats.txt prints them (Level 0 = arithmetic, then innermost storage first)."""
    text = path.read_text()
    head = text.split("\nNetworks\n", 1)[0]
    out = []
    for m in re.finditer(r"^Level (\d+)\n-+\n=== (\S+) ===\n(.*?)(?=^Level \d+\n|\Z)", head, re.M | re.S):
        body = m.group(3)
        specs_txt = body.split("STATS", 1)[0]
        specs = {}
        for line in specs_txt.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                specs[k.strip()] = v.strip()
        out.append(LevelSpecs(int(m.group(1)), m.group(2), specs))
    return out
