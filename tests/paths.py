"""Paths of the bundled reference data (examples/reference is a copy of the project's shared
reference set)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "examples" / "reference"
EXAMPLES = REF / "deepfrack-examples"
EXERCISES = REF / "timeloop-exercises"
