"""Imports every sub-command module so that each registers itself on the ``main`` group."""

from deepfrack.cli import search_cmds  # noqa: F401  optimize, evaluate
from deepfrack.cli import benchmark_cmd  # noqa: F401  benchmark
from deepfrack.cli import model_cmd  # noqa: F401  model
from deepfrack.cli import run_cmd  # noqa: F401  run (benchmark + optimize)
